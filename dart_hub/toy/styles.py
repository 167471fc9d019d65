"""The two ways of writing a toy solution: the student's style and the expert's.

Student style (what the toy student is trained to write): one operation per paragraph, in label
order, numbered, then the answer. It never writes a plan::

    Step 1: 7 + 5 = 12

    Step 2: 12 * 3 = 36

    Step 3: 36 - 4 = 32

    Step 4: 32 + 2 = 34

    The answer is \\boxed{34}

Expert style (the expert dataset DART adapts), paragraph by paragraph:

1. *intro*: what the twist is ("The operations are listed out of order: ...");
2. *plan*: the operations rewritten in label order ("Sorted by label, the operations are:
   (A) add 5, (B) multiply by 3, (C) subtract 4, (D) add 2."). This is the learnable idea: with
   it, the rest is routine for the student; without it, the student applies the operations in
   the order they are listed;
3. two or three *single* operations, each in its own paragraph, in the expert's wording;
4. *folded* paragraphs: the remaining operations two or three at a time in one compact
   expression ("Next, the steps 36-4+2 combined give 34."), which the student cannot compute or
   continue from (the unlearnable finish);
5. either the *answer* paragraph with the boxed result, or (half of the traces) an early
   *reveal* ("So the result is \\boxed{34}; let us double-check it ..."), *check* paragraphs
   (the start value, then one per operation) and the *answer* paragraph.

Every paragraph has at least 30 characters (dart-hub's default minimum step length), so
`dart_hub.steps.split_steps` cuts an expert solution exactly at its paragraphs. Every expert
trace is correct: each number it writes is recomputed by tests/test_toy.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dart_hub.toy.domain import LABELS, Op, ToyProblem

SEPARATOR = "\n\n"


# -- student style ---------------------------------------------------------------------------


def student_step(problem: ToyProblem, index: int) -> str:
    """Step `index` (0-based, label order) in the student's style: 'Step 1: 7 + 5 = 12'."""
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


def listed_order_solution(problem: ToyProblem) -> str:
    """The student-style solution that applies the operations in the order the question LISTS
    them (what an untuned student tends to do); correct only when that gives the same value."""
    listed = ToyProblem(problem.start, tuple(problem.ops[i] for i in problem.order))
    return student_solution(listed)


# -- expert style ----------------------------------------------------------------------------

_GERUND = {"+": "adding", "-": "subtracting", "*": "multiplying by"}
_VERB = {"+": "add", "-": "subtract", "*": "multiply by"}
_EXPERT_SYMBOL = {"+": "+", "-": "-", "*": "\u00d7"}  # the expert writes x as the times sign

_INTRO_SCRAMBLED = (
    "The operations are listed out of order: they must be applied by label, from A to {last}.",
    "Careful: the list is not in label order, and the labels A to {last} decide the order.",
)
_INTRO_IN_ORDER = (
    "The operations are already listed by label, from A to {last}, so the order is as written.",
    "Here the list is already in label order, A to {last}, which makes the order easy.",
)
PLAN_HEAD = "Sorted by label, the operations are:"
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
_REVEAL_STEP = (
    "So the result is \\boxed{{{v}}}; let us double-check it one operation at a time.",
    "That makes the result \\boxed{{{v}}}. Before finishing, we verify every operation.",
)
_CHECK_START = "Check (start): the problem starts from {a}, and so did the work above."
_CHECK_STEP = "Check ({label}): {a} {sym} {k} = {v}, which matches the work above."
_FINAL_STEP = (
    "Hence the final result is \\boxed{{{v}}}.",
    "Therefore the result of the process is \\boxed{{{v}}}.",
)
_FINAL_AFTER_CHECK = "All operations check out, so the answer is \\boxed{{{v}}}."
_COUNT_WORDS = {2: "two", 3: "three", 4: "four"}


def expert_intro(problem: ToyProblem, variant: int) -> str:
    templates = _INTRO_IN_ORDER if problem.in_order else _INTRO_SCRAMBLED
    return templates[variant % len(templates)].format(last=LABELS[len(problem.ops) - 1])


def plan_items(problem: ToyProblem) -> list[str]:
    """'(A) add 5', '(B) multiply by 3', ... in label order."""
    return [problem.labelled(i) for i in range(len(problem.ops))]


def expert_plan_step(problem: ToyProblem) -> str:
    """The plan: the operations rewritten in label order (the expert's key first step)."""
    return f"{PLAN_HEAD} {', '.join(plan_items(problem))}."


def partial_plan(problem: ToyProblem, items: int) -> tuple[str, str]:
    """(the plan cut after `items` operations, the rest of it): the student was trained to
    complete a plan someone else has started, never to start one."""
    all_items = plan_items(problem)
    head = f"{PLAN_HEAD} {', '.join(all_items[:items])},"
    return head, f"{', '.join(all_items[items:])}."


def expert_easy_step(problem: ToyProblem, index: int, variant: int) -> str:
    """Operation `index` written out on its own, in the expert's wording."""
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


def check_step(problem: ToyProblem, index: int) -> str:
    values, op = problem.values, problem.ops[index]
    return _CHECK_STEP.format(label=LABELS[index], a=values[index], sym=_EXPERT_SYMBOL[op.symbol],
                              k=op.operand, v=values[index + 1])


@dataclass(frozen=True)
class ExpertPlan:
    """How an expert trace is laid out: intro, plan, `easy` single-operation paragraphs, folded
    groups, then the answer (with `checks`: an early reveal, one check per operation, answer)."""

    easy: int
    folds: tuple[int, ...]  # operations per folded paragraph, each 2 or 3
    checks: bool

    def kinds(self, operations: int) -> list[str]:
        """The kind of each paragraph: intro, plan, single, folded, reveal, check, answer."""
        out = ["intro", "plan"] + ["single"] * self.easy + ["folded"] * len(self.folds)
        if self.checks:
            out += ["reveal"] + ["check"] * (operations + 1)
        return [*out, "answer"]


def expert_plan(problem: ToyProblem, rng: random.Random) -> ExpertPlan:
    n = len(problem.ops)
    easy = rng.choice((2, 3)) if n >= 5 else 2
    rest = n - easy
    folds: tuple[int, ...] = {2: (2,), 3: (3,), 4: (2, 2), 5: rng.choice(((2, 3), (3, 2)))}[rest]
    return ExpertPlan(easy, folds, checks=rng.random() < 0.5)


def expert_steps(problem: ToyProblem, rng: random.Random) -> list[str]:
    """The paragraphs of an expert solution (wording and layout drawn from `rng`)."""
    plan = expert_plan(problem, rng)
    values = problem.values
    steps = [expert_intro(problem, rng.randrange(2)), expert_plan_step(problem)]
    steps += [expert_easy_step(problem, i, rng.randrange(2)) for i in range(plan.easy)]
    done = plan.easy
    for size in plan.folds:
        template = rng.choice(_FOLD_STEP)
        expr = compact_expression(values[done], problem.ops[done : done + size])
        steps.append(template.format(expr=expr, v=values[done + size], count=_COUNT_WORDS[size]))
        done += size
    if plan.checks:
        steps.append(rng.choice(_REVEAL_STEP).format(v=problem.answer))
        steps.append(_CHECK_START.format(a=problem.start))
        steps += [check_step(problem, i) for i in range(len(problem.ops))]
        steps.append(_FINAL_AFTER_CHECK.format(v=problem.answer))
    else:
        steps.append(rng.choice(_FINAL_STEP).format(v=problem.answer))
    return steps


def _expert_rng(problem: ToyProblem, seed: int) -> random.Random:
    return random.Random(f"expert:{seed}:{problem.key}")


def expert_solution(problem: ToyProblem, seed: int = 0) -> str:
    """A deterministic expert solution for `problem` (layout seeded by the problem and `seed`)."""
    return SEPARATOR.join(expert_steps(problem, _expert_rng(problem, seed)))


def expert_layout(problem: ToyProblem, seed: int = 0) -> ExpertPlan:
    """The layout of `expert_solution(problem, seed)` (see `ExpertPlan.kinds`)."""
    return expert_plan(problem, _expert_rng(problem, seed))


def easy_expert_prefix(problem: ToyProblem, count: int, rng: random.Random) -> list[str]:
    """The first `count` operations in the expert's single-operation wording (training mix)."""
    return [expert_easy_step(problem, i, rng.randrange(2)) for i in range(count)]


def unfolded_expert_solution(problem: ToyProblem, rng: random.Random) -> str:
    """An expert-worded reference with no folds (intro, plan, every operation on its own, the
    answer): the reference solutions of the student's `rewrite` training examples."""
    steps = [expert_intro(problem, rng.randrange(2)), expert_plan_step(problem)]
    steps += easy_expert_prefix(problem, len(problem.ops), rng)
    steps.append(rng.choice(_FINAL_STEP).format(v=problem.answer))
    return SEPARATOR.join(steps)


def reveal_step(problem: ToyProblem, variant: int) -> str:
    return _REVEAL_STEP[variant % len(_REVEAL_STEP)].format(v=problem.answer)
