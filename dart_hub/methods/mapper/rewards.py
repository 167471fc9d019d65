"""The mapper's rewards: TRL `GRPOTrainer` reward functions, each separately testable and
weightable (METHOD-MAPPER.md section 6; our design, the paper's formulas are unknown).

Every function has TRL's signature `f(prompts, completions, **columns) -> list[float]`; the
dataset columns it reads are `question`, `solution` (the original expert solution) and
`answer` (the gold). Completions may be plain strings or chat turns (conversational data).

- `correctness`: +1 when the rewrite's final answer is equivalent to the gold (math-verify via
  dart_hub.answers), -1 when it is wrong or missing.
- `alignment`: length-normalised log-likelihood of the rewrite under the frozen student,
  conditioned on the question only as SFT will show it: (1/|z|) sum_t log p(z_t | x, z<t),
  clipped below at `align_floor`; with `relative` minus the same quantity for the original.
- detectors in [-1, 0] (0 = clean): `too_short` (fewer words or steps than a share of the
  student's own solution of the question: a concise rewrite as long as what the student writes
  itself is not short), `answer_first` (the final answer stated before any derivation; step
  numbers and numbers inside equations are derivation, not a statement of the answer),
  `unsupported_answer` (the boxed value is not what the derivation reaches: neither the
  right-hand side of the last equation before the box nor, without equations, the last value
  stated before it; catches a wrong derivation with the gold pasted into its box), `copy`
  (word n-gram overlap with the original above a threshold), `repetition` (dart_hub.repetition).

Correctness gate (`gate`, on by default): a wrong or missing answer gets every gated reward's
minimum, so its weighted total is the lowest possible whatever its likelihood.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from dart_hub.answers import extract_answer, normalize
from dart_hub.errors import DartHubError
from dart_hub.repetition import DEFAULT_MAX_REPETITION, DEFAULT_NGRAM, repetition_ratio
from dart_hub.steps import split_steps

REWARD_NAMES = ("correctness", "alignment", "too_short", "answer_first", "unsupported_answer", "copy", "repetition")
DEFAULT_WEIGHTS = {name: 1.0 for name in REWARD_NAMES}
# The rewards that read the student: its likelihood (alignment), its own solutions (too_short).
NEEDS_STUDENT = ("alignment", "too_short")


@dataclass(frozen=True)
class RewardConfig:
    """Every reward parameter (ours: the paper's values are unknown)."""

    weights: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    gate: bool = True  # wrong/missing answer -> every gated reward's minimum
    relative: bool = False  # alignment minus the original solution's alignment
    align_floor: float = -10.0  # nats per token; lower log-likelihoods are clipped here
    min_length_ratio: float = 0.5  # rewrite words / the student's own solution's words below this is penalised
    min_step_ratio: float = 0.5  # rewrite steps / the student's own solution's steps below this is penalised
    own_max_tokens: int = 1024  # budget of the student's own (greedy) solution that too_short measures against
    answer_first_words: int = 10  # an answer stated with fewer words of derivation before it ...
    answer_first_share: float = 0.2  # ... or within this first share of the words is "answer first"
    copy_ngram: int = 6
    max_copy: float = 0.6  # share of the rewrite's word n-grams found in the original
    repetition_ngram: int = DEFAULT_NGRAM
    max_repetition: float = DEFAULT_MAX_REPETITION

    def __post_init__(self) -> None:
        unknown = sorted(set(self.weights) - set(REWARD_NAMES))
        if unknown:
            raise DartHubError(f"unknown mapper reward(s) {unknown}; use {', '.join(REWARD_NAMES)}")
        checks = [
            (self.align_floor < 0, "--align-floor must be negative (nats per token)"),
            (0 <= self.min_length_ratio <= 1 and 0 <= self.min_step_ratio <= 1, "length and step ratios must be in [0, 1]"),
            (0 <= self.answer_first_share < 1, "answer-first share must be in [0, 1)"),
            (0 <= self.max_copy < 1, "--max-copy must be in [0, 1)"),
            (0 <= self.max_repetition < 1, "--max-repetition must be in [0, 1)"),
            (self.copy_ngram >= 1 and self.repetition_ngram >= 1, "n-gram sizes must be at least 1"),
            (self.own_max_tokens >= 1, "own_max_tokens must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise DartHubError(message)

    def with_weights(self, spec: str | dict[str, float] | None) -> RewardConfig:
        """Replace some weights: a dict or "name=w,name=w" (0 switches a reward off)."""
        if not spec:
            return self
        if isinstance(spec, str):
            pairs = [item.split("=", 1) for item in spec.split(",") if item.strip()]
            try:
                spec = {name.strip(): float(value) for name, value in pairs}
            except ValueError as error:
                raise DartHubError(f"reward weights '{spec}': write name=weight,name=weight (names: {', '.join(REWARD_NAMES)})") from error
        return replace(self, weights={**self.weights, **spec})

    def with_settings(self, spec: str | dict[str, Any] | None) -> RewardConfig:
        """Replace scalar parameters: a dict or "key=value,key=value" (e.g. "relative=true,max_copy=0.5")."""
        if not spec:
            return self
        if isinstance(spec, str):
            spec = dict(item.split("=", 1) if "=" in item else (item, "") for item in spec.split(",") if item.strip())
        fields = {name: f for name, f in self.__dataclass_fields__.items() if name != "weights"}
        values: dict[str, Any] = {}
        for key, raw in spec.items():
            key = str(key).strip().replace("-", "_")
            if key not in fields:
                raise DartHubError(f"unknown mapper reward setting '{key}'; use {', '.join(fields)}")
            kind = type(getattr(self, key))
            try:
                if kind is bool:
                    text = str(raw).strip().lower()
                    if text not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(text)
                    values[key] = text in ("true", "1", "yes")
                else:
                    values[key] = kind(raw)
            except (TypeError, ValueError) as error:
                raise DartHubError(f"mapper reward setting {key}={raw!r}: expected a {kind.__name__}") from error
        return replace(self, **values)

    def active(self) -> list[str]:
        return [name for name in REWARD_NAMES if self.weights.get(name, 0.0) != 0.0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Checker(Protocol):
    def equivalent_many(self, pairs: Sequence[tuple[str, str | None]]) -> list[bool]: ...


class Scorer(Protocol):
    def mean_logprobs(self, questions: Sequence[str], responses: Sequence[str]) -> list[float]: ...
    def own_solutions(self, questions: Sequence[str], max_tokens: int) -> list[str]: ...


def completion_text(completion: Any) -> str:
    """TRL passes strings (standard data) or a list of chat turns (conversational data)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(turn.get("content", "") for turn in completion if isinstance(turn, dict))
    return str(completion)


class Gate:
    """Correctness of (gold, text) pairs, computed once and shared by the gated rewards."""

    def __init__(self, checker: Checker):
        self.checker = checker
        self.cache: dict[tuple[str, str], bool] = {}

    def correct(self, golds: Sequence[str], texts: Sequence[str]) -> list[bool]:
        missing = [(g, t) for g, t in zip(golds, texts, strict=True) if (g, t) not in self.cache]
        if missing:
            answers = [extract_answer(t) for _, t in missing]
            verdicts = self.checker.equivalent_many([(g, a) for (g, _), a in zip(missing, answers, strict=True)])
            for (g, t), a, v in zip(missing, answers, verdicts, strict=True):
                self.cache[(g, t)] = a is not None and bool(v)
        if len(self.cache) > 100_000:  # a long training run: keep memory bounded
            self.cache.clear()
            return self.correct(golds, texts)
        return [self.cache[(g, t)] for g, t in zip(golds, texts, strict=True)]


class Reward:
    """Base of the reward functions: TRL calls the instance; `__name__` names its log column."""

    name = "reward"
    minimum = -1.0
    gated = True

    def __init__(self, config: RewardConfig, gate: Gate | None = None):
        self.config = config
        self.gate = gate
        self.__name__ = self.name

    def __call__(self, prompts=None, completions=(), **columns) -> list[float]:
        texts = [completion_text(c) for c in completions]
        rows = [{key: _column(columns, key, i) for key in ("question", "solution", "answer")} for i in range(len(texts))]
        values = self.score(texts, rows)
        if self.gated and self.config.gate and self.gate is not None:
            correct = self.gate.correct([r["answer"] or "" for r in rows], texts)
            values = [v if ok else self.minimum for v, ok in zip(values, correct, strict=True)]
        return [float(v) for v in values]

    def score(self, texts: list[str], rows: list[dict[str, str]]) -> list[float]:
        raise NotImplementedError


def _column(columns: dict[str, Any], key: str, index: int) -> str:
    values = columns.get(key)
    if values is None:
        if key == "question":
            return ""
        raise DartHubError(f"mapper rewards need a '{key}' column in the training data")
    return str(values[index])


class Correctness(Reward):
    name = "correctness"
    gated = False

    def score(self, texts, rows):
        if self.gate is None:
            raise DartHubError("the correctness reward needs an answer checker")
        correct = self.gate.correct([r["answer"] for r in rows], texts)
        return [1.0 if ok else self.minimum for ok in correct]


class Alignment(Reward):
    """Length-normalised log-likelihood under the frozen student (question-only context)."""

    name = "alignment"

    def __init__(self, config: RewardConfig, scorer: Scorer, gate: Gate | None = None):
        super().__init__(config, gate)
        self.scorer = scorer
        self.minimum = config.align_floor
        self.original_cache: dict[tuple[str, str], float] = {}

    def clip(self, value: float) -> float:
        return max(self.config.align_floor, min(0.0, value))

    def score(self, texts, rows):
        values = [self.clip(v) for v in self.scorer.mean_logprobs([r["question"] for r in rows], texts)]
        if not self.config.relative:
            return values
        keys = [(r["question"], r["solution"]) for r in rows]
        todo = sorted({k for k in keys if k not in self.original_cache})
        if todo:
            originals = self.scorer.mean_logprobs([q for q, _ in todo], [s for _, s in todo])
            self.original_cache.update({k: self.clip(v) for k, v in zip(todo, originals, strict=True)})
        # relative values live in [floor, -floor]; the minimum stays the floor
        return [max(self.minimum, v - self.original_cache[k]) for v, k in zip(values, keys, strict=True)]


def _shortfall(value: float, threshold: float) -> float:
    """0 at or above the threshold, rising linearly to 1 at value 0."""
    return 0.0 if threshold <= 0 or value >= threshold else 1.0 - value / threshold


class TooShort(Reward):
    """Reasoning much shorter, in words or in steps (dart_hub.steps), than the student's own
    solution of the same question (greedy, from the question as SFT shows it; cached): a
    rewrite as concise as what the student writes itself is not penalised, however long the
    expert's original is. An answer-only rewrite (`answer_only`) gets -1 whatever the student writes."""

    name = "too_short"

    def __init__(self, config: RewardConfig, scorer: Scorer, gate: Gate | None = None):
        super().__init__(config, gate)
        self.scorer = scorer

    def score(self, texts, rows):
        questions = [r["question"] for r in rows]
        unique = list(dict.fromkeys(questions))
        own = dict(zip(unique, self.scorer.own_solutions(unique, self.config.own_max_tokens), strict=True))
        return [-1.0 if answer_only(text) else too_short_penalty(text, own[q], self.config) for text, q in zip(texts, questions, strict=True)]


def too_short_penalty(text: str, reference: str, config: RewardConfig) -> float:
    """-shortfall of `text` against `reference` in words or steps, whichever is worse (0 when
    at least min_length_ratio / min_step_ratio of the reference)."""
    words = len(text.split()) / max(len(reference.split()), 1)
    steps = len(split_steps(text)) / max(len(split_steps(reference)), 1)
    return -max(_shortfall(words, config.min_length_ratio), _shortfall(steps, config.min_step_ratio))


# Where a final answer is announced: a box, "the answer is", "Answer:", "#### X".
_ANNOUNCE = re.compile(r"\\boxed\s*\{|\\fbox\s*\{|(?i:\b(?:final\s+answer|the\s+answer)(?:\s+is|\s*:))|(?i:(?<![A-Za-z])answer\s*[:：])|^\s*####", re.MULTILINE)
_TOKEN = re.compile(r"[^\s.,;:!?()]+")
# A number that labels a step ("Step 1:", "(2)", "3)" at a line start) or sits in an equation
# (next to an operator or "="): derivation, not the answer stated early.
_LABEL_AFTER = re.compile(r"^\s*[:)]")
_OPERATOR = "+-−*/×÷=^<>≤≥"
_ENUMERATED = re.compile(r"^\s*(\d+)[.)]\s", re.MULTILINE)


def _is_label(text: str, start: int, end: int, token: str) -> bool:
    before, after = text[:start], text[end:]
    if re.search(r"(?i)\b(?:step|steps|part|case|stage)\s*#?\s*$", before) or before.endswith("#"):
        return True
    if before.endswith("(") and after.startswith(")"):
        return True
    if before[before.rfind("\n") + 1 :].strip():
        return False
    if _LABEL_AFTER.match(after):  # "3)" or "3:" opening a line
        return True
    if after.startswith(".") and token.isdigit():  # "3." opening a line of an enumerated list
        numbers = {int(m.group(1)) for m in _ENUMERATED.finditer(text)}
        return int(token) - 1 in numbers or int(token) + 1 in numbers
    return False


def _in_equation(text: str, start: int, end: int) -> bool:
    before, after = text[:start].rstrip(" \t"), text[end:].lstrip(" \t")
    return bool(before and before[-1] in _OPERATOR) or bool(after and after[0] in _OPERATOR)


def answer_position(text: str, gold: str, question: str = "") -> int | None:
    """Words before the first statement of the final answer: the first announcement (box,
    "the answer is", "Answer:") or, when the gold value does not occur in the question, its
    first occurrence as a word that is neither a step label ("Step 1:", "(1)", an enumerated
    "1.") nor part of an equation ("18 - 17 = 1": derivation reaching the value). None when
    neither occurs."""
    positions = []
    match = _ANNOUNCE.search(text)
    if match:
        positions.append(len(text[: match.start()].split()))
    gold_norm = normalize(gold) if gold else ""
    if gold_norm and gold_norm not in {normalize(t) for t in _TOKEN.findall(question)}:
        for found in _TOKEN.finditer(text):
            token = found.group(0)
            if normalize(token) != gold_norm or _is_label(text, found.start(), found.end(), token):
                continue
            if _in_equation(text, found.start(), found.end()):
                continue
            positions.append(len(text[: found.start()].split()))
            break
    return min(positions) if positions else None


class AnswerFirst(Reward):
    name = "answer_first"

    def score(self, texts, rows):
        out = []
        for text, row in zip(texts, rows, strict=True):
            position = answer_position(text, row["answer"], row["question"])
            needed = max(self.config.answer_first_words, self.config.answer_first_share * len(text.split()))
            out.append(-1.0 if position is not None and position < needed else 0.0)
        return out


# "... = 82" (the right-hand side of an equation) and numbers as written in solutions.
_RHS = re.compile(r"=\s*\$?\s*(-?[0-9][0-9,]*(?:\.[0-9]+)?(?:\s*/\s*[0-9]+)?|\\[dt]?frac\{[^{}]+\}\{[^{}]+\})")
_NUMBER = re.compile(r"-?[0-9][0-9,]*(?:\.[0-9]+)?(?:\s*/\s*[0-9]+)?|\\[dt]?frac\{[^{}]+\}\{[^{}]+\}")
_LAST_BOX = re.compile(r"\\(?:boxed|fbox)\s*\{")


def derived_value(text: str) -> str | None:
    """What the derivation reaches before the final box: the right-hand side of the last
    equation before it or, when it has no equation, the last number stated before it (None
    when there is neither, e.g. an answer-only rewrite)."""
    boxes = list(_LAST_BOX.finditer(text))
    before = text[: boxes[-1].start()] if boxes else text
    equations = _RHS.findall(before)
    if equations:
        return equations[-1]
    numbers = _NUMBER.findall(before)
    return numbers[-1] if numbers else None


def _same_value(a: str, b: str) -> bool:
    a, b = normalize(a.replace(",", "").replace(" ", "")), normalize(b.replace(",", "").replace(" ", ""))
    if a == b:
        return True
    try:
        return abs(float(a) - float(b)) < 1e-9
    except ValueError:
        return False


def supported_answer(text: str) -> bool:
    """Whether the text's boxed value is what its derivation reaches (`derived_value`)."""
    boxed = extract_answer(text)
    derived = derived_value(text)
    return boxed is not None and derived is not None and _same_value(derived, boxed)


# Reasoning units: sentences and lines. One that announces the answer (a box, "the answer is")
# is not reasoning.
_UNIT_BREAK = re.compile(r"(?<=[.!?;])\s+|\n+")


def reasoning_units(text: str) -> int:
    """Sentences and lines of `text` that do not state the final answer (answer-only: 0)."""
    return sum(1 for piece in _UNIT_BREAK.split(text) if piece.strip() and not _ANNOUNCE.search(piece))


def answer_only(text: str, min_units: int = 2) -> bool:
    """Fewer than `min_units` reasoning units besides the statement of the answer: the
    answer-only rewrite, the guard shared by the mapper's too_short and DAIL's guarded filter."""
    return reasoning_units(text) < min_units


class UnsupportedAnswer(Reward):
    """-1 when the boxed value is not what the rewrite's derivation reaches (`derived_value`):
    a wrong derivation with the gold pasted into its box, or a box with no derivation."""

    name = "unsupported_answer"

    def score(self, texts, rows):
        return [0.0 if supported_answer(text) else -1.0 for text in texts]


def copy_overlap(text: str, original: str, n: int) -> float:
    """Share of the text's word n-grams that also occur in the original (0 for short texts)."""
    words, source = text.split(), original.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    known = {tuple(source[i : i + n]) for i in range(len(source) - n + 1)}
    return sum(g in known for g in grams) / len(grams)


class Copy(Reward):
    """Near-verbatim copying of the original: 0 up to `max_copy` overlap, -1 for a full copy."""

    name = "copy"

    def score(self, texts, rows):
        c = self.config
        return [-max(0.0, (copy_overlap(t, r["solution"], c.copy_ngram) - c.max_copy) / (1 - c.max_copy)) for t, r in zip(texts, rows, strict=True)]


class Repetition(Reward):
    name = "repetition"

    def score(self, texts, rows):
        c = self.config
        return [-1.0 if repetition_ratio(t, c.repetition_ngram) > c.max_repetition else 0.0 for t in texts]


@dataclass(frozen=True)
class Breakdown:
    """One rewrite's rewards: each component (weighted sum in `total`) and its correctness."""

    components: dict[str, float]
    total: float
    correct: bool


class MapperRewards:
    """The weighted reward functions for GRPO (`functions()`, `weights()`) and the same total
    for ranking candidates at synthesis (`score`)."""

    def __init__(self, config: RewardConfig, checker: Checker, scorer: Scorer | None = None):
        self.config = config
        self.gate = Gate(checker)
        builders = {
            "correctness": lambda: Correctness(config, self.gate),
            "alignment": lambda: Alignment(config, self._need_scorer(scorer), self.gate),
            "too_short": lambda: TooShort(config, self._need_scorer(scorer), self.gate),
            "answer_first": lambda: AnswerFirst(config, self.gate),
            "unsupported_answer": lambda: UnsupportedAnswer(config, self.gate),
            "copy": lambda: Copy(config, self.gate),
            "repetition": lambda: Repetition(config, self.gate),
        }
        self.rewards: list[Reward] = [builders[name]() for name in config.active()]

    @staticmethod
    def _need_scorer(scorer):
        if scorer is None:
            raise DartHubError("the alignment and too_short rewards need the student's scorer (its likelihood, its own solutions); give a student or set their weights to 0")
        return scorer

    def functions(self) -> list[Reward]:
        return list(self.rewards)

    def weights(self) -> list[float]:
        return [self.config.weights[r.name] for r in self.rewards]

    def score(self, texts: Sequence[str], questions: Sequence[str], solutions: Sequence[str], answers: Sequence[str]) -> list[Breakdown]:
        columns = {"question": list(questions), "solution": list(solutions), "answer": list(answers)}
        per_reward = {r.name: r(prompts=None, completions=list(texts), **columns) for r in self.rewards}
        correct = self.gate.correct(list(answers), list(texts))
        out = []
        for i in range(len(texts)):
            components = {name: round(values[i], 6) for name, values in per_reward.items()}
            total = sum(self.config.weights[name] * value for name, value in components.items())
            out.append(Breakdown(components=components, total=round(total, 6), correct=correct[i]))
        return out
