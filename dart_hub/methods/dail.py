"""DAIL adaptation (`dart-hub adapt --method dail`): the student rewrites expert solutions.

After METHOD-DAIL.md sections 2-3 (Mendes, Park, Ritter 2026). For every problem the student,
shown the expert solution as privileged context and told to reason from scratch in its own
words, samples `samples` traces; a trace is kept when its final answer is equivalent to the
gold (math-verify, never string equality), it finished on its own (not cut off by the token
budget) and it is not repetitive (the same cleaning as DART). One trace per problem: the first
qualifying one by sample index (the authors' code keeps the first match). Problems with none
are discarded with the reason.

Answer-only guard (a project addition, not in the DAIL paper; `filter: guarded`, the default):
a sample also needs at least `min_steps` reasoning steps (sentences or lines besides the one
that states the answer; dart_hub.methods.mapper.rewards.answer_only, which the mapper's
too_short reward shares), so a rewrite that only restates the answer the privileged context
shows is never kept (discard reason `answer_only_rewrite`). `filter: paper`
(`--dail-filter paper`) is the paper's filter alone.

Expansion: `tau = 1` (every token sampled from the privileged context) is what the authors'
shipped DAIL configuration uses and works with every engine (one request per problem). With
`tau < 1` the mixed-policy decoder (dart_hub.methods.dail_decoder) decodes the plain and the
privileged context in lock-step, one proposing tokens (`proposer`, default the plain student,
as in the authors' code) and the other validating them; it needs per-step distributions of two
contexts, which only the transformers engine gives (vLLM and OpenAI-compatible servers do not).

Each kept row also carries the three contexts the contrastive objective
(`dart-hub train --objective dail`) needs: `messages` (plain: the question only),
`privileged_messages` and `negative_messages` (the question plus a hint with the final answer
and intermediate quantities of the expert solution, without its argument: an "answer-aware
cheater" to push away from), all ending in the same assistant response.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import jinja2

from dart_hub.adaptation.explore import discard_reason, finished
from dart_hub.adaptation.judge import Checker, judge, request_seed
from dart_hub.answers import normalize
from dart_hub.engines.base import Completion, Engine, GenerationRequest
from dart_hub.errors import DartHubError
from dart_hub.prompts import Prompts, load_method_templates
from dart_hub.records import AdaptedExample, Problem
from dart_hub.repetition import DEFAULT_MAX_REPETITION, DEFAULT_NGRAM
from dart_hub.steps import split_steps

_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, autoescape=False)
TEMPLATE_KEYS = ("privileged", "negative")
FILTERS = ("guarded", "paper")  # guarded: the paper's filter plus the answer-only guard (ours)
DEFAULT_MIN_STEPS = 2
ANSWER_ONLY = "answer_only_rewrite"


@dataclass(frozen=True)
class DailConfig:
    """DAIL's parameters (METHOD-DAIL.md section 3; CPU-friendly values are options)."""

    samples: int = 32
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 2048
    tau: float = 1.0  # mixed-policy threshold; 1 = sample from the privileged context only
    proposer: str = "plain"  # which context proposes tokens when tau < 1 (the other validates)
    top_k: int = 20  # mixed policy: tokens each context keeps (renormalised)
    max_draws: int = 5  # mixed policy: proposals tried before falling back to the validator
    max_hints: int = 12  # intermediate quantities in the negative context's hint
    max_repetition: float = DEFAULT_MAX_REPETITION
    repetition_ngram: int = DEFAULT_NGRAM
    filter: str = "guarded"  # FILTERS; "paper" = the DAIL paper's filter only
    min_steps: int = DEFAULT_MIN_STEPS  # guarded: fewest reasoning steps (sentences, lines) of a kept sample
    chunk_size: int = 16
    seed: int = 0

    def __post_init__(self) -> None:
        checks = [
            (self.filter in FILTERS, f"--dail-filter must be one of {', '.join(FILTERS)}"),
            (self.min_steps >= 1, "--dail-min-steps must be at least 1"),
            (self.samples >= 1, "--dail-samples must be at least 1"),
            (self.temperature >= 0, "--dail-temperature must be >= 0"),
            (0 < self.top_p <= 1, "--dail-top-p must be in (0, 1]"),
            (self.max_tokens >= 1, "--dail-max-tokens must be positive"),
            (0 <= self.tau <= 1, "--dail-tau must be between 0 and 1"),
            (self.proposer in ("plain", "privileged"), "--dail-proposer must be plain or privileged"),
            (self.top_k >= 1 and self.max_draws >= 1, "--dail-top-k and the number of draws must be at least 1"),
            (self.max_hints >= 0, "--dail-max-hints must be >= 0"),
            (self.chunk_size >= 1, "--chunk-size must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise DartHubError(message)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DailPrompts:
    privileged: str
    negative: str

    def render(self, name: str, **values: str) -> str:
        try:
            return _ENV.from_string(getattr(self, name)).render(**values)
        except jinja2.TemplateError as error:
            raise DartHubError(f"DAIL prompt template '{name}' failed to render: {error}. Fix it in your --method-prompts file") from error

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def load_dail_prompts(path: str | Path | None = None) -> DailPrompts:
    return load_method_templates(DailPrompts, "resources/dail_prompts.yaml", path, TEMPLATE_KEYS, "DAIL")


# Numbers, simple fractions and powers, as written in solutions ("3/4", "\frac{3}{4}", "2^{10}").
_QUANTITY = re.compile(r"\\[dt]?frac\{[^{}]+\}\{[^{}]+\}|\d+(?:\.\d+)?(?:\s*/\s*\d+)?(?:\^\{?\d+\}?)?")


def negative_hint(solution: str, answer: str, max_hints: int = 12) -> str:
    """The negative context's hint: the final answer and up to `max_hints` intermediate
    quantities of the expert solution (first occurrences, answer excluded), no argument."""
    seen: list[str] = []
    gold = normalize(answer)
    for match in _QUANTITY.finditer(solution):
        value = match.group(0).replace(" ", "")
        if value not in seen and normalize(value) != gold:
            seen.append(value)
    hints = seen[:max_hints]
    text = f"the final answer is {answer}."
    if hints:
        text += " Intermediate results may include " + ", ".join(hints) + "."
    return text


class Dail:
    name = "dail"
    objective = "dail"

    def __init__(self, config: DailConfig, prompts: Prompts, method_prompts: DailPrompts):
        self.config = config
        self.prompts = prompts  # the shared ones: `solve` is the plain context, `system` the system turn
        self.method_prompts = method_prompts

    def settings(self) -> dict[str, Any]:
        return {**self.config.to_dict(), "prompts": self.method_prompts.to_dict()}

    def contexts(self, problem: Problem) -> dict[str, list[dict[str, str]]]:
        """Chat messages of the plain, privileged and negative contexts (no assistant turn)."""
        system = [{"role": "system", "content": self.prompts.system}] if self.prompts.system else []
        privileged = self.method_prompts.render("privileged", question=problem.question, reference=problem.solution)
        hint = negative_hint(problem.solution, problem.answer, self.config.max_hints)
        negative = self.method_prompts.render("negative", question=problem.question, hint=hint)
        return {
            "plain": self.prompts.messages("solve", problem.question),
            "privileged": [*system, {"role": "user", "content": privileged}],
            "negative": [*system, {"role": "user", "content": negative}],
        }

    def request(self, problem: Problem, contexts: dict[str, list[dict[str, str]]]) -> GenerationRequest:
        c = self.config
        return GenerationRequest.chat(
            contexts["privileged"], n=c.samples, temperature=c.temperature, top_p=c.top_p,
            max_tokens=c.max_tokens, seed=request_seed(c.seed, problem.id, "dail", 0),
        )  # fmt: skip

    def adapt_chunk(self, engine: Engine, problems: Sequence[Problem], checker: Checker, reporter, probe_store=None) -> list[AdaptedExample]:
        contexts = [self.contexts(p) for p in problems]
        requests = [self.request(p, ctx) for p, ctx in zip(problems, contexts, strict=True)]
        if self.config.tau < 1:
            outputs = self._mixed_policy(engine, requests, contexts, reporter)
        else:
            outputs = engine.generate(requests, progress=reporter.sequences_done) if requests else []
        judged = judge(
            [(p.answer, out) for p, out in zip(problems, outputs, strict=True)],
            checker, origin="privileged", ngram=self.config.repetition_ngram,
        )  # fmt: skip
        examples = [self.example(*row) for row in zip(problems, contexts, outputs, judged, strict=True)]
        reporter.problems_done(len(problems), resumed=False)
        return examples

    def flows(self, checker: Checker, probe_store=None) -> DailFlows | None:
        """DAIL for the streaming scheduler (dart_hub.adaptation.stream): one privileged request per
        problem. None with tau < 1: the mixed-policy decoder runs chunk by chunk."""
        return DailFlows(self) if self.config.tau >= 1 else None

    def flow(self, problem: Problem):
        """One problem as a flow: its privileged request, then its example (as adapt_chunk)."""
        contexts = self.contexts(problem)
        [(out, candidates)] = yield ("privileged", [self.request(problem, contexts)])
        return self.example(problem, contexts, out, candidates)

    def example(self, problem: Problem, ctx, out: list[Completion], candidates) -> AdaptedExample:
        """The record of one problem from its judged privileged samples."""
        paper = [i for i, c in enumerate(candidates) if c.correct and finished(c) and c.repetition <= self.config.max_repetition]
        chosen = next((i for i in paper if self.derives(candidates[i].text)), None)
        if chosen is not None:
            candidates = [replace(c, kept=True) if i == chosen else c for i, c in enumerate(candidates)]
        return AdaptedExample(
            id=problem.id, question=problem.question, gold=problem.answer,
            expert_solution=problem.solution, expert_steps=split_steps(problem.solution),
            provenance=problem.provenance.to_dict(), extra=dict(problem.extra),
            strategy="dail", scores=[], successes=[], peak=None, gap=None,
            cut_reason="rewrite", keep_steps=0, candidates=candidates,
            trajectories=[candidates[chosen].text.strip()] if chosen is not None else [],
            outcome="kept" if chosen is not None else "discarded",
            discard_reason=None if chosen is not None else ANSWER_ONLY if paper else discard_reason(candidates, "explore"),
            rollouts=len(candidates),
            prompt_tokens=sum(c.prompt_tokens for c in out),
            completion_tokens=sum(c.completion_tokens for c in out),
            method="dail",
            method_data={"contexts": {"privileged": ctx["privileged"], "negative": ctx["negative"]}},
        )  # fmt: skip

    def derives(self, text: str) -> bool:
        """The answer-only guard (ours; always true with filter "paper"): at least min_steps
        reasoning steps besides the statement of the answer."""
        from dart_hub.methods.mapper.rewards import answer_only

        return self.config.filter == "paper" or not answer_only(text, self.config.min_steps)

    def _mixed_policy(self, engine, requests, contexts, reporter) -> list[list[Completion]]:
        """tau < 1: lock-step decoding of the plain and privileged contexts (transformers only)."""
        from dart_hub.engines.transformers import TransformersEngine, _row_seed
        from dart_hub.methods.dail_decoder import mixed_policy_generate

        engine = getattr(engine, "engine", engine)  # a LazyEngine loads the model now
        if not isinstance(engine, TransformersEngine):
            raise DartHubError(f"--dail-tau below 1 (mixed-policy decoding) needs --engine transformers; the {engine.name} engine cannot decode two contexts in lock-step. Use --dail-tau 1")
        c = self.config
        validator_name = "privileged" if c.proposer == "plain" else "plain"
        rows = []  # (request index, sample index, proposer ids, validator ids, seed)
        for i, (request, ctx) in enumerate(zip(requests, contexts, strict=True)):
            proposer_ids = engine.prompt_ids(GenerationRequest.chat(ctx[c.proposer]))
            validator_ids = engine.prompt_ids(GenerationRequest.chat(ctx[validator_name]))
            rows += [(i, j, proposer_ids, validator_ids, _row_seed(request.seed, j)) for j in range(request.n)]
        outputs: list[list[Completion | None]] = [[None] * r.n for r in requests]
        for start in range(0, len(rows), engine.batch_size):
            batch = rows[start : start + engine.batch_size]
            samples = mixed_policy_generate(
                engine.model, [r[2] for r in batch], [r[3] for r in batch], [r[4] for r in batch],
                tau=c.tau, temperature=c.temperature, top_k=c.top_k, max_draws=c.max_draws,
                max_tokens=c.max_tokens, eos_ids=sorted(engine.eos_token_ids),
                pad_id=engine.tokenizer.pad_token_id,
            )  # fmt: skip
            for (i, j, _, validator_ids, _), sample in zip(batch, samples, strict=True):
                text = engine.tokenizer.decode(sample.tokens, skip_special_tokens=True)
                outputs[i][j] = Completion(text, sample.finish_reason, len(validator_ids), sample.steps)
            reporter.sequences_done(len(batch))
        return outputs  # type: ignore[return-value]

    def plan(self, problems: Sequence[Problem], checker=None) -> dict[str, Any]:
        rollouts = len(problems) * self.config.samples
        return {
            "method": "dail",
            "problems": len(problems),
            "rollouts": rollouts,
            "rollouts_max": rollouts,
            "new_tokens_max": rollouts * self.config.max_tokens,
        }


class DailFlows:
    """DAIL (tau = 1) as the streaming scheduler's flows: nothing is batched per chunk."""

    overlap = 0

    def __init__(self, method: Dail):
        self.method = method
        self.chunk_size = method.config.chunk_size
        self.ngram = method.config.repetition_ngram

    def start(self, chunk) -> list:
        return [self.method.flow(p) for p in chunk.problems]

    def finish(self, chunk, results: list[AdaptedExample]) -> list[dict[str, Any]]:
        return [e.to_dict() for e in results]
