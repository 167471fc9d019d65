"""How long the vLLM engine idles during `adapt`: chunked runner vs streaming scheduler, with
and without continuous submission (`VLLMEngine.submit`).

    VLLM_CPU_KVCACHE_SPACE=1 /tmp/cirun/.venv-vllm/bin/python benchmarks/vllm_stream.py
    ... benchmarks/vllm_stream.py --problems 48 --steps 8 --chunk-size 8 --json

Per repeat one engine start-up (the tiny random model, vllm-cpu on CPU machines), then three
arms on the same problems, each on a cold prefix cache (`LLM.reset_prefix_cache()`), no probe cache, a
fresh work dir, the real answer checker (math-verify in worker processes):

- `chunks`: `--scheduler chunks` (`pipeline.run_adapt`): two `generate()` calls per chunk.
- `stream, generate only`: the streaming scheduler over an engine without `submit()` (what
  `--scheduler stream` did with vLLM before `VLLMEngine.submit`): everything ready goes into one
  `generate()` call, the next chunk's probes join the previous chunk's explorations.
- `stream, submit`: the streaming scheduler with `VLLMEngine.submit` (today's `adapt --engine
  vllm`): every request joins the running batch as soon as its problem asks for it.

`stream, submit` runs last in each repeat (once `submit()` has started the engine's loop,
`generate()` goes through that loop too); the two generate-only arms swap places every other
repeat. Figures are medians over the repeats.

Measured per arm: wall time of the run (the runner's call: first request to the last chunk
written), the engine's idle share (the part of the time from the first request on with no
sample in flight at the engine) and the mean number of samples in flight (how full the
engine's batch is kept, against its max_num_seqs). Samples are counted at the engine's
interface: a generate() call's samples from the call until its progress callback reports them
finished, a submitted request's until its future is answered; so the idle share is a lower
bound of the time vLLM has nothing to do. Records of the three arms are compared (they must be
equal).

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
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Tracker:
    """An engine seen by the scheduler: counts samples in flight over time (a generate() call's
    samples leave as its progress callback reports them finished, a submitted request's when
    its future is answered)."""

    def __init__(self, engine, with_submit: bool):
        self.engine = engine
        self.name = engine.name
        self.lock = threading.Lock()
        self.in_flight = 0
        self.busy = 0.0  # seconds with at least one sample in flight
        self.area = 0.0  # integral of samples in flight over time
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
                self.area += self.in_flight * (now - self.since)
            self.in_flight += delta
            self.since = now

    def generate(self, requests, progress=None):
        total = sum(r.n for r in requests)
        left = [total]

        def finished(k: int) -> None:
            left[0] -= k
            self._change(-k)
            if progress is not None:
                progress(k)

        self._change(total)
        try:
            return self.engine.generate(requests, progress=finished)
        finally:
            self._change(-left[0])

    def _submit(self, request):
        self._change(request.n)
        future = self.engine.submit(request)
        future.add_done_callback(lambda _: self._change(-request.n))
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
    parser.add_argument("--repeats", type=int, default=3, help="fresh engine per repeat; the generate-only arms alternate order")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    import torch

    torch.set_num_threads(1)
    import dart_hub.adaptation.judge
    from dart_hub.adaptation.pipeline import run_adapt
    from dart_hub.adaptation.stream import run_streaming
    from dart_hub.answers import AnswerChecker
    from dart_hub.config import AdaptConfig
    from dart_hub.engines.vllm import VLLMEngine
    from dart_hub.prompts import default_prompts
    from dart_hub.store import WorkDir, fingerprint
    from tests.tiny_model import build_tiny_model

    dart_hub.adaptation.judge.extract_answer = lambda text: str(len(text) % 3)  # see the docstring
    tmp = Path(tempfile.mkdtemp(prefix="vllm-stream-"))
    model = args.model or str(build_tiny_model(tmp / "tiny", seed=0))
    config = AdaptConfig(
        n_sim=args.n_sim, n_explore=args.n_explore, sim_max_tokens=args.max_tokens, explore_max_tokens=args.max_tokens,
        min_step_chars=1, chunk_size=args.chunk_size, sim_temperature=1.0,
    )  # fmt: skip
    todo = problems(args.problems, args.steps)
    prompts = default_prompts()
    arms = {"chunks": (run_adapt, False), "stream, generate only": (run_streaming, False), "stream, submit": (run_streaming, True)}
    results: dict[str, list[dict]] = {arm: [] for arm in arms}
    records: dict[str, list] = {}
    startups = []
    with AnswerChecker() as checker:
        checker.equivalent_many([("0", "0")])  # workers started before the clock runs
        for repeat in range(args.repeats):
            started = time.perf_counter()
            # a fresh engine per repeat: once submit() started its loop, generate() goes through it
            engine = VLLMEngine(model, max_model_len=4096, max_num_seqs=args.max_num_seqs, enforce_eager=True)
            startups.append(round(time.perf_counter() - started, 1))
            order = ["chunks", "stream, generate only"]
            if repeat % 2:
                order.reverse()
            for arm in [*order, "stream, submit"]:
                runner, with_submit = arms[arm]
                engine._llm.reset_prefix_cache()
                tracker = Tracker(engine, with_submit)
                name = f"{repeat}-" + arm.replace(", ", "-").replace(" ", "_")
                work = WorkDir(tmp / name, fingerprint({"arm": name}), {"arm": name})
                began = time.perf_counter()
                out = runner(tracker, todo, config, prompts, checker, work)
                ended = time.perf_counter()
                window = ended - (tracker.first or began)
                records.setdefault(arm, [e.to_dict() for e in out])
                assert [e.to_dict() for e in out] == records[arm], f"{arm}: records differ between repeats"
                results[arm].append({
                    "wall_s": round(ended - began, 2), "idle_share": round(1 - tracker.busy / window, 4),
                    "idle_s": round(window - tracker.busy, 2), "mean_samples_in_flight": round(tracker.area / window, 1),
                    "rollouts": sum(e.to_dict().get("rollouts") or 0 for e in out), "load_average_1m": round(os.getloadavg()[0], 1),
                })  # fmt: skip
            engine.close()
    same = all(r == records["chunks"] for r in records.values())
    summary = {
        arm: {key: statistics.median(r[key] for r in runs) for key in ("wall_s", "idle_share", "mean_samples_in_flight")}
        for arm, runs in results.items()
    }
    report = {
        "problems": args.problems, "steps": args.steps, "chunk_size": args.chunk_size, "n_sim": args.n_sim,
        "n_explore": args.n_explore, "max_tokens": args.max_tokens, "max_num_seqs": args.max_num_seqs,
        "repeats": args.repeats, "engine_startup_s": startups, "records_equal": same, "median": summary, "runs": results,
        "cpus": os.cpu_count(), "python": platform.python_version(),
    }  # fmt: skip
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"{args.problems} problems x {args.steps} steps, chunk {args.chunk_size}, N_sim {args.n_sim}, N_explore {args.n_explore}, "
          f"max_tokens {args.max_tokens}, {args.repeats} repeats; records equal: {same}")  # fmt: skip
    for arm, runs in results.items():
        m = summary[arm]
        print(f"  {arm:<24} wall {m['wall_s']:7.1f} s   idle {100 * m['idle_share']:5.1f}%   "
              f"samples in flight {m['mean_samples_in_flight']:6.1f}   (each: {[r['wall_s'] for r in runs]} s)")  # fmt: skip


if __name__ == "__main__":
    main()
