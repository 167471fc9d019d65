"""Can one `dart-hub adapt --engine openai` process keep a serving cluster busy?

A fake OpenAI-compatible server (asyncio, its own process) with a latency model stands in for a
vLLM router; `dart-hub adapt` runs against it as a user runs it (a subprocess, the CLI), from
this tree or another one (`--tree /path/to/checkout`: "before"). Everything is synthetic: the
problems are LIMO-shaped (a question, an expert solution of --steps paragraphs ending in a boxed
answer) and written here from a word list; no real dataset is read.

Latency models (`--latency`), per HTTP request:
  fixed      every request takes L seconds (--seconds)
  lognormal  median L, sigma 0.8 (heavy tail: a few requests take 5-10 x L)
  queue      the server runs --capacity samples at once, L seconds each; the rest wait in
             its queue (latency grows with what is in flight beyond the capacity)

Reported per run: rollouts/s (samples answered / generation window) against the ideal
min(concurrency, capacity) / L, the server's idle share (time with nothing in flight) and mean
in-flight, dart-hub's CPU ms per rollout (the process and its answer-checker workers, during
the generation window), bytes the server received per rollout, TCP connections, peak RSS.

    python benchmarks/cluster.py --concurrency 64 512 2048 --chunk-size 16 64 --json out.json
    python benchmarks/cluster.py --tree /work/main --label before ...      # another checkout
    python benchmarks/cluster.py --plot docs/figures/cluster-in-flight.png --from out.json
    python benchmarks/cluster.py --cache-rss 1024                           # probe-cache RSS
    python benchmarks/cluster.py --method dail --extra '--scheduler chunks'  # DAIL (or the mapper)

Figures: docs/performance.md ("Feeding a cluster").
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import math
import multiprocessing
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = "bench/student"
WORDS = ["let", "we", "note", "that", "the", "sum", "of", "both", "sides", "gives", "so", "hence", "therefore", "since", "each", "term", "value", "equation", "factor", "root", "square", "prime", "integer", "remainder", "modulo", "divide", "multiply", "count", "case", "consider", "then", "check", "again", "wait", "first", "second", "third", "next", "last", "angle", "side", "area", "length"]


# ---------------------------------------------------------------------- synthetic data


def paragraph(rng: random.Random, words: int) -> str:
    body = " ".join(rng.choice(WORDS) for _ in range(words))
    return f"{body}, so $x_{rng.randint(1, 99)} = {rng.randint(1, 999)}$."


def write_dataset(path: Path, problems: int, steps: int, seed: int = 0) -> None:
    """LIMO-shaped rows: a question and an expert solution of `steps` paragraphs (60-140 words
    each, like LIMO's), the last one stating the boxed answer."""
    rng = random.Random(seed)
    with path.open("w") as handle:
        for k in range(problems):
            answer = rng.randint(1, 999)
            paras = [paragraph(rng, rng.randint(60, 140)) for _ in range(steps - 1)]
            paras.append(f"Therefore the answer is \\boxed{{{answer}}}.")
            row = {"question": f"Problem {k}: " + paragraph(rng, 40), "solution": "\n\n".join(paras), "answer": str(answer)}
            handle.write(json.dumps(row) + "\n")


# ---------------------------------------------------------------------- the fake server


class Stats:
    def __init__(self) -> None:
        self.connections = 0
        self.bytes_in = 0
        self.samples = 0
        self.requests = 0
        self.in_flight = 0  # samples the server is working on or holding in its queue
        self.running = 0  # samples being generated (<= capacity)
        self.first = None
        self.last = None
        self.timeline: list[tuple[float, int]] = []


def server_main(port_box, stats_path: str, latency: str, seconds: float, capacity: int, words: int, stop) -> None:
    asyncio.run(_serve(port_box, stats_path, latency, seconds, capacity, words, stop))


async def _serve(port_box, stats_path, latency, seconds, capacity, words, stop) -> None:
    stats = Stats()
    rng = random.Random(1)
    slots = asyncio.Semaphore(capacity) if latency == "queue" else None
    texts = [" ".join(rng.choice(WORDS) for _ in range(words)) for _ in range(64)]

    def delay() -> float:
        if latency == "lognormal":
            return seconds * math.exp(rng.gauss(0.0, 0.8))
        return seconds

    async def generate(n: int) -> None:
        if slots is None:
            await asyncio.sleep(delay())
            return
        for _ in range(n):  # n sequences of a request take n of the server's slots
            await slots.acquire()
        try:
            stats.running += n
            await asyncio.sleep(delay())
        finally:
            stats.running -= n
            for _ in range(n):
                slots.release()

    def answer(body: dict) -> bytes:
        n = int(body.get("n") or 1)
        seed = int(body.get("seed") or 0)
        choices = []
        for i in range(n):
            s = seed + i  # vLLM: child i of an n-sample request is seeded seed + i
            text = texts[s % 64] + f" so the answer is \\boxed{{{s % 7}}}"
            choice = {"index": i, "finish_reason": "stop"}
            if "messages" in body:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            if body.get("return_token_ids"):
                choice["token_ids"] = list(range(words + 5))
            choices.append(choice)
        out = {"id": "x", "object": "chat.completion", "model": body.get("model"), "choices": choices,
               "usage": {"prompt_tokens": 1000, "completion_tokens": n * (words + 5), "total_tokens": 0}}  # fmt: skip
        return json.dumps(out).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stats.connections += 1
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path = lines[0].split(" ")[:2]
                headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                if path.endswith("/models"):
                    data = json.dumps({"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "vllm", "root": MODEL, "max_model_len": 1_000_000}]}).encode()
                else:
                    request = json.loads(body)
                    n = int(request.get("n") or 1)
                    now = time.monotonic()
                    stats.first = stats.first or now
                    stats.bytes_in += len(head) + len(body)
                    stats.requests += 1
                    stats.in_flight += n
                    try:
                        await generate(n)
                    finally:
                        stats.in_flight -= n
                    stats.samples += n
                    stats.last = time.monotonic()
                    data = answer(request)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(data) + data)
                await writer.drain()
        finally:
            writer.close()

    async def sample() -> None:
        while True:
            stats.timeline.append((time.monotonic(), stats.in_flight))
            await asyncio.sleep(0.1)

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=8192, limit=2**24)
    port_box.value = server.sockets[0].getsockname()[1]
    sampler = asyncio.create_task(sample())
    while not stop.is_set():
        await asyncio.sleep(0.1)
    sampler.cancel()
    server.close()
    window = [(t, f) for t, f in stats.timeline if stats.first and stats.last and stats.first <= t <= stats.last]
    Path(stats_path).write_text(json.dumps({
        "connections": stats.connections, "bytes_in": stats.bytes_in, "samples": stats.samples,
        "requests": stats.requests, "first": stats.first, "last": stats.last,
        "idle_share": round(sum(1 for _, f in window if f == 0) / len(window), 4) if window else None,
        "mean_in_flight": round(sum(f for _, f in window) / len(window), 1) if window else None,
        "timeline": [(round(t - (stats.first or t), 2), f) for t, f in stats.timeline if stats.first and t >= stats.first - 1],
    }))  # fmt: skip


# ---------------------------------------------------------------------- one run

# what `adapt` runs (--method): DART with the paper's N_sim 4 and N_explore 8; DAIL with its
# defaults (32 privileged samples per problem, one request); the mapper with its defaults (4
# rewrites) and only the rewards that need no student (the benchmark's student has no weights)
METHOD_ARGS = {
    "dart": ["--n-sim", "4", "--n-explore", "8", "--sim-max-tokens", "4000", "--explore-max-tokens", "4000"],
    "dail": ["--method", "dail", "--dail-max-tokens", "4000"],
    "mapper": ["--method", "mapper", "--mapper-max-tokens", "4000", "--mapper-rewards", "alignment=0,too_short=0"],
}


def rollouts_per_problem(method: str, steps: int) -> int:
    if method == "dail":
        return 32
    if method == "mapper":
        return 4
    return steps * 4 + 8  # scan rollouts (answer step excluded: ~steps - 1) + exploration



def run_once(args, tree: Path, concurrency: int, chunk: int, problems: int, label: str, extra: list[str]) -> dict:
    import psutil

    work = Path(tempfile.mkdtemp(prefix="dart-cluster-"))
    data = work / "data.jsonl"
    write_dataset(data, problems, args.steps)
    stats_path = work / "server.json"
    ctx = multiprocessing.get_context("spawn")
    port, stop = ctx.Value("i", 0), ctx.Event()
    server = ctx.Process(target=server_main, args=(port, str(stats_path), args.latency, args.seconds, args.capacity, args.words, stop), daemon=True)
    server.start()
    while port.value == 0:
        time.sleep(0.05)
    cmd = [
        sys.executable, "-m", "dart_hub.cli", "adapt", "--student", MODEL, "--dataset", str(data), "--engine", "openai",
        "--base-url", f"http://127.0.0.1:{port.value}/v1", "--concurrency", str(concurrency), "--chunk-size", str(chunk),
        *METHOD_ARGS[args.method],
        "--output", str(work / "out"), "--work-dir", str(work / "w"), "--probe-cache", str(work / "p"), "--quiet", "--json", *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work)
    handle = psutil.Process(proc.pid)
    samples: list[tuple[float, float]] = []  # (time, CPU seconds of dart-hub and its children)
    peak_rss = 0
    while proc.poll() is None:
        try:
            procs = [handle, *handle.children(recursive=True)]
            cpu = sum(sum(p.cpu_times()[:2]) for p in procs)
            peak_rss = max(peak_rss, handle.memory_info().rss)
            samples.append((time.monotonic(), cpu))
        except psutil.Error:
            pass
        time.sleep(0.2)
    out, err = proc.communicate()
    wall = time.monotonic() - started
    stop.set()
    server.join(30)
    stats = json.loads(stats_path.read_text())
    if proc.returncode != 0:
        return {"label": label, "concurrency": concurrency, "chunk_size": chunk, "error": err.decode()[-500:]}
    span = (stats["last"] or 0) - (stats["first"] or 0)

    def cpu_at(t: float) -> float:
        before = [c for s, c in samples if s <= t]
        return before[-1] if before else 0.0

    cpu = cpu_at(stats["last"]) - cpu_at(stats["first"])
    ideal = min(concurrency, args.capacity if args.latency == "queue" else concurrency) / args.seconds
    rate = stats["samples"] / span if span else None
    return {
        "label": label, "method": args.method, "latency": args.latency, "seconds": args.seconds, "concurrency": concurrency, "chunk_size": chunk,
        "problems": problems, "steps": args.steps, "rollouts": stats["samples"], "requests": stats["requests"],
        "rollouts_per_s": round(rate, 1) if rate else None, "ideal_per_s": round(ideal, 1),
        "share_of_ideal": round(rate / ideal, 3) if rate else None,
        "idle_share": stats["idle_share"], "mean_in_flight": stats["mean_in_flight"],
        "cpu_ms_per_rollout": round(1000 * cpu / stats["samples"], 2) if stats["samples"] else None,
        "bytes_per_rollout": round(stats["bytes_in"] / stats["samples"]) if stats["samples"] else None,
        "connections": stats["connections"], "peak_rss_mb": round(peak_rss / 2**20), "wall_s": round(wall, 1),
        "generation_s": round(span, 1), "timeline": stats["timeline"],
    }  # fmt: skip


# ---------------------------------------------------------------------- probe cache RSS


def cache_rss(tree: Path, megabytes: int) -> dict:
    """Peak RSS of a probe-cache lookup that misses its chunk file, against a cache of
    `megabytes` MB of (uncompressed) simulation results, with the ProbeStore of `tree`."""
    work = Path(tempfile.mkdtemp(prefix="dart-cache-"))
    rng = random.Random(0)
    filler = " ".join(rng.choice(WORDS) for _ in range(20_000))  # ~120 KB of rollout text
    key = work / "key"
    key.mkdir()
    per_problem = 4 * len(filler)
    problems = max(1, megabytes * 2**20 // per_problem)
    for start in range(0, problems, 16):
        ids = [f"p{i}" for i in range(start, min(problems, start + 16))]
        lines = "".join(json.dumps({"id": i, "probe": {"scores": [0.5], "rollouts": [[{"text": filler}] * 4]}}) + "\n" for i in ids)
        import hashlib

        name = hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]
        (key / f"probes-{name}.jsonl.gz").write_bytes(gzip.compress(lines.encode(), compresslevel=1))
    code = (
        "import resource, sys; from dart_hub.store import ProbeStore;"
        f"s = ProbeStore({str(work)!r}, 'key', {{}}); found = s.lookup(['p3', 'p{problems - 1}', 'missing']);"
        "print(len(found), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    )
    base = "import resource; import dart_hub.store; print(0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    found, rss = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True, cwd=work).stdout.split()
    _, idle = subprocess.run([sys.executable, "-c", base], env=env, capture_output=True, text=True, check=True, cwd=work).stdout.split()
    return {"cache_mb": megabytes, "problems": problems, "found": int(found), "peak_rss_mb": round(int(rss) / 1024), "import_only_rss_mb": round(int(idle) / 1024)}


# ---------------------------------------------------------------------- plot


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = [r for r in results if r.get("timeline")]
    fig, axes = plt.subplots(len(runs), 1, figsize=(8, 1.8 * len(runs)), sharex=False, squeeze=False)
    for ax, run in zip(axes[:, 0], runs, strict=True):
        t, f = zip(*run["timeline"], strict=True)
        ax.plot(t, f, lw=0.8)
        ax.axhline(run["concurrency"], color="grey", ls=":", lw=0.8)
        ax.set_ylabel("in flight")
        ax.set_title(f"{run['label']}: concurrency {run['concurrency']}, chunk {run['chunk_size']}, {run['latency']} {run['seconds']} s "
                     f"-> {run['rollouts_per_s']}/s ({100 * (run['share_of_ideal'] or 0):.0f}% of ideal)", fontsize=8)  # fmt: skip
    axes[-1, 0].set_xlabel("seconds since the first generation request")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tree", type=Path, default=ROOT, help="checkout whose dart_hub runs (default: this one)")
    parser.add_argument("--label", default="after")
    parser.add_argument("--latency", choices=["fixed", "lognormal", "queue"], default="fixed")
    parser.add_argument("--seconds", type=float, default=4.0, help="latency L per request")
    parser.add_argument("--capacity", type=int, default=1024, help="queue model: samples the server runs at once")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[64, 512, 2048])
    parser.add_argument("--chunk-size", type=int, nargs="+", default=[16])
    parser.add_argument("--steps", type=int, default=12, help="expert steps per problem (LIMO: ~118; scaled down)")
    parser.add_argument("--words", type=int, default=300, help="words per rollout")
    parser.add_argument("--periods", type=float, default=8.0, help="work per run: concurrency x periods rollouts")
    parser.add_argument("--method", choices=sorted(METHOD_ARGS), default="dart", help="adaptation method adapt runs")
    parser.add_argument("--extra", default="", help="extra adapt arguments, e.g. '--scheduler chunks'")
    parser.add_argument("--json", type=Path, help="append results to this JSON list")
    parser.add_argument("--plot", type=Path, help="write the in-flight plot of --from's runs")
    parser.add_argument("--from", dest="source", type=Path)
    parser.add_argument("--cache-rss", type=int, nargs="*", help="probe-cache RSS at these cache sizes (MB)")
    args = parser.parse_args()
    if args.plot:
        plot(json.loads(args.source.read_text()), args.plot)
        return
    results = []
    if args.cache_rss:
        results = [{"label": args.label, **cache_rss(args.tree, mb)} for mb in args.cache_rss]
    else:
        per_problem = rollouts_per_problem(args.method, args.steps)
        for chunk in args.chunk_size:
            for concurrency in args.concurrency:
                problems = max(2 * chunk, math.ceil(concurrency * args.periods / per_problem))
                results.append(run_once(args, args.tree, concurrency, chunk, problems, args.label, args.extra.split()))
                print(json.dumps({k: v for k, v in results[-1].items() if k != "timeline"}), flush=True)
    for r in results:
        if "timeline" not in r:
            print(json.dumps(r), flush=True)
    if args.json:
        old = json.loads(args.json.read_text()) if args.json.exists() else []
        args.json.write_text(json.dumps(old + results))


if __name__ == "__main__":
    main()
