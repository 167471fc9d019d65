"""The toy domain: chains of labelled arithmetic operations on small integers, starting from a
value stated as a product.

A problem is a start value and 4 to 7 operations (+ k, - k, * k), labelled A, B, C, ... and
applied in label order. The start value is stated as a product "bxa":

    Start with 4x3. Apply the operations in the order of their labels: (A) add 5,
    (B) multiply by 3, (C) subtract 4, (D) add 2. What is the result?

(4 * 3 = 12, then 12 + 5 = 17, 17 * 3 = 51, 51 - 4 = 47, 47 + 2 = 49.) In half of the problems
the multiplier a is 2..5 (TWIST_SHARE), in the others 1 ("Start with 18x1."). A multiplier
above 1 is the twist the toy student does not handle on its own (it starts from the first
number it reads) and the expert's first step handles (it works the product out first); see
dart_hub/toy/styles.py.

Every intermediate value stays in 0..99 (add/subtract 1..9, multiply by 2..5), so a tiny model
can learn the arithmetic. `evaluate_question` is the domain's own evaluator: it reads a question
and computes its answer independently of how problems are generated.

Splits. Each problem belongs to exactly one split, decided by a hash of its canonical key
(start value, operations and how the start is stated), never by the random stream that drew it: `train`
(what the toy student is trained on, 80% of all problems), `expert` (the expert dataset DART
adapts, 10%) and `heldout` (evaluation, 10%). The three splits are disjoint by construction,
whatever seeds are used to draw them.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass

MIN_OPS, MAX_OPS = 4, 7
MIN_VALUE, MAX_VALUE = 0, 99
START_RANGE = (2, 20)
ADD_RANGE = (1, 9)  # operand of + and -
MUL_RANGE = (2, 5)  # operand of *
# Every start value is stated as a product "bxa" (no spaces: in the toy tokenizer a space
# precedes every number, so "x" is the one token that points at the multiplier to copy). In
# TWIST_SHARE of the problems the multiplier a is 2..5 (the multipliers of the operations); in
# the rest it is 1, where starting from the first number (the toy student's misconception)
# happens to be right.
TWIST_SHARE = 0.5
FACTOR_RANGE = (2, 5)

LABELS = "ABCDEFGH"
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
    ops: tuple[Op, ...]  # in label (= execution) order: ops[0] is (A)
    factors: tuple[int, ...] = ()  # (b, a): the question states the start as "bxa"; () = as a number

    def __post_init__(self):
        if self.factors and (len(self.factors) != 2 or self.factors[0] * self.factors[1] != self.start):
            raise ValueError(f"factors {self.factors} do not multiply to the start value {self.start}")

    @property
    def twisted(self) -> bool:
        """Whether the start is stated as a product with a multiplier above 1, where starting from
        the first number is wrong (the step the untuned student does not make)."""
        return bool(self.factors) and self.factors[1] != 1

    @property
    def plain(self) -> ToyProblem:
        """The same problem with its start value stated as a number."""
        return ToyProblem(self.start, self.ops)

    @property
    def values(self) -> list[int]:
        """start, then the value after each operation in label order (len(ops) + 1 numbers)."""
        out = [self.start]
        for op in self.ops:
            out.append(op.apply(out[-1]))
        return out

    @property
    def answer(self) -> int:
        return self.values[-1]

    @property
    def key(self) -> str:
        ops = "".join(f"{op.symbol}{op.operand}" for op in self.ops)
        return f"{self.start}{ops}|" + "x".join(str(f) for f in self.factors)

    @property
    def id(self) -> str:
        return "toy-" + hashlib.sha256(self.key.encode()).hexdigest()[:12]

    @property
    def split(self) -> str:
        return split_of(self)

    def labelled(self, index: int) -> str:
        """'(C) subtract 4' for ops[index]."""
        return f"({LABELS[index]}) {self.ops[index].words()}"

    @property
    def stated_start(self) -> str:
        """'12', or '4x3' for a start stated as a product."""
        return f"{self.factors[0]}x{self.factors[1]}" if self.factors else str(self.start)

    @property
    def question(self) -> str:
        listed = ", ".join(self.labelled(i) for i in range(len(self.ops)))
        return f"Start with {self.stated_start}. Apply the operations in the order of their labels: {listed}. What is the result?"


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
    second = rng.randint(*FACTOR_RANGE) if rng.random() < TWIST_SHARE else 1
    factors = (rng.randint(START_RANGE[0], START_RANGE[1] // second), second)
    start = factors[0] * factors[1]
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
    return ToyProblem(start, tuple(ops), factors)


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


_QUESTION = re.compile(r"^Start with (\d+)(?:x(\d+))?\. Apply the operations in the order of their labels: (.*)\. What is the result\?$")
_ACTION = re.compile(r"^\(([A-H])\) (add|subtract|multiply by) (\d+)$")
_SYMBOLS = {"add": "+", "subtract": "-", "multiply by": "*"}


def parse_question(question: str) -> ToyProblem:
    """The problem a question states (inverse of `ToyProblem.question`)."""
    match = _QUESTION.match(question.strip())
    if not match:
        raise ValueError(f"not a toy question: {question!r}")
    listed: dict[int, Op] = {}
    for action in match.group(3).split(", "):
        found = _ACTION.match(action.strip())
        if not found:
            raise ValueError(f"unknown operation {action!r} in {question!r}")
        index = LABELS.index(found.group(1))
        if index in listed:
            raise ValueError(f"label ({found.group(1)}) appears twice in {question!r}")
        listed[index] = Op(_SYMBOLS[found.group(2)], int(found.group(3)))
    if list(listed) != list(range(len(listed))):
        raise ValueError(f"labels of {question!r} are not A, B, C, ... in order")
    ops = tuple(listed[i] for i in range(len(listed)))
    first = int(match.group(1))
    if match.group(2):
        second = int(match.group(2))
        return ToyProblem(first * second, ops, (first, second))
    return ToyProblem(first, ops)


def evaluate_question(question: str) -> int:
    """The domain's evaluator: the answer of a toy question, read from its text and computed
    from the stated start value by applying the labelled operations in label order
    (independent of the generator)."""
    problem = parse_question(question)
    value = problem.factors[0] * problem.factors[1] if problem.factors else problem.start
    for op in problem.ops:
        value = op.apply(value)
    return value


_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_EQUATION = re.compile(r"([0-9(][0-9+\-*×() ]*[0-9)])\s*=\s*(\d+)")
_TIMES = re.compile(r"(\d)x(\d)")
_FOLD = re.compile(r"the steps ([0-9+\-*()]+) combined give (\d+)")


def _value(expression: str) -> int:
    """An arithmetic expression of the toy traces (digits, + - * × and parentheses)."""
    import ast
    import operator

    operators = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul}

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in operators:
            return operators[type(node.op)](value(node.left), value(node.right))
        raise ValueError(f"not a toy expression: {expression!r}")

    return value(ast.parse(expression.replace("×", "*").strip(), mode="eval").body)


def solution_errors(question: str, solution: str) -> list[str]:
    """What is wrong with a written solution of `question`, checked with the domain's evaluator:
    every boxed answer must equal `evaluate_question(question)`, every equation ('a + k = v',
    '(14*3-8)*2 = 68', 'the steps 12*3-4 combined give 32', '4x3 = 12') must hold, and
    there must be a boxed answer. An empty list means the solution is correct."""
    answer = evaluate_question(question)
    errors = []
    boxed = _BOXED.findall(solution)
    if not boxed:
        errors.append("no boxed answer")
    errors += [f"boxed {b} but the answer is {answer}" for b in boxed if b.strip() != str(answer)]
    for paragraph in solution.split("\n\n"):
        paragraph = _TIMES.sub(r"\1*\2", paragraph)  # 'Start: 4x3 = 12'
        for expression, value in [*_EQUATION.findall(paragraph), *_FOLD.findall(paragraph)]:
            if _value(expression) != int(value):
                errors.append(f"{expression} = {value} is wrong, in {paragraph!r}")
    return errors
