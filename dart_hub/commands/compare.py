"""`dart-hub compare`: eval runs side by side, as in the DART paper's tables."""

from __future__ import annotations

import click

from dart_hub.evaluation.report import FORMATS

HELP = """Compare evaluations: the paper's grid from `dart-hub run` folders, or eval folders side by side.

\b
Grid (DIRs are run folders, or folders holding them, e.g. `runs/`): the runs of the recipes
laid out as the paper's Table 1: one group per student, rows No-Tuning then, per dataset,
Static, Adaptation-First/-Gap/-Raw and Adaptation-Full; columns the benchmarks plus the average.
In parentheses: points against the student's No-Tuning run. Each run's place comes from its
recipe (`paper:` section, else its settings), written to OUTPUT/run-summary.json; scores from
OUTPUT/eval/results.json. --table 3 or 5 keeps that table's runs (Table 5 names Full
"Adaptation-Cleaned"). Runs whose eval has not finished are listed as such.

\b
Eval folders (DIRs written by `dart-hub eval --output DIR`): one row per run. Scores are
accuracies in percent; the average is unweighted over the benchmarks. Every other run shows its
difference to the baseline run in parentheses (percentage points). Row labels: the model's Hub
id, or the folder name for local checkpoints; override with --label DIR=NAME. Baseline: the
first DIR unless --baseline DIR (put the untuned student first).

\b
Examples:
  dart-hub compare runs/                     # every recipe run below runs/, Table 1 layout
  dart-hub compare runs/ --table 3
  dart-hub compare eval/no-tuning eval/static eval/full \\
      --label eval/no-tuning=No-Tuning --label eval/full=Adaptation-Full
"""


@click.command(help=HELP, context_settings={"max_content_width": 100})
@click.argument("directories", nargs=-1, required=True, type=click.Path(path_type=str))
@click.option("--table", type=click.Choice(["1", "3", "5"]), default=None, help="Grid: only the runs of this table of the paper [default: every run].")
@click.option("--baseline", default=None, metavar="DIR", help="Eval folders: the run the deltas are taken against [default: the first DIR].")
@click.option("--label", "labels", multiple=True, metavar="DIR=NAME", help="Eval folders: row label of a run. Repeatable.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="markdown", show_default=True, help="Output format.")
def command(directories, table, baseline, labels, fmt) -> None:
    from dart_hub.api import compare
    from dart_hub.errors import DartHubError

    names = {}
    for value in labels:
        key, sep, name = value.partition("=")
        if not sep or not key or not name:
            raise DartHubError(f"--label {value!r}: expected DIR=NAME")
        names[key] = name
    click.echo(compare(directories, table=int(table) if table else None, baseline=baseline, labels=names, fmt=fmt).text)
