"""Step adaptability (paper Eq. 3): f_t = share of student rollouts from s_0..s_t reaching the gold.

With ``--answer-steps skip`` (robust) prefixes that already reveal the gold answer
(dart_hub.adaptation.reveal) are not probed: their score and success count are None and they have
no rollouts; with ``probe`` (the paper's) they are probed like the others (`reveal_step` is
recorded either way). Which prefixes are probed, and with how many rollouts, is the search's
choice (dart_hub.adaptation.search): all of them with N_sim rollouts (`scan`), or an adaptive subset;
an unprobed prefix's score is None, and a prefix whose sampling stopped early scores k of the m
rollouts drawn. With ``--confirm K`` (dart_hub.adaptation.confirm) candidate gaps and their peak get
up to K more rollouts once the search is done; a score is then the share over all rollouts
drawn for that prefix.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from dart_hub.adaptation.confirm import confirmed_walk
from dart_hub.adaptation.judge import Checker, judge, request_seed
from dart_hub.adaptation.search import Ask, search_requests
from dart_hub.config import AdaptConfig
from dart_hub.engines.base import Completion, Engine, GenerationRequest, ProgressCallback
from dart_hub.prompts import Prompts
from dart_hub.records import Candidate, Problem
from dart_hub.steps import join_steps


@dataclass(frozen=True)
class ProbeResult:
    scores: list[float | None]  # f_t for t = 0..T; None: not probed (answer-revealing prefix)
    successes: list[int | None]
    rollouts: list[list[Candidate]]  # rollouts[t]: the judged rollouts from s_0..s_t, in sample order
    prompt_tokens: int
    completion_tokens: int
    reveal_step: int | None = None  # first step whose prefix states the gold answer
    samples: list[int] | None = None  # rollouts drawn per prefix (0: not probed)

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


def prefix_request(
    problem: Problem, steps: Sequence[str], t: int, config: AdaptConfig, prompts: Prompts, offset: int = 0, count: int | None = None
) -> GenerationRequest:
    """Rollouts offset..offset+count-1 (default: all n_sim) of prefix s_0..s_t. The seed
    depends only on (run seed, problem, t), the sample index on the offset: any split of a
    prefix's rollouts into rounds draws the same texts."""
    return GenerationRequest.chat(
        prompts.messages("simulation", problem.question, join_steps(steps[: t + 1])),
        n=config.n_sim if count is None else count,
        temperature=config.sim_temperature,
        top_p=config.sim_top_p,
        max_tokens=config.sim_max_tokens,
        seed=request_seed(config.seed, problem.id, "simulation", t),
        sample_offset=offset,
    )


def probe_requests(
    problem: Problem, steps: Sequence[str], config: AdaptConfig, prompts: Prompts, limit: int | None = None
) -> list[GenerationRequest]:
    """The full scan: one request per prefix s_0..s_t for t < limit (n = n_sim samples each),
    in step order so that consecutive requests share the longest prompt prefix."""
    count = len(steps) if limit is None else min(limit, len(steps))
    return [prefix_request(problem, steps, t, config, prompts) for t in range(count)]


def next_asks(config: AdaptConfig, limit: int, outcomes: dict[int, list[bool]]) -> list[Ask]:
    """The search's next rollouts, on the first N_sim rollouts of each prefix; once it is done,
    the confirmation walk's (--confirm K, strategies full and gap)."""
    tallies = {t: (sum(o[: config.n_sim]), min(len(o), config.n_sim)) for t, o in outcomes.items()}
    asks = search_requests(
        config.probe,
        limit,
        config.n_sim,
        tallies,
        epsilon=config.epsilon,
        min_follow=config.min_follow,
        target="first" if config.strategy == "first" else "gap",
        coarse=config.probe_coarse,
        first_round=config.probe_round,
        head=config.probe_head,
    )
    if asks or not uses_confirmation(config):
        return asks
    return confirmed_walk(
        outcomes, config.n_sim, config.confirm, config.epsilon, config.peak, refine=config.probe == "adaptive"
    ).asks


def uses_confirmation(config: AdaptConfig) -> bool:
    return bool(config.confirm) and config.strategy in ("full", "gap")


def probe_flow(
    problem: Problem, steps: Sequence[str], config: AdaptConfig, prompts: Prompts, reveal: int | None = None
) -> Generator[list[GenerationRequest], list[tuple[Sequence[Completion], list[Candidate]]], ProbeResult]:
    """One problem's probing as a generator: it yields the requests of each round (all of
    them with `--probe scan`, the ones the adaptive search asks for otherwise, then the
    confirmation rounds with --confirm; answer-revealing prefixes only with `--answer-steps
    probe`), receives each request's (completions, judged candidates) in
    order, and returns the problem's ProbeResult. Drivers: `probe` (a chunk in lockstep
    rounds) and dart_hub.adaptation.stream (each problem at its own pace)."""
    skip = config.answer_steps == "skip"
    limit = len(steps) if reveal is None or not skip else min(reveal, len(steps))
    drawn: dict[int, list[Candidate]] = {}
    prompt_tokens = completion_tokens = 0
    while True:
        outcomes = {t: [c.correct for c in group] for t, group in drawn.items()}
        asks = next_asks(config, limit, outcomes)
        if not asks:
            break
        answers = yield [prefix_request(problem, steps, t, config, prompts, offset, count) for t, offset, count in asks]
        for (t, offset, _), (out, candidates) in zip(asks, answers, strict=True):
            group = drawn.setdefault(t, [])
            if len(group) != offset:
                raise RuntimeError(f"probe search asked for rollout {offset} of prefix {t} after {len(group)}")
            group.extend(candidates)
            prompt_tokens += sum(c.prompt_tokens for c in out)
            completion_tokens += sum(c.completion_tokens for c in out)
    rollouts = [drawn.get(t, []) for t in range(len(steps))]
    successes: list[int | None] = [sum(c.correct for c in group) if group else None for group in rollouts]
    return ProbeResult(
        scores=[None if k is None else k / len(group) for k, group in zip(successes, rollouts, strict=True)],
        successes=successes,
        rollouts=rollouts,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        reveal_step=reveal,
        samples=[len(group) for group in rollouts],
    )


def probe(
    engine: Engine,
    items: Sequence[tuple[Problem, Sequence[str]]],
    config: AdaptConfig,
    prompts: Prompts,
    checker: Checker,
    progress: ProgressCallback | None = None,
    reveals: Sequence[int | None] | None = None,
) -> list[ProbeResult]:
    """Probe a chunk's prefixes (all of them with `--probe scan`, the ones the adaptive search
    asks for otherwise), the answer-revealing ones (`reveals[i]`: first revealing step of
    problem i, or None) only with `--answer-steps probe`. One engine call per round over the
    whole chunk: the scan is one round (plus confirmation rounds with --confirm)."""
    reveals = list(reveals) if reveals is not None else [None] * len(items)
    flows = [probe_flow(p, steps, config, prompts, r) for (p, steps), r in zip(items, reveals, strict=True)]
    results: list[ProbeResult | None] = [None] * len(items)
    pending: dict[int, list[GenerationRequest]] = {}
    for i, flow in enumerate(flows):
        try:
            pending[i] = next(flow)
        except StopIteration as done:
            results[i] = done.value
    while pending:
        order = list(pending.items())
        requests = [r for _, rs in order for r in rs]
        outputs = engine.generate(requests, progress=progress)
        golds = [items[i][0].answer for i, rs in order for _ in rs]
        judged = judge(list(zip(golds, outputs, strict=True)), checker, origin="simulation", ngram=config.repetition_ngram)
        position, pending = 0, {}
        for i, rs in order:
            answers = list(zip(outputs[position : position + len(rs)], judged[position : position + len(rs)], strict=True))
            position += len(rs)
            try:
                pending[i] = flows[i].send(answers)
            except StopIteration as done:
                results[i] = done.value
    return [r for r in results if r is not None]
