"""`dart-hub report`: a self-contained HTML report of an adapted dataset, or of training / eval runs."""

from __future__ import annotations

import json
from pathlib import Path

import click

HELP = """Write a self-contained HTML report: open its index.html in any browser, from disk.

\b
No server, no network: CSS, script and charts (inline SVG) are in the pages themselves; every
text taken from the data is escaped (a solution containing <script> shows as text), and a
Content-Security-Policy keeps any script but the report's own from running.

\b
FOLDER (what `dart-hub adapt --output` wrote; `adapt` writes this report itself unless
--no-report): the overview (problems kept and discarded with the reasons, the rules and
settings that ran, the mean adaptability curve by relative position with quartiles, the
histogram of cut positions keep/T beside the DART paper's Table 6 positions, rollouts, tokens,
seconds, GPU-hours where known, links to the card and the parquet files) and one page per
problem (the question, f_t by expert step with the peak, the gap and the answer-revealing tail,
the expert steps kept and cut, the adapted solution with the student's part marked, every
candidate with its verdict and extracted answer). The list filters by outcome and cut reason,
sorts by cut position or cost and searches the question text; the filter lives in the address
(shareable), and index.html#problem=ID opens a problem. Default output: FOLDER/report.

\b
RUNS (folders of `dart-hub run`, `dart-hub eval --output`, `dart-hub train --output`, or the
`demo --train` output): the Table 1 grid as `dart-hub compare` prints it, per-benchmark bars
with 95% intervals (Wilson, over the problems; the demo's own bootstrap intervals), mean
response length, and training loss and validation score per epoch with the chosen epoch
marked. Default output: ./dart-hub-report.

\b
Examples:
  dart-hub report out/limo-1.5b                       # out/limo-1.5b/report/index.html
  dart-hub report out/limo-1.5b --output /tmp/limo-report
  dart-hub report runs/                               # every run below runs/
  dart-hub report runs/1.5b-base/eval runs/1.5b-dart/eval runs/1.5b-dart --output cmp
"""


@click.command(name="report", help=HELP, context_settings={"max_content_width": 100})
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None, help="Folder to write the report into (replaced as a whole) [default: FOLDER/report for a dataset, ./dart-hub-report for runs].")
@click.option("--json", "as_json", is_flag=True, help="Print where the report is, and its size, as JSON.")
def command(paths: tuple[Path, ...], output: Path | None, as_json: bool) -> None:
    from dart_hub.api import report

    result = report(paths, output=output)
    if as_json:
        click.echo(json.dumps(result.to_dict()))
    else:
        click.echo(f"report: {result.index} ({result.files} files, {result.bytes / 1e6:.1f} MB); open it in a browser")
