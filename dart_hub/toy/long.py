"""Long toy expert traces (16 to 64 paragraphs) for the probing benchmark (`--probe adaptive`).

The shipped expert set has 4 to 16 paragraphs, about 5 of them probed once the answer-revealing
tail is dropped: too few for adaptive probing to save much. Real long-CoT traces (LIMO: about a
hundred paragraphs) are long because they restate and recap. This module writes toy traces in
that spirit, keeping the expert style's design (`dart_hub.toy.styles`):

1. the *intro*, worded exactly as in the expert style (the learnable start: it works out a
   start value stated as a product);
2. two or three *single* operations, written as the student writes them (what it can follow);
3. *folded* paragraphs of two or three operations ("Next, the steps 36-4+2 combined give 34.",
   what the student cannot follow);
4. *recaps* of the running value ("Now 34.") after the single and folded paragraphs, as many as
   the target length needs: a random 20-80% of them before the first fold (so the fold, where
   the student loses track, falls anywhere from early to late in the trace), shared among the
   paragraphs in proportion to random weights;
5. the *answer*: the last operation applied on its own and the boxed result. The final value
   is computed only there, in the one paragraph that is never probed, so no probed prefix
   hands the student the answer to copy (as in the shipped set).

Paragraphs are short because the toy student's context is 1,024 tokens, the 256-token
generation budget included: a 64-paragraph trace has about 9 tokens per paragraph. Recaps are
shorter than dart-hub's default minimum step length (30 characters), so adapt these traces with
`--min-step-chars 5` for one step per paragraph (benchmarks/probing.py --toy-long does).

    python -m dart_hub.toy.long --output long.jsonl [--count 48] [--seed 0] [--min-steps 16] [--max-steps 64]

Problems come from the `expert` split and have 5 to 7 operations (so at least one fold comes
before the last operation; at most 6 above 52 paragraphs and 5 above 58, so that they fit);
every trace is correct by the domain's checker (`dart_hub.toy.domain.solution_errors`) and
deterministic in (count, seed, min/max steps).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

from dart_hub.toy.datasets import write_jsonl
from dart_hub.toy.domain import LABELS, ToyProblem, iter_problems
from dart_hub.toy.styles import (
    MIN_STEP_CHARS as MIN_STEP_CHARS,  # re-exported: adapt long traces with it
)
from dart_hub.toy.styles import SEPARATOR, compact_expression, expert_intro, student_step

LONG_MIN_STEPS, LONG_MAX_STEPS = 16, 64
LONG_MIN_OPS = 5  # two singles, a fold, and the last operation in the answer

_RECAP = ("Now {v}.", "So {v}.", "Value {v}.")
_FOLD = (
    "Next, the steps {expr} combined give {v}.",
    "Folding {count} steps: {expr} = {v}.",
    "In one go, {expr} = {v}.",
)
_ANSWER = (
    "Finally, {a} {sym} {k} = {v}, so the result is \\boxed{{{v}}}.",
    "Last, ({label}) gives {a} {sym} {k} = {v}: the result is \\boxed{{{v}}}.",
)
_SYMBOL = {"+": "+", "-": "-", "*": "\u00d7"}
_COUNT = {2: "two", 3: "three"}


def long_layout(operations: int, rng: random.Random) -> tuple[int, tuple[int, ...]]:
    """(single operations, operations per fold) for a problem; the last operation is left for
    the answer paragraph."""
    if operations < LONG_MIN_OPS:
        raise ValueError(f"long traces need at least {LONG_MIN_OPS} operations, got {operations}")
    easy = rng.choice((2, 3)) if operations >= 6 else 2
    rest = operations - 1 - easy
    folds = {2: (2,), 3: (3,), 4: (2, 2), 5: rng.choice(((2, 3), (3, 2)))}[rest]
    return easy, folds


def _spread(total: int, slots: int, rng: random.Random) -> list[int]:
    """`total` recaps over `slots` paragraphs, in proportion to random weights in [0.5, 1.5]
    (largest remainder), so that no paragraph gets almost all of them."""
    weights = [rng.uniform(0.5, 1.5) for _ in range(slots)]
    shares = [total * w / sum(weights) for w in weights]
    counts = [int(s) for s in shares]
    for i in sorted(range(slots), key=lambda i: counts[i] - shares[i])[: total - sum(counts)]:
        counts[i] += 1
    return counts


def long_expert_steps(problem: ToyProblem, steps: int, rng: random.Random) -> list[str]:
    """The paragraphs of a long expert trace with `steps` paragraphs before the answer, then
    the answer paragraph (so `steps + 1` paragraphs in all)."""
    easy, folds = long_layout(len(problem.ops), rng)
    units = easy + len(folds)
    recaps = steps - 1 - units
    if recaps < 0:
        raise ValueError(f"a trace of this problem needs at least {1 + units} paragraphs before the answer, got {steps}")
    # recaps before the first fold vs after it: the fold (the cliff) lands anywhere
    before = round(recaps * rng.uniform(0.2, 0.8))
    counts = _spread(before, easy, rng) + _spread(recaps - before, len(folds), rng)
    values = problem.values
    out = [expert_intro(problem)]

    def recap(value: int, count: int) -> None:
        out.extend(rng.choice(_RECAP).format(v=value) for _ in range(count))

    for i in range(easy):
        out.append(student_step(problem, i))
        recap(values[i + 1], counts[i])
    done = easy
    for j, size in enumerate(folds):
        expr = compact_expression(values[done], problem.ops[done : done + size])
        out.append(rng.choice(_FOLD).format(expr=expr, v=values[done + size], count=_COUNT[size]))
        done += size
        recap(values[done], counts[easy + j])
    last = len(problem.ops) - 1
    op = problem.ops[last]
    out.append(rng.choice(_ANSWER).format(a=values[last], sym=_SYMBOL[op.symbol], k=op.operand, v=values[-1], label=LABELS[last]))
    return out


def long_expert_solution(problem: ToyProblem, steps: int, seed: int = 0) -> str:
    rng = random.Random(f"long:{seed}:{steps}:{problem.key}")
    return SEPARATOR.join(long_expert_steps(problem, steps, rng))


def target_lengths(count: int, min_steps: int = LONG_MIN_STEPS, max_steps: int = LONG_MAX_STEPS) -> list[int]:
    """`count` trace lengths spread evenly over min_steps..max_steps."""
    if count == 1:
        return [max_steps]
    return [min_steps + round(i * (max_steps - min_steps) / (count - 1)) for i in range(count)]


def max_operations(steps: int) -> int:
    """The most operations a trace of `steps` paragraphs may have so that it fits the toy
    student's 1,024-token context with a 256-token budget (a longer question leaves fewer
    tokens for the paragraphs; measured with the student's tokenizer in tests/test_toy_long.py)."""
    return 7 if steps <= 52 else 6 if steps <= 58 else 5


def long_problems(lengths: list[int], seed: int = 0) -> list[ToyProblem]:
    """One distinct `expert`-split problem per target length, with LONG_MIN_OPS to
    max_operations(length) operations: the next such problem of the seed's stream."""
    stream = iter_problems(seed, "expert")
    seen: set[str] = set()
    waiting: list[ToyProblem] = []  # drawn but too big for the lengths so far
    out: list[ToyProblem] = []
    for steps in lengths:
        limit = max_operations(steps)
        found = next((p for p in waiting if len(p.ops) <= limit), None)
        while found is None:
            problem = next(stream)
            if len(problem.ops) < LONG_MIN_OPS or problem.key in seen:
                continue
            seen.add(problem.key)
            if len(problem.ops) <= limit:
                found = problem
            else:
                waiting.append(problem)
        if found in waiting:
            waiting.remove(found)
        out.append(found)
    return out


def long_expert_rows(count: int, seed: int = 0, min_steps: int = LONG_MIN_STEPS, max_steps: int = LONG_MAX_STEPS) -> list[dict[str, str]]:
    """`count` rows (question, solution, answer) whose traces have min_steps..max_steps
    paragraphs before the answer, lengths spread evenly in row order."""
    if count < 1 or not 7 <= min_steps <= max_steps:
        raise ValueError(f"need count >= 1 and 7 <= min_steps <= max_steps, got {count}, {min_steps}..{max_steps}")
    lengths = target_lengths(count, min_steps, max_steps)
    rows = []
    for problem, steps in zip(long_problems(lengths, seed), lengths, strict=True):
        rows.append({"question": problem.question, "solution": long_expert_solution(problem, steps, seed), "answer": str(problem.answer)})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, required=True, help="jsonl file to write")
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-steps", type=int, default=LONG_MIN_STEPS)
    parser.add_argument("--max-steps", type=int, default=LONG_MAX_STEPS)
    args = parser.parse_args(argv)
    write_jsonl(long_expert_rows(args.count, args.seed, args.min_steps, args.max_steps), args.output)
    print(f"wrote {args.count} long toy traces to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
