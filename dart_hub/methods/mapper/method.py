"""The mapper adaptation (`dart-hub adapt --method mapper`): a mapper model rewrites each expert
solution into one that fits the student; our design after METHOD-MAPPER.md section 6 (the
paper's method could not be read: this is not a reproduction).

For every problem the mapper (a GRPO-trained one from `dart-hub mapper train`, or by default
the student itself: the "mapper prompt without RL" baseline) is given the question and the
expert solution and samples `samples` complete rewrites. Every rewrite is scored with the
mapper rewards (dart_hub.methods.mapper.rewards: correctness gate, the student's
length-normalised likelihood, anti-cheating detectors). A rewrite qualifies when its final
answer is equivalent to the gold (math-verify), it finished on its own and no detector flagged
it; the qualifying one with the highest weighted reward is kept (lowest sample index on ties).
With none, the problem is discarded (`fallback: drop`, default) or keeps the original solution
(`fallback: original`), with the reason recorded either way.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import jinja2

from dart_hub.adaptation.explore import finished
from dart_hub.adaptation.judge import Checker, judge, request_seed
from dart_hub.engines.base import Engine, GenerationRequest
from dart_hub.errors import DartHubError
from dart_hub.methods.mapper.rewards import NEEDS_STUDENT, MapperRewards, RewardConfig
from dart_hub.methods.mapper.scorer import SCORERS
from dart_hub.prompts import load_method_templates
from dart_hub.records import AdaptedExample, Problem
from dart_hub.steps import split_steps

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
PROMPT_KEYS = ("rewrite", "system")
FALLBACKS = ("drop", "original")
DETECTORS = ("too_short", "answer_first", "unsupported_answer", "copy", "repetition")


@dataclass(frozen=True)
class MapperPrompts:
    rewrite: str
    system: str = ""

    def messages(self, question: str, solution: str) -> list[dict[str, str]]:
        try:
            text = _ENV.from_string(self.rewrite).render(question=question, solution=solution)
        except jinja2.TemplateError as error:
            raise DartHubError(f"mapper prompt template 'rewrite' failed to render: {error}. Fix it in your mapper prompts file") from error
        system = [{"role": "system", "content": self.system}] if self.system else []
        return [*system, {"role": "user", "content": text}]

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def load_mapper_prompts(path: str | Path | None = None) -> MapperPrompts:
    return load_method_templates(MapperPrompts, "resources/mapper_prompts.yaml", path, PROMPT_KEYS, "mapper")


@dataclass(frozen=True)
class MapperConfig:
    """The mapper adaptation's parameters (all ours; the paper's are unknown)."""

    mapper: str | None = None  # model id or folder; None = the student (no-RL baseline)
    samples: int = 4
    temperature: float = 0.7
    top_p: float = 0.95
    max_tokens: int = 2048
    fallback: str = "drop"
    rewards: RewardConfig = field(default_factory=RewardConfig)
    chunk_size: int = 16
    seed: int = 0
    scorer: str = "transformers"  # what computes the student's likelihood (scorer.SCORERS)

    def __post_init__(self) -> None:
        checks = [
            (self.scorer in SCORERS, f"--scorer must be one of {', '.join(SCORERS)}"),
            (self.samples >= 1, "--mapper-samples must be at least 1"),
            (self.temperature >= 0, "--mapper-temperature must be >= 0"),
            (0 < self.top_p <= 1, "--mapper-top-p must be in (0, 1]"),
            (self.max_tokens >= 1, "--mapper-max-tokens must be positive"),
            (self.fallback in FALLBACKS, f"--mapper-fallback must be one of {', '.join(FALLBACKS)}"),
            (self.chunk_size >= 1, "--chunk-size must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise DartHubError(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def no_rewrite_reason(candidates, breakdowns) -> str:
    """Why no rewrite qualified: none generated, none correct, the correct ones all cut off by
    the token budget, or the detector that flagged most of the correct finished ones."""
    if not candidates:
        return "no_candidates"
    correct = [(c, b) for c, b in zip(candidates, breakdowns, strict=True) if c.correct]
    if not correct:
        return "no_correct_rewrite"
    done = [b for c, b in correct if finished(c)]
    if not done:
        return "truncated"
    flagged = Counter(name for b in done for name in DETECTORS if b.components.get(name, 0.0) < 0)
    name = max(DETECTORS, key=lambda d: (flagged[d], -DETECTORS.index(d)))
    return f"cheating_{name}"


class Mapper:
    name = "mapper"
    objective = "sft"

    def __init__(self, config: MapperConfig, prompts, mapper_prompts: MapperPrompts, scorer_factory):
        self.config = config
        self.prompts = prompts  # the shared ones (sft_system: how SFT will show the question)
        self.mapper_prompts = mapper_prompts
        self.scorer_factory = scorer_factory  # () -> the student's likelihood scorer (loaded lazily)
        self._scorer = None
        self._rewards: dict[int, MapperRewards] = {}

    def settings(self) -> dict[str, Any]:
        return {**self.config.to_dict(), "prompts": self.mapper_prompts.to_dict()}

    def rewards(self, checker: Checker) -> MapperRewards:
        if id(checker) not in self._rewards:
            needs_scorer = any(self.config.rewards.weights.get(name, 0.0) != 0.0 for name in NEEDS_STUDENT)
            if needs_scorer and self._scorer is None:
                self._scorer = self.scorer_factory()
            self._rewards = {id(checker): MapperRewards(self.config.rewards, checker, self._scorer)}
        return self._rewards[id(checker)]

    def close(self) -> None:
        """Free the scorer (loaded on first use); a later chunk would load it again."""
        scorer, self._scorer, self._rewards = self._scorer, None, {}
        if scorer is not None and hasattr(scorer, "close"):
            scorer.close()

    def request(self, problem: Problem) -> GenerationRequest:
        c = self.config
        return GenerationRequest.chat(
            self.mapper_prompts.messages(problem.question, problem.solution), n=c.samples, temperature=c.temperature,
            top_p=c.top_p, max_tokens=c.max_tokens, seed=request_seed(c.seed, problem.id, "mapper", 0),
        )  # fmt: skip

    def adapt_chunk(self, engine: Engine, problems: Sequence[Problem], checker: Checker, reporter, probe_store=None) -> list[AdaptedExample]:
        outputs = engine.generate([self.request(p) for p in problems], progress=reporter.sequences_done) if problems else []
        judged = judge(
            [(p.answer, out) for p, out in zip(problems, outputs, strict=True)],
            checker, origin="mapper", ngram=self.config.rewards.repetition_ngram,
        )  # fmt: skip
        examples = self.score(list(zip(problems, outputs, judged, strict=True)), checker)
        reporter.problems_done(len(problems), resumed=False)
        return examples

    def score(self, rows: Sequence[tuple[Problem, Any, Any]], checker: Checker) -> list[AdaptedExample]:
        """The examples of a chunk's (problem, completions, judged candidates): all its rewrites'
        rewards in one batch (the student scorer batches), then each problem's choice."""
        rewards = self.rewards(checker)
        flat = [(p, c) for p, _, candidates in rows for c in candidates]
        scored = iter(rewards.score([c.text.strip() for _, c in flat], [p.question for p, _ in flat],
                                    [p.solution for p, _ in flat], [p.answer for p, _ in flat]))  # fmt: skip
        examples = []
        for problem, out, candidates in rows:
            breakdowns = [next(scored) for _ in candidates]
            examples.append(self._example(problem, out, candidates, breakdowns))
        return examples

    def flows(self, checker: Checker, probe_store=None) -> MapperFlows:
        """The mapper for the streaming scheduler (dart_hub.adaptation.stream): one rewrite request per
        problem as it goes; the rewards scored per chunk, as adapt_chunk scores them."""
        return MapperFlows(self, checker)

    def flow(self, problem: Problem):
        """One problem as a flow: its rewrite request; returns the judged rewrites (scored with
        the rest of the chunk by MapperFlows.finish)."""
        [(out, candidates)] = yield ("mapper", [self.request(problem)])
        return problem, out, candidates

    def _example(self, problem: Problem, out, candidates, breakdowns) -> AdaptedExample:
        qualifying = [
            i for i, (c, b) in enumerate(zip(candidates, breakdowns, strict=True))
            if c.correct and finished(c) and all(b.components.get(d, 0.0) == 0.0 for d in DETECTORS)
        ]  # fmt: skip
        chosen = max(qualifying, key=lambda i: (breakdowns[i].total, -i)) if qualifying else None
        reason = None if chosen is not None else no_rewrite_reason(candidates, breakdowns)
        if chosen is not None:
            candidates = [replace(c, kept=True) if i == chosen else c for i, c in enumerate(candidates)]
            trajectories, outcome, cut = [candidates[chosen].text.strip()], "kept", "mapper_rewrite"
        elif self.config.fallback == "original":
            trajectories, outcome, cut = [problem.solution], "kept", "mapper_original"
        else:
            trajectories, outcome, cut = [], "discarded", "mapper_rewrite"
        return AdaptedExample(
            id=problem.id, question=problem.question, gold=problem.answer,
            expert_solution=problem.solution, expert_steps=split_steps(problem.solution),
            provenance=problem.provenance.to_dict(), extra=dict(problem.extra),
            strategy="mapper", scores=[], successes=[], peak=None, gap=None,
            cut_reason=cut, keep_steps=0, candidates=candidates, trajectories=trajectories,
            outcome=outcome, discard_reason=reason if outcome == "discarded" else None,
            rollouts=len(candidates),
            prompt_tokens=sum(c.prompt_tokens for c in out),
            completion_tokens=sum(c.completion_tokens for c in out),
            method="mapper",
            method_data={
                "rewards": [{"total": b.total, **b.components} for b in breakdowns],
                "chosen": chosen,
                # why the original was kept (fallback original); discarded rows have discard_reason
                "fallback_reason": reason if outcome == "kept" and chosen is None else None,
            },
        )  # fmt: skip

    def plan(self, problems: Sequence[Problem], checker=None) -> dict[str, Any]:
        rollouts = len(problems) * self.config.samples
        return {
            "method": "mapper",
            "mapper": self.config.mapper,
            "problems": len(problems),
            "rollouts": rollouts,
            "rollouts_max": rollouts,
            "new_tokens_max": rollouts * self.config.max_tokens,
        }


class MapperFlows:
    """The mapper as the streaming scheduler's flows: generation streams, the rewards of a chunk
    are scored in one batch when its last problem is back (the same batches as chunked)."""

    overlap = 0

    def __init__(self, method: Mapper, checker: Checker):
        self.method = method
        self.checker = checker
        self.chunk_size = method.config.chunk_size
        self.ngram = method.config.rewards.repetition_ngram

    def start(self, chunk) -> list:
        return [self.method.flow(p) for p in chunk.problems]

    def finish(self, chunk, results) -> list[dict[str, Any]]:
        return [e.to_dict() for e in self.method.score(results, self.checker)] if results else []
