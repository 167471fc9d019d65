"""Final-answer extraction and equivalence checking (dart_hub.answers, dart_hub.boxed)."""

from __future__ import annotations

import random
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dart_hub.answers import (
    AnswerChecker,
    _evaluate,
    _quick_decision,
    default_checker,
    extract_answer,
    is_equivalent,
    normalize,
)
from dart_hub.boxed import last_boxed

# Nested powers: sympy tries to evaluate them and never finishes (found with math-verify 0.9).
PATHOLOGICAL = r"2^{2^{2^{2^{2^{100}}}}}"


@pytest.fixture(scope="module")
def checker():
    # A generous timeout: a busy test machine must not turn slow table rows into timeouts.
    with AnswerChecker(timeout=20, workers=2) as c:
        yield c


# ---------------------------------------------------------------------------------------------
# The equivalence table: (gold, prediction, expected). Gold always first.
# ---------------------------------------------------------------------------------------------

EQUIVALENCE = [
    # fractions
    (r"\frac{1}{2}", "0.5", True),
    (r"\frac{1}{2}", r"\dfrac{1}{2}", True),
    (r"\frac{1}{2}", r"\tfrac12", True),
    (r"\frac{3}{4}", r"\frac{6}{8}", True),
    (r"-\frac{1}{2}", r"\frac{-1}{2}", True),
    (r"\frac{1}{2}", r"\frac{2}{1}", False),
    (r"\frac{\sqrt{2}}{2}", r"\frac{1}{\sqrt{2}}", True),
    ("1/3", "0.3333333", True),  # math-verify compares floats rounded to 6 decimals
    ("1/3", "0.33", False),
    (r"\frac{7}{3}", "7/3", True),
    # decimals
    ("0.25", ".25", True),
    ("3", "3.0", True),
    ("3.5", "3.50", True),
    ("2.5", "2.05", False),
    ("1.5", r"\frac{3}{2}", True),
    ("42", "43", False),
    ("-5", "5", False),
    # percentages (a percent gold accepts its number, as the usual evaluation suites do)
    (r"50\%", "50", True),
    (r"50\%", "0.5", True),
    ("25%", r"25\%", True),
    (r"50\%", "5", False),
    # intervals
    (r"[1, 2)", r"[1,2)", True),
    (r"(1, 2)", r"[1, 2]", False),
    (r"(-\infty, 3]", r"(-\infty,3]", True),
    (r"(-\infty, 3]", r"(-\infty, 3)", False),
    (r"\left[ 0, \frac{1}{2} \right)", r"[0, 0.5)", True),
    (r"[2, 5]", r"x \in [2, 5]", True),
    (r"(1,3) \cup (4,5)", r"(4,5) \cup (1,3)", True),
    # sets
    (r"\{1, 2, 3\}", r"\{3, 2, 1\}", True),
    (r"\{1, 2\}", r"\{1, 2, 3\}", False),
    ("1,2", "2,1", True),
    ("1, 2", "1,2", True),
    ("1,2", "12", False),  # "1,2" is not a thousands number
    # matrices
    (
        r"\begin{pmatrix}1&2\\3&4\end{pmatrix}",
        r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}",
        True,
    ),
    (
        r"\begin{pmatrix}1&2\\3&4\end{pmatrix}",
        r"\begin{pmatrix}1&2\\4&3\end{pmatrix}",
        False,
    ),
    (r"\begin{pmatrix}1\\-2\end{pmatrix}", r"\begin{bmatrix}1\\-2\end{bmatrix}", True),
    # units and degrees
    ("5", r"5\text{ cm}", True),
    (r"12 \text{ cm}^2", "12", True),
    ("7", "7 meters", True),
    (r"30^\circ", "30", True),
    ("30", r"30^{\circ}", True),
    ("45", "90°", False),
    (r"\$18.90", "18.9", True),
    ("12", "12 dollars", True),
    # LaTeX spacing and sizing
    (r"2\sqrt{3}", r"2 \sqrt{3}", True),
    (r"\frac{1}{2}", r"\frac {1} {2}", True),
    (r"x^2 + 1", r"x^{2}+1", True),
    (r"\left(1, 2\right)", "(1,2)", True),
    (r"\pi r^2", r"r^2\pi", True),
    (r"3\sqrt{2}", r"3\,\sqrt{2}", True),
    # thousands separators
    ("1000", "1,000", True),
    ("1000", r"1{,}000", True),
    ("12345", "12,345", True),
    ("1234567", "1,234,567", True),
    ("1,000", "1000", True),
    ("1000", "1,00", False),
    ("1000", "100", False),
    # multiple choice
    ("A", "A", True),
    ("B", r"\text{(B)}", True),
    ("C", "(C)", True),
    ("D", r"\textbf{D}", True),
    ("C", "C. 42", True),
    ("A", "B", False),
    ("B", r"\text{(D)}", False),
    # text answers
    ("yes", "Yes", True),
    (r"\text{Monday}", "monday", True),
    (r"\text{even}", "Even.", True),
    (r"\text{no solution}", r"\text{No Solution}", True),
    ("no", "yes", False),
    # same letters, other word: math-verify alone would read both as a product of symbols
    (r"\text{Monday}", r"\text{Dynamo}", False),
    # leading zeros (LIMO writes 025 in a box for the answer 25)
    ("25", "025", True),
    ("025", "25", True),
    ("7", "007", True),
    # assignments
    ("3", "x=3", True),
    ("x=3", "3", True),
    ("x = 3", "x=3", True),
    ("3", "x=4", False),
    ("y=2x+1", "2x+1", True),
    # expressions
    ("x^2+2x+1", "(x+1)^2", True),
    ("2x", "x+x", True),
    (r"\sqrt{8}", r"2\sqrt{2}", True),
    (r"2^{10}", "1024", True),
    (r"\binom{5}{2}", "10", True),
    (r"\pi", "3.14159265", True),
    (r"\pi", "3.14", False),
    ("2+3i", "3i+2", True),
    (r"x^2", "x^3", False),
    # gold first: math-verify turns a relation into a set only when the prediction is a set
    ("1 < x < 2", "(1, 2)", True),
    ("(1, 2)", "1 < x < 2", False),
    # no answer
    ("5", None, False),
    ("5", "", False),
    ("5", "   ", False),
    ("5", "$$", False),
]


def test_table_is_large_enough():
    assert len(EQUIVALENCE) >= 60
    assert sum(expected for *_, expected in EQUIVALENCE) >= 30
    assert sum(not expected for *_, expected in EQUIVALENCE) >= 20


@pytest.mark.parametrize(("gold", "prediction", "expected"), EQUIVALENCE)
def test_equivalence_table(checker, gold, prediction, expected):
    assert checker.equivalent(gold, prediction) is expected


def test_table_in_one_batch_matches_one_by_one(checker):
    pairs = [(gold, prediction) for gold, prediction, _ in EQUIVALENCE]
    assert checker.equivalent_many(pairs) == [expected for *_, expected in EQUIVALENCE]


def test_fresh_checker_no_cache_agrees_with_table():
    # Every verdict recomputed (no result cache, no parse cache), in parallel, in one call.
    pairs = [(gold, prediction) for gold, prediction, _ in EQUIVALENCE]
    with AnswerChecker(timeout=20, workers=2, cache_size=0) as fresh:
        assert fresh.equivalent_many(pairs) == [expected for *_, expected in EQUIVALENCE]
        assert fresh.stats["cache_hits"] == 0
        assert fresh.stats["verified"] > 0


# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so the result is \boxed{\frac{1}{\sqrt{2}}}.", r"\frac{1}{\sqrt{2}}"),
        (r"We get \fbox{12}", "12"),
        (r"first \boxed{3}, then corrected: \boxed{4}", "4"),
        (r"mixed \fbox{3} and later \boxed{5}", "5"),
        (r"ok \boxed{7} but then \boxed{8", "7"),  # unclosed last box: the previous one
        (r"the set is \boxed{\{1, 2\}}", r"\{1, 2\}"),  # escaped braces do not count
        (r"\boxed{\begin{cases}1\\{2}\end{cases}}", r"\begin{cases}1\\{2}\end{cases}"),
        (r"\boxed 5 apples", "5"),
        (r"\boxed{ 9 }", "9"),
        ("Adding them up.\n#### 1,234", "1,234"),
        ("#### 5\nsome notes\n#### 6\n", "6"),
        ("The final answer is $\\frac{3}{4}$. I hope it is correct.", r"\frac{3}{4}"),
        ("Therefore, the final answer is 17.", "17"),
        ("So the answer is 3.5. Done.", "3.5"),
        ("Final Answer: 8", "8"),
        ("Answer: 17", "17"),
        ("**Answer:** 21", "21"),
        ("Answer: (B)", "(B)"),
        (r"Answer: \(x = 2\) since", "x = 2"),
        (r"unclosed \boxed{3 and no other marker", None),
        (r"unclosed \boxed{3. Answer: 4", "4"),
        (r"empty box \boxed{} then Answer: 2", "2"),
        ("no answer here at all", None),
        ("", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_box_beats_fallbacks():
    assert extract_answer("Answer: 4\n#### 5\nso \\boxed{6}") == "6"


def test_extract_non_string():
    assert extract_answer(None) is None  # type: ignore[arg-type]


def test_last_boxed_ignores_longer_command_names():
    assert last_boxed(r"\boxedfoo{1} \boxed{2}") == "2"
    assert last_boxed(r"\boxedfoo{1}") is None


# ---------------------------------------------------------------------------------------------
# normalize
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (r"$\dfrac{1}{2}$.", r"\frac{1}{2}"),
        (r"\left( 1, 2 \right]", "(1,2]"),
        (r"1\!000", "1000"),
        (r"1\,000", "1000"),
        (r"1{,}000", "1000"),
        ("12,345", "12345"),
        ("1,2", "1,2"),
        ("1,23", "1,23"),
        (r"\{1,000\}", r"\{1,000\}"),  # a set, not a thousands number
        ("025", "25"),
        ("-007", "-7"),
        ("0.50", "0.50"),  # only plain integers lose leading zeros
        (r"\text{(A)}", "A"),
        ("(B)", "B"),
        ("x = 3", "3"),
        (r"\theta = 30^\circ", "30"),
        (r"f(x) = 3", "f(x)=3"),  # left side is not a single variable
        (r"x \le 3", r"x\le3"),
        (r"5\text{ cm}", "5"),
        (r"\$1,000", "1000"),
        ("50%", r"50\%"),
        (r"\pi r^2", r"\pi r^2"),  # the space between two letters stays
        (r"\text{no  solution}", "no solution"),
        (r"\boxed{\frac12}", r"\frac12"),
        (r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}", r"\begin{pmatrix}1&2\\3&4\end{pmatrix}"),
        ("  7  ", "7"),
    ],
)
def test_normalize(raw, expected):
    assert normalize(raw) == expected


LATEX_TOKENS = [*"0123456789abxyzABCE ,.=()[]{}\\$%^_-+/'", r"\frac", r"\text", r"\boxed"]
LATEX_TOKENS += [r"\left", r"\right", r"\,", r"\circ", "{,}", r"\\", "°", "−"]
LATEXISH = st.lists(st.sampled_from(LATEX_TOKENS), max_size=25).map("".join)


@settings(max_examples=300, deadline=None)
@given(LATEXISH)
def test_normalize_is_idempotent_and_total(raw):
    once = normalize(raw)
    assert isinstance(once, str)
    assert normalize(once) == once


def test_normalize_non_string():
    assert normalize(None) == ""  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# In-process decisions agree with math-verify
# ---------------------------------------------------------------------------------------------


def _random_closed_form(rng: random.Random, depth: int = 0) -> str:
    atoms = [
        lambda: str(rng.randint(0, 12)),
        lambda: rf"\frac{{{rng.randint(1, 9)}}}{{{rng.randint(1, 9)}}}",
        lambda: rf"\sqrt{{{rng.randint(1, 30)}}}",
        lambda: r"\pi",
        lambda: rf"\sqrt[3]{{{rng.randint(2, 30)}}}",
    ]
    if depth == 0:
        atoms.append(lambda: f"({_random_closed_form(rng, 1)})")
    text = rng.choice(atoms)()
    for _ in range(rng.randint(0, 2 - depth)):
        op = rng.choice(["+", "-", r"\cdot ", "/", "", "^{2}"])
        text += op if op == "^{2}" else op + rng.choice(atoms)()
    return text


def test_in_process_numeric_rules_agree_with_math_verify():
    r"""Integers, fractions, decimals, closed forms (\sqrt, \pi), intervals and finite sets of
    such numbers are decided without math-verify; on such pairs both must give the same verdict.
    """
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]

    def math_verify(gold: str, pred: str) -> bool:
        parsed_gold = parse("\\boxed{" + gold + "}", extraction_config=configs)
        parsed_pred = parse("\\boxed{" + pred + "}", extraction_config=configs)
        return bool(verify(parsed_gold, parsed_pred))

    rng = random.Random(7)
    pairs = [
        ("12", "13"),
        ("0.5", r"\frac{1}{2}"),
        ("0.333", "1/3"),
        ("1/3", "0.3333333"),
        (r"2\sqrt{3}", r"\sqrt{12}"),
        (r"\frac{5\pi}{6}", r"\frac{5}{6}\pi"),
        (r"\sqrt[3]{8}", "2"),
        (r"2^{10}", "1024"),
        (r"\frac12", "0.5"),
        ("3.14", r"\pi"),
    ]
    for _ in range(30):
        gold = _random_closed_form(rng)
        pairs += [(gold, _random_closed_form(rng)), (gold, f"({gold})"), (gold, rf"1\cdot {gold}")]
    ends = ["-3", "0", "1", r"\frac{1}{2}", "0.5", r"\sqrt{2}", "2", r"\infty", r"-\infty", r"\pi"]
    for _ in range(15):
        low, high = sorted(rng.sample(range(len(ends)), 2))
        interval = rng.choice("([") + f"{ends[low]}, {ends[high]}" + rng.choice(")]")
        other = rng.choice("([") + f"{ends[low]},{rng.choice(ends)}" + rng.choice(")]")
        members = rng.sample(ends[:7] + ends[9:], rng.randint(2, 3))
        shuffled = rng.sample(members, len(members))
        pairs += [
            (interval, other),
            (rf"\{{{', '.join(members)}\}}", ", ".join(shuffled)),
            (rf"\{{{', '.join(members)}\}}", rf"\{{{', '.join(shuffled[1:])}\}}"),
        ]
    decided = 0
    for gold, pred in pairs:
        quick = _quick_decision(normalize(gold), normalize(pred))
        if quick is None:
            continue
        decided += 1
        assert quick == math_verify(normalize(gold), normalize(pred)), (gold, pred, quick)
    assert decided >= 100


def test_evaluator_refuses_ambiguous_or_huge_input():
    assert _evaluate(r"2\sqrt{3}") == pytest.approx(2 * 3**0.5)
    assert _evaluate(r"\frac12") == 0.5
    for text in [
        "2^10",
        r"1/2\pi",
        r"50\%",
        "x+1",
        "[1,2)",
        PATHOLOGICAL,
        r"\frac{1}{0}",
        r"\sqrt{-4}",
    ]:
        assert _evaluate(text) is None, text


# ---------------------------------------------------------------------------------------------
# Checker behaviour
# ---------------------------------------------------------------------------------------------


def test_pathological_input_times_out_then_checker_still_works():
    with AnswerChecker(timeout=2, workers=1) as quick:
        quick.start()
        started = time.monotonic()
        assert quick.equivalent(PATHOLOGICAL, "5") is False
        assert time.monotonic() - started < 10
        assert quick.stats["timeouts"] == 1
        assert quick.equivalent("x^2-1", "(x-1)(x+1)") is True
        # the timed-out pair is cached as "not equivalent": no second wait
        started = time.monotonic()
        assert quick.equivalent(PATHOLOGICAL, "5") is False
        assert time.monotonic() - started < 0.5
        assert quick.stats["timeouts"] == 1


def test_hung_worker_is_killed_and_replaced():
    # Without the in-worker alarm the pair hangs for good: only the parent's kill ends it.
    with AnswerChecker(timeout=2, workers=1, _soft_timeout=False) as hard:
        hard.start()
        started = time.monotonic()
        assert hard.equivalent(PATHOLOGICAL, "5") is False
        assert time.monotonic() - started < 10
        assert hard.stats["timeouts"] == 1
        assert hard.stats["restarts"] == 1
        assert hard.equivalent("2x+2", "2(x+1)") is True  # the replacement worker
        # Pairs queued behind a hang in the same chunk are re-sent to the replacement.
        verdicts = hard.equivalent_many(
            [("(a+b)^2", "a^2+2ab+b^2"), (PATHOLOGICAL, "6"), ("a^2-b^2", "(a-b)(a+b)")]
        )
        assert verdicts == [True, False, True]
        assert hard.stats["timeouts"] == 2
        assert hard.stats["restarts"] == 2


def test_weird_input_never_raises(checker):
    weird = [
        ("5", 5),
        (None, "5"),
        ("", "5"),
        ("\\boxed{", "}}}{{"),
        (r"\frac{1}{0}", r"\frac{1}{0}"),
        ("1", r"\frac{1}{0}"),
        ("x", "\\" * 50),
        ("3", "1" * 5000),
        ("\x00", "\x00\x01"),
        ("🙂", "∑∫√"),
        (r"\begin{pmatrix}", r"\end{pmatrix}"),
    ]
    verdicts = checker.equivalent_many(weird)  # type: ignore[arg-type]
    assert all(isinstance(v, bool) for v in verdicts)
    assert verdicts[0] is False and verdicts[1] is False and verdicts[2] is False
    assert checker.equivalent_many([]) == []


def test_cache_counts_hits(checker):
    gold, pred = "(x+2)^2", "x^2+4x+4"  # symbolic: needs math-verify
    before = checker.stats
    assert checker.equivalent(gold, pred) is True
    middle = checker.stats
    assert middle["verified"] == before["verified"] + 1
    assert checker.equivalent(gold, pred) is True
    assert checker.equivalent(gold, f" ${pred}$ ") is True  # same normalized prediction
    after = checker.stats
    assert after["cache_hits"] == middle["cache_hits"] + 2
    assert after["verified"] == middle["verified"]


def test_cache_size_zero_disables_the_cache():
    with AnswerChecker(cache_size=0) as uncached:
        for _ in range(3):
            assert uncached.equivalent("1/2", "0.5") is True  # decided in-process
        assert uncached.stats["cache_hits"] == 0
        assert uncached.stats["fast_path"] == 3


def test_cache_is_bounded():
    with AnswerChecker(cache_size=2) as small:
        for value in ("1", "2", "3"):
            small.equivalent("1", value)
        assert len(small._cache) == 2
        small.equivalent("1", "1")  # evicted first: recomputed
        assert small.stats["cache_hits"] == 0
        small.equivalent("1", "3")
        assert small.stats["cache_hits"] == 1


def test_equivalent_many_keeps_order_and_dedups(checker):
    pairs = [
        ("x^2-9", "(x-3)(x+3)"),
        ("7", "8"),
        ("x^2-9", "(x-3)(x+3)"),
        ("E", "(E)"),
        ("x^2-9", "(x-3)^2"),
        ("7", None),
        ("x^2-9", "$(x-3)(x+3)$"),
    ]
    before = checker.stats
    assert checker.equivalent_many(pairs) == [True, False, True, True, False, False, True]
    after = checker.stats
    assert after["verified"] - before["verified"] == 2  # the two distinct factorizations
    assert after["duplicates"] - before["duplicates"] == 2  # the two repeats, checked once


def test_usable_from_threads(checker):
    pairs = [(f"(x+{n})^2", f"x^2+{2 * n}x+{n * n}") for n in range(2, 8)]
    results: dict[int, list[bool]] = {}

    def work(slot: int) -> None:
        results[slot] = checker.equivalent_many(pairs)

    threads = [threading.Thread(target=work, args=(slot,)) for slot in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert all(results[slot] == [True] * len(pairs) for slot in range(4))


def test_checker_restarts_after_close():
    c = AnswerChecker(timeout=2, workers=1)
    assert c.equivalent("x+x", "2x") is True
    c.close()
    assert c.equivalent("y+y", "2y") is True
    c.close()


def test_default_checker_is_shared():
    assert default_checker() is default_checker()
    assert is_equivalent(r"\frac{1}{2}", "0.5") is True
    assert is_equivalent("2", None) is False


def test_workers_that_cannot_start_raise_a_clear_error(monkeypatch):
    from dart_hub import answers
    from dart_hub.errors import DartHubError

    def no_processes(self):
        raise OSError("no more processes")

    monkeypatch.setattr(answers._Pool, "_spawn", no_processes)
    with AnswerChecker(timeout=2, workers=1) as broken:
        assert broken.equivalent("1/2", "0.5") is True  # decided without workers
        with pytest.raises(DartHubError, match="cannot start an answer worker"):
            broken.equivalent("x^2-1", "(x-1)(x+1)")
