"""Orchestration: chunks of problems through probe -> cut -> explore, durably stored.

(`adapt` streams by default: dart_hub.adaptation.stream drives `problem_flow`, and the other
methods' flows, one problem at a time, with the same chunk files; this module's chunked runner
is `--scheduler chunks`, and the runner of DAIL with tau < 1.)

Each chunk is two engine calls (all simulation prefixes, then all exploration prompts), so
engines see many requests at once. Chunk results are written atomically to the work dir; a
rerun loads finished chunks and recomputes only the rest, with the same per-request seeds, so
a resumed run produces the same records as an uninterrupted one. The simulation results of a
chunk are also stored in the probe cache (when one is given) as soon as they exist, so a kill
during exploration, or another strategy on the same inputs, does not pay for them again.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from dart_hub.adaptation.confirm import confirmed_cut, extra_rollouts
from dart_hub.adaptation.cut import NOTHING_FEASIBLE, Cut, decide_cut, static_cut
from dart_hub.adaptation.explore import compose, discard_reason, explore_request, select
from dart_hub.adaptation.judge import Checker, judge
from dart_hub.adaptation.position import paper_gap_positions, relative_cut_position
from dart_hub.adaptation.probe import ProbeResult, probe, probe_flow, uses_confirmation
from dart_hub.adaptation.reveal import reveal_steps
from dart_hub.adaptation.rules import deviations
from dart_hub.adaptation.search import adaptive_budget
from dart_hub.config import AdaptConfig
from dart_hub.engines.base import Engine
from dart_hub.prompts import Prompts
from dart_hub.records import AdaptedExample, Candidate, Problem, SkippedRow
from dart_hub.steps import split_steps
from dart_hub.store import ProbeStore, WorkDir


class Reporter(Protocol):
    """Progress hooks (the CLI shows a progress bar; the library default does nothing)."""

    def sequences_done(self, count: int) -> None: ...
    def problems_done(self, count: int, resumed: bool) -> None: ...


class SilentReporter:
    def sequences_done(self, count: int) -> None:
        pass

    def problems_done(self, count: int, resumed: bool) -> None:
        pass


def problem_steps(problem: Problem, config: AdaptConfig) -> list[str]:
    if config.min_step_chars is None:
        return split_steps(problem.solution)
    return split_steps(problem.solution, min_chars=config.min_step_chars)


def adapt_chunk(
    engine: Engine,
    problems: Sequence[Problem],
    config: AdaptConfig,
    prompts: Prompts,
    checker: Checker,
    reporter: Reporter | None = None,
    probe_store: ProbeStore | None = None,
) -> list[AdaptedExample]:
    reporter = reporter or SilentReporter()
    items = [(problem, problem_steps(problem, config)) for problem in problems]

    probes: list[ProbeResult | None] = [None] * len(items)
    if config.probes:
        probes = list(_probe_chunk(engine, items, config, prompts, checker, reporter, probe_store))

    cuts = [choose_cut(steps, result, config) for (_, steps), result in zip(items, probes, strict=True)]

    # Exploration (strategy full) wherever the student is to write the rest itself.
    explore_at = [i for i, cut in enumerate(cuts) if needs_exploration(cut, config)]
    explored: dict[int, tuple[list[Candidate], int, int]] = {}
    if explore_at:
        requests = [explore_request(items[i][0], items[i][1], cuts[i].keep_steps, config, prompts) for i in explore_at]
        outputs = engine.generate(requests, progress=reporter.sequences_done)
        judged = judge(
            [(items[i][0].answer, out) for i, out in zip(explore_at, outputs, strict=True)],
            checker,
            origin="explore",
            ngram=config.repetition_ngram,
        )
        for i, out, candidates in zip(explore_at, outputs, judged, strict=True):
            explored[i] = (candidates, sum(c.prompt_tokens for c in out), sum(c.completion_tokens for c in out))

    examples = []
    for i, ((problem, steps), result, cut) in enumerate(zip(items, probes, cuts, strict=True)):
        examples.append(_build_example(problem, steps, result, cut, explored.get(i), config))
    reporter.problems_done(len(problems), resumed=False)
    return examples


def cut_for(result: ProbeResult, config: AdaptConfig) -> Cut:
    """The cut the run's rules give a probed problem."""
    if uses_confirmation(config):
        return cut_from_outcomes([[c.correct for c in group] for group in result.rollouts], config)
    return decide_cut(config.strategy, result.scores, config.epsilon, config.peak, config.min_follow, config.all_zero)


def cut_from_outcomes(outcomes: Sequence[Sequence[bool]], config: AdaptConfig) -> Cut:
    """The same from each prefix's rollout outcomes in sample order (empty: not probed); what
    benchmarks/cliffs.py replays."""
    if uses_confirmation(config):
        return confirmed_cut(
            outcomes, config.n_sim, config.confirm, config.epsilon, config.peak, config.min_follow, config.all_zero,
            refine=config.probe == "adaptive",
        )  # fmt: skip
    scores = [sum(o) / len(o) if o else None for o in outcomes]
    return decide_cut(config.strategy, scores, config.epsilon, config.peak, config.min_follow, config.all_zero)


def choose_cut(steps: Sequence[str], result: ProbeResult | None, config: AdaptConfig) -> Cut:
    """Where a problem's expert trace is cut, from its simulation results (None: static)."""
    if result is None:
        return static_cut(len(steps))
    return cut_for(result, config)


def needs_exploration(cut: Cut, config: AdaptConfig) -> bool:
    """Strategy full explores wherever the student is to write the rest itself."""
    return config.explores and cut.reason in ("gap", "weak_follow", *NOTHING_FEASIBLE)


PROBED = "probed"  # what problem_flow yields when its simulation results are complete


def problem_flow(
    problem: Problem,
    steps: list[str],
    config: AdaptConfig,
    prompts: Prompts,
    reveal: int | None = None,
    cached: ProbeResult | None = None,
) -> Generator[tuple[str, Any], Any, AdaptedExample]:
    """One problem through probe -> cut -> explore, as a generator for the streaming
    scheduler: it yields ("simulation" | "explore", requests) and receives each request's
    (completions, judged candidates); it yields (PROBED, ProbeResult) once its simulation
    results exist (for the probe cache; `cached` skips probing); it returns the example.
    The same steps, seeds and rules as `adapt_chunk`, so the same record."""
    result = cached
    if config.probes and result is None:
        flow = probe_flow(problem, steps, config, prompts, reveal)
        try:
            requests = next(flow)
            while True:
                answers = yield ("simulation", requests)
                requests = flow.send(answers)
        except StopIteration as done:
            result = done.value
    if config.probes:
        yield (PROBED, result)
    cut = choose_cut(steps, result, config)
    explored = None
    if needs_exploration(cut, config):
        [(out, candidates)] = yield ("explore", [explore_request(problem, steps, cut.keep_steps, config, prompts)])
        explored = (candidates, sum(c.prompt_tokens for c in out), sum(c.completion_tokens for c in out))
    return _build_example(problem, steps, result, cut, explored, config)


def _probe_chunk(
    engine: Engine,
    items: list[tuple[Problem, list[str]]],
    config: AdaptConfig,
    prompts: Prompts,
    checker: Checker,
    reporter: Reporter,
    probe_store: ProbeStore | None,
) -> list[ProbeResult]:
    """The chunk's simulation results: from the probe cache where it has them, the other
    problems probed (and the whole chunk cached)."""
    ids = [problem.id for problem, _ in items]
    stored = probe_store.lookup(ids) if probe_store is not None else {}
    missing = [item for item in items if item[0].id not in stored]
    fresh: dict[str, ProbeResult] = {}
    if missing:
        reveals = reveal_steps(missing, checker)
        results = probe(engine, missing, config, prompts, checker, progress=reporter.sequences_done, reveals=reveals)
        fresh = {problem.id: result for (problem, _), result in zip(missing, results, strict=True)}
    out = [fresh[i] if i in fresh else ProbeResult.from_dict(stored[i]) for i in ids]
    if probe_store is not None and missing:
        probe_store.save(ids, [r.to_dict() for r in out])
    return out


def _build_example(
    problem: Problem,
    steps: list[str],
    result: ProbeResult | None,
    cut: Cut,
    explored: tuple[list[Candidate], int, int] | None,
    config: AdaptConfig,
) -> AdaptedExample:
    candidates: list[Candidate] = []
    trajectories: list[str] = []
    reason: str | None = None
    prompt_tokens = result.prompt_tokens if result else 0
    completion_tokens = result.completion_tokens if result else 0
    rollouts = result.sequences if result else 0

    if cut.reason in ("static", "no_drop"):
        trajectories = [problem.solution]  # nothing cut: the expert trace is the trajectory
    elif explored is not None:  # strategy full
        candidates, extra_prompt, extra_completion = explored
        prompt_tokens += extra_prompt
        completion_tokens += extra_completion
        rollouts += len(candidates)
    elif result is not None and cut.keep_steps > 0:  # gap / first: reuse simulation rollouts
        candidates = list(result.rollouts[cut.keep_steps - 1])
    if cut.reason not in ("static", "no_drop"):
        chosen = select(candidates, config)
        candidates = [
            replace(c, kept=True) if j in chosen else c for j, c in enumerate(candidates)
        ]
        trajectories = [compose(steps, cut.keep_steps, candidates[j].text) for j in chosen]
        if not chosen:
            if cut.reason == "answer_first" and explored is None:
                reason = "answer_in_first_step"  # gap / first: nothing was probed to reuse
            else:
                reason = discard_reason(candidates, "explore" if explored is not None else "simulation")

    return AdaptedExample(
        id=problem.id,
        question=problem.question,
        gold=problem.answer,
        expert_solution=problem.solution,
        expert_steps=steps,
        provenance=problem.provenance.to_dict(),
        extra=dict(problem.extra),
        strategy=config.strategy,
        scores=list(result.scores) if result else [],
        successes=list(result.successes) if result else [],
        peak=cut.peak,
        gap=cut.gap,
        cut_reason=cut.reason,
        keep_steps=cut.keep_steps,
        candidates=candidates,
        trajectories=trajectories,
        outcome="kept" if trajectories else "discarded",
        discard_reason=reason,
        rollouts=rollouts,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        reveal_step=result.reveal_step if result else None,
        samples=list(result.samples or []) if result else [],
    )


def plan_chunks(problems: Sequence[Problem], chunk_size: int) -> list[list[Problem]]:
    return [list(problems[i : i + chunk_size]) for i in range(0, len(problems), chunk_size)]


def run_chunks(
    adapt_chunk_fn,
    problems: Sequence[Problem],
    chunk_size: int,
    work_dir: WorkDir,
    reporter: Reporter | None = None,
    skipped: list[SkippedRow] | None = None,
) -> list[AdaptedExample]:
    """Any method's chunks through the work dir: finished chunks are loaded, the rest computed
    with `adapt_chunk_fn(chunk, reporter)` and stored atomically (resume after any kill).
    Problems a stored chunk marks as skipped (see `skipped_record`) go to `skipped`."""
    reporter = reporter or SilentReporter()
    examples: list[AdaptedExample] = []
    for index, chunk in enumerate(plan_chunks(problems, chunk_size)):
        ids = [p.id for p in chunk]
        stored = work_dir.load_chunk(index, ids)
        if stored is not None:
            examples.extend(stored_examples(stored, skipped))
            reporter.problems_done(len(chunk), resumed=True)
            continue
        done = adapt_chunk_fn(chunk, reporter)
        work_dir.save_chunk(index, ids, [e.to_dict() for e in done])
        examples.extend(done)
    return examples


def skipped_record(problem: Problem, reason: str, detail: str) -> dict[str, Any]:
    """A chunk-file line for a problem the run gave up on (e.g. the server refused its
    request): stored like a finished example, so a resume does not try it again."""
    return {"id": problem.id, "skipped": {"row_index": problem.provenance.row_index, "reason": reason, "detail": detail}}


def stored_examples(records: Sequence[dict[str, Any]], skipped: list[SkippedRow] | None = None) -> list[AdaptedExample]:
    """The examples of a stored chunk; its skipped-problem lines go to `skipped`."""
    examples = []
    for record in records:
        if "skipped" in record:
            if skipped is not None:
                mark = record["skipped"]
                skipped.append(SkippedRow(mark.get("row_index", -1), mark["reason"], mark.get("detail", "")))
            continue
        examples.append(AdaptedExample.from_dict(record))
    return examples


def run_adapt(
    engine: Engine,
    problems: Sequence[Problem],
    config: AdaptConfig,
    prompts: Prompts,
    checker: Checker,
    work_dir: WorkDir,
    reporter: Reporter | None = None,
    probe_store: ProbeStore | None = None,
) -> list[AdaptedExample]:
    """Adapt all problems with DART, resuming from finished chunks in `work_dir` (and reusing
    cached simulation results from `probe_store`)."""
    return run_chunks(
        lambda chunk, rep: adapt_chunk(engine, chunk, config, prompts, checker, rep, probe_store),
        problems, config.chunk_size, work_dir, reporter,
    )  # fmt: skip


@dataclass
class Plan:
    """What a run will cost, before running it (`--dry-run`). Upper bounds on tokens."""

    problems: int
    steps: int
    simulation_rollouts: int
    exploration_rollouts: int
    max_new_tokens: int
    steps_per_problem: list[int] = field(default_factory=list)
    answer_revealing_steps: int = 0
    simulation_rollouts_scan: int = 0
    simulation_rollouts_adaptive_max: int = 0
    confirm_rollouts_max: int = 0  # --confirm K: at most K per prefix as a candidate and K as a peak

    def to_dict(self) -> dict[str, Any]:
        return {
            "problems": self.problems,
            "steps": self.steps,
            "answer_revealing_steps": self.answer_revealing_steps,
            "simulation_rollouts": self.simulation_rollouts,
            "simulation_rollouts_scan": self.simulation_rollouts_scan,
            "simulation_rollouts_adaptive_max": self.simulation_rollouts_adaptive_max,
            "exploration_rollouts_max": self.exploration_rollouts,
            "confirm_rollouts_max": self.confirm_rollouts_max,
            "rollouts_max": self.simulation_rollouts + self.confirm_rollouts_max + self.exploration_rollouts,
            "new_tokens_max": self.max_new_tokens,
        }


def plan(problems: Sequence[Problem], config: AdaptConfig, reveals: Sequence[int | None] | None = None) -> Plan:
    """Upper bounds of the run's cost; `reveals` (first answer-revealing step per problem, see
    dart_hub.adaptation.reveal) excludes the prefixes that will not be probed."""
    counts = [len(problem_steps(p, config)) for p in problems]
    reveals = list(reveals) if reveals is not None else [None] * len(problems)
    skip = getattr(config, "answer_steps", "skip") == "skip"
    probed = [n if r is None or not skip else min(n, r) for n, r in zip(counts, reveals, strict=True)]
    scan = sum(probed) * config.n_sim if config.probes else 0
    adaptive = sum(adaptive_budget(r, config.n_sim, config.probe_coarse, config.probe_head) for r in probed) if config.probes else 0
    sim = adaptive if config.probe == "adaptive" else scan
    confirm = 2 * sum(probed) * config.confirm if config.probes and uses_confirmation(config) else 0
    explore = len(problems) * config.n_explore if config.explores else 0
    return Plan(
        simulation_rollouts_scan=scan,
        simulation_rollouts_adaptive_max=adaptive,
        problems=len(problems),
        steps=sum(counts),
        simulation_rollouts=sim,
        exploration_rollouts=explore,
        max_new_tokens=(sim + confirm) * config.sim_max_tokens + explore * config.explore_max_tokens,
        steps_per_problem=counts,
        answer_revealing_steps=sum(n - min(n, r) for n, r in zip(counts, reveals, strict=True) if r is not None),
        confirm_rollouts_max=confirm,
    )


def summarize(examples: Sequence[AdaptedExample], config: AdaptConfig) -> dict[str, Any]:
    """Run statistics for the CLI summary and the dataset card."""
    kept = [e for e in examples if e.outcome == "kept"]
    relative = [e.relative_gap for e in examples if e.relative_gap is not None]
    candidates = [c for e in examples for c in e.candidates]
    n_sim = getattr(config, "n_sim", None)
    settings = config.to_dict() if hasattr(config, "to_dict") else dict(vars(config))
    return {
        "rules": settings.get("rules"),
        "deviations": [d["name"] for d in deviations(settings)] if settings.get("strategy") else None,
        "problems": len(examples),
        "kept": len(kept),
        "trajectories": sum(len(e.trajectories) for e in examples),
        "discarded": len(examples) - len(kept),
        "discard_reasons": dict(sorted(Counter(e.discard_reason for e in examples if e.discard_reason).items())),
        "cut_reasons": dict(sorted(Counter(e.cut_reason for e in examples).items())),
        "answer_revealing_problems": sum(e.reveal_step is not None for e in examples),
        "answer_revealing_steps": sum(len(e.expert_steps) - e.reveal_step for e in examples if e.reveal_step is not None),
        "truncated_candidates": sum(c.finish_reason == "length" for c in candidates),
        "probed_prefixes": sum(1 for e in examples for m in e.samples if m),
        "unprobed_prefixes": sum(1 for e in examples for m in e.samples if not m),
        "mean_relative_gap": round(statistics.fmean(relative), 4) if relative else None,
        "mean_steps": round(statistics.fmean(len(e.expert_steps) for e in examples), 2) if examples else None,
        "mean_kept_steps": round(statistics.fmean(e.keep_steps for e in examples), 2) if examples else None,
        "repetitive_candidates": sum(c.repetition > config.max_repetition for c in candidates),
        "candidates": len(candidates),
        "relative_cut": relative_cut_position(examples),
        "paper_table6_gap_position": paper_gap_positions(),
        "rollouts": sum(e.rollouts for e in examples),
        "confirm_rollouts": sum(extra_rollouts(e.samples, n_sim) for e in examples) if n_sim else None,
        "prompt_tokens": sum(e.prompt_tokens for e in examples),
        "completion_tokens": sum(e.completion_tokens for e in examples),
    }
