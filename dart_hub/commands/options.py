"""Click options shared by the commands that read a dataset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dart_hub.sources import PRESETS, SourceSpec

_SOURCE_OPTIONS = [
    click.option(
        "--split",
        default="train",
        show_default=True,
        help="Split to read. Local files are the 'train' split unless their file names say otherwise.",
    ),
    click.option(
        "--revision",
        default=None,
        help="Hub branch, tag or commit sha (Hub datasets only). Default: the main branch; the "
        "commit it resolves to is recorded.",
    ),
    click.option("--config", "dataset_config", default=None, help="Hub dataset configuration (subset) name."),
    click.option(
        "--preset",
        type=click.Choice(sorted(PRESETS)),
        default=None,
        help="Read the dataset with a preset's column layout, e.g. a Hub mirror or a local copy of LIMO.",
    ),
    click.option(
        "--question-column",
        default=None,
        metavar="NAME",
        help="Column holding the problem statement. [default: the preset's, else 'question']",
    ),
    click.option(
        "--solution-column",
        default=None,
        metavar="NAME",
        help="Column holding the expert solution. [default: the preset's, else 'solution']",
    ),
    click.option(
        "--answer-column",
        default=None,
        metavar="NAME",
        help="Column holding the gold answer; --answer-column '' takes it from the solution's last "
        "\\boxed{} instead. [default: the preset's, else 'answer' when the data has it]",
    ),
]


def source_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add --split/--revision/--config/--preset/--*-column to a command."""
    for decorator in reversed(_SOURCE_OPTIONS):
        function = decorator(function)
    return function


def source_spec(dataset: str, options: dict[str, Any], limit: int | None) -> SourceSpec:
    return SourceSpec(
        dataset=dataset,
        split=options["split"],
        revision=options["revision"],
        config=options["dataset_config"],
        question_column=options["question_column"],
        solution_column=options["solution_column"],
        answer_column=options["answer_column"],
        limit=limit,
        preset=options["preset"],
    )


def cli_defaults(command: click.Command) -> dict[str, Any]:
    """A command's option defaults as click would pass them (flags resolved to False), so the
    library can call a command's `run(**options)` exactly as the CLI does."""
    ctx = click.Context(command)
    return {p.name: p.get_default(ctx) for p in command.params if p.name}
