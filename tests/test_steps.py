"""Step segmentation: the reversibility guarantee (property tests) and the merging rules."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dart_hub.steps import (
    DEFAULT_MIN_STEP_CHARS,
    join_steps,
    prefix_text,
    split_steps,
    step_spans,
)

# Pieces that exercise every rule: words, short interjections, block delimiters (balanced or
# not), LaTeX line breaks that are not display math, and all sorts of whitespace.
_PIECES = st.sampled_from(
    [
        "a",
        "word",
        "So,",
        "Wait.",
        "x = 1",
        "$x$",
        "$$",
        "\\[",
        "\\]",
        "\\\\[2pt]",
        "\\begin{align}",
        "\\end{align}",
        "```",
        "~~~",
        "\\boxed{5}",
        "{",
        "}",
        "\\",
        " ",
        "  ",
        "\t",
        "\n",
        "\n\n",
        "\n \n",
        "\r\n",
        "\r\n\r\n",
        "\n\n\n",
        "\x0b",
        "\x0c",
        "\u00a0",
        "\u2028",
        "\x85",
        "é",
    ]
)
texts = st.lists(_PIECES, max_size=60).map("".join) | st.text(max_size=200)
min_chars = st.integers(min_value=0, max_value=80)

_WS = re.compile(r"\s+")


def _collapse(text: str) -> str:
    return " ".join(text.split())


@settings(max_examples=400, deadline=None)
@given(texts, min_chars)
def test_join_equals_source_up_to_whitespace(text: str, minimum: int) -> None:
    assert _collapse(join_steps(split_steps(text, minimum))) == _collapse(text)


@settings(max_examples=400, deadline=None)
@given(texts, min_chars)
def test_steps_are_ordered_slices_separated_by_seams(text: str, minimum: int) -> None:
    spans = step_spans(text, minimum)
    steps = split_steps(text, minimum)
    assert steps == [text[a:b] for a, b in spans]
    boundaries = [0] + [x for span in spans for x in span] + [len(text)]
    gaps = [text[boundaries[i] : boundaries[i + 1]] for i in range(0, len(boundaries), 2)]
    # Before the first step and after the last: only whitespace.
    assert gaps[0].strip() == "" and gaps[-1].strip() == ""
    # Between two steps: exactly one seam, a whitespace run holding a blank line.
    for gap in gaps[1:-1]:
        assert _WS.fullmatch(gap), repr(gap)
        assert gap.count("\n") >= 2, repr(gap)
    # Hence the documented equality: s.strip() with each seam between steps replaced by \n\n.
    if spans:
        assert text[spans[0][0] : spans[-1][1]] == text.strip()


@settings(max_examples=400, deadline=None)
@given(texts, min_chars)
def test_no_empty_steps_and_minimum_length(text: str, minimum: int) -> None:
    steps = split_steps(text, minimum)
    for step in steps:
        assert step and step == step.strip()
    if text.strip() == "":
        assert steps == []
    elif len(steps) == 1:
        assert steps[0] == text.strip()
    if len(steps) > 1 or (steps and len(text.strip()) >= minimum):
        assert all(len(step) >= minimum for step in steps)


_paragraph = (
    st.lists(st.sampled_from([*"abcxyz =+$\\[]{}`,.", "\n", "$$", "\\[", "```"]), max_size=40)
    .map(lambda pieces: re.sub(r"\n\s*\n", "\n", "".join(pieces)).strip())
    .filter(bool)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_paragraph, min_size=1, max_size=12), min_chars)
def test_exact_round_trip_when_seams_are_blank_lines(paragraphs: list[str], minimum: int) -> None:
    text = "\n\n".join(paragraphs)
    assert join_steps(split_steps(text, minimum)) == text


@given(st.text(max_size=200).filter(lambda t: t.count("\n") < 2 and t.strip()), min_chars)
def test_text_without_blank_lines_is_one_step(text: str, minimum: int) -> None:
    assert split_steps(text, minimum) == [text.strip()]


def test_paragraphs_become_steps_when_long_enough() -> None:
    text = "First paragraph of reasoning.\n\nSecond paragraph.\n \t\nThird one."
    assert split_steps(text, 0) == [
        "First paragraph of reasoning.",
        "Second paragraph.",
        "Third one.",
    ]
    assert split_steps(text, 0) == split_steps("\n\n" + text + "\n\n  ", 0)


def test_short_fragments_merge_into_the_next_step() -> None:
    text = "We first compute the sum of all terms.\n\nSo,\n\nthe total is 45 and we divide it by 5.\n\n\\boxed{9}"
    assert split_steps(text, 20) == [
        "We first compute the sum of all terms.",
        "So,\n\nthe total is 45 and we divide it by 5.\n\n\\boxed{9}",
    ]


def test_short_last_fragment_merges_into_the_previous_step() -> None:
    text = "The product of the two numbers is nine.\n\n\\boxed{9}"
    assert split_steps(text, 20) == [text]


def test_whole_text_shorter_than_minimum_is_one_step() -> None:
    assert split_steps("So,\n\nx=1", 30) == ["So,\n\nx=1"]
    assert split_steps("  \n\n \t ", 30) == []
    assert split_steps("", 0) == []


def test_display_math_spanning_blank_lines_stays_together() -> None:
    dollars = (
        "Now expand the square carefully.\n\n$$\na^2 + 2ab\n\n+ b^2\n$$\n\nThat is the identity."
    )
    assert split_steps(dollars, 0) == [
        "Now expand the square carefully.",
        "$$\na^2 + 2ab\n\n+ b^2\n$$",
        "That is the identity.",
    ]
    brackets = "Start.\n\n\\[\nx = 1\n\n\\]\n\nEnd."
    assert split_steps(brackets, 0) == ["Start.", "\\[\nx = 1\n\n\\]", "End."]
    env = "Start.\n\n\\begin{align}\nx &= 1 \\\\[2pt]\n\ny &= 2\n\\end{align}\n\nEnd."
    assert split_steps(env, 0) == [
        "Start.",
        "\\begin{align}\nx &= 1 \\\\[2pt]\n\ny &= 2\n\\end{align}",
        "End.",
    ]


def test_code_fences_spanning_blank_lines_stay_together() -> None:
    text = "Check it in Python:\n\n```python\nx = 1\n\nprint(x)  # $$ here is code\n```\n\nDone."
    assert split_steps(text, 0) == [
        "Check it in Python:",
        "```python\nx = 1\n\nprint(x)  # $$ here is code\n```",
        "Done.",
    ]


def test_math_delimiters_inside_code_are_ignored() -> None:
    closed = "```\nprint('$$')\n```\n\nNext paragraph.\n\nLast one."
    assert split_steps(closed, 0) == ["```\nprint('$$')\n```", "Next paragraph.", "Last one."]
    spanning = "```python\n\nx = '$$ \\\\['\n\n```\n\nDone.\n\nEnd."
    assert split_steps(spanning, 0) == ["```python\n\nx = '$$ \\\\['\n\n```", "Done.", "End."]
    # Another fence marker inside a code block does not close it.
    tildes = "~~~\n\n```\n\n~~~\n\nAfter."
    assert split_steps(tildes, 0) == ["~~~\n\n```\n\n~~~", "After."]


def test_unclosed_block_does_not_swallow_the_rest() -> None:
    text = "A lone $$ opens nothing.\n\nSecond.\n\nThird."
    assert split_steps(text, 0) == ["A lone $$ opens nothing.", "Second.", "Third."]


def test_latex_line_break_with_spacing_is_not_display_math() -> None:
    text = "a \\\\[4pt] b\n\nc"
    assert split_steps(text, 0) == ["a \\\\[4pt] b", "c"]


def test_crlf_blank_lines_are_seams() -> None:
    assert split_steps("one line here\r\n\r\nanother line", 0) == ["one line here", "another line"]
    # A single line break, whatever its form, is not a seam.
    assert split_steps("one\r\ntwo", 0) == ["one\r\ntwo"]


def test_prefix_text_includes_step_t() -> None:
    steps = ["s0", "s1", "s2"]
    assert prefix_text(steps, 0) == "s0"
    assert prefix_text(steps, 1) == "s0\n\ns1"
    assert prefix_text(steps, 5) == "s0\n\ns1\n\ns2"
    with pytest.raises(ValueError):
        prefix_text(steps, -1)


def test_negative_minimum_is_rejected() -> None:
    with pytest.raises(ValueError):
        split_steps("text", -1)


def test_default_minimum_merges_interjections_but_keeps_sentences() -> None:
    assert 20 <= DEFAULT_MIN_STEP_CHARS <= 40
    text = (
        "Let me set up the equation for the unknown width.\n\nWait.\n\n"
        "Then $x^2 = 9$, so $x = 3$ or $x = -3$.\n\n"
        "Only the positive root is a length."
    )
    assert split_steps(text) == [
        "Let me set up the equation for the unknown width.",
        "Wait.\n\nThen $x^2 = 9$, so $x = 3$ or $x = -3$.",
        "Only the positive root is a length.",
    ]
