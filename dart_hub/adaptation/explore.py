"""Exploration beyond the gap (paper Eq. 4-5) and the choice of the kept continuation.

A continuation qualifies when its final answer is equivalent to the gold answer (outcome
consistency, checked by math-verify, never string equality), with ``--unfinished drop``
(robust) it finished on its own (a continuation cut off by the token budget, finish_reason
"length", would end the training row mid-sentence, so it never qualifies; with the paper's
``--unfinished keep`` outcome consistency alone decides) and, with ``--cleaning cleaned`` (default), its
repetition ratio is at most `max_repetition` (paper Appendix B cleaning). With ``--keep one``
the kept continuation is the qualifying one with the lowest repetition ratio, then the fewest
tokens, then the lowest sample index; with ``--cleaning raw`` (paper Table 5,
Adaptation-Raw) there is no repetition filter and no low-repetition preference: the first
qualifying sample is kept. With ``--keep all`` every qualifying continuation becomes a
trajectory.
"""

from __future__ import annotations

from collections.abc import Sequence

from dart_hub.adaptation.judge import request_seed
from dart_hub.config import AdaptConfig
from dart_hub.engines.base import GenerationRequest
from dart_hub.prompts import Prompts
from dart_hub.records import Candidate, Problem
from dart_hub.steps import join_steps


def explore_request(
    problem: Problem, steps: Sequence[str], keep_steps: int, config: AdaptConfig, prompts: Prompts
) -> GenerationRequest:
    """n_explore samples from the kept prefix; with no kept step the student solves alone."""
    if keep_steps > 0:
        messages = prompts.messages("exploration", problem.question, join_steps(steps[:keep_steps]))
    else:
        messages = prompts.messages("solve", problem.question)
    return GenerationRequest.chat(
        messages,
        n=config.n_explore,
        temperature=config.explore_temperature,
        top_p=config.explore_top_p,
        max_tokens=config.explore_max_tokens,
        seed=request_seed(config.seed, problem.id, "exploration", keep_steps),
    )


def finished(candidate: Candidate) -> bool:
    return candidate.finish_reason != "length"


def select(candidates: Sequence[Candidate], config: AdaptConfig) -> list[int]:
    """Indices of the kept candidates (see module docstring for the rule)."""
    raw = config.cleaning == "raw"
    unfinished_ok = getattr(config, "unfinished", "drop") == "keep"
    eligible = [
        i
        for i, c in enumerate(candidates)
        if c.correct and (unfinished_ok or finished(c)) and (raw or c.repetition <= config.max_repetition)
    ]
    if config.keep == "all" or raw:
        return eligible if config.keep == "all" else eligible[:1]
    ranked = sorted(eligible, key=lambda i: (candidates[i].repetition, candidates[i].completion_tokens, i))
    return ranked[:1]


def discard_reason(candidates: Sequence[Candidate], origin: str) -> str:
    """Why no candidate qualified: no candidates, none correct, the correct ones were all cut
    off by the token budget ("truncated"), or all finished correct ones were repetitive."""
    if not candidates:
        return "no_successful_rollout" if origin == "simulation" else "no_candidates"
    correct = [c for c in candidates if c.correct]
    if not correct:
        return "no_consistent_continuation" if origin == "explore" else "no_successful_rollout"
    if not any(finished(c) for c in correct):
        return "truncated"
    return "repetitive"


def compose(steps: Sequence[str], keep_steps: int, continuation: str) -> str:
    """The adapted trajectory: kept expert steps, then the student's continuation."""
    return join_steps([*steps[:keep_steps], continuation.strip()])
