"""Memory and time of DAIL's loss (forward + backward), chunked vs the naive full-logits version.

    python benchmarks/dail_loss.py                       # vocab 32000, response 2048, CPU
    python benchmarks/dail_loss.py --vocab 151936 --response 4096 --device cuda

A small random Qwen2 model (2 layers, hidden 64) with a real-sized vocabulary, one row whose
plain / privileged / negative prompts have 40 / 300 / 80 tokens and a shared response. Each
configuration runs in its own process and reports its peak memory (CUDA: max allocated; CPU:
the process's peak RSS above the same process's baseline after building the model) and the
time of one forward + backward. "naive" computes the full [L, vocab] logits and log-softmax of
all three views at once (what the chunking avoids); chunk sizes are `dail_loss(chunk_size=...)`.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _model(vocab: int, device: str):
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=1, num_key_value_heads=1, max_position_embeddings=16384)  # fmt: skip
    return Qwen2ForCausalLM(config).to(device)


def _naive(model, reference, batch, lam=0.1):
    """Full logits of the three views, log-softmax everywhere, then the aligned KLs."""
    import torch

    from dart_hub.training.dail_loss import response_index

    def view(m, name):
        return m(input_ids=batch[f"{name}_input_ids"], attention_mask=batch[f"{name}_attention_mask"],
                 position_ids=batch[f"{name}_position_ids"]).logits.float().log_softmax(-1)  # fmt: skip

    lengths = batch["response_length"]
    logp = view(model, "student")[response_index(batch["student_response_start"], lengths)]
    with torch.no_grad():
        logP = view(reference, "privileged")[response_index(batch["privileged_response_start"], lengths)]
        logN = view(reference, "negative")[response_index(batch["negative_response_start"], lengths)]
    p = logp.exp()
    return ((p * (logp - logP)).sum(-1) - lam * (p * (logp - logN)).sum(-1)).mean()


def one(args) -> dict:
    import copy

    import torch

    from dart_hub.training.dail_loss import DailCollator, dail_loss

    torch.set_num_threads(args.threads)
    model = _model(args.vocab, args.device)
    reference = copy.deepcopy(model).requires_grad_(False)
    response = [7 + i % 50 for i in range(args.response)]
    feature = {"prompt_ids": [3] * 40, "privileged_prompt_ids": [4] * 300, "negative_prompt_ids": [5] * 80, "response_ids": response}
    batch = {k: v.to(args.device) for k, v in DailCollator(0)([feature]).items()}
    if args.device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    else:
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    started = time.perf_counter()
    if args.mode == "naive":
        loss = _naive(model, reference, batch)
    else:
        loss = dail_loss(model, batch, reference_model=reference, chunk_size=int(args.mode)).loss
    loss.backward()
    if args.device == "cuda":
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base
    return {"mode": args.mode, "seconds": round(time.perf_counter() - started, 2), "peak_mib": round(peak / 2**20), "loss": round(float(loss), 6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--vocab", type=int, default=32000)
    parser.add_argument("--response", type=int, default=2048)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--modes", default="naive,2048,1024,256")
    parser.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(one(args)))
        return
    print(f"vocab {args.vocab}, response {args.response} tokens, prompts 40/300/80, device {args.device}")
    for mode in args.modes.split(","):
        cmd = [sys.executable, __file__, "--mode", mode, "--vocab", str(args.vocab), "--response", str(args.response),
               "--device", args.device, "--threads", str(args.threads)]  # fmt: skip
        out = json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        name = "naive (full logits)" if mode == "naive" else f"chunk {mode}"
        print(f"  {name:<22} peak {out['peak_mib']:>6} MiB   {out['seconds']:>6.2f} s   loss {out['loss']}")


if __name__ == "__main__":
    main()
