"""Step adaptability (paper Eq. 3): f_t = share of student rollouts from s_0..s_t reaching the gold."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from dart_hub.adapt.judge import Checker, judge, request_seed
from dart_hub.config import AdaptConfig
from dart_hub.engines.base import Engine, GenerationRequest, ProgressCallback
from dart_hub.prompts import Prompts
from dart_hub.records import Candidate, Problem
from dart_hub.steps import join_steps


@dataclass(frozen=True)
class ProbeResult:
    scores: list[float]  # f_t for t = 0..T
    successes: list[int]
    rollouts: list[list[Candidate]]  # rollouts[t]: the n_sim judged rollouts from s_0..s_t
    prompt_tokens: int
    completion_tokens: int

    @property
    def sequences(self) -> int:
        return sum(len(r) for r in self.rollouts)


def probe_requests(problem: Problem, steps: Sequence[str], config: AdaptConfig, prompts: Prompts) -> list[GenerationRequest]:
    """One request per prefix s_0..s_t (n = n_sim samples each), in step order so that
    consecutive requests share the longest prompt prefix."""
    return [
        GenerationRequest.chat(
            prompts.messages("simulation", problem.question, join_steps(steps[: t + 1])),
            n=config.n_sim,
            temperature=config.sim_temperature,
            top_p=config.sim_top_p,
            max_tokens=config.sim_max_tokens,
            seed=request_seed(config.seed, problem.id, "simulation", t),
        )
        for t in range(len(steps))
    ]


def probe(
    engine: Engine,
    items: Sequence[tuple[Problem, Sequence[str]]],
    config: AdaptConfig,
    prompts: Prompts,
    checker: Checker,
    progress: ProgressCallback | None = None,
) -> list[ProbeResult]:
    """Probe every prefix of every problem of a chunk with one engine call."""
    per_problem = [probe_requests(problem, steps, config, prompts) for problem, steps in items]
    flat = [request for requests in per_problem for request in requests]
    outputs = engine.generate(flat, progress=progress) if flat else []
    golds = [problem.answer for (problem, _), requests in zip(items, per_problem, strict=True) for _ in requests]
    judged = judge(list(zip(golds, outputs, strict=True)), checker, origin="simulation", ngram=config.repetition_ngram)

    results, start = [], 0
    for requests in per_problem:
        end = start + len(requests)
        rollouts = judged[start:end]
        completions = [c for group in outputs[start:end] for c in group]
        successes = [sum(c.correct for c in candidates) for candidates in rollouts]
        results.append(
            ProbeResult(
                scores=[s / config.n_sim for s in successes],
                successes=successes,
                rollouts=rollouts,
                prompt_tokens=sum(c.prompt_tokens for c in completions),
                completion_tokens=sum(c.completion_tokens for c in completions),
            )
        )
        start = end
    return results
