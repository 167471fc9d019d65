"""Record types that flow between stages. Plain frozen dataclasses, JSON-friendly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from dart_hub.adaptation.cut import STUDENT_CONTINUES


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


@dataclass(frozen=True)
class Candidate:
    """One student continuation considered for the adapted trajectory.

    origin: "explore" (exploration sample), "simulation" (a probe rollout reused by the
    `gap` / `first` strategies) or "privileged" (a DAIL sample from the privileged context). `kept` is True when it was chosen for the dataset.
    """

    text: str
    answer: str | None
    correct: bool
    repetition: float
    completion_tokens: int
    finish_reason: str
    origin: str
    kept: bool = False


@dataclass(frozen=True)
class AdaptedExample:
    """Everything dart-hub knows about one problem after adaptation: the record schema shared
    by the work dir, the parquet output, the dataset card and `merge`.

    scores[t] = f_t, the share of the n_sim rollouts from expert steps s_0..s_t that reached
    the gold answer; successes[t] the count. keep_steps expert steps are kept, followed by the
    chosen continuation; `trajectories` holds the final adapted solutions (one, or several
    with --keep all); empty when the example is discarded (outcome="discarded", with
    discard_reason).
    """

    id: str
    question: str
    gold: str
    expert_solution: str
    expert_steps: list[str]
    provenance: dict[str, Any]
    extra: dict[str, Any]
    strategy: str
    scores: list[float]
    successes: list[int]
    peak: int | None
    gap: int | None
    cut_reason: str
    keep_steps: int
    candidates: list[Candidate]
    trajectories: list[str]
    outcome: str  # "kept" | "discarded"
    discard_reason: str | None
    rollouts: int  # sequences generated for this example (simulation + exploration)
    prompt_tokens: int
    completion_tokens: int
    # First expert step that states the gold answer in a \boxed{} (its prefixes are not probed:
    # scores[t] and successes[t] are None from there on); None when no step does.
    reveal_step: int | None = None
    # Simulation rollouts drawn per prefix (0: not probed, e.g. skipped by --probe adaptive).
    samples: list[int] = field(default_factory=list)
    # Which adaptation method made the record (dart_hub.methods), and what it needs published
    # beside the trajectory (DAIL: {"contexts": {"privileged": [...], "negative": [...]}}).
    method: str = "dart"
    method_data: dict[str, Any] = field(default_factory=dict)

    @property
    def relative_gap(self) -> float | None:
        """Kept share of the expert trace (keep_steps / steps), when something was cut."""
        if self.cut_reason in STUDENT_CONTINUES and self.expert_steps:
            return self.keep_steps / len(self.expert_steps)
        return None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AdaptedExample:
        data = dict(data)
        data["candidates"] = [Candidate(**c) for c in data["candidates"]]
        return cls(**data)
