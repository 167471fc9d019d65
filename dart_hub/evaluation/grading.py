"""Grading model outputs: math answers by equivalence (math-verify, gold first), multiple choice
by letter.

Math: the final answer is `dart_hub.answers.extract_answer` (last `\\boxed{}`, then `####`,
"the answer is", "Answer:") and it is correct when `AnswerChecker.equivalent_many` says the
gold answer (first) and it are equivalent.

Multiple choice (MMLU-STEM): the chosen letter is read from the last `\\boxed{}` (`B`, `(B)`,
`\\text{B}`, `B. 42`; a box holding exactly one option's text counts as that option), else from
"answer is (B)" / "Answer: B" / "correct option: B", else from a last line holding only a letter.
Correct when it equals the gold letter.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dart_hub.answers import AnswerChecker, extract_answer, normalize
from dart_hub.boxed import last_boxed
from dart_hub.evaluation.benchmarks import CHOICE_LETTERS, EvalItem

_LETTER_IN_BOX = re.compile(r"^\(?(?P<letter>[A-D])(?:[).:\s]|$)")
_LETTER_AFTER_WORD = re.compile(
    r"(?i:answer|choice|option)(?:\s+(?i:is))?\s*[:：]?\s*(?:\*\*)?\s*\(?(?P<letter>[A-D])\)?(?![A-Za-z0-9])"
)
_LONE_LETTER_LINE = re.compile(r"^[ \t*]*\(?(?P<letter>[A-D])\)?\.?[ \t*]*$", re.MULTILINE)


@dataclass(frozen=True)
class Grade:
    extracted: str | None  # the answer read from the output (a letter for multiple choice)
    correct: bool


def extract_choice(text: str, choices: Sequence[str] | None = None) -> str | None:
    """The option letter (A-D) a multiple-choice output picks, or None."""
    if not isinstance(text, str) or not text:
        return None
    boxed = last_boxed(text)
    if boxed:
        letter = _letter_of(boxed, choices)
        if letter:
            return letter
    for pattern in (_LETTER_AFTER_WORD, _LONE_LETTER_LINE):
        matches = list(pattern.finditer(text))
        if matches:
            return matches[-1].group("letter")
    return None


def _letter_of(boxed: str, choices: Sequence[str] | None) -> str | None:
    norm = normalize(boxed)
    match = _LETTER_IN_BOX.match(norm) or _LETTER_IN_BOX.match(boxed.strip())
    if match:
        return match.group("letter")
    if choices:
        # The model boxed the option's text instead of its letter: accept an unambiguous match.
        hits = [i for i, choice in enumerate(choices) if normalize(str(choice)) == norm and norm]
        if len(hits) == 1 and hits[0] < len(CHOICE_LETTERS):
            return CHOICE_LETTERS[hits[0]]
    return None


def grade_outputs(
    items: Sequence[EvalItem], outputs: Sequence[str], checker: AnswerChecker | None
) -> list[Grade]:
    """Grade `outputs[i]` against `items[i]`: multiple choice (items with `choices`) by letter,
    the rest by math equivalence in one `checker.equivalent_many` call (gold first)."""
    if len(items) != len(outputs):
        raise ValueError("grade_outputs needs one output per item")
    grades: list[Grade | None] = [None] * len(items)
    math_indices: list[int] = []
    math_answers: list[str | None] = []
    for index, (item, output) in enumerate(zip(items, outputs, strict=True)):
        if item.choices is not None:
            letter = extract_choice(output, item.choices)
            grades[index] = Grade(letter, letter is not None and letter == item.gold)
        else:
            math_indices.append(index)
            math_answers.append(extract_answer(output))
    if math_indices:
        if checker is None:
            from dart_hub.answers import default_checker

            checker = default_checker()
        verdicts = checker.equivalent_many(
            [(items[i].gold, answer) for i, answer in zip(math_indices, math_answers, strict=True)]
        )
        for i, answer, verdict in zip(math_indices, math_answers, verdicts, strict=True):
            grades[i] = Grade(answer, bool(verdict) and answer is not None)
    return [g for g in grades if g is not None]
