"""Final answers: extraction from model text and mathematical equivalence checking.

Equivalence goes through three layers, cheapest first:

1. `normalize` both sides (pure string rewriting). Equal strings -> equivalent.
2. Rules decided in this process: multiple-choice letters compare by letter; text answers
   ("yes", "\\text{Monday}") compare case-insensitively (math-verify would read "Monday" as a
   product of symbols, equal to "Dynamo"); plain numbers (integers, decimals, `a/b`,
   `\\frac{a}{b}`) compare as exact fractions; closed forms (`2\\sqrt{3}`, `\\frac{5\\pi}{6}`),
   intervals with such ends and finite sets of such numbers are evaluated and compared,
   deciding only when the values are clearly equal or clearly different (math-verify rounds
   floats to 6 decimals; anything closer goes on to it). These rules agree with math-verify
   (tests/test_answers.py checks it on random pairs), with one deliberate exception: math-verify
   calls `12-1.89` and `12-1.89+0` different (floats inside sums); they are equal here.
3. math-verify (`parse` + `verify`, gold first) in worker processes started with the 'spawn'
   context. math-verify's own timeouts rely on signals (main thread only) and some inputs hang
   (nested powers), so each pair runs under a per-pair alarm inside the worker and, behind it,
   a hard deadline in the parent: a worker that overruns is killed and replaced, and the pair
   counts as "not equivalent" (`stats["timeouts"]`).

Results are cached (LRU, keyed by `(gold, normalize(prediction))`). The checker never raises on
odd input: anything that goes wrong while checking a pair makes that pair `False` and is counted
in `stats["errors"]`. The one exception is an environment where the worker processes cannot
start at all (math-verify missing, no main-module guard): then `DartHubError` says so, rather
than every answer silently becoming "wrong".

Programs that use the checker must guard their entry point with `if __name__ == "__main__":`
(a requirement of the 'spawn' start method, as for any multiprocessing code: a spawned worker
imports the main module again).
"""

from __future__ import annotations

import atexit
import contextlib
import math
import multiprocessing
import os
import re
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterable, Sequence
from fractions import Fraction
from multiprocessing.connection import wait as _wait_connections
from typing import Any

from dart_hub.boxed import braced_group, last_boxed
from dart_hub.errors import DartHubError

__all__ = [
    "AnswerChecker",
    "default_checker",
    "extract_answer",
    "final_boxed",
    "is_equivalent",
    "normalize",
]

# ---------------------------------------------------------------------------------------------
# Extraction
# ---------------------------------------------------------------------------------------------

_GSM8K = re.compile(r"^[ \t]*####[ \t]*(?P<ans>\S[^\n]*?)[ \t]*$", re.MULTILINE)
_FINAL_IS = re.compile(
    r"(?i)\b(?:final\s+answer|the\s+answer)(?:\s+is|\s*:)[ \t]*:?[ \t]*(?P<ans>[^\n]+)"
)
_ANSWER_COLON = re.compile(r"(?i)(?<![A-Za-z])answer\s*(?:\*\*|__)?\s*[:：][ \t]*(?P<ans>[^\n]+)")
_I_HOPE = re.compile(r"(?i)\s*I hope it is correct.*$")
_SENTENCE_END = re.compile(r"\.(?=\s|$)")


def extract_answer(text: str) -> str | None:
    """The final answer written in `text`, or None.

    Order (the first rule that finds something wins):

    1. the last well-formed `\\boxed{...}` or `\\fbox{...}` (nested braces allowed; an unclosed
       or empty box is ignored; see `dart_hub.boxed.last_boxed`);
    2. the last GSM8K-style line `#### X`;
    3. the last "final answer is X" / "the answer is X" / "final answer: X";
    4. the last "Answer: X" (also `**Answer:** X`).

    For rules 2-4, X is the rest of the line; an inline math span at its start (`$...$`,
    `\\(...\\)`) is taken as a whole, otherwise X stops at the first sentence-ending period,
    and a trailing "I hope it is correct." is dropped.
    """
    if not isinstance(text, str) or not text:
        return None
    boxed = _final_boxes(text)
    box_end = _last_box_end(text) if boxed else -1
    for pattern in (_GSM8K, _FINAL_IS, _ANSWER_COLON):
        last = None
        for last in pattern.finditer(text):  # noqa: B007 - we want the last match
            pass
        # A box wins, unless a final-answer line comes after it ("... = \boxed{255} ... Final
        # Answer: The final answer is $10,455$."): the last statement is the answer.
        if last is not None and last.start() > box_end:
            answer = _clean_inline(last.group("ans"))
            if answer:
                return answer
    return boxed or None


def _last_box_end(text: str) -> int:
    end = -1
    for match in _BOX_AT.finditer(text):
        content = braced_group(text, match.end())
        if content is not None:
            end = match.end() + len(content) + 2
    return end


# What may stand between boxes that together give one answer: "\boxed{1}, \boxed{2}",
# "\boxed{-2} \quad \text{and} \quad \boxed{1}", "$\boxed{a}$ and $\boxed{b}$".
_BOX_JOINER = re.compile(
    r"^(?:\s|[,;$&]|\\[()\[\]]|\\(?:quad|qquad)(?![A-Za-z])|\\text\s*\{\s*(?:and|or|,)?\s*\}|\b(?:and|or)\b)*$"
)
_BOX_AT = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])\s*")


def final_boxed(text: str) -> str | None:
    """The final boxed answer of `text` (the last box, joined with the boxes right before it
    when only connectors separate them), or None: `extract_answer` without its text rules."""
    if not isinstance(text, str) or not text:
        return None
    return _final_boxes(text) or None


def _final_boxes(text: str) -> str | None:
    """The last box, joined with the boxes right before it when only connectors ("and", ",",
    \\quad, math delimiters) separate them: several boxed answers are one answer, a list."""
    last = last_boxed(text)
    if not last:
        return last
    boxes = []
    for match in _BOX_AT.finditer(text):
        content = braced_group(text, match.end())
        if content is not None:
            boxes.append((match.start(), match.end() + len(content) + 2, content.strip()))
    if len(boxes) < 2 or boxes[-1][2] != last:
        return last
    kept = [boxes[-1]]
    for box in reversed(boxes[:-1]):
        between = text[box[1] : kept[-1][0]]
        if not _BOX_JOINER.match(between) or not box[2]:
            break
        kept.append(box)
    return ", ".join(content for _, _, content in reversed(kept))


# "The final answer is X" inside an "Answer: ..." line (Minerva: "Final Answer: The final answer
# is $14{,}916$. I hope it is correct."), and "The largest $n$ is 34." sentences.
_ANSWER_IS = re.compile(r"(?i)^(?:the\s+)?(?:final\s+)?answer\s*(?:is|:)\s*:?\s*")
_NUMBER_IN_WORDS = re.compile(r"(?<![\w.])[-+]?\d+(?:\.\d+)?(?![\w.])")
_WORD = re.compile(r"[A-Za-z]{2,}")
_SENTENCE_IS = re.compile(r"^(?P<subject>.*[A-Za-z]{2,}.*?)\s+(?:is|are|equals|=)\s+(?P<value>[^\s].{0,60})$")


def _clean_inline(raw: str) -> str | None:
    answer = _clean_once(raw)
    for _ in range(3):
        if answer is None:
            return None
        prefix = _ANSWER_IS.match(answer)
        if prefix and prefix.end() < len(answer):
            answer = _clean_once(answer[prefix.end() :])
            continue
        sentence = _SENTENCE_IS.match(answer)
        if sentence and " " in sentence.group("subject").strip():
            answer = _clean_once(sentence.group("value"))
            continue
        numbers = _NUMBER_IN_WORDS.findall(answer)
        if len(numbers) == 1 and "\\" not in answer and "$" not in answer and len(_WORD.findall(answer)) >= 3:
            answer = numbers[0]  # "Jane started growing Sphere 3 hours ago": the one number said
        break
    return answer


def _clean_once(raw: str) -> str | None:
    s = raw.strip().strip("*_").strip()
    for opening, closing in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(opening):
            end = s.find(closing, len(opening))
            if end > len(opening):
                return s[len(opening) : end].strip() or None
            break
    s = _I_HOPE.sub("", s)
    match = _SENTENCE_END.search(s)
    if match:
        s = s[: match.start()]
    s = s.strip().rstrip(".,;").strip().strip("*_").strip()
    return s or None


# ---------------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------------

_UNICODE = {
    "\u2212": "-",  # minus sign
    "\u2013": "-",
    "\u00d7": "\\times ",
    "\u22c5": "\\cdot ",
    "\u03c0": "\\pi ",
    "\u221e": "\\infty ",
    "\u00a0": " ",
    "\u2009": " ",
    "\u202f": " ",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
_BOX_PREFIX = re.compile(r"^\\(?:boxed|fbox)\s*(?=\{)")
_TEXT_PREFIX = re.compile(
    r"^\\(?:text|textbf|textrm|textit|textnormal|mathrm|mathbf|mbox)\s*(?=\{)"
)
# `\\` (a LaTeX line break, e.g. in matrices) is matched first so it is never split.
_SPACING = re.compile(
    r"\\\\|\\[,;:! ]|\\(?:quad|qquad|enspace|thinspace|medspace|thickspace)(?![A-Za-z])|~"
)
_SIZING = re.compile(
    r"\\(?:left|right)\.|\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|big|Big|bigg|Bigg|displaystyle|textstyle)(?![A-Za-z])"
)
_FRAC = re.compile(r"\\[dtc]frac(?![A-Za-z])")
_BINOM = re.compile(r"\\[dt]binom(?![A-Za-z])")
_DEGREES = re.compile(
    r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ(?![A-Za-z])|(?<=\d)\s*\\circ(?![A-Za-z])|\u00b0|\\degree(?![A-Za-z])"
)
_PERCENT = re.compile(r"(?<!\\)%")
# "28 percent", "28 pct", "\text{ percent}" -> 28\%: the same quantity as 28%.
_PERCENT_WORD = re.compile(r"(?<=\d)\s*(?:\\(?:text|mbox|mathrm)\s*\{\s*)?(?:per\s*cent(?:age)?|pct)\.?\s*\}?\s*$")
_UNIT_WORDS = (
    r"cm|mm|km|kg|mg|ml|mL|inches|inch|ft|feet|foot|yards?|yd|miles?|meters?|metres?|"
    r"units?|degrees?|dollars?|cents?|seconds?|sec|minutes?|mins|hours?|hrs?|days?|weeks?|"
    r"months?|years?|grams?|pounds?|lbs?|mph|ounces?|oz|liters?|litres?"
)
_TEXT_UNIT = re.compile(
    r"\\(?:text|mbox|mathrm|textrm)\s*\{\s*(?:square\s+|sq\.?\s+|cubic\s+)?[A-Za-z][A-Za-z .]*\}"
    r"(?:\s*\^\s*\{?\s*[23]\s*\}?)?\s*$"
)
_PLAIN_UNIT = re.compile(
    rf"(?<=\d)\s*(?:square\s+|sq\.?\s+|cubic\s+)?(?:{_UNIT_WORDS})\.?(?:\s*\^\s*\{{?\s*[23]\s*\}}?)?\s*$"
)
_SPACES = re.compile(r"\s+")
_LONE_SPACE = re.compile(" ")
_LIST_COMMA = re.compile(r"\d{3}(?!\d)")


def _keep_space(m: re.Match) -> str:
    """A space stays between two letters (`\\pi r`, `no solution`) and after a comma between a
    digit and three digits: "32, 349" is a list of two numbers, while 32,349 is one number."""
    text, at = m.string, m.start()
    before = text[at - 1] if at else ""
    after = text[at + 1] if at + 1 < len(text) else ""
    if before.isalpha() and before.isascii() and after.isalpha() and after.isascii():
        return " "
    if before == "," and at >= 2 and text[at - 2].isdigit() and _LIST_COMMA.match(text, at + 1):
        return " "
    return ""
_VARIABLE_ASSIGNMENT = re.compile(
    r"^(?:[A-Za-z]|\\[A-Za-z]+)(?:_\{?[A-Za-z0-9]+\}?)?=(?P<rhs>[^=<>]+)$"
)
_RELATION_WORDS = re.compile(r"\\(?:le|ge|leq|geq|neq|ne|lt|gt|approx|in|sim)(?![A-Za-z])")
_CHOICE_WRAPPED = re.compile(r"^(?:\((?P<a>[A-E])\)|(?P<b>[A-E])[.)]?)$")
_THOUSANDS_THIN = re.compile(r"(?<=\d),\\!\s*(?=\d{3}(?!\d))")  # 11,\! 111 (LaTeX thousands)
_THOUSANDS_BRACED = re.compile(r"(?<=\d)\{,\}(?=\d{3})")
_THOUSANDS = re.compile(r"^(?P<num>[-+]?\d{1,3}(?:,\d{3})+(?:\.\d+)?)(?P<pct>\\%)?$")
_LEADING_ZEROS = re.compile(r"^(?P<sign>-?)0+(?P<digits>\d+)$")


def normalize(answer: str) -> str:
    """Cheap, meaning-preserving rewriting of an answer, for the fast path and the cache key.

    - surrounding whitespace, `$` (and the currency sign `\\$`), `\\(...\\)`, `\\[...\\]`, a box
      around the whole answer, a trailing period;
    - `\\dfrac`/`\\tfrac`/`\\cfrac` -> `\\frac`, `\\dbinom` -> `\\binom`, `\\left`/`\\right`
      and sizing commands, `\\displaystyle`, spacing (`\\!`, `\\,`, `\\;`, `\\quad`, `~`);
      whitespace is dropped except a single space between two letters (`\\pi r`, `no solution`);
    - degree signs (`^\\circ`, `^{\\circ}`, `°`), a trailing unit (`5\\text{ cm}`, `5 cm^2`,
      `12 dollars`) after something with a digit;
    - a whole-answer `\\text{...}` / `\\textbf{...}` / `\\mathrm{...}` wrapper;
    - `x=3` -> `3` when the left side is a single variable (`x`, `x_1`, `\\theta`);
    - choice letters `(A)`, `A.`, `A)`, `\\text{(A)}` -> `A`;
    - thousands separators, only for a whole number in groups of three: `12,345`, `1{,}000`
      -> `12345` (`1,2` and `\\{1,000\\}` stay as they are: sets, intervals, tuples);
    - leading zeros of plain integers (`025` -> `25`); `%` -> `\\%`.

    The result is a fixpoint: normalize(normalize(x)) == normalize(x). Never raises; a non-string
    gives "".
    """
    if not isinstance(answer, str):
        return ""
    try:
        s = answer
        for _ in range(6):
            previous = s
            s = _normalize_once(s)
            if s == previous:
                break
        return s
    except Exception:  # a regex on pathological input; fall back to something stable
        return answer.strip()


def _normalize_once(s: str) -> str:
    s = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], s)
    s = s.replace("\\$", "").replace("$", "")
    s = _unwrap(s.strip())
    s = _THOUSANDS_THIN.sub(",", s)
    s = _SPACING.sub(
        lambda m: m.group(0) if m.group(0) == "\\\\" else ("" if m.group(0) == "\\!" else " "), s
    )
    s = _SIZING.sub("", s)
    s = _FRAC.sub(r"\\frac", s)
    s = _BINOM.sub(r"\\binom", s)
    s = _DEGREES.sub("", s)
    s = _PERCENT.sub(r"\\%", s)
    s = _PERCENT_WORD.sub(r"\\%", s)
    s = _strip_unit(s)
    s = _SPACES.sub(" ", s).strip()
    s = _LONE_SPACE.sub(_keep_space, s)
    s = s.rstrip(".").strip()
    s = _unwrap(s)

    match = _VARIABLE_ASSIGNMENT.match(s)
    if match and not _RELATION_WORDS.search(match.group("rhs")):
        s = match.group("rhs")
    match = _CHOICE_WRAPPED.match(s)
    if match:
        return match.group("a") or match.group("b")
    s = _THOUSANDS_BRACED.sub(",", s)
    match = _THOUSANDS.match(s)
    if match:
        s = match.group("num").replace(",", "") + (match.group("pct") or "")
    match = _LEADING_ZEROS.match(s)
    if match:
        s = match.group("sign") + match.group("digits")
    return s


def _unwrap(s: str) -> str:
    """Remove wrappers around the whole answer: \\boxed{}, \\text{}, \\(...\\), \\[...\\]."""
    for _ in range(8):
        s = s.strip()
        if s.startswith("\\(") and s.endswith("\\)") or s.startswith("\\[") and s.endswith("\\]"):
            s = s[2:-2]
            continue
        match = _BOX_PREFIX.match(s) or _TEXT_PREFIX.match(s)
        if match and s.endswith("}"):
            content = braced_group(s, match.end())
            if content is not None and match.end() + len(content) + 2 == len(s):
                s = content
                continue
        break
    return s.strip()


def _strip_unit(s: str) -> str:
    for pattern in (_TEXT_UNIT, _PLAIN_UNIT):
        match = pattern.search(s)
        if match and match.start() > 0 and re.search(r"\d", s[: match.start()]):
            s = s[: match.start()].rstrip()
    return s


# ---------------------------------------------------------------------------------------------
# In-process decisions (no math-verify)
# ---------------------------------------------------------------------------------------------

_CHOICE = re.compile(r"^[A-E]$")
_CHOICE_PREFIX = re.compile(r"^\(?(?P<letter>[A-E])(?:[.):]|$)")
_TEXT = re.compile(r"^[A-Za-z]+(?:[ '-][A-Za-z]+)*$")
_SHORT_TEXT_WORDS = frozenset({"no", "ok"})
_INT = re.compile(r"^[-+]?\d+$")
_DECIMAL = re.compile(r"^[-+]?(?:\d+\.\d*|\.\d+)$")
_FRACTION = re.compile(
    r"^(?P<sign>[-+]?)\\frac(?:\{(?P<n>-?\d+)\}\{(?P<d>-?\d+)\}|(?P<n1>\d)(?P<d1>\d))$"
)
_SLASH = re.compile(r"^(?P<n>[-+]?\d+)/(?P<d>\d+)$")
# math-verify compares floats after rounding to 6 decimals: two numbers further apart than this
# can never be equal for it, two numbers closer may be (then math-verify decides).
_NUMERIC_GAP = Fraction(2, 10**6)


def _is_text(s: str) -> bool:
    if not _TEXT.match(s):
        return False
    return max(len(word) for word in re.split(r"[ '-]", s)) >= 3 or s.lower() in _SHORT_TEXT_WORDS


def _as_number(s: str) -> Fraction | None:
    if len(s) > 40:
        return None
    if _INT.match(s) or _DECIMAL.match(s):
        return Fraction(s)
    match = _FRACTION.match(s)
    if match:
        numerator = int(match.group("n") or match.group("n1"))
        denominator = int(match.group("d") or match.group("d1"))
        if denominator == 0:
            return None
        value = Fraction(numerator, denominator)
        return -value if match.group("sign") == "-" else value
    match = _SLASH.match(s)
    if match and int(match.group("d")) != 0:
        return Fraction(int(match.group("n")), int(match.group("d")))
    return None


def _quick_decision(gold: str, pred: str) -> bool | None:
    """True/False when it can be decided without math-verify, None otherwise (both normalized)."""
    if gold == pred:
        return True
    if not pred or not gold:
        return False
    if _CHOICE.match(gold):
        match = _CHOICE_PREFIX.match(pred)
        return bool(match) and match.group("letter") == gold
    if _is_text(gold) or _is_text(pred):
        return gold.casefold() == pred.casefold()
    a = _as_number(gold)
    if a is not None:
        b = _as_number(pred)
        if b is not None:
            if a == b:
                return True
            if abs(a - b) > _NUMERIC_GAP:
                return False
            return None
    x = _evaluate(gold)
    if x is not None:
        y = _evaluate(pred)
        return None if y is None else _compare_values(x, y)
    interval = _as_interval(gold)
    if interval is not None:
        other = _as_interval(pred)
        if other is None:
            return None  # math-verify also relates intervals to sets, tuples, inequalities
        if interval[0] != other[0] or interval[3] != other[3]:
            return False
        return _all_of(_compare_values(interval[i], other[i]) for i in (1, 2))
    elements = _as_set(gold)
    if elements is not None:
        others = _as_set(pred)
        return None if others is None else _compare_sets(elements, others)
    return None


def _compare_values(x: float, y: float) -> bool | None:
    """Same verdict as math-verify for two real numbers, or None when too close to call (it
    rounds floats to 6 decimals)."""
    if x == y:
        return True
    if math.isinf(x) or math.isinf(y):
        return False
    scale = max(1.0, abs(x), abs(y))
    if abs(x - y) <= 1e-12 * scale:
        return True
    if abs(x - y) > max(2e-6, 1e-9 * scale):
        return False
    return None


def _all_of(verdicts: Iterable[bool | None]) -> bool | None:
    verdicts = list(verdicts)
    if False in verdicts:
        return False
    return None if None in verdicts else True


def _compare_sets(a: list[float], b: list[float]) -> bool | None:
    """Set equality (order and repeats ignored), element by element with _compare_values."""

    def covered(xs: list[float], ys: list[float]) -> bool | None:
        verdicts = []
        for x in xs:
            found = [_compare_values(x, y) for y in ys]
            verdicts.append(True if True in found else (None if None in found else False))
        return _all_of(verdicts)

    return _all_of([covered(a, b), covered(b, a)])


def _split_top_level(s: str) -> list[str]:
    """Split on commas outside (), [], {} and \\{ \\}."""
    parts, depth, start, index = [], 0, 0, 0
    while index < len(s):
        char = s[index]
        if char == "\\" and index + 1 < len(s) and s[index + 1] in "{}":
            depth += 1 if s[index + 1] == "{" else -1
            index += 2
            continue
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(s[start:index])
            start = index + 1
        index += 1
    parts.append(s[start:])
    return parts


def _endpoint(s: str) -> float | None:
    if s in ("\\infty", "+\\infty"):
        return math.inf
    if s == "-\\infty":
        return -math.inf
    return _evaluate(s)


def _as_interval(s: str) -> tuple[str, float, float, str] | None:
    """(opening, low, high, closing) for `(a,b]`-style intervals with numeric ends, else None
    (also for `(2,1)`, which math-verify reads as a tuple)."""
    if len(s) < 5 or s[0] not in "([" or s[-1] not in ")]" or len(s) > 200:
        return None
    parts = _split_top_level(s[1:-1])
    if len(parts) != 2:
        return None
    low, high = _endpoint(parts[0]), _endpoint(parts[1])
    if low is None or high is None or not low < high:
        return None
    if low == -math.inf and s[0] == "[" or high == math.inf and s[-1] == "]":
        return None
    return s[0], low, high, s[-1]


def _as_set(s: str) -> list[float] | None:
    """Elements of `\\{a,b\\}` or of a bare list `a,b` (math-verify reads both as a set), when
    there are at least two and all are numbers."""
    if len(s) > 200:
        return None
    if s.startswith("\\{") and s.endswith("\\}"):
        s = s[2:-2]
    elif s[:1] in ("(", "["):
        return None
    parts = _split_top_level(s)
    if len(parts) < 2:
        return None
    values = [_evaluate(part) for part in parts]
    if any(value is None for value in values):
        return None
    return values  # type: ignore[return-value]


# A tiny evaluator for closed-form real numbers: digits, + - * / ^, \frac, \sqrt, \pi,
# \cdot, \times, parentheses and braces, implicit multiplication (2\sqrt{3}). Anything else
# (letters, sets, relations, percent, functions) gives None and goes to math-verify. Ambiguous
# writing ("2^10", "1/2\pi") also gives None.
_TOKEN = re.compile(r"(?P<num>\d+\.\d*|\.\d+|\d+)|(?P<cmd>\\[A-Za-z]+)|(?P<op>[-+*/^(){}\[\]])")
_PRIMARY_START = frozenset({"(", "{", "\\frac", "\\sqrt", "\\pi"})
_EVAL_LIMIT = 1e12


class _Unsupported(Exception):
    pass


def _evaluate(s: str) -> float | None:
    if not s or len(s) > 80:
        return None
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(s):
        match = _TOKEN.match(s, position)
        if not match:
            return None
        tokens.append((match.lastgroup or "", match.group(0)))
        position = match.end()
    try:
        parser = _Evaluator(tokens)
        value = parser.expression()
        if parser.position != len(tokens):
            return None
    except (_Unsupported, ArithmeticError, ValueError, RecursionError):
        return None
    if not math.isfinite(value) or abs(value) > _EVAL_LIMIT:
        return None
    return value


class _Evaluator:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.position = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.position][1] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        if self.position >= len(self.tokens):
            raise _Unsupported
        token = self.tokens[self.position]
        self.position += 1
        return token

    def expect(self, text: str) -> None:
        if self.take()[1] != text:
            raise _Unsupported

    def expression(self) -> float:
        self.depth += 1
        if self.depth > 30:
            raise _Unsupported
        value = self.term()
        while self.peek() in ("+", "-"):
            sign = self.take()[1]
            right = self.term()
            value = value + right if sign == "+" else value - right
        self.depth -= 1
        return value

    def term(self) -> float:
        value = self.factor()
        divided = implicit = False
        while True:
            token = self.peek()
            if token in ("*", "\\cdot", "\\times"):
                self.take()
                value *= self.factor()
            elif token in ("/", "\\div"):
                self.take()
                divisor = self.factor()
                if divisor == 0:
                    raise _Unsupported
                value /= divisor
                divided = True
            elif token is not None and (
                token in _PRIMARY_START or token[0].isdigit() or token[0] == "."
            ):
                value *= self.power()
                implicit = True
            else:
                break
        if divided and implicit:  # 1/2\pi: (1/2)pi or 1/(2pi)? leave it to math-verify
            raise _Unsupported
        return value

    def factor(self) -> float:
        token = self.peek()
        if token == "-":
            self.take()
            return -self.factor()
        if token == "+":
            self.take()
            return self.factor()
        return self.power()

    def power(self) -> float:
        base = self.primary()
        if self.peek() != "^":
            return base
        self.take()
        kind, text = self.tokens[self.position] if self.position < len(self.tokens) else ("", "")
        if text == "{":
            self.take()
            exponent = self.expression()
            self.expect("}")
        elif kind == "num" and len(text) == 1:
            self.take()
            exponent = float(text)
        else:  # 2^10, 2^-1, 2^(3): TeX and the parsers disagree
            raise _Unsupported
        if self.peek() == "^" or abs(exponent) > 64 or abs(base) > 1e6:
            raise _Unsupported
        if base < 0 and exponent != int(exponent) or base == 0 and exponent < 0:
            raise _Unsupported
        return base**exponent

    def argument(self) -> float:
        """A TeX macro argument: a braced group, one digit, or \\pi."""
        kind, text = self.tokens[self.position] if self.position < len(self.tokens) else ("", "")
        if text == "{":
            self.take()
            value = self.expression()
            self.expect("}")
            return value
        if kind == "num" and text[0].isdigit():
            if len(text) > 1:
                if "." in text:
                    raise _Unsupported
                self.tokens[self.position] = ("num", text[1:])  # \frac12: one digit each
            else:
                self.take()
            return float(text[0])
        if text == "\\pi":
            self.take()
            return math.pi
        raise _Unsupported

    def primary(self) -> float:
        kind, text = self.take()
        if kind == "num":
            return float(text)
        if text in ("(", "{"):
            value = self.expression()
            self.expect(")" if text == "(" else "}")
            return value
        if text == "\\pi":
            return math.pi
        if text == "\\frac":
            numerator = self.argument()
            denominator = self.argument()
            if denominator == 0:
                raise _Unsupported
            return numerator / denominator
        if text == "\\sqrt":
            index = 2.0
            if self.peek() == "[":
                self.take()
                index = self.expression()
                self.expect("]")
                if index != int(index) or index < 2:
                    raise _Unsupported
            radicand = self.argument()
            if radicand < 0:
                raise _Unsupported
            return radicand ** (1.0 / index)
        raise _Unsupported


# ---------------------------------------------------------------------------------------------
# Worker processes
# ---------------------------------------------------------------------------------------------

_TRUE, _FALSE, _ERROR, _TIMEOUT = 1, 0, 2, 3


_WARM_UP = (
    (r"\frac{1}{2}", "0.5"),
    (r"2\sqrt{3}", r"\sqrt{12}"),
    (r"[1, 2)", r"(1, 2]"),
    (r"\{1, 2\}", "2, 1"),
    ("x^2+2x+1", "(x+1)^2"),
    (r"50\%", r"\frac{\pi}{2}"),
    (r"\begin{pmatrix}1\\2\end{pmatrix}", "1 < x < 2"),
)


class _PairTimeout(BaseException):
    """Raised by the per-pair alarm inside a worker (BaseException: math-verify and sympy catch
    Exception)."""


def _worker_main(conn: Any, soft_timeout: float | None, parse_cache_size: int) -> None:
    """Worker loop: receives lists of (index, gold, prediction), answers (index, code) per pair."""
    import functools
    import logging
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    try:
        for name in ("math_verify", "latex2sympy2_extended"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
        from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

        latex_and_expr = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
        expr_only = [ExprExtractionConfig()]
    except BaseException as exc:  # noqa: BLE001 - report any start-up failure to the parent
        with contextlib.suppress(Exception):
            conn.send(("failed", repr(exc)))
        return

    def parse_answer(answer: str) -> list:
        # math-verify only looks for LaTeX inside $...$, \[...\] or \boxed{}: box bare answers.
        parsed = parse(
            "\\boxed{" + answer + "}", extraction_config=latex_and_expr, parsing_timeout=None
        )
        if not any(not isinstance(item, str) for item in parsed):
            plain = parse(answer, extraction_config=expr_only, parsing_timeout=None)
            if any(not isinstance(item, str) for item in plain):
                return plain
        return parsed

    cached_parse = functools.lru_cache(maxsize=parse_cache_size)(parse_answer)

    def on_alarm(signum: int, frame: Any) -> None:
        raise _PairTimeout()

    if soft_timeout:
        signal.signal(signal.SIGALRM, on_alarm)

    def check(gold: str, pred: str) -> int:
        try:
            try:
                if soft_timeout:
                    signal.setitimer(signal.ITIMER_REAL, soft_timeout)
                gold_parsed = cached_parse(gold)
                pred_parsed = cached_parse(pred)
                if not gold_parsed or not pred_parsed:
                    return _FALSE
                return _TRUE if verify(gold_parsed, pred_parsed, timeout_seconds=None) else _FALSE
            finally:
                if soft_timeout:
                    signal.setitimer(signal.ITIMER_REAL, 0)
        except _PairTimeout:
            return _TIMEOUT
        except Exception:
            return _ERROR

    # Warm up (sympy and latex2sympy build caches and import submodules lazily on first use),
    # so that the first real pairs do not pay for it against their deadline.
    for gold, pred in _WARM_UP:
        check(gold, pred)
    conn.send(("ready", None))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if message is None:
            return
        for index, gold, pred in message:
            code = check(gold, pred)
            try:
                conn.send((index, code))
            except (EOFError, OSError):
                return


class _Worker:
    __slots__ = ("process", "conn", "ready", "started_at", "progress_at", "chunk", "done")

    def __init__(self, process: Any, conn: Any) -> None:
        self.process = process
        self.conn = conn
        self.ready = False
        self.started_at = time.monotonic()
        self.progress_at = self.started_at
        self.chunk: list[int] = []
        self.done = 0

    @property
    def busy(self) -> bool:
        return self.done < len(self.chunk)


class _Pool:
    """A fixed number of spawned math-verify workers with hard per-pair deadlines."""

    def __init__(
        self, size: int, timeout: float, soft_timeout: bool, parse_cache_size: int
    ) -> None:
        self.size = max(1, size)
        self.timeout = timeout
        # The in-worker alarm fires at `timeout`; the parent kills a worker a little later, for
        # hangs that signals cannot interrupt.
        self.soft_timeout = timeout if soft_timeout else None
        self.hard_timeout = (
            timeout + max(0.5, min(2.0, 0.25 * timeout)) if soft_timeout else timeout
        )
        self.startup_timeout = 120.0
        self.parse_cache_size = parse_cache_size
        self.workers: list[_Worker] = []
        self.broken: str | None = None
        self.restarts = 0
        self._ctx = multiprocessing.get_context("spawn")
        self._pid = os.getpid()

    # -- life cycle -----------------------------------------------------------------------------

    def _spawn(self) -> _Worker:
        parent_conn, child_conn = self._ctx.Pipe(duplex=True)
        process = self._ctx.Process(
            target=_worker_main,
            args=(child_conn, self.soft_timeout, self.parse_cache_size),
            name="dart-hub-answer-worker",
            daemon=True,
        )
        process.start()
        child_conn.close()
        return _Worker(process, parent_conn)

    def start(self) -> None:
        if getattr(multiprocessing.process.current_process(), "_inheriting", False):
            # We are a spawned child re-importing the parent's main module: starting workers here
            # would recurse, and carrying on would run the user's script a second time.
            raise DartHubError(
                "answer checking started while a worker process was importing the main module; "
                'put the program\'s code under `if __name__ == "__main__":`'
            )
        if self._pid != os.getpid():  # we are a fork of the process that owns these workers
            self._adopt()
        while len(self.workers) < self.size and not self.broken:
            try:
                self.workers.append(self._spawn())
            except Exception as exc:
                self.broken = f"cannot start an answer worker: {exc!r}"

    def wait_ready(self) -> None:
        """Block until every worker has imported math-verify (or failed to)."""
        self.start()
        deadline = time.monotonic() + self.startup_timeout
        for worker in self.workers:
            while not worker.ready and not self.broken:
                left = deadline - time.monotonic()
                if left <= 0 or not worker.conn.poll(left):
                    self.broken = "answer worker did not start in time"
                    break
                try:
                    self._handle(worker, worker.conn.recv(), None)
                except (EOFError, OSError):
                    self.broken = "answer worker exited during start-up"
        self.raise_if_broken()

    def raise_if_broken(self) -> None:
        if self.broken:
            message = self.broken
            self.reset()
            raise DartHubError(
                f"{message}. Check that math-verify imports in a fresh Python process "
                '(python -c "import math_verify") and that the program\'s code runs under '
                '`if __name__ == "__main__":` (worker processes are spawned).'
            )

    @staticmethod
    def _kill(worker: _Worker) -> None:
        with contextlib.suppress(Exception):
            worker.process.kill()
        with contextlib.suppress(Exception):
            worker.process.join(timeout=5)
        with contextlib.suppress(Exception):
            worker.conn.close()

    def _replace(self, worker: _Worker) -> None:
        self._kill(worker)
        self.workers.remove(worker)
        self.restarts += 1
        if not self.broken:
            try:
                self.workers.append(self._spawn())
            except Exception as exc:
                self.broken = f"cannot restart an answer worker: {exc!r}"

    def _adopt(self) -> list[_Worker]:
        """Take the worker list; in a forked child the workers are the parent's: leave them."""
        workers, self.workers = self.workers, []
        if self._pid != os.getpid():
            self._pid = os.getpid()
            return []
        return workers

    def close(self) -> None:
        self.broken = None
        workers = self._adopt()
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.conn.send(None)
        deadline = time.monotonic() + 2.0
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.process.join(timeout=max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                self._kill(worker)
            else:
                with contextlib.suppress(Exception):
                    worker.conn.close()

    def reset(self) -> None:
        """Kill everything (state unknown after an interruption); workers restart on demand."""
        workers = self._adopt()
        for worker in workers:
            self._kill(worker)

    # -- work -----------------------------------------------------------------------------------

    def _handle(self, worker: _Worker, message: Any, codes: list[int | None] | None) -> None:
        tag, value = message
        if tag == "ready":
            worker.ready = True
            worker.progress_at = time.monotonic()
        elif tag == "failed":
            self.broken = f"answer worker failed to start: {value}"
        elif codes is not None and worker.busy and worker.chunk[worker.done] == tag:
            codes[tag] = value
            worker.done += 1
            worker.progress_at = time.monotonic()

    def run(self, items: Sequence[tuple[str, str]]) -> list[int]:
        """One code per (gold, prediction): _TRUE, _FALSE, _ERROR or _TIMEOUT."""
        codes: list[int | None] = [None] * len(items)
        # Pairs of one gold go out together, so a worker mostly finds that gold in its parse cache.
        todo: deque[int] = deque(sorted(range(len(items)), key=lambda index: items[index][0]))
        self.start()
        chunk_size = max(1, min(32, math.ceil(len(items) / (2 * self.size))))

        def assign(worker: _Worker) -> None:
            if not worker.process.is_alive():  # died while idle (killed from outside): replace
                fail(worker, _ERROR)
                return
            chunk = [todo.popleft() for _ in range(min(chunk_size, len(todo)))]
            try:
                worker.conn.send([(index, items[index][0], items[index][1]) for index in chunk])
            except (EOFError, OSError):
                todo.extendleft(reversed(chunk))  # nothing of it ran: not the pairs' fault
                fail(worker, _ERROR)
                return
            worker.chunk, worker.done = chunk, 0
            worker.progress_at = time.monotonic()

        def fail(worker: _Worker, code: int) -> None:
            if not worker.ready:  # died or hung before start-up finished: not the pair's fault
                self.broken = self.broken or (
                    "answer worker did not start in time"
                    if code == _TIMEOUT
                    else "answer worker exited during start-up"
                )
                return
            if worker.busy:
                codes[worker.chunk[worker.done]] = code
                todo.extendleft(reversed(worker.chunk[worker.done + 1 :]))
            worker.chunk, worker.done = [], 0
            self._replace(worker)

        while True:
            if self.broken:
                break
            for worker in list(self.workers):
                if not worker.busy and todo:
                    assign(worker)
            busy = [worker for worker in self.workers if worker.busy]
            if not busy:
                break
            now = time.monotonic()
            deadlines = [self._deadline(worker) for worker in busy]
            by_conn = {worker.conn: worker for worker in busy}
            ready = _wait_connections(list(by_conn), timeout=max(0.0, min(deadlines) - now))
            for conn in ready:
                worker = by_conn[conn]
                try:
                    while worker in self.workers and conn.poll():
                        self._handle(worker, conn.recv(), codes)
                except (EOFError, OSError):
                    fail(worker, _ERROR)
            now = time.monotonic()
            for worker in busy:
                if worker in self.workers and worker.busy and now >= self._deadline(worker):
                    fail(worker, _TIMEOUT)

        self.raise_if_broken()
        return [_ERROR if code is None else code for code in codes]

    def _deadline(self, worker: _Worker) -> float:
        if worker.ready:
            return worker.progress_at + self.hard_timeout
        return worker.started_at + self.startup_timeout


# ---------------------------------------------------------------------------------------------
# The checker
# ---------------------------------------------------------------------------------------------


class AnswerChecker:
    """Mathematical equivalence of a prediction to a gold answer (math-verify in workers).

    `timeout`: seconds one (gold, prediction) pair may take in math-verify; past it the pair is
    "not equivalent" and counted in `stats["timeouts"]` (a worker that does not stop is killed and
    replaced). `workers`: number of worker processes, started on first need (or by `start()`).
    `cache_size`: results kept (LRU); 0 disables every cache (results and the workers' parse
    cache). Usable from any thread (calls are serialized by a lock). Use as a context manager or
    call `close()`.
    """

    def __init__(
        self,
        timeout: float = 5.0,
        workers: int = 2,
        cache_size: int = 100_000,
        *,
        _soft_timeout: bool = True,
    ) -> None:
        self.timeout = float(timeout) if timeout and timeout > 0 else 5.0
        self.workers = max(1, int(workers))
        self.cache_size = max(0, int(cache_size))
        self._cache: OrderedDict[tuple[str, str], bool] = OrderedDict()
        self._lock = threading.RLock()
        self._stats = dict.fromkeys(
            (
                "calls",
                "cache_hits",
                "duplicates",
                "fast_path",
                "verified",
                "timeouts",
                "errors",
                "restarts",
            ),
            0,
        )
        self._pool = _Pool(
            self.workers,
            self.timeout,
            soft_timeout=_soft_timeout,
            parse_cache_size=4096 if self.cache_size else 0,
        )
        self._finalizer = weakref.finalize(self, self._pool.close)

    # -- public API -----------------------------------------------------------------------------

    def equivalent(self, gold: str, prediction: str | None) -> bool:
        """Whether `prediction` is mathematically equivalent to `gold` (gold first: the relation
        is not symmetric). None or empty prediction -> False. Never raises on odd input (only
        `DartHubError` when the worker processes cannot start at all)."""
        return self.equivalent_many([(gold, prediction)])[0]

    def equivalent_many(self, pairs: Sequence[tuple[str, str | None]]) -> list[bool]:
        """`equivalent` for each (gold, prediction), in order. Identical pairs are checked once;
        the rest is spread over the worker processes in chunks."""
        try:
            pairs = list(pairs)
        except Exception:
            return []
        results: list[bool] = [False] * len(pairs)
        with self._lock:
            pending: dict[tuple[str, str], list[int]] = {}
            to_verify: list[tuple[str, str]] = []
            gold_norms: dict[str, str] = {}
            stats = self._stats
            stats["calls"] += len(pairs)
            for index, pair in enumerate(pairs):
                try:
                    gold, pred = pair
                    if not isinstance(gold, str) or not isinstance(pred, str):
                        continue
                    norm_pred = normalize(pred)
                    if not norm_pred or not gold.strip():
                        continue
                    key = (gold, norm_pred)
                    waiting = pending.get(key)
                    if waiting is not None:
                        waiting.append(index)
                        stats["duplicates"] += 1
                        continue
                    cached = self._cache_get(key)
                    if cached is not None:
                        results[index] = cached
                        stats["cache_hits"] += 1
                        continue
                    norm_gold = gold_norms.get(gold)
                    if norm_gold is None:
                        norm_gold = gold_norms[gold] = normalize(gold)
                    quick = _quick_decision(norm_gold, norm_pred)
                    if quick is not None:
                        results[index] = quick
                        stats["fast_path"] += 1
                        self._cache_put(key, quick)
                        continue
                    pending[key] = [index]
                    to_verify.append((norm_gold, norm_pred))
                except Exception:
                    stats["errors"] += 1
            if to_verify:
                self._verify(pending, to_verify, results)
        return results

    def golds_verifiable(self, golds: Sequence[str]) -> dict[str, bool]:
        """For each gold answer: False when checking it exceeds the timeout (math-verify parsing
        or comparing it does not finish: nested powers, huge towers), True otherwise. Each gold
        is checked in the workers (no cache, no fast path) against itself, then against a plain
        number, so a pathological gold is found once, before any rollout waits on it."""
        result = {gold: True for gold in golds if isinstance(gold, str) and gold.strip()}
        with self._lock:
            for probe in (None, "1"):
                todo = [gold for gold, ok in result.items() if ok]
                if not todo:
                    break
                items = [(normalize(gold), normalize(probe or gold)) for gold in todo]
                try:
                    codes = self._pool.run(items)
                except DartHubError:
                    raise
                except Exception:
                    self._pool.reset()
                    continue
                for gold, code in zip(todo, codes, strict=True):
                    if code == _TIMEOUT:
                        result[gold] = False
                        self._stats["timeouts"] += 1
        return result

    def start(self) -> None:
        """Start the worker processes now and wait until they are ready (otherwise they start
        on first need). Useful before timing something."""
        with self._lock:
            self._pool.wait_ready()

    @property
    def stats(self) -> dict[str, int]:
        """Counters (pairs): calls; cache_hits (answered from the result cache); duplicates
        (repeats of a pair still being checked in the same call); fast_path (decided in this
        process without math-verify: equal normal forms, choice letters, text, plain numbers and
        closed forms); verified (decided by math-verify); timeouts; errors; plus restarts
        (workers killed and replaced). Timed-out and failed pairs are cached as False too, so a
        repeated pathological prediction costs its timeout once."""
        with self._lock:
            return {**self._stats, "restarts": self._pool.restarts}

    def close(self) -> None:
        """Stop the worker processes. The checker still answers afterwards, restarting them."""
        with self._lock:
            self._pool.close()

    def __enter__(self) -> AnswerChecker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------

    def _verify(
        self,
        pending: dict[tuple[str, str], list[int]],
        to_verify: list[tuple[str, str]],
        results: list[bool],
    ) -> None:
        try:
            codes = self._pool.run(to_verify)
        except DartHubError:
            raise  # the workers cannot run at all: answering False everywhere would be a lie
        except Exception:
            self._pool.reset()  # a bug of ours: never let it reach the caller
            codes = [_ERROR] * len(to_verify)
        except BaseException:
            self._pool.reset()  # interrupted: answers of this run may still be in the pipes
            raise
        stats = self._stats
        for (key, indices), code in zip(pending.items(), codes, strict=True):
            verdict = code == _TRUE
            if code in (_TRUE, _FALSE):
                stats["verified"] += 1
            elif code == _TIMEOUT:
                stats["timeouts"] += 1
            else:
                stats["errors"] += 1
            self._cache_put(key, verdict)
            for index in indices:
                results[index] = verdict

    def _cache_get(self, key: tuple[str, str]) -> bool | None:
        if not self.cache_size:
            return None
        value = self._cache.get(key)
        if value is not None:
            self._cache.move_to_end(key)
        return value

    def _cache_put(self, key: tuple[str, str], value: bool) -> None:
        if not self.cache_size:
            return
        self._cache[key] = value
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)


# ---------------------------------------------------------------------------------------------
# Shared instance
# ---------------------------------------------------------------------------------------------

_default: AnswerChecker | None = None
_default_lock = threading.Lock()


def default_checker() -> AnswerChecker:
    """A process-wide shared checker (created on first use, closed at exit)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = AnswerChecker()
            atexit.register(_default.close)
        return _default


def is_equivalent(gold: str, prediction: str | None) -> bool:
    """`default_checker().equivalent(gold, prediction)`."""
    return default_checker().equivalent(gold, prediction)
