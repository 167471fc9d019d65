"""Step adaptability (paper Eq. 3): f_t = share of student rollouts from s_0..s_t reaching the gold.

Prefixes that already reveal the gold answer (dart_hub.adapt.reveal) are not probed: their
score and success count are None and they have no rollouts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dart_hub.adapt.judge import Checker, judge, request_seed
from dart_hub.config import AdaptConfig
from dart_hub.engines.base import Engine, GenerationRequest, ProgressCallback
from dart_hub.prompts import Prompts
from dart_hub.records import Candidate, Problem
from dart_hub.steps import join_steps


@dataclass(frozen=True)
class ProbeResult:
    scores: list[float | None]  # f_t for t = 0..T; None: not probed (answer-revealing prefix)
    successes: list[int | None]
    rollouts: list[list[Candidate]]  # rollouts[t]: the n_sim judged rollouts from s_0..s_t
    prompt_tokens: int
    completion_tokens: int
    reveal_step: int | None = None  # first step whose prefix states the gold answer

    @property
    def sequences(self) -> int:
        return sum(len(r) for r in self.rollouts)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProbeResult:
        data = dict(data)
        data["rollouts"] = [[Candidate(**c) for c in group] for group in data["rollouts"]]
        return cls(**data)


def probe_requests(
    problem: Problem, steps: Sequence[str], config: AdaptConfig, prompts: Prompts, limit: int | None = None
) -> list[GenerationRequest]:
    """One request per prefix s_0..s_t for t < limit (n = n_sim samples each), in step order
    so that consecutive requests share the longest prompt prefix."""
    count = len(steps) if limit is None else min(limit, len(steps))
    return [
        GenerationRequest.chat(
            prompts.messages("simulation", problem.question, join_steps(steps[: t + 1])),
            n=config.n_sim,
            temperature=config.sim_temperature,
            top_p=config.sim_top_p,
            max_tokens=config.sim_max_tokens,
            seed=request_seed(config.seed, problem.id, "simulation", t),
        )
        for t in range(count)
    ]


def probe(
    engine: Engine,
    items: Sequence[tuple[Problem, Sequence[str]]],
    config: AdaptConfig,
    prompts: Prompts,
    checker: Checker,
    progress: ProgressCallback | None = None,
    reveals: Sequence[int | None] | None = None,
) -> list[ProbeResult]:
    """Probe every prefix of every problem of a chunk with one engine call, except the
    answer-revealing ones (`reveals[i]`: first revealing step of problem i, or None)."""
    reveals = list(reveals) if reveals is not None else [None] * len(items)
    per_problem = [
        probe_requests(problem, steps, config, prompts, limit=reveal)
        for (problem, steps), reveal in zip(items, reveals, strict=True)
    ]
    flat = [request for requests in per_problem for request in requests]
    outputs = engine.generate(flat, progress=progress) if flat else []
    golds = [problem.answer for (problem, _), requests in zip(items, per_problem, strict=True) for _ in requests]
    judged = judge(list(zip(golds, outputs, strict=True)), checker, origin="simulation", ngram=config.repetition_ngram)

    results, start = [], 0
    for (_, steps), requests, reveal in zip(items, per_problem, reveals, strict=True):
        end = start + len(requests)
        unprobed = len(steps) - len(requests)
        rollouts = judged[start:end] + [[] for _ in range(unprobed)]
        completions = [c for group in outputs[start:end] for c in group]
        successes: list[int | None] = [sum(c.correct for c in candidates) for candidates in judged[start:end]]
        successes += [None] * unprobed
        results.append(
            ProbeResult(
                scores=[None if s is None else s / config.n_sim for s in successes],
                successes=successes,
                rollouts=rollouts,
                prompt_tokens=sum(c.prompt_tokens for c in completions),
                completion_tokens=sum(c.completion_tokens for c in completions),
                reveal_step=reveal,
            )
        )
        start = end
    return results
