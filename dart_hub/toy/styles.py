"""The two ways of writing a toy solution: the student's style and the expert's.

Student style (what the toy student is trained on): one operation per paragraph, numbered,
then the answer::

    Step 1: 7 + 5 = 12

    Step 2: 12 * 3 = 36

    Step 3: 36 - 4 = 32

    The answer is \\boxed{32}

Expert style (the expert dataset DART adapts): the first one or two paragraphs do one operation
each, in the expert's own wording (the student was trained to pick up from those); then the
expert *folds* the remaining operations, two or more per paragraph, into a compact expression
the student never saw ("Next, the steps 12*3-4 combined give 32."), and closes with a boxed answer::

    We begin with 7 and add 5, which gives 7 + 5 = 12.

    Next, the steps 12*3-4 combined give 32.

    Hence the final result is \\boxed{32}.

The student reads a partial solution one paragraph per operation (that is all it has ever
seen), so after a folded paragraph it loses track of which operations are done and its
continuation goes wrong: its adaptability f_t is high on the early expert steps and collapses
from the first folded step on. That is DART's imitation gap, made on purpose.

Every expert paragraph has at least 30 characters, dart-hub's default minimum step length, so
`dart_hub.steps.split_steps` cuts an expert solution exactly at its paragraphs.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dart_hub.toy.domain import Op, ToyProblem

SEPARATOR = "\n\n"


# -- student style ---------------------------------------------------------------------------


def student_step(problem: ToyProblem, index: int) -> str:
    """Step `index` (0-based) in the student's style: 'Step 1: 7 + 5 = 12'."""
    values, op = problem.values, problem.ops[index]
    return f"Step {index + 1}: {values[index]} {op.symbol} {op.operand} = {values[index + 1]}"


def student_answer(problem: ToyProblem) -> str:
    return f"The answer is \\boxed{{{problem.answer}}}"


def student_steps(problem: ToyProblem) -> list[str]:
    return [student_step(problem, i) for i in range(len(problem.ops))]


def student_continuation(problem: ToyProblem, done: int) -> str:
    """What the student writes when the first `done` operations are already worked out: the
    remaining steps (numbering continued) and the answer line (`done=0`: the whole solution)."""
    parts = [student_step(problem, i) for i in range(done, len(problem.ops))]
    return SEPARATOR.join([*parts, student_answer(problem)])


def student_solution(problem: ToyProblem) -> str:
    return student_continuation(problem, 0)


# -- expert style ----------------------------------------------------------------------------

_GERUND = {"+": "adding", "-": "subtracting", "*": "multiplying by"}
_VERB = {"+": "add", "-": "subtract", "*": "multiply by"}
_EXPERT_SYMBOL = {"+": "+", "-": "-", "*": "\u00d7"}  # the expert writes x as the times sign

_FIRST_STEP = (
    "We begin with {a} and {verb} {k}, which gives {a} {sym} {k} = {v}.",
    "Starting from {a}, {gerund} {k} yields {a} {sym} {k} = {v}.",
)
_EASY_STEP = (
    "Then we {verb} {k}, so that {a} {sym} {k} = {v}.",
    "After that, {gerund} {k} gives {a} {sym} {k} = {v}.",
)
_FOLD_STEP = (
    "Next, the steps {expr} combined give {v}.",
    "Folding the next {count} operations together: {expr} = {v}.",
    "In one go, {expr} = {v}, which covers {count} more operations.",
)
_FINAL_STEP = (
    "Hence the final result is \\boxed{{{v}}}.",
    "Therefore the result of the process is \\boxed{{{v}}}.",
)
_COUNT_WORDS = {2: "two", 3: "three", 4: "four"}


def expert_easy_step(problem: ToyProblem, index: int, variant: int) -> str:
    """Operation `index` written out on its own, in the expert's wording (used for index 0, 1)."""
    values, op = problem.values, problem.ops[index]
    templates = _FIRST_STEP if index == 0 else _EASY_STEP
    text = templates[variant % len(templates)]
    return text.format(
        a=values[index], k=op.operand, v=values[index + 1], sym=_EXPERT_SYMBOL[op.symbol],
        verb=_VERB[op.symbol], gerund=_GERUND[op.symbol],
    )


def compact_expression(value: int, ops: tuple[Op, ...]) -> str:
    """`value` followed by `ops`, as one expression without spaces: '12*3-4', '(36-4)*2'."""
    expr, additive = str(value), False
    for op in ops:
        if op.symbol == "*" and additive:
            expr = f"({expr})*{op.operand}"
            additive = False
        else:
            expr = f"{expr}{op.symbol}{op.operand}"
            additive = additive or op.symbol in "+-"
    return expr


@dataclass(frozen=True)
class ExpertPlan:
    """How an expert trace is laid out: `easy` single-operation paragraphs, then folded groups."""

    easy: int
    folds: tuple[int, ...]  # operations per folded paragraph, each >= 2


def expert_plan(problem: ToyProblem, rng: random.Random) -> ExpertPlan:
    n = len(problem.ops)
    easy = 1 if n == 3 else rng.choice((1, 2))
    rest = n - easy
    if rest == 4:
        folds: tuple[int, ...] = (2, 2)
    else:
        folds = (rest,)
    return ExpertPlan(easy, folds)


def expert_steps(problem: ToyProblem, rng: random.Random) -> list[str]:
    """The paragraphs of an expert solution (wording and layout drawn from `rng`)."""
    plan = expert_plan(problem, rng)
    values = problem.values
    steps = [expert_easy_step(problem, i, rng.randrange(2)) for i in range(plan.easy)]
    done = plan.easy
    for size in plan.folds:
        template = rng.choice(_FOLD_STEP)
        expr = compact_expression(values[done], problem.ops[done : done + size])
        steps.append(template.format(expr=expr, v=values[done + size], count=_COUNT_WORDS[size]))
        done += size
    steps.append(rng.choice(_FINAL_STEP).format(v=problem.answer))
    return steps


def _expert_rng(problem: ToyProblem, seed: int) -> random.Random:
    return random.Random(f"expert:{seed}:{problem.key}")


def expert_solution(problem: ToyProblem, seed: int = 0) -> str:
    """A deterministic expert solution for `problem` (layout seeded by the problem and `seed`)."""
    return SEPARATOR.join(expert_steps(problem, _expert_rng(problem, seed)))


def expert_layout(problem: ToyProblem, seed: int = 0) -> ExpertPlan:
    """The layout of `expert_solution(problem, seed)`: its paragraph t < layout.easy does one
    operation; paragraphs easy .. easy + len(folds) - 1 are folded; the last one is the answer."""
    return expert_plan(problem, _expert_rng(problem, seed))


def easy_expert_prefix(problem: ToyProblem, count: int, rng: random.Random) -> list[str]:
    """The first `count` operations in the expert's single-operation wording (training mix)."""
    return [expert_easy_step(problem, i, rng.randrange(2)) for i in range(count)]
