"""A test double for the Engine protocol whose answers depend on the prompt it is given.

Tests describe a student as a function `respond(request, sample_index) -> text` (or
`(text, finish_reason)` to script a continuation cut off by the token budget: "length"); the
engine records every call so tests can assert on batching and prompts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from dart_hub.engines.base import Completion, GenerationRequest

Respond = Callable[[GenerationRequest, int], str]


class ScriptedEngine:
    name = "scripted"

    def __init__(self, respond: Respond, model_id: str = "test/scripted-student"):
        self.respond = respond
        self.model_id = model_id
        self.calls: list[list[GenerationRequest]] = []

    def generate(self, requests: Sequence[GenerationRequest], progress=None) -> list[list[Completion]]:
        self.calls.append(list(requests))
        out = []
        for request in requests:
            answers = [self.respond(request, request.sample_offset + i) for i in range(request.n)]
            answers = [a if isinstance(a, tuple) else (a, "stop") for a in answers]
            prompt = request.prompt or " ".join(content for _, content in request.messages or ())
            out.append(
                [
                    Completion(text=t, finish_reason=why, prompt_tokens=len(prompt.split()), completion_tokens=len(t.split()))
                    for t, why in answers
                ]
            )
            if progress:
                progress(request.n)
        return out

    def describe(self) -> dict:
        return {"engine": self.name, "model": self.model_id}

    def close(self) -> None:
        pass


def user_text(request: GenerationRequest) -> str:
    return [content for role, content in request.messages or () if role == "user"][-1]


def reasoning_of(request: GenerationRequest) -> str:
    """The expert prefix embedded in a simulation / exploration prompt ('' for solve prompts)."""
    text = user_text(request)
    for marker in ("Partial solution:\n", "Reasoning so far (read-only):\n"):
        if marker in text:
            return text.split(marker, 1)[1]
    return ""


def steps_in_prompt(request: GenerationRequest) -> int:
    """How many expert steps the prompt carries (tests write steps as 'Step k: ...')."""
    return len(re.findall(r"^Step \d+:", reasoning_of(request), flags=re.MULTILINE))


def kind_of(request: GenerationRequest) -> str:
    text = user_text(request)
    if "Partial solution:\n" in text:
        return "simulation"
    if "Reasoning so far (read-only):\n" in text:
        return "exploration"
    return "solve"
