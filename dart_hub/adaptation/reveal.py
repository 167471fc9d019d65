"""Answer-revealing expert steps: where an expert prefix already states the gold answer.

Real expert traces end with a paragraph that states the final answer, and often state it
earlier too ("so the answer is \\boxed{25}; let me double-check"). A student given a prefix
that contains the answer restates it, so its f_t there measures copying, not feasibility.

The rule (documented in `adapt --help` and the card): step t *reveals the answer* when it
contains a ``\\boxed{X}`` or ``\\fbox{X}`` whose X is equivalent to the gold answer (the same
math-verify check as outcome consistency, gold first). An answer stated without a box ("so
the answer is 25") does not count: it is probed like any other step. Every prefix
s_0..s_t with t >= the first revealing step contains the answer, so those prefixes are not
probed.
"""

from __future__ import annotations

from collections.abc import Sequence

from dart_hub.adaptation.judge import Checker
from dart_hub.boxed import all_boxed
from dart_hub.records import Problem


def reveal_steps(items: Sequence[tuple[Problem, Sequence[str]]], checker: Checker) -> list[int | None]:
    """For each (problem, steps): the index of the first answer-revealing step, or None.

    All boxed contents of a chunk go to the checker in one call.
    """
    pairs: list[tuple[str, str]] = []
    owners: list[tuple[int, int]] = []  # (item, step) of each pair
    for i, (problem, steps) in enumerate(items):
        for t, step in enumerate(steps):
            for content in all_boxed(step):
                pairs.append((problem.answer, content))
                owners.append((i, t))
    first: list[int | None] = [None] * len(items)
    if not pairs:
        return first
    for (i, t), equal in zip(owners, checker.equivalent_many(pairs), strict=True):
        if equal and (first[i] is None or t < first[i]):
            first[i] = t
    return first
