"""A first check of a GPU node, in at most about 8 minutes on one GPU, with no download.

    python benchmarks/gpu_smoke.py --output gpu-smoke.json

What it runs (every model has random weights, built here from the real Qwen2.5 configurations
written below, with a small local byte-level tokenizer; nothing is downloaded):

1. vLLM through dart-hub's engine (dart_hub.engines.vllm) on DART-shaped probe prompts: the
   simulation prompt of `adapt` for 32 questions x 8 growing solution prefixes x 4 samples
   (temperature 0.1, 256 new tokens), for the 0.5B and the 3B configuration: generated tokens
   per second and the prefix-cache hit rate;
2. `dart-hub train` through `accelerate launch` with the shipped DeepSpeed ZeRO-3 config
   (configs/accelerate/deepspeed_zero3.yaml, one process): SFT steps on rows of 16,384 tokens,
   a checkpoint save, then the selection path (release of the training state, validation with
   the default engine, export of best/): seconds per step, peak GPU memory, selection seconds.
   The 3B configuration on a card with at least 120 GB (ZeRO-3 does not shard over one process:
   ~76 GB by docs/training.md's arithmetic), else 0.5B; `--sft-model` chooses.

The result is one JSON object (stdout, and --output). Random weights generate random text: the
throughput is that of a real model of that shape only as far as the lengths match (the runs
stop at max_tokens or at a random end-of-turn). On a machine where torch sees no GPU it stops
with one line and exit code 2. `--help` works anywhere (nothing heavy is imported for it).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# config.json of Qwen/Qwen2.5-0.5B-Instruct and Qwen/Qwen2.5-3B-Instruct (the Hub, Sept. 2024 revisions).
QWEN_COMMON = {
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu", "attention_dropout": 0.0,
    "initializer_range": 0.02, "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "sliding_window": 32768, "use_sliding_window": False, "use_cache": True, "vocab_size": 151936,
    "tie_word_embeddings": True, "torch_dtype": "bfloat16", "bos_token_id": 151643, "eos_token_id": 151645,
}  # fmt: skip
CONFIGS = {
    "0.5b": {**QWEN_COMMON, "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
             "num_attention_heads": 14, "num_key_value_heads": 2, "max_window_layers": 21},
    "3b": {**QWEN_COMMON, "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
           "num_attention_heads": 16, "num_key_value_heads": 2, "max_window_layers": 70},
}  # fmt: skip
SFT_TOKENS = 16384


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter, epilog="Figures: docs/performance.md.")
    parser.add_argument("--output", type=Path, default=None, help="Also write the JSON result here.")
    parser.add_argument("--work-dir", type=Path, default=None, help="Where the random models and the training run go [a temporary folder].")
    parser.add_argument("--sft-model", choices=["auto", "0.5b", "3b"], default="auto", help="Configuration of the SFT step [auto: 3b on >= 120 GB, else 0.5b].")
    parser.add_argument("--sft-steps", type=int, default=2, help="SFT steps (rows of 16,384 tokens, batch 1) [2].")
    parser.add_argument("--skip-vllm", action="store_true", help="Skip the vLLM throughput part.")
    parser.add_argument("--skip-train", action="store_true", help="Skip the SFT / selection part.")
    parser.add_argument("--questions", type=int, default=32, help="Probe questions per model [32].")
    return parser.parse_args(argv)


def require_gpu() -> dict:
    """One line and exit 2 without a GPU; else the card's name and memory."""
    sys.path.insert(0, str(ROOT))
    from dart_hub.gpu import gpu_visible

    visible, cause = gpu_visible()
    if not visible:
        print(f"gpu_smoke: needs a GPU, but torch sees none: {cause}", file=sys.stderr)
        sys.exit(2)
    import torch

    props = torch.cuda.get_device_properties(0)
    return {"name": props.name, "memory_gb": round(props.total_memory / 1e9, 1), "count": torch.cuda.device_count(),
            "torch": torch.__version__, "cuda": torch.version.cuda}  # fmt: skip


def build_model(name: str, folder: Path) -> Path:
    """A random-weight bf16 model of the named configuration, with the small local tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig, Qwen2Config

    from tests.tiny_model import build_tokenizer

    if (folder / "config.json").is_file():
        return folder
    tokenizer = build_tokenizer()
    values = dict(CONFIGS[name])
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    values.update(bos_token_id=pad, eos_token_id=eos)  # the local tokenizer's ids (its vocabulary is smaller)
    config = Qwen2Config(**{k: v for k, v in values.items() if k not in ("architectures", "model_type", "torch_dtype")})
    torch.manual_seed(0)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    model.generation_config = GenerationConfig(bos_token_id=pad, eos_token_id=[eos], pad_token_id=pad)
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    del model
    torch.cuda.empty_cache()
    return folder


def probe_requests(questions: int):
    """DART's probe: per question, the simulation prompt with growing prefixes of one solution."""
    from dart_hub.engines.base import GenerationRequest
    from dart_hub.prompts import load_prompts

    prompts = load_prompts(None)
    rng = random.Random(0)
    requests = []
    for q in range(questions):
        a, b = rng.randint(10, 999), rng.randint(2, 99)
        question = f"Problem {q}: a shop sells {a} pens per day for {b} days. How many pens is that?"
        steps = [f"Step {i + 1}: we compute {a} times {i + 2} and carry the {rng.randint(0, 9)}." * 6 for i in range(8)]
        for t in range(len(steps)):
            requests.append(GenerationRequest.chat(
                prompts.messages("simulation", question, "\n\n".join(steps[: t + 1])),
                n=4, temperature=0.1, max_tokens=256, seed=q * 100 + t,
            ))  # fmt: skip
    return requests


def vllm_throughput(model_dir: Path, questions: int) -> dict:
    from dart_hub.engines.vllm import VLLMEngine

    started = time.monotonic()
    engine = VLLMEngine(str(model_dir), max_num_seqs=512)
    ready = time.monotonic()
    try:
        requests = probe_requests(questions)
        results = engine.generate(requests)
        done = time.monotonic()
        completions = [c for result in results for c in result]
        generated = sum(c.completion_tokens for c in completions)
        prompt = sum(c.prompt_tokens for c in completions)
        info = engine.describe()
    finally:
        engine.close()
    return {
        "startup_seconds": round(ready - started, 1),
        "requests": len(requests),
        "samples": len(completions),
        "prompt_tokens": prompt,
        "generated_tokens": generated,
        "seconds": round(done - ready, 2),
        "generated_tokens_per_second": round(generated / max(done - ready, 1e-9), 1),
        "prefix_cache_hit_rate": info.get("prefix_cache_hit_rate"),
        "dtype": info.get("dtype"),
    }


def sft_rows(path: Path, rows: int) -> Path:
    """rows + 1 problems whose assistant turn is longer than 16,384 tokens (cut there by
    max_length); one is held out for the validation that chooses the epoch."""
    rng = random.Random(1)
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows + 1):
            body = " ".join(f"Step {k}: {rng.randint(0, 9999)} + {rng.randint(0, 99)} = {rng.randint(0, 9999)}." for k in range(9000))
            messages = [
                {"role": "system", "content": "Please reason step by step, and put your final answer within \\boxed{}."},
                {"role": "user", "content": f"Problem {i}: add the numbers."},
                {"role": "assistant", "content": body + f" So the answer is \\boxed{{{i}}}."},
            ]
            f.write(json.dumps({"id": f"p{i}", "messages": messages, "answer": str(i)}) + "\n")
    return path


def sft_and_selection(model_dir: Path, work: Path, steps: int) -> dict:
    """`dart-hub train` under the shipped ZeRO-3 config, one process, as a user runs it."""
    out = work / "train"
    rows = sft_rows(work / "rows.jsonl", steps)
    cmd = [
        sys.executable, "-m", "dart_hub.cli", "train", "--student", str(model_dir), "--data", str(rows), "--output", str(out),
        "--accelerate-config", str(ROOT / "configs" / "accelerate" / "deepspeed_zero3.yaml"), "--num-processes", "1",
        "--epochs", "1", "--max-length", str(SFT_TOKENS), "--validation-size", "1", "--validation-max-tokens", "64", "--json",
    ]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        return {"ok": False, "exit_code": done.returncode, "stderr_tail": done.stderr[-3000:]}
    summary = json.loads((out / "training_summary.json").read_text(encoding="utf-8"))
    trained = summary["seconds"]["training"]
    return {
        "ok": True,
        "command_seconds": round(seconds, 1),
        "training_seconds": trained,
        "steps": summary["rows"]["train"],
        "seconds_per_step_incl_setup": round(trained / max(1, summary["rows"]["train"]), 1),
        "peak_gpu_memory_gb": (summary.get("memory") or {}).get("peak_allocated_gb"),
        "selection_seconds": summary["seconds"]["selection"],
        "selection_engine": summary["selection"].get("engine"),
        "checkpoints_scored": len(summary["epochs"]),
        "best_exported": (out / "best" / "config.json").is_file(),
        "gradient_checkpointing": summary["sft_config"].get("gradient_checkpointing"),
        "launch_notes": summary.get("notes"),
    }


def main(argv=None) -> int:
    args = parse_args(argv)
    gpu = require_gpu()
    sys.path.insert(0, str(ROOT))
    started = time.monotonic()
    result: dict = {"gpu": gpu, "configs": {k: {"hidden_size": v["hidden_size"], "layers": v["num_hidden_layers"]} for k, v in CONFIGS.items()}}
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="gpu-smoke-"))
    work.mkdir(parents=True, exist_ok=True)
    if not args.skip_vllm:
        result["vllm"] = {}
        for name in ("0.5b", "3b"):
            result["vllm"][name] = vllm_throughput(build_model(name, work / f"qwen2.5-{name}-random"), args.questions)
    if not args.skip_train:
        name = args.sft_model if args.sft_model != "auto" else ("3b" if gpu["memory_gb"] >= 120 else "0.5b")
        result["sft"] = {"model": name, **sft_and_selection(build_model(name, work / f"qwen2.5-{name}-random"), work, args.sft_steps)}
    result["seconds"] = round(time.monotonic() - started, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    return 0 if result.get("sft", {}).get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
