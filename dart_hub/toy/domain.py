"""The toy domain: short chains of arithmetic operations on small integers.

A problem is a start value and 3 to 5 operations (+ k, - k, * k), stated in words:

    Start with 7. Add 5, multiply by 3, subtract 4. What is the result?

Every intermediate value stays in 0..99 (add/subtract 1..9, multiply by 2..5), so a tiny model
can learn the arithmetic. The answer is the value after the last operation; it is unique
because the operations are applied left to right, one at a time.

Splits. Each problem belongs to exactly one split, decided by a hash of its canonical key
(start value and operations), never by the random stream that drew it: `train` (what the toy
student is trained on, 80% of all problems), `expert` (the expert dataset DART adapts, 10%) and
`heldout` (evaluation, 10%). Two problems with the same key are the same problem, so the three
splits are disjoint by construction, whatever seeds are used to draw them.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

MIN_OPS, MAX_OPS = 3, 5
MIN_VALUE, MAX_VALUE = 0, 99
START_RANGE = (2, 20)
ADD_RANGE = (1, 9)  # operand of + and -
MUL_RANGE = (2, 5)  # operand of *

SPLITS = ("train", "expert", "heldout")
# hash bucket (0..99) -> split: 0-9 heldout, 10-19 expert, the rest train.
_HELDOUT_BUCKETS = range(0, 10)
_EXPERT_BUCKETS = range(10, 20)

_VERBS = {"+": "add {k}", "-": "subtract {k}", "*": "multiply by {k}"}


@dataclass(frozen=True)
class Op:
    symbol: str  # "+", "-" or "*"
    operand: int

    def apply(self, value: int) -> int:
        if self.symbol == "+":
            return value + self.operand
        if self.symbol == "-":
            return value - self.operand
        if self.symbol == "*":
            return value * self.operand
        raise ValueError(f"unknown operation {self.symbol!r}")

    def words(self) -> str:
        return _VERBS[self.symbol].format(k=self.operand)


@dataclass(frozen=True)
class ToyProblem:
    start: int
    ops: tuple[Op, ...]

    @property
    def values(self) -> list[int]:
        """start, then the value after each operation (len(ops) + 1 numbers)."""
        out = [self.start]
        for op in self.ops:
            out.append(op.apply(out[-1]))
        return out

    @property
    def answer(self) -> int:
        return self.values[-1]

    @property
    def key(self) -> str:
        return f"{self.start}" + "".join(f"{op.symbol}{op.operand}" for op in self.ops)

    @property
    def id(self) -> str:
        return "toy-" + hashlib.sha256(self.key.encode()).hexdigest()[:12]

    @property
    def split(self) -> str:
        return split_of(self)

    @property
    def question(self) -> str:
        actions = ", ".join(op.words() for op in self.ops)
        return f"Start with {self.start}. {actions[0].upper()}{actions[1:]}. What is the result?"


def split_of(problem: ToyProblem) -> str:
    bucket = int.from_bytes(hashlib.sha256(problem.key.encode()).digest()[:8], "big") % 100
    if bucket in _HELDOUT_BUCKETS:
        return "heldout"
    if bucket in _EXPERT_BUCKETS:
        return "expert"
    return "train"


def random_problem(rng: random.Random) -> ToyProblem:
    """One problem drawn from `rng` (any split)."""
    count = rng.randint(MIN_OPS, MAX_OPS)
    start = rng.randint(*START_RANGE)
    value, ops = start, []
    for _ in range(count):
        choices = []
        if value + ADD_RANGE[0] <= MAX_VALUE:
            choices.append("+")
        if value - ADD_RANGE[0] >= MIN_VALUE:
            choices.append("-")
        if value >= 2 and value * MUL_RANGE[0] <= MAX_VALUE:
            choices.append("*")
        symbol = rng.choice(choices)
        if symbol == "+":
            operand = rng.randint(ADD_RANGE[0], min(ADD_RANGE[1], MAX_VALUE - value))
        elif symbol == "-":
            operand = rng.randint(ADD_RANGE[0], min(ADD_RANGE[1], value - MIN_VALUE))
        else:
            operand = rng.randint(MUL_RANGE[0], min(MUL_RANGE[1], MAX_VALUE // value))
        op = Op(symbol, operand)
        ops.append(op)
        value = op.apply(value)
    return ToyProblem(start, tuple(ops))


def iter_problems(seed: int, split: str | None = None) -> Iterator[ToyProblem]:
    """An endless deterministic stream of problems of `split` (None: any split).

    Problems may repeat in the train stream (it is sampled, like real training data);
    use `generate_problems` for a list of distinct problems.
    """
    if split is not None and split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {SPLITS}")
    rng = random.Random(f"dart-hub-toy:{seed}")
    while True:
        problem = random_problem(rng)
        if split is None or problem.split == split:
            yield problem


def generate_problems(count: int, seed: int, split: str) -> list[ToyProblem]:
    """`count` distinct problems of `split`, deterministic in (count, seed, split)."""
    seen: set[str] = set()
    out: list[ToyProblem] = []
    for problem in iter_problems(seed, split):
        if problem.key not in seen:
            seen.add(problem.key)
            out.append(problem)
            if len(out) == count:
                return out
    raise AssertionError("unreachable")


_QUESTION = re.compile(r"^Start with (\d+)\. (.*)\. What is the result\?$")
_ACTION = re.compile(r"^(add|subtract|multiply by) (\d+)$")
_SYMBOLS = {"add": "+", "subtract": "-", "multiply by": "*"}


def parse_question(question: str) -> ToyProblem:
    """The problem a question states (inverse of `ToyProblem.question`)."""
    match = _QUESTION.match(question.strip())
    if not match:
        raise ValueError(f"not a toy question: {question!r}")
    ops = []
    for action in match.group(2).split(", "):
        found = _ACTION.match(action.strip().lower())
        if not found:
            raise ValueError(f"unknown operation {action!r} in {question!r}")
        ops.append(Op(_SYMBOLS[found.group(1)], int(found.group(2))))
    return ToyProblem(int(match.group(1)), tuple(ops))
