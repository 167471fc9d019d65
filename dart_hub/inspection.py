"""A dataset as DART will see it, before spending compute (`dart-hub inspect`,
`dart_hub.api.inspect`): the problems with their steps and gold answers, the skipped rows with
their reasons, and a summary of the source (columns, revision, license, fingerprint)."""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dart_hub.records import Problem
from dart_hub.sources import LoadedSource, load_source, source_spec
from dart_hub.steps import split_steps


@dataclass
class Inspection:
    """What `inspect` read: the loaded source (problems, skipped rows, columns...), each
    problem's steps, and the summary `dart-hub inspect --json` ends with."""

    source: LoadedSource
    steps: list[list[str]]
    summary: dict[str, Any]

    @property
    def problems(self) -> list[Problem]:
        return self.source.problems

    def records(self) -> Iterator[dict[str, Any]]:
        """The JSON lines of `dart-hub inspect --json`: one {'type': 'problem'} per problem,
        one {'type': 'skipped'} per skipped row, then one {'type': 'summary'}."""
        for problem, problem_steps in zip(self.source.problems, self.steps, strict=True):
            yield {"type": "problem", **problem_json(problem, problem_steps)}
        for row in self.source.skipped:
            yield {"type": "skipped", "row_index": row.row_index, "reason": row.reason, "detail": row.detail}
        yield {"type": "summary", **self.summary}


def inspect_source(spec, progress_bars: bool = True) -> Inspection:
    """Load the dataset of an `InspectSpec` and split its solutions into steps. Local files load
    in a blink: no `datasets` progress bars for them (nor with `progress_bars` False)."""
    if not progress_bars or Path(spec.dataset).expanduser().exists():
        import datasets

        datasets.disable_progress_bars()
    source = load_source(source_spec(spec.dataset, spec.options(), spec.limit or None))
    steps = [split_steps(problem.solution, spec.min_step_chars) for problem in source.problems]
    return Inspection(source=source, steps=steps, summary=summarize(source, steps, spec.min_step_chars))


def problem_json(problem: Problem, steps: list[str]) -> dict[str, Any]:
    return {
        "id": problem.id,
        "question": problem.question,
        "answer": problem.answer,
        "num_steps": len(steps),
        "steps": steps,
        "provenance": problem.provenance.to_dict(),
        "extra": problem.extra,
    }


def summarize(source: LoadedSource, steps: list[list[str]], min_step_chars: int) -> dict[str, Any]:
    counts = [len(s) for s in steps]
    return {
        "source": source.spec.dataset,
        "kind": source.kind,
        "preset": source.preset,
        "repo_id": source.repo_id,
        "revision": source.revision,
        "config": source.config,
        "split": source.split,
        "license": source.license,
        "columns": source.columns,
        "question_column": source.question_column,
        "solution_column": source.solution_column,
        "answer_column": source.answer_column,
        "num_rows": source.num_rows,
        "rows_read": source.rows_read,
        "problems": len(source.problems),
        "skipped": source.skipped_by_reason(),
        "steps_mean": round(statistics.fmean(counts), 2) if counts else None,
        "steps_median": statistics.median(counts) if counts else None,
        "min_step_chars": min_step_chars,
        "fingerprint": source.fingerprint(),
    }
