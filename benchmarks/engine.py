"""dart-hub's VLLMEngine.generate vs a raw `vllm.LLM.generate` on the DART probe workload.

    VLLM_CPU_KVCACHE_SPACE=1 /work/vllm-venv/bin/python benchmarks/engine.py
    ... benchmarks/engine.py --model DIR --traces 8 --steps 12 --repeats 7 --json

Workload (the simulation stage of DART, in dart-hub's order): `--traces` expert solutions of
`--steps` paragraphs each (about 120 tokens a paragraph with the tiny tokenizer), every prefix
sampled `--samples` times at temperature `--temperature` for up to `--max-tokens` tokens,
seeded, all requests in one call. One engine start-up: the raw baseline runs on the
VLLMEngine's own `vllm.LLM` (`engine._llm`), with the same prompt token ids (dart-hub's
`prompt_ids`, i.e. the chat template applied by the same tokenizer) and equivalent
`SamplingParams` built here (n, temperature, top_p=1, max_tokens, seed,
skip_special_tokens=True).

Each repeat runs both calls, in alternating order, each on a cold prefix cache
(`LLM.reset_prefix_cache()` before it), and reports completion tokens per second of the whole
call (prefill included; wall clock around `generate`, which includes, for dart-hub, rendering
and tokenizing the prompts and building the Completion objects). Overhead: median dart-hub
time / median raw time - 1, and the median of the per-repeat ratios (less sensitive to load
that changes between repeats). The prefix-cache hit rate is the share of prompt tokens the
dart-hub call served from the cache (vLLM's counters, cold cache at the start of the call;
every sample counts its prompt once, so with n samples at least (n - 1) / n of the tokens hit);
`prefix_cache_hit_rate_one_sample_per_prefix` is the same call with n = 1: what consecutive
prefixes alone share. `dart_hub_prompt_prep_s` is the time dart-hub spends rendering and
tokenizing the call's prompts (part of its overhead; the raw call gets the ids ready-made).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
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


def probe_requests(traces: int, steps: int, samples: int, temperature: float, max_tokens: int) -> list[GenerationRequest]:
    """Every prefix of every trace, the prefixes of one trace next to each other."""
    requests = []
    for trace in range(traces):
        paragraphs = solution(steps, seed=200 + trace)
        for t in range(steps):
            requests.append(
                GenerationRequest.chat(
                    [("user", f"Problem {trace}. {QUESTION}"), ("assistant", "\n\n".join(paragraphs[: t + 1]))],
                    n=samples, temperature=temperature, max_tokens=max_tokens, seed=1000 * trace + t,
                )  # fmt: skip
            )
    return requests


def raw_inputs(engine, requests: list[GenerationRequest]):
    from vllm import SamplingParams

    prompts = [{"prompt_token_ids": engine.prompt_ids(r)} for r in requests]
    params = [
        SamplingParams(
            n=r.n, temperature=r.temperature, top_p=1.0, max_tokens=r.max_tokens, seed=r.seed,
            stop=list(r.stop) or None, skip_special_tokens=True,
        )  # fmt: skip
        for r in requests
    ]
    return prompts, params


def run_raw(llm, prompts, params) -> tuple[float, int, list[list[str]]]:
    llm.reset_prefix_cache()
    start = time.perf_counter()
    outputs = llm.generate(prompts, params, use_tqdm=False)
    seconds = time.perf_counter() - start
    tokens = sum(len(c.token_ids) for o in outputs for c in o.outputs)
    texts = [[c.text for c in sorted(o.outputs, key=lambda c: c.index)] for o in outputs]
    return seconds, tokens, texts


def run_dart_hub(engine, requests) -> tuple[float, int, list[list[str]], float]:
    engine._llm.reset_prefix_cache()
    before = engine.prefix_cache_tokens
    start = time.perf_counter()
    out = engine.generate(requests)
    seconds = time.perf_counter() - start
    after = engine.prefix_cache_tokens
    queries, hits = after["queries"] - before["queries"], after["hits"] - before["hits"]
    tokens = sum(c.completion_tokens for row in out for c in row)
    texts = [[c.text for c in row] for row in out]
    return seconds, tokens, texts, hits / queries if queries else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model folder or Hub id (default: the tiny test model, built here)")
    parser.add_argument("--traces", type=int, default=4)
    parser.add_argument("--steps", type=int, default=10, help="paragraphs per trace")
    parser.add_argument("--samples", type=int, default=4, help="samples per prefix (N_sim)")
    parser.add_argument("--temperature", type=float, default=0.1)
    parser.add_argument("--max-tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--max-model-len", type=int, default=2048)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args()

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from dart_hub.engines.vllm import VLLMEngine

    with tempfile.TemporaryDirectory() as tmp:
        model = args.model or str(build_tiny_model(Path(tmp) / "tiny-qwen2", seed=0))
        t0 = time.perf_counter()
        engine = VLLMEngine(model, max_model_len=args.max_model_len, max_num_seqs=64, enforce_eager=True)
        startup = time.perf_counter() - t0
        try:
            requests = probe_requests(args.traces, args.steps, args.samples, args.temperature, args.max_tokens)
            prompts, params = raw_inputs(engine, requests)
            prompt_tokens = sum(len(p["prompt_token_ids"]) for p in prompts)
            llm = engine._llm
            run_raw(llm, prompts, params)  # warm-up (first-call allocations), not counted
            raw_s, hub_s, rates, same = [], [], [], []
            tokens = {}
            for i in range(args.repeats):
                order = ("raw", "hub") if i % 2 == 0 else ("hub", "raw")
                texts = {}
                for which in order:
                    if which == "raw":
                        seconds, tokens["raw"], texts["raw"] = run_raw(llm, prompts, params)
                        raw_s.append(seconds)
                    else:
                        seconds, tokens["hub"], texts["hub"], rate = run_dart_hub(engine, requests)
                        hub_s.append(seconds)
                        rates.append(rate)
                same.append(texts["raw"] == texts["hub"])
                print(
                    f"repeat {i + 1}/{args.repeats}: raw {raw_s[-1]:.2f} s, dart-hub {hub_s[-1]:.2f} s, "
                    f"hit rate {rates[-1]:.3f}, same texts {same[-1]}",
                    file=sys.stderr,
                )
            # What consecutive prefixes alone share: one sample per prefix (with n samples, the
            # n - 1 later samples of a prompt hit the cache whatever the order).
            single = [replace(r, n=1) for r in requests]
            *_, single_rate = run_dart_hub(engine, single)
            t0 = time.perf_counter()
            for r in requests:
                engine.prompt_ids(r)
            prep_s = time.perf_counter() - t0
        finally:
            engine.close()

    raw_med, hub_med = statistics.median(raw_s), statistics.median(hub_s)
    result = {
        "workload": {
            "traces": args.traces, "steps": args.steps, "requests": len(requests), "samples": args.samples,
            "temperature": args.temperature, "max_tokens": args.max_tokens, "prompt_tokens": prompt_tokens,
        },  # fmt: skip
        "completion_tokens": tokens,
        "raw_seconds_median": round(raw_med, 3),
        "dart_hub_seconds_median": round(hub_med, 3),
        "raw_tokens_per_s": round(tokens["raw"] / raw_med, 1),
        "dart_hub_tokens_per_s": round(tokens["hub"] / hub_med, 1),
        "dart_hub_overhead_pct": round(100 * (hub_med / raw_med - 1), 1),
        # Median of the per-repeat ratios: less sensitive to load that varies between repeats.
        "dart_hub_overhead_pct_paired": round(
            100 * statistics.median(h / r - 1 for h, r in zip(hub_s, raw_s, strict=True)), 1
        ),
        "prefix_cache_hit_rate_median": round(statistics.median(rates), 4),
        "prefix_cache_hit_rate_one_sample_per_prefix": round(single_rate, 4),
        "dart_hub_prompt_prep_s": round(prep_s, 3),
        "same_texts_every_repeat": all(same),
        "repeats": args.repeats,
        "raw_seconds": [round(s, 3) for s in raw_s],
        "dart_hub_seconds": [round(s, 3) for s in hub_s],
        "engine_startup_s": round(startup, 1),
        "vllm": engine.vllm_version,
        "device": engine.device,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}",
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key}: {value}")


if __name__ == "__main__":
    main()
