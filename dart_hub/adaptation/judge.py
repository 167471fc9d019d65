"""Turn student completions into judged candidates: final answer, correctness, repetition."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from dart_hub.answers import extract_answer
from dart_hub.engines.base import Completion
from dart_hub.records import Candidate
from dart_hub.repetition import repetition_ratio


class Checker(Protocol):
    def equivalent_many(self, pairs: Sequence[tuple[str, str | None]]) -> list[bool]: ...


def request_seed(base_seed: int, problem_id: str, stage: str, index: int) -> int:
    """A per-request seed that depends only on what the request is, never on batch position,
    so reruns, resumed runs and shards sample the same way."""
    digest = hashlib.sha256(f"{base_seed}:{problem_id}:{stage}:{index}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def judge(
    groups: Sequence[tuple[str, Sequence[Completion]]],
    checker: Checker,
    origin: str,
    ngram: int,
) -> list[list[Candidate]]:
    """For each (gold, completions) group, the candidates in the same order.

    All answers of all groups go to the checker in one call so its worker processes and
    cache see the whole chunk at once.
    """
    answers = [[extract_answer(c.text) for c in completions] for _, completions in groups]
    pairs = [(gold, answer) for (gold, _), group in zip(groups, answers, strict=True) for answer in group]
    verdicts = iter(checker.equivalent_many(pairs) if pairs else [])
    judged: list[list[Candidate]] = []
    for (_, completions), group_answers in zip(groups, answers, strict=True):
        candidates = []
        for completion, answer in zip(completions, group_answers, strict=True):
            verdict = next(verdicts)  # consumed even for a missing answer, to stay aligned
            candidates.append(
                Candidate(
                    text=completion.text,
                    answer=answer,
                    correct=answer is not None and bool(verdict),
                    repetition=round(repetition_ratio(completion.text, ngram), 4),
                    completion_tokens=completion.completion_tokens,
                    finish_reason=completion.finish_reason,
                    origin=origin,
                )
            )
        judged.append(candidates)
    return judged
