"""Record types that flow between stages. Plain frozen dataclasses, JSON-friendly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Provenance:
    """Where a problem came from, precisely enough to find the row again."""

    source: str  # what the user named: a preset ("limo"), a Hub id or a local path
    repo_id: str | None  # Hub dataset id, None for local files
    revision: str | None  # resolved commit sha on the Hub (None for local files)
    config: str | None
    split: str
    row_index: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Problem:
    """One expert example: question, expert solution, gold answer.

    `id` is stable across runs and shards: a hash of the normalized question.
    `extra` keeps the source row's other columns, so published data can be a drop-in replacement.
    """

    id: str
    question: str
    solution: str
    answer: str
    provenance: Provenance
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SkippedRow:
    """A source row that could not become a Problem, with the reason (counted by `inspect`)."""

    row_index: int
    reason: str  # short machine-friendly code, e.g. "empty_solution", "no_gold_answer"
    detail: str = ""
