"""`dart-hub compare`: eval runs side by side, as in the DART paper's Table 1."""

from __future__ import annotations

import click

from dart_hub.evaluation.report import FORMATS

HELP = """Compare eval runs: one row per run, one column per benchmark plus the average.

\b
Each DIR is an output folder of `dart-hub eval`. Scores are accuracies in percent; the
average is unweighted over the benchmarks (as in the paper's Table 1). Every other run shows
its difference to the baseline run in parentheses (percentage points).

\b
Row labels: the model's Hub id, or the folder name for local checkpoints; override with
--label DIR=NAME. Baseline: the first DIR unless --baseline DIR (put the untuned student first).

\b
Example:
  dart-hub compare eval/no-tuning eval/static eval/full \\
      --label eval/no-tuning=No-Tuning --label eval/full=Adaptation-Full
"""


@click.command(help=HELP, context_settings={"max_content_width": 100})
@click.argument("directories", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--baseline", default=None, metavar="DIR", help="Run the deltas are taken against [default: the first DIR].")
@click.option("--label", "labels", multiple=True, metavar="DIR=NAME", help="Row label of a run. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="markdown", show_default=True, help="Output format.")
def command(directories, baseline, labels, fmt) -> None:
    from dart_hub.errors import DartHubError
    from dart_hub.evaluation.report import (
        compare_runs,
        load_runs,
        match_directory,
        render_comparison,
    )

    names = {}
    for value in labels:
        key, sep, name = value.partition("=")
        if not sep or not key or not name:
            raise DartHubError(f"--label {value!r}: expected DIR=NAME")
        names[key] = name
    runs = load_runs(directories, names)
    index = 0 if baseline is None else match_directory(baseline, [r.directory for r in runs], "--baseline")
    click.echo(render_comparison(compare_runs(runs, baseline=index), fmt))
