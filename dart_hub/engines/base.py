"""The engine boundary: everything that generates text goes through `Engine.generate`.

One call receives a whole chunk of requests so that engines can batch (transformers), share
prefixes (vLLM prefix caching) or fan out (OpenAI-compatible clusters). Scheduling decisions
(which prefixes, how many samples) belong to dart_hub.adaptation, never to an engine.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class GenerationRequest:
    """One prompt, sampled `n` times.

    Exactly one of `messages` (chat messages, rendered with the model's chat template and a
    generation prompt) or `prompt` (raw text, no template) is set.
    `seed` makes the request's samples reproducible: same request, same seed, same engine and
    hardware -> same texts, whatever else is in the call.
    `sample_offset`: the request returns samples sample_offset .. sample_offset + n - 1 of its
    seed's sample stream, so (seed, n=4) gives the same texts as (seed, n=2) followed by
    (seed, n=2, sample_offset=2). Adaptive probing draws a prefix's rollouts in rounds this way
    and still gets exactly the rollouts a full scan would get.
    """

    messages: tuple[tuple[str, str], ...] | None = None  # ((role, content), ...)
    prompt: str | None = None
    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int = 0
    stop: tuple[str, ...] = ()
    sample_offset: int = 0

    def __post_init__(self) -> None:
        if (self.messages is None) == (self.prompt is None):
            raise ValueError("GenerationRequest needs exactly one of `messages` or `prompt`")
        if self.n < 1:
            raise ValueError("GenerationRequest.n must be >= 1")
        if self.sample_offset < 0:
            raise ValueError("GenerationRequest.sample_offset must be >= 0")

    @staticmethod
    def chat(messages: Sequence[dict[str, str]] | Sequence[tuple[str, str]], **kwargs: Any) -> GenerationRequest:
        """Build a chat request from [{"role":..., "content":...}] or [(role, content)]."""
        pairs = tuple(
            (m["role"], m["content"]) if isinstance(m, dict) else (m[0], m[1]) for m in messages
        )
        return GenerationRequest(messages=pairs, **kwargs)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages or ()]


@dataclass(frozen=True)
class Completion:
    """One sample: the generated text (stop string excluded), why it ended, token counts."""

    text: str
    finish_reason: str  # "stop" (EOS or stop string) or "length" (hit max_tokens)
    prompt_tokens: int
    completion_tokens: int


ProgressCallback = Callable[[int], None]  # called with the number of sequences just finished


@runtime_checkable
class Engine(Protocol):
    """A batched text generator for one model."""

    name: str  # "transformers", "vllm", "openai", "scripted", ...
    model_id: str

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressCallback | None = None
    ) -> list[list[Completion]]:
        """Return, for each request in order, its `n` completions in order."""
        ...

    def describe(self) -> dict[str, Any]:
        """Engine name, model, dtype, device, library versions: written into cards."""
        ...

    def close(self) -> None:
        """Release the model / processes / connections."""
        ...
