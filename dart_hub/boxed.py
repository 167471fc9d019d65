"""Find the last `\\boxed{...}` / `\\fbox{...}` in a text, with nested braces."""

from __future__ import annotations

import re

# `(?![A-Za-z])`: `\boxedfoo` is another command, not a box.
_BOX_START = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])\s*")
_BARE_TOKEN = re.compile(r"[^\s$\\{}]+")


def last_boxed(text: str) -> str | None:
    """Content of the last well-formed \\boxed{...} or \\fbox{...}, or None.

    Braces nest (\\boxed{\\frac{1}{2}} -> \\frac{1}{2}); escaped braces (\\{, \\}) do not count,
    while a LaTeX line break `\\\\` followed by a brace does. The form `\\boxed 5` (no braces)
    takes the following token. An unclosed box is ignored and the previous one is used.
    An empty box gives "" (callers decide what that means).
    """
    if not isinstance(text, str):
        return None
    starts = [m.end() for m in _BOX_START.finditer(text)]
    for start in reversed(starts):
        content = _braced_at(text, start)
        if content is not None:
            return content.strip()
    return None


def all_boxed(text: str) -> list[str]:
    """Contents of every well-formed, non-empty \\boxed{...} / \\fbox{...} in `text`, in order."""
    if not isinstance(text, str):
        return []
    found = []
    for match in _BOX_START.finditer(text):
        content = _braced_at(text, match.end())
        if content is not None and content.strip():
            found.append(content.strip())
    return found


def braced_group(text: str, start: int) -> str | None:
    """Content of the `{...}` group opening at `text[start]`, or None if unclosed / no brace."""
    if start >= len(text) or text[start] != "{":
        return None
    return _braced_at(text, start)


def _braced_at(text: str, start: int) -> str | None:
    if start >= len(text):
        return None
    if text[start] != "{":
        match = _BARE_TOKEN.match(text, start)
        return match.group(0) if match else None
    depth = 0
    index = start
    end = len(text)
    while index < end:
        char = text[index]
        if char == "\\":
            index += 2  # skip the escaped character: \{ \} and the pair \\ alike
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[start + 1 : index]
        index += 1
    return None
