"""How long the vLLM engine idles during `adapt`: chunked runner vs streaming scheduler, with
and without continuous submission (`VLLMEngine.submit`).

    VLLM_CPU_KVCACHE_SPACE=1 /tmp/cirun/.venv-vllm/bin/python benchmarks/vllm_stream.py
    ... benchmarks/vllm_stream.py --problems 48 --steps 8 --chunk-size 8 --json

One engine start-up (the tiny random model, vllm-cpu on CPU machines), then three arms on the
same problems, each on a cold prefix cache (`LLM.reset_prefix_cache()`), no probe cache, a
fresh work dir, the real answer checker (math-verify in worker processes):

- `chunks`: `--scheduler chunks` (`pipeline.run_adapt`): two `generate()` calls per chunk.
- `stream, generate only`: the streaming scheduler over an engine without `submit()` (what
  `--scheduler stream` did with vLLM before `VLLMEngine.submit`): everything ready goes into one
  `generate()` call, the next chunk's probes join the previous chunk's explorations.
- `stream, submit`: the streaming scheduler with `VLLMEngine.submit` (today's `adapt --engine
  vllm`): every request joins the running batch as soon as its problem asks for it.

The arms run in this order: once `submit()` has started the engine's loop, `generate()` goes
through that loop too, so the generate-only arms must come first.

Measured per arm: wall time of the run (first request to the last chunk written), and the
engine's idle share: the part of that time with no request in flight at the engine (counted
at the engine's interface: from `generate()` call to return, or from `submit()` to its
future's answer; time inside vLLM with nothing scheduled is not seen, so this is a lower bound
of the real idle time). Records of the three arms are compared (they must be equal).

The random tiny model writes no final answers, so the answer extraction is replaced by a
function of the text (`len(text) % 3`, gold "0": a third of the samples are "correct") so that
the runs cut traces and explore from the cuts as real runs do; judging still goes through
math-verify.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Tracker:
    """An engine seen by the scheduler: counts requests in flight over time."""

    def __init__(self, engine, with_submit: bool):
        self.engine = engine
        self.name = engine.name
        self.lock = threading.Lock()
        self.in_flight = 0
        self.busy = 0.0
        self.since = 0.0
        self.first = None
        if with_submit:
            self.submit = self._submit
            self.concurrency = engine.concurrency

    def _change(self, delta: int) -> None:
        with self.lock:
            now = time.perf_counter()
            if self.first is None:
                self.first = now
            if self.in_flight > 0:
                self.busy += now - self.since
            self.in_flight += delta
            self.since = now

    def generate(self, requests, progress=None):
        self._change(len(requests))
        try:
            return self.engine.generate(requests, progress=progress)
        finally:
            self._change(-len(requests))

    def _submit(self, request):
        self._change(1)
        future = self.engine.submit(request)
        future.add_done_callback(lambda _: self._change(-1))
        return future

    def prompt_ids(self, request):
        return self.engine.prompt_ids(request)

    def describe(self):
        return self.engine.describe()

    def close(self):
        pass


def problems(count: int, steps: int):
    from dart_hub.records import Problem, Provenance
    from tests.tiny_model import math_sentences

    out = []
    for k in range(count):
        sentences = math_sentences(4 * steps, seed=500 + k)
        paragraphs = [" ".join(sentences[4 * j : 4 * j + 4]) for j in range(steps)]
        out.append(Problem(
            id=f"p{k}", question=f"Problem {k}: " + math_sentences(2, seed=k)[0], solution="\n\n".join(paragraphs),
            answer="0", provenance=Provenance(source="bench", repo_id=None, revision=None, config=None, split="train", row_index=k),
        ))  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a model folder (default: the tiny random test model, built here)")
    parser.add_argument("--problems", type=int, default=48)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--n-sim", type=int, default=4)
    parser.add_argument("--n-explore", type=int, default=8)
    parser.add_argument("--max-tokens", type=int, default=64, help="simulation and exploration max_tokens")
    parser.add_argument("--max-num-seqs", type=int, default=64)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    import torch

    torch.set_num_threads(1)
    import dart_hub.adapt.judge
    from dart_hub.adapt.pipeline import run_adapt
    from dart_hub.adapt.stream import run_streaming
    from dart_hub.answers import AnswerChecker
    from dart_hub.config import AdaptConfig
    from dart_hub.engines.vllm import VLLMEngine
    from dart_hub.prompts import default_prompts
    from dart_hub.store import WorkDir, fingerprint
    from tests.tiny_model import build_tiny_model

    dart_hub.adapt.judge.extract_answer = lambda text: str(len(text) % 3)  # see the docstring
    tmp = Path(tempfile.mkdtemp(prefix="vllm-stream-"))
    model = args.model or str(build_tiny_model(tmp / "tiny", seed=0))
    started = time.perf_counter()
    engine = VLLMEngine(model, max_model_len=4096, max_num_seqs=args.max_num_seqs, enforce_eager=True)
    startup = time.perf_counter() - started
    config = AdaptConfig(
        n_sim=args.n_sim, n_explore=args.n_explore, sim_max_tokens=args.max_tokens, explore_max_tokens=args.max_tokens,
        min_step_chars=1, chunk_size=args.chunk_size, sim_temperature=1.0,
    )  # fmt: skip
    todo = problems(args.problems, args.steps)
    prompts = default_prompts()
    results, records = [], {}
    with AnswerChecker() as checker:
        checker.equivalent_many([("0", "0")])  # workers started before the clock runs
        for arm, runner, with_submit in (
            ("chunks", run_adapt, False),
            ("stream, generate only", run_streaming, False),
            ("stream, submit", run_streaming, True),
        ):
            engine._llm.reset_prefix_cache()
            tracker = Tracker(engine, with_submit)
            work = WorkDir(tmp / arm.replace(", ", "-").replace(" ", "_"), fingerprint({"arm": arm}), {"arm": arm})
            began = time.perf_counter()
            out = runner(tracker, todo, config, prompts, checker, work)
            ended = time.perf_counter()
            window = ended - (tracker.first or began)
            records[arm] = [e.to_dict() for e in out]
            results.append({
                "arm": arm, "wall_s": round(ended - began, 2), "idle_share": round(1 - tracker.busy / window, 4) if window > 0 else None,
                "idle_s": round(window - tracker.busy, 2), "rollouts": sum(e.get("rollouts") or 0 for e in records[arm]),
            })  # fmt: skip
    engine.close()
    same = all(r == records["chunks"] for r in records.values())
    report = {
        "problems": args.problems, "steps": args.steps, "chunk_size": args.chunk_size, "n_sim": args.n_sim,
        "n_explore": args.n_explore, "max_tokens": args.max_tokens, "max_num_seqs": args.max_num_seqs,
        "engine_startup_s": round(startup, 1), "records_equal": same, "arms": results,
        "cpus": os.cpu_count(), "load_average": os.getloadavg(), "python": platform.python_version(),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.problems} problems x {args.steps} steps, chunk {args.chunk_size}, N_sim {args.n_sim}, N_explore {args.n_explore}, "
          f"max_tokens {args.max_tokens}; engine start-up {startup:.0f} s; records equal: {same}")  # fmt: skip
    for r in results:
        print(f"  {r['arm']:<24} wall {r['wall_s']:7.1f} s   idle {100 * r['idle_share']:5.1f}% ({r['idle_s']:.1f} s)   rollouts {r['rollouts']}")
    print(f"load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
