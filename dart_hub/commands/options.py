"""Click options shared by the commands that read a dataset."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from dart_hub.engines.factory import ENGINES
from dart_hub.sources import PRESETS

_SOURCE_OPTIONS = [
    click.option(
        "--split",
        default="train",
        show_default=True,
        help="Split to read. Local files are the 'train' split unless their file names say otherwise.",
    ),
    click.option(
        "--revision",
        default=None,
        help="Hub branch, tag or commit sha (Hub datasets only). Default: the main branch; the "
        "commit it resolves to is recorded.",
    ),
    click.option("--config", "dataset_config", default=None, help="Hub dataset configuration (subset) name."),
    click.option(
        "--preset",
        type=click.Choice(sorted(PRESETS)),
        default=None,
        help="Read the dataset with a preset's column layout, e.g. a Hub mirror or a local copy of LIMO.",
    ),
    click.option(
        "--question-column",
        default=None,
        metavar="NAME",
        help="Column holding the problem statement. [default: the preset's, else 'question']",
    ),
    click.option(
        "--solution-column",
        default=None,
        metavar="NAME",
        help="Column holding the expert solution. [default: the preset's, else 'solution']",
    ),
    click.option(
        "--answer-column",
        default=None,
        metavar="NAME",
        help="Column holding the gold answer; --answer-column '' takes it from the solution's last "
        "\\boxed{} instead. [default: the preset's, else 'answer' when the data has it]",
    ),
]


def source_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Add --split/--revision/--config/--preset/--*-column to a command."""
    for decorator in reversed(_SOURCE_OPTIONS):
        function = decorator(function)
    return function


_ENGINE_OPTIONS = [
    click.option("--engine", type=click.Choice(ENGINES), default="auto", show_default=True, help="Generation engine (auto: vllm with a GPU when installed, else transformers)."),
    click.option("--dtype", default="auto", show_default=True, help="Model dtype: auto, float16 (the paper's), bfloat16, float32."),
    click.option("--device", default="auto", show_default=True, help="transformers device: auto, cpu, cuda, cuda:1 ..."),
    click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True, help="Sequences per forward batch (transformers engine)."),
    click.option("--tensor-parallel-size", type=click.IntRange(min=1), default=None, help="GPUs per vLLM engine (engine vllm) [default: 1]."),
    click.option("--data-parallel-size", type=click.IntRange(min=1), default=None, help="Independent vLLM engine processes, one per GPU group, for small students (engine vllm) [default: 1]."),
    click.option("--gpu-memory-utilization", type=click.FloatRange(0, 1, min_open=True), default=None, help="Share of GPU memory vLLM may use (engine vllm) [default: 0.9]."),
    click.option("--max-num-seqs", type=click.IntRange(min=1), default=None, help="Max concurrent sequences per vLLM engine (engine vllm) [default: 512, the paper's]."),
    click.option("--max-model-len", type=click.IntRange(min=1), default=None, help="Max context length (prompt + generation): of the vLLM engine (engine vllm); of the server (engine openai) [default: the model's, or the server's /v1/models max_model_len]. Longer problems are skipped as too_long."),
    click.option("--base-url", default=None, help="OpenAI-compatible server URL, e.g. http://router:30000/v1 (engine openai)."),
    click.option("--concurrency", type=click.IntRange(min=1), default=256, show_default=True, help="Samples in flight at once, and HTTP connections kept open (engine openai). Throughput = samples in flight / seconds per answer: raise it to what the servers can run at once."),
    click.option("--sample-batching", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True, help="engine openai: send a request's N samples as one request (the prompt once) instead of N seeded requests. auto: on for vLLM servers (/v1/models says owned_by vllm), which seed sample i with seed + i, so the texts are the same either way."),
    click.option("--max-retries", type=click.IntRange(min=0), default=None, help="Retries of a failed HTTP request, with backoff and Retry-After (engine openai) [default: 5]."),
    click.option("--request-timeout", type=click.FloatRange(min=0, min_open=True), default=None, metavar="SECONDS", help="Seconds one generation request may take before it is retried (engine openai) [default: 120 + max_tokens/20, about 15 min at 16k tokens]."),
]


def engine_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """--engine and the options of the transformers / vLLM / OpenAI-compatible engines."""
    for decorator in reversed(_ENGINE_OPTIONS):
        function = decorator(function)
    return function
