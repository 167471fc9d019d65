"""Split an expert solution into reasoning steps, reversibly.

Steps are the units DART probes: the student is asked to continue from every prefix
s_0..s_t, so a step should be a piece of reasoning, not a stray line.

The rule:

1. The solution is cut at *seams*: maximal runs of whitespace that contain at least two "\\n"
   characters, i.e. a line break, zero or more whitespace-only lines, and another line break
   (a blank line, written "\\n\\n", "\\n  \\n", "\\r\\n\\r\\n", ...). Leading and trailing
   whitespace of the solution is dropped; it is not a seam.
2. Paragraphs that open a display-math block ($$ or \\[), a LaTeX environment (\\begin{...})
   or a fenced code block (``` or ~~~ at the start of a line) that they do not close are joined
   with the following paragraphs up to the one that closes it; delimiters inside code blocks
   do not count, and "\\\\[" (a LaTeX line break) is not display math. A block that is
   never closed joins nothing: a stray delimiter must not swallow the rest of the solution.
3. Pieces shorter than `min_chars` characters are merged into the following piece (or, at the
   end, into the previous one), so lines like "So," or "Wait." do not become steps.

Guarantee (property-tested): every step is a slice of the solution with no leading or trailing
whitespace; the slices are non-empty, in order, do not overlap, and what lies between two
consecutive steps in the solution is exactly one seam. Hence

    join_steps(split_steps(s)) == s.strip() with each seam between two steps replaced by "\\n\\n"

(seams inside a step are kept as they are). In particular the two are equal after collapsing
every whitespace run to one space, and equal outright when every seam of `s` is "\\n\\n" and `s`
has no leading or trailing whitespace. Every step has at least `min_chars` characters unless the
whole solution is shorter than that (then it is a single step). A solution without blank lines
is one step; a whitespace-only solution has no steps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# 30 characters: the interjections long-CoT traces put on their own paragraph ("So,", "Wait.",
# "Hmm, let me check.", "$$", "\\boxed{7}") are shorter, while a sentence that moves the
# reasoning on ("Then $x^2 = 9$, so $x = 3$.") is about that long or longer. Every step costs
# N_sim rollouts per problem in DART's probing, so steps without content only cost time.
DEFAULT_MIN_STEP_CHARS = 30

SEPARATOR = "\n\n"

_WHITESPACE = re.compile(r"\s+")
# Delimiters of blocks that may span blank lines. Fences count only at the start of a line;
# "\\[" (a LaTeX line break with spacing, as in \\[2pt]) is not display math.
_DELIMITER = re.compile(
    r"(?P<fence>^[ \t]*(?:```|~~~))"
    r"|(?P<dollars>(?<!\\)\$\$)"
    r"|(?P<open>(?<!\\)\\\[|\\begin\s*\{)"
    r"|(?P<close>(?<!\\)\\\]|\\end\s*\{)",
    re.MULTILINE,
)


@dataclass(frozen=True)
class _State:
    """Which blocks are open after reading some paragraphs."""

    fence: str = ""  # the open fence's marker (``` or ~~~), "" outside code
    dollars: bool = False  # inside $$ ... $$
    depth: int = 0  # open \[ and \begin{...} not yet closed

    @property
    def is_open(self) -> bool:
        return bool(self.fence or self.dollars or self.depth > 0)

    def after(self, tokens: list[tuple[str, str]]) -> _State:
        fence, dollars, depth = self.fence, self.dollars, self.depth
        for kind, token in tokens:
            if fence:  # inside code, only the same fence means anything
                if kind == "fence" and token.strip() == fence:
                    fence = ""
            elif kind == "fence":
                fence = token.strip()
            elif kind == "dollars":
                dollars = not dollars
            elif kind == "open":
                depth += 1
            else:
                depth = max(0, depth - 1)
        return _State(fence, dollars, depth)


def _tokens(text: str) -> list[tuple[str, str]]:
    return [(m.lastgroup or "", m.group()) for m in _DELIMITER.finditer(text)]


def _paragraphs(text: str) -> list[tuple[int, int]]:
    """(start, end) of the paragraphs between seams, each without outer whitespace."""
    spans: list[tuple[int, int]] = []
    start = None  # start of the current paragraph
    last_end = 0  # end of the last non-whitespace character seen
    position = 0
    for match in _WHITESPACE.finditer(text):
        if match.start() > position:  # non-whitespace text before this run
            if start is None:
                start = position
            last_end = match.start()
        if match.group().count("\n") >= 2 and start is not None:
            spans.append((start, last_end))
            start = None
        position = match.end()
    if position < len(text):
        if start is None:
            start = position
        last_end = len(text)
    if start is not None:
        spans.append((start, last_end))
    return spans


def _blocks(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Join paragraphs that open a display-math / environment / code block with the rest of it."""
    tokens = [_tokens(text[start:end]) for start, end in spans]
    blocks: list[tuple[int, int]] = []
    index = 0
    while index < len(spans):
        end_index = index
        state = _State().after(tokens[index])
        if state.is_open:
            for later in range(index + 1, len(spans)):
                state = state.after(tokens[later])
                if not state.is_open:
                    end_index = later
                    break
            # Never closed: a stray delimiter, so the paragraph stays on its own.
        blocks.append((spans[index][0], spans[end_index][1]))
        index = end_index + 1
    return blocks


def step_spans(solution: str, min_chars: int = DEFAULT_MIN_STEP_CHARS) -> list[tuple[int, int]]:
    """(start, end) offsets of the steps in `solution`: `split_steps` without copying."""
    if min_chars < 0:
        raise ValueError(f"min_chars must be >= 0, got {min_chars}")
    blocks = _blocks(solution, _paragraphs(solution))
    steps: list[tuple[int, int]] = []
    pending: int | None = None  # start of short pieces waiting for the next one
    for start, end in blocks:
        begin = start if pending is None else pending
        if end - begin >= min_chars:
            steps.append((begin, end))
            pending = None
        else:
            pending = begin
    if pending is not None:
        if steps:
            steps[-1] = (steps[-1][0], blocks[-1][1])
        else:
            steps.append((pending, blocks[-1][1]))
    return steps


def split_steps(solution: str, min_chars: int = DEFAULT_MIN_STEP_CHARS) -> list[str]:
    """The steps of an expert solution (see the module docstring for the exact rule)."""
    return [solution[start:end] for start, end in step_spans(solution, min_chars)]


def join_steps(steps: list[str]) -> str:
    """Steps back into one text, separated by a blank line."""
    return SEPARATOR.join(steps)


def prefix_text(steps: list[str], t: int) -> str:
    """The expert prefix s_0..s_t (step t included), as DART conditions on it."""
    if t < 0:
        raise ValueError(f"step index must be >= 0, got {t}")
    return join_steps(steps[: t + 1])
