"""Find the last `\\boxed{...}` / `\\fbox{...}` in a text, with nested braces."""

from __future__ import annotations

import re

_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*")


def last_boxed(text: str) -> str | None:
    """Content of the last well-formed \\boxed{...} or \\fbox{...}, or None.

    Braces nest (\\boxed{\\frac{1}{2}} -> \\frac{1}{2}); the form `\\boxed 5` (no braces) takes
    the following token. An unclosed box is ignored and the previous one is used.
    """
    starts = [m.end() for m in _BOX_START.finditer(text)]
    for start in reversed(starts):
        content = _braced_at(text, start)
        if content is not None:
            return content.strip()
    return None


def _braced_at(text: str, start: int) -> str | None:
    if start >= len(text):
        return None
    if text[start] != "{":
        match = re.match(r"[^\s$\\{}]+", text[start:])
        return match.group(0) if match else None
    depth = 0
    for index in range(start, len(text)):
        char = text[index]
        if char == "\\":
            continue
        if char == "{" and (index == 0 or text[index - 1] != "\\"):
            depth += 1
        elif char == "}" and (index == 0 or text[index - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return text[start + 1 : index]
    return None
