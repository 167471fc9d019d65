"""Issue 17 item 7: dart-hub's answer checking on Math-Verify's own default-configuration test
cases (tests/data/math_verify/README.md says where they come from and under which licence)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dart_hub.answers import AnswerChecker, extract_answer, normalize

HERE = Path(__file__).parent / "data" / "math_verify"
CASES = [json.loads(line) for line in (HERE / "default_cases.jsonl").read_text(encoding="utf-8").splitlines()]
DIFFERENCES = json.loads((HERE / "differences.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def checker():
    with AnswerChecker(timeout=10) as shared:
        yield shared


def dart_hub_verdicts(checker: AnswerChecker) -> list[bool]:
    pairs = [(extract_answer(c["gold"]) or c["gold"], extract_answer(c["pred"]) or c["pred"]) for c in CASES]
    return checker.equivalent_many(pairs)


def test_agreement_with_math_verify_cases_and_every_difference_documented():
    with AnswerChecker(timeout=10) as checker:
        verdicts = dart_hub_verdicts(checker)
    disagree = {index + 1 for index, (case, verdict) in enumerate(zip(CASES, verdicts, strict=True)) if verdict != case["expected"]}
    documented = {d["line"] for d in DIFFERENCES}
    assert disagree == documented, f"new differences: {sorted(disagree - documented)}; fixed: {sorted(documented - disagree)}"
    assert all(d["reason"] for d in DIFFERENCES)
    assert len(CASES) - len(disagree) >= 125  # of 134; math-verify alone: 134


def test_math_verify_alone_agrees_with_its_own_cases():
    """The reference figure: math-verify, called as its tests call it."""
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    targets = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    agree = sum(bool(verify(parse(c["gold"], targets), parse(c["pred"], targets), float_rounding=6, strict=True)) == c["expected"] for c in CASES)
    assert agree == len(CASES) == 134


@pytest.mark.parametrize(
    "text,answer",
    [
        ("Final Answer: The final answer is $14{,}916$. I hope it is correct.", "14{,}916"),
        ("So 10,200 + 255 = \\boxed{255}... Final Answer: The final answer is $10,455$. I hope it is correct.", "10,455"),
        ("Final Answer: The largest $n$ is 34.", "34"),
        ("Final Answer: Jane started growing Sphere 3 hours ago. I hope it is correct.", "3"),
        ("The solutions are \\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}.", "-2, 1"),
        ("First \\boxed{3} is wrong; we redo it and get \\boxed{5}", "5"),
        ("The final answer is \\boxed{7}.", "7"),
    ],
)
def test_known_extraction_misses_are_fixed(text, answer):
    assert extract_answer(text) == answer


@pytest.mark.parametrize(
    "gold,pred,expected",
    [
        ("28\\%", "28 percent", True),
        ("28\\%", "28 pct", True),
        ("28\\%", "\\text{28 percentage}", True),
        ("28\\%", "29 percent", False),
        ("32349", "32, 349", False),  # a list of two numbers, not a thousands separator
        ("32349", "32,349", True),
        ("32349", "32,\\! 349", True),  # LaTeX thin space after a thousands comma
        ("14916", "14{,}916", True),
        ("(1,2]", "\\left( 1, 2 \\right]", True),
    ],
)
def test_known_equivalence_misses_are_fixed(checker, gold, pred, expected):
    assert checker.equivalent(gold, pred) is expected
    assert normalize(normalize(pred)) == normalize(pred)
