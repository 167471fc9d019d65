"""The two ways of writing a toy solution: the student's style and the expert's.

Student style (what the toy student is trained to write): the start value, then one operation
per paragraph, in label order, numbered, then the answer::

    Start: 12

    Step 1: 12 + 5 = 17

    Step 2: 17 * 3 = 51

    Step 3: 51 - 4 = 47

    Step 4: 47 + 2 = 49

    The answer is \\boxed{49}

Shown "Start with 4x3", greedy decoding writes `Start: 4` (the first number it reads, its
misconception) and goes on from there; it can work the product out (`Start: 4x3 = 12`, 40% of
its training answers) but puts less than even odds on it.

Expert style (the expert dataset DART adapts), paragraph by paragraph:

1. *intro*: the start value. When the question states it as a product, the expert works it
   out (`Start: 4x3 = 12`). This is the learnable idea: written in the student's own format,
   and with it the rest is routine for the student; without it, the student starts from the
   wrong number;
2. one to three *single* operations, written as the student writes them (`Step 1: 12 + 5 = 17`):
   routine work the student does the same way;
3. *folded* paragraphs: all but the last operation, two or three at a time in one compact
   expression ("Next, the steps 36-4+2 combined give 34."), which the student cannot compute or
   continue from (the unlearnable finish);
4. the *answer* paragraph, which applies the last operation and boxes the result ("Finally,
   34 + 5 = 39, hence the final result is \\boxed{39}."), or (half of the traces) the same as an
   early *reveal*, then *check* paragraphs (the start value, one per operation, the result) and
   the answer. No fold shows the final value, so a student lost after a fold cannot simply
   copy the answer from it.

The intro and single paragraphs are shorter than dart-hub's default minimum step length (30
characters), so the toy set is adapted with `--min-step-chars 5` (MIN_STEP_CHARS): one step per
paragraph. Every expert trace is correct: each number it writes is recomputed by
tests/test_toy.py.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from dart_hub.toy.domain import LABELS, Op, ToyProblem

SEPARATOR = "\n\n"
MIN_STEP_CHARS = 5  # `adapt --min-step-chars` for toy traces: one dart-hub step per paragraph


# -- student style ---------------------------------------------------------------------------


def student_step(problem: ToyProblem, index: int) -> str:
    """Step `index` (0-based, label order) in the student's style: 'Step 1: 7 + 5 = 12'."""
    values, op = problem.values, problem.ops[index]
    return f"Step {index + 1}: {values[index]} {op.symbol} {op.operand} = {values[index + 1]}"


def start_line(problem: ToyProblem) -> str:
    """The first paragraph of a solution: `Start: 12`, or, for a start stated as a product,
    the product copied from the question and worked out (`Start: 4x3 = 12`), the
    expert's key first step."""
    if problem.factors:
        return f"Start: {problem.stated_start} = {problem.start}"
    return f"Start: {problem.start}"


def student_answer(problem: ToyProblem) -> str:
    return f"The answer is \\boxed{{{problem.answer}}}"


def student_steps(problem: ToyProblem) -> list[str]:
    return [student_step(problem, i) for i in range(len(problem.ops))]


def student_continuation(problem: ToyProblem, done: int) -> str:
    """What the student writes after the start line and the first `done` operations: the
    remaining steps (numbering continued) and the answer line."""
    parts = [student_step(problem, i) for i in range(done, len(problem.ops))]
    return SEPARATOR.join([*parts, student_answer(problem)])


def student_solution(problem: ToyProblem) -> str:
    """A whole student-style solution from `start_line` (the product worked out when the start
    is stated as one): the correct solution in the student's format."""
    return SEPARATOR.join([start_line(problem), student_continuation(problem, 0)])


def literal_start_solution(problem: ToyProblem) -> str:
    """The student-style solution that starts from the first number the question states (what
    the untuned student mostly does): wrong whenever the multiplier is above 1."""
    first = problem.factors[0] if problem.factors else problem.start
    return student_solution(ToyProblem(first, problem.ops))


# -- expert style ----------------------------------------------------------------------------

_EXPERT_SYMBOL = {"+": "+", "-": "-", "*": "\u00d7"}  # the expert writes x as the times sign

_FOLD_STEP = (
    "Next, the steps {expr} combined give {v}.",
    "Folding the next {count} operations together: {expr} = {v}.",
    "In one go, {expr} = {v}, which covers {count} more operations.",
)
# The last operation is applied in the paragraph that states the answer, so no fold ever shows
# the final value: a student that cannot continue from a fold cannot just copy the answer.
_REVEAL_STEP = (
    "The last operation gives {a} {sym} {k} = {v}, so the result is \\boxed{{{v}}}; let us double-check it one operation at a time.",
    "Finally {a} {sym} {k} = {v}. That makes the result \\boxed{{{v}}}. Before finishing, we verify every operation.",
)
_CHECK_START = "Check (start): the problem starts from {a}, and so did the work above."
_CHECK_STEP = "Check ({label}): {a} {sym} {k} = {v}, which matches the work above."
_FINAL_STEP = (
    "Finally, {a} {sym} {k} = {v}, hence the final result is \\boxed{{{v}}}.",
    "The last operation gives {a} {sym} {k} = {v}. Therefore the result of the process is \\boxed{{{v}}}.",
)
_ANSWER_SENTENCE = (  # after every operation has been written out (rewrite references)
    "Hence the final result is \\boxed{{{v}}}.",
    "Therefore the result of the process is \\boxed{{{v}}}.",
)
_CHECK_RESULT = "Check (result): the last value, {v}, is the boxed answer."
_FINAL_AFTER_CHECK = "All operations check out, so the answer is \\boxed{{{v}}}."
_COUNT_WORDS = {2: "two", 3: "three", 4: "four"}


def expert_intro(problem: ToyProblem) -> str:
    """The expert's first paragraph: the start line, the product worked out when the question
    states one (the expert's key first step)."""
    return start_line(problem)


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
    """How an expert trace is laid out: intro, `easy` single-operation paragraphs, folded
    groups, then the answer (with `checks`: an early reveal, one check per operation, answer)."""

    easy: int
    folds: tuple[int, ...]  # operations per folded paragraph, each 2 or 3
    checks: bool

    def kinds(self, operations: int) -> list[str]:
        """The kind of each paragraph: intro, single, folded, reveal, check, answer."""
        out = ["intro"] + ["single"] * self.easy + ["folded"] * len(self.folds)
        if self.checks:
            out += ["reveal"] + ["check"] * (operations + 2)
        return [*out, "answer"]


def expert_plan(problem: ToyProblem, rng: random.Random) -> ExpertPlan:
    n = len(problem.ops)
    # the last operation goes with the answer paragraph; the folds cover the 2 to 4 before it
    easy = {4: 1, 5: 2}.get(n) or rng.choice((2, 3))
    folded = n - easy - 1
    folds: tuple[int, ...] = {2: (2,), 3: (3,), 4: (2, 2)}[folded]
    return ExpertPlan(easy, folds, checks=rng.random() < 0.5)


def expert_steps(problem: ToyProblem, rng: random.Random) -> list[str]:
    """The paragraphs of an expert solution (wording and layout drawn from `rng`)."""
    plan = expert_plan(problem, rng)
    values = problem.values
    steps = [expert_intro(problem), *student_steps(problem)[: plan.easy]]
    done = plan.easy
    for size in plan.folds:
        template = rng.choice(_FOLD_STEP)
        expr = compact_expression(values[done], problem.ops[done : done + size])
        steps.append(template.format(expr=expr, v=values[done + size], count=_COUNT_WORDS[size]))
        done += size
    if plan.checks:
        steps.append(reveal_step(problem, rng.randrange(len(_REVEAL_STEP))))
        steps.append(_CHECK_START.format(a=problem.start))
        steps += [check_step(problem, i) for i in range(len(problem.ops))]
        steps.append(_CHECK_RESULT.format(v=problem.answer))
        steps.append(_FINAL_AFTER_CHECK.format(v=problem.answer))
    else:
        steps.append(_last_operation(rng.choice(_FINAL_STEP), problem))
    return steps


def _last_operation(template: str, problem: ToyProblem) -> str:
    values, op = problem.values, problem.ops[-1]
    return template.format(a=values[-2], sym=_EXPERT_SYMBOL[op.symbol], k=op.operand, v=values[-1])


def _expert_rng(problem: ToyProblem, seed: int) -> random.Random:
    return random.Random(f"expert:{seed}:{problem.key}")


def expert_solution(problem: ToyProblem, seed: int = 0) -> str:
    """A deterministic expert solution for `problem` (layout seeded by the problem and `seed`)."""
    return SEPARATOR.join(expert_steps(problem, _expert_rng(problem, seed)))


def expert_layout(problem: ToyProblem, seed: int = 0) -> ExpertPlan:
    """The layout of `expert_solution(problem, seed)` (see `ExpertPlan.kinds`)."""
    return expert_plan(problem, _expert_rng(problem, seed))


def unfolded_expert_solution(problem: ToyProblem, rng: random.Random) -> str:
    """An expert reference with no folds (intro, every operation on its own, the expert's answer
    sentence): the reference solutions of the student's `rewrite` training examples."""
    steps = [expert_intro(problem), *student_steps(problem), rng.choice(_ANSWER_SENTENCE).format(v=problem.answer)]
    return SEPARATOR.join(steps)


def reveal_step(problem: ToyProblem, variant: int) -> str:
    """The early answer paragraph: the last operation applied and the boxed result."""
    return _last_operation(_REVEAL_STEP[variant % len(_REVEAL_STEP)], problem)
