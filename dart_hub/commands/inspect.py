"""`dart-hub inspect`: look at a dataset the way DART will see it, before spending compute."""

from __future__ import annotations

import json
import shutil
from typing import Any

import click

from dart_hub.commands.options import source_options
from dart_hub.records import Problem
from dart_hub.sources import PRESETS, LoadedSource
from dart_hub.steps import DEFAULT_MIN_STEP_CHARS

_LAST_BOX = "last \\boxed{}"
_PRESET_LINES = "\n".join(
    f"    {name:<14}{preset.repo_id} ({preset.question_column} / {preset.solution_column} / "
    f"{preset.answer_column or _LAST_BOX})"
    for name, preset in PRESETS.items()
)


@click.command(
    name="inspect",
    help=f"""Show problems of a dataset, split into steps, with their gold answers.

\b
DATASET is one of:
  - a preset:
{_PRESET_LINES}
  - a local .jsonl, .json or .parquet file, or a folder of them (one format
    per folder; files named train*/test* give splits, the rest is 'train');
  - any other Hub dataset id (owner/name), read at the exact commit resolved
    from --revision (HF_ENDPOINT and HF_TOKEN are honoured).

Columns default to the preset's, otherwise to LIMO's names (question, solution,
answer). The gold answer is the answer column's value; when there is no answer
column, or a row's answer cell is empty, it is the last \\boxed{{}} of the
solution. Rows with an empty question or solution, no gold answer, or a question
already seen are skipped and counted by reason in the summary.

Steps are the solution's blank-line separated paragraphs; display math ($$,
\\[, \\begin) and code fences spanning blank lines stay together, and pieces
shorter than --min-step-chars are merged into the next step.

\b
Examples:
  dart-hub inspect limo
  dart-hub inspect math-qwq-32b --limit 5 --full
  dart-hub inspect ./my.jsonl --question-column prompt --solution-column response
  dart-hub inspect me/limo-mirror --preset limo --revision v1.0
  dart-hub inspect ./data/ --split test --limit 0 --json > problems.jsonl
""",
)
@click.argument("dataset")
@source_options
@click.option(
    "--limit",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Number of problems to show (valid problems, skipped rows do not count); 0 reads all.",
)
@click.option(
    "--min-step-chars",
    type=click.IntRange(min=0),
    default=DEFAULT_MIN_STEP_CHARS,
    show_default=True,
    help="Steps shorter than this many characters are merged into the next step.",
)
@click.option(
    "--full",
    is_flag=True,
    help="Print questions and steps in full instead of one truncated line each.",
)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print JSON lines instead: one {'type': 'problem'} object per problem (with its steps), "
    "one {'type': 'skipped'} per skipped row, then one {'type': 'summary'}.",
)
def command(as_json: bool, full: bool, **options: Any) -> None:
    from dart_hub.api import inspect
    from dart_hub.specs import InspectSpec

    # JSON mode is for scripts: no progress bars then
    inspection = inspect(InspectSpec(**options), progress_bars=not as_json)
    if as_json:
        for record in inspection.records():
            _echo_json(record)
        return
    source = inspection.source
    width = max(40, min(shutil.get_terminal_size((100, 24)).columns, 140))
    for number, (problem, problem_steps) in enumerate(zip(source.problems, inspection.steps, strict=True), start=1):
        _print_problem(number, len(source.problems), problem, problem_steps, width, full)
    _print_summary(source, inspection.summary)


def _echo_json(obj: dict[str, Any]) -> None:
    click.echo(json.dumps(obj, ensure_ascii=False, default=str))


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: max(1, width - 1)] + "…"


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines())


def _print_problem(
    number: int, total: int, problem: Problem, steps: list[str], width: int, full: bool
) -> None:
    header = f"Problem {number}/{total}  id {problem.id}  (row {problem.provenance.row_index + 1})"
    click.secho(header, bold=True)
    if full:
        click.echo("Question:")
        click.echo(_indent(problem.question.strip(), "    "))
    else:
        click.echo("Question: " + _one_line(problem.question, 2 * width - 10))
    click.echo(f"Steps ({len(steps)}):")
    label_width = len(str(len(steps)))
    for index, step in enumerate(steps, start=1):
        label = f"  {index:>{label_width}}. "
        if full:
            body = _indent(step, " " * len(label)).lstrip()
            click.echo(label + body)
        else:
            click.echo(label + _one_line(step, width - len(label)))
    click.echo(f"Gold answer: {problem.answer}")
    click.echo()


SHOW_SKIPPED = 5


def _print_summary(source: LoadedSource, summary: dict[str, Any]) -> None:
    if source.kind == "hub":
        where = f"{source.repo_id} at revision {source.revision or 'unresolved (offline)'}"
        if source.config:
            where += f", config {source.config}"
    else:
        where = f"{source.spec.dataset} (local, {len(source.data_files)} file(s))"
    gold = (
        f"column '{source.answer_column}' (else the solution's last \\boxed{{}})"
        if source.answer_column
        else "the solution's last \\boxed{}"
    )
    skipped = summary["skipped"]
    skipped_text = (
        f"{sum(skipped.values())} (" + ", ".join(f"{k}: {v}" for k, v in skipped.items()) + ")"
        if skipped
        else "0"
    )
    if summary["steps_mean"] is None:
        steps_text = "-"
    else:
        steps_text = f"mean {summary['steps_mean']:.2f}, median {summary['steps_median']:g}"
    rows = [
        ("source", where),
        ("split", source.split),
        ("license", source.license or "unknown"),
        ("columns", ", ".join(source.columns)),
        ("question", f"column '{source.question_column}'"),
        ("solution", f"column '{source.solution_column}'"),
        ("gold answer", gold),
        (
            "problems read",
            f"{summary['problems']} (from {source.rows_read} of {source.num_rows} rows)",
        ),
        ("skipped rows", skipped_text),
        ("steps/problem", f"{steps_text} (min step chars {summary['min_step_chars']})"),
        ("fingerprint", summary["fingerprint"]),
    ]
    click.secho("Summary", bold=True)
    for key, value in rows:
        click.echo(f"  {key + ':':<15}{value}")
    # Which rows, numbered as an editor shows them (1-based); all of them with --json.
    for row in source.skipped[:SHOW_SKIPPED]:
        where = row.detail if row.detail.startswith("line ") else f"row {row.row_index + 1}" + (f": {row.detail}" if row.detail else "")
        click.echo(f"    skipped {row.reason}: {_one_line(where, 90)}")
    if len(source.skipped) > SHOW_SKIPPED:
        click.echo(f"    ... and {len(source.skipped) - SHOW_SKIPPED} more (all of them with --json)")
