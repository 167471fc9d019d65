"""The streaming scheduler: every problem goes through its method's steps at its own pace.

The chunked runner (`pipeline.run_chunks`) makes the engine calls of a whole chunk at once and
waits for the slowest request of each before the next starts: at the end of every chunk the
engine drains (DART: the exploration wave is only `chunk_size x n_explore` requests). Here each
problem is a generator (a method's per-problem flow, see `Flows`) and a request is submitted the
moment its problem asks for it, so (DART) probes of one problem overlap explorations of another,
and (every method) the engine never waits for a chunk boundary.

Which methods stream (`--scheduler stream`, the default): DART (`pipeline.problem_flow`: probe
-> cut -> explore), DAIL with `--dail-tau 1` (the default: one privileged request per problem;
`--dail-tau` below 1 decodes two contexts in lock-step on the transformers engine and always
runs chunk by chunk) and the mapper (one rewrite request per problem; the rewards, whose
student-likelihood scorer batches, are scored per chunk when its last problem is back, as the
chunked runner scores them).

- Engines with a `submit(request) -> Future` (the OpenAI-compatible engine, and the vLLM
  offline engine, whose loop adds each request to vLLM's running batch between engine steps)
  get work as soon as it exists; new chunks are started while fewer than twice the engine's
  `concurrency` samples are waiting (in flight or queued in the engine), so a slot that frees
  is refilled at once from the engine's queue, and memory stays bounded.
- Engines without one (transformers) get everything that is ready in one `generate()` call;
  DART's next chunk's probes join the previous chunk's exploration call (DAIL and the mapper
  have one request per problem: one call per chunk, as chunked).

Durability and results are the chunked runner's: problems are still grouped into chunks of
`chunk_size`, a chunk file is written (atomically) when its last problem is done, simulation
results go to the probe cache per chunk, and every request's seed depends only on what it is,
so a run killed at any moment resumes to the same records, and streaming gives the records of
the chunked run. A request the server refuses (`RequestRejected`: HTTP 400, a prompt over its
context) costs only its problem: it is stored as a skipped line with the reason
`request_rejected`, so a resume does not try it again.
"""

from __future__ import annotations

import concurrent.futures
import queue
from collections.abc import Generator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from dart_hub.adaptation.judge import Checker, judge
from dart_hub.adaptation.pipeline import (
    PROBED,
    Reporter,
    SilentReporter,
    plan_chunks,
    problem_flow,
    problem_steps,
    skipped_record,
    stored_examples,
)
from dart_hub.adaptation.probe import ProbeResult
from dart_hub.adaptation.reveal import reveal_steps
from dart_hub.config import AdaptConfig
from dart_hub.engines.base import Completion, Engine, GenerationRequest
from dart_hub.prompts import Prompts
from dart_hub.records import AdaptedExample, Problem, SkippedRow
from dart_hub.store import ProbeStore, WorkDir

REJECTED = "request_rejected"
BACKLOG = 2  # samples waiting (in flight + queued in the engine) per slot of its concurrency

# A problem's flow: yields (origin, requests) and receives each request's (completions, judged
# candidates), may yield (PROBED, ProbeResult) for the probe cache, returns its result.
Flow = Generator[tuple[str, Any], Any, Any]


@dataclass
class _Chunk:
    index: int
    problems: list[Problem]
    results: list[Any]  # what each problem's flow returned (None: not yet, or refused)
    skipped: dict[int, dict[str, Any]]  # slot -> skipped line (the server refused its request)
    probes: list[dict[str, Any] | None]
    fresh_probes: bool = False  # some simulation results were computed here (not cached)
    left: int = 0  # problems not finished yet


class Flows(Protocol):
    """A method as the streaming scheduler drives it (`Method.flows`)."""

    chunk_size: int
    ngram: int  # the repetition n-gram its answers are judged with
    # samples a batching engine may still have queued when the next chunk's requests join them
    # (DART: the chunk's exploration wave; 0: one generate() call per chunk, as chunked)
    overlap: int

    def start(self, chunk: _Chunk) -> list[Flow]:
        """The flows of a chunk's problems, in order (may set chunk.fresh_probes)."""
        ...

    def finish(self, chunk: _Chunk, results: list[Any]) -> list[dict[str, Any]]:
        """The chunk-file records of the problems that finished (in order; the refused ones are
        left out), e.g. after a per-chunk batched step; called before the chunk file is written."""
        ...


@dataclass
class _Flow:
    chunk: _Chunk
    slot: int  # position in the chunk
    problem: Problem
    gen: Flow
    origin: str = ""
    answers: list[Any] = field(default_factory=list)
    waiting: int = 0
    failed: bool = False


class _Batcher:
    """The submit() interface over an engine that only has generate(): requests queue up and
    one generate() call answers all of them."""

    def __init__(self, engine: Engine, progress):
        self.engine = engine
        self.progress = progress
        self.queued: list[tuple[GenerationRequest, concurrent.futures.Future]] = []

    def submit(self, request: GenerationRequest) -> concurrent.futures.Future:
        future: concurrent.futures.Future = concurrent.futures.Future()
        self.queued.append((request, future))
        return future

    def flush(self) -> None:
        batch, self.queued = self.queued, []
        outputs = self.engine.generate([r for r, _ in batch], progress=self.progress)
        for (_, future), out in zip(batch, outputs, strict=True):
            future.set_result(out)


class DartFlows:
    """DART's problems as flows (`pipeline.problem_flow`): probe -> cut -> explore, with the
    simulation results read from and written to the probe cache per chunk."""

    def __init__(self, config: AdaptConfig, prompts: Prompts, checker: Checker, probe_store: ProbeStore | None = None):
        self.config = config
        self.prompts = prompts
        self.checker = checker
        self.probe_store = probe_store
        self.chunk_size = config.chunk_size
        self.ngram = config.repetition_ngram
        self.overlap = config.chunk_size * config.n_explore if config.explores else 0

    def start(self, chunk: _Chunk) -> list[Flow]:
        config = self.config
        items = [(p, problem_steps(p, config)) for p in chunk.problems]
        cached: dict[str, dict[str, Any]] = {}
        reveals: list[int | None] = [None] * len(items)
        if config.probes:
            if self.probe_store is not None:
                cached = self.probe_store.lookup([p.id for p in chunk.problems])
            missing = [i for i, (p, _) in enumerate(items) if p.id not in cached]
            if missing:
                for i, r in zip(missing, reveal_steps([items[i] for i in missing], self.checker), strict=True):
                    reveals[i] = r
                chunk.fresh_probes = True
        flows = []
        for slot, (problem, steps) in enumerate(items):
            stored = cached.get(problem.id)
            flows.append(problem_flow(problem, steps, config, self.prompts, reveals[slot], ProbeResult.from_dict(stored) if stored else None))
        return flows

    def finish(self, chunk: _Chunk, results: list[AdaptedExample]) -> list[dict[str, Any]]:
        if self.probe_store is not None and chunk.fresh_probes:
            probed = [(p.id, r) for p, r in zip(chunk.problems, chunk.probes, strict=True) if r is not None]
            if probed:
                self.probe_store.save([i for i, _ in probed], [r for _, r in probed])
        return [e.to_dict() for e in results]


def run_streaming(
    engine: Engine,
    problems: Sequence[Problem],
    config: AdaptConfig,
    prompts: Prompts,
    checker: Checker,
    work_dir: WorkDir,
    reporter: Reporter | None = None,
    probe_store: ProbeStore | None = None,
    skipped: list[SkippedRow] | None = None,
) -> list[AdaptedExample]:
    """Adapt `problems` with DART, streaming (see module docstring); finished chunks in
    `work_dir` are loaded, not recomputed. Returns the examples in problem order; problems
    given up on go to `skipped`."""
    return stream(engine, problems, DartFlows(config, prompts, checker, probe_store), checker, work_dir, reporter, skipped)


def stream(
    engine: Engine,
    problems: Sequence[Problem],
    flows: Flows,
    checker: Checker,
    work_dir: WorkDir,
    reporter: Reporter | None = None,
    skipped: list[SkippedRow] | None = None,
) -> list[AdaptedExample]:
    """Any method's `flows` through the streaming scheduler (see module docstring)."""
    return _Scheduler(engine, flows, checker, work_dir, reporter or SilentReporter(), skipped).run(problems)


class _Scheduler:
    def __init__(self, engine, flows: Flows, checker, work_dir, reporter, skipped):
        self.engine = engine
        self.flows = flows
        self.checker = checker
        self.work_dir = work_dir
        self.reporter = reporter
        self.skipped = skipped if skipped is not None else []
        self.done: queue.SimpleQueue = queue.SimpleQueue()  # (flow, position, samples, future)
        self.pending: set[concurrent.futures.Future] = set()
        self.outstanding = 0  # samples submitted and not answered
        self.submitter: Any = None
        self.capacity = 0

    # ---------------------------------------------------------------- the loop

    def run(self, problems: Sequence[Problem]) -> list[AdaptedExample]:
        chunks = plan_chunks(problems, self.flows.chunk_size)
        finished: dict[int, list[dict[str, Any]]] = {}
        todo: list[int] = []
        for index, chunk in enumerate(chunks):
            stored = self.work_dir.load_chunk(index, [p.id for p in chunk])
            if stored is not None:
                finished[index] = stored
                self.reporter.problems_done(len(chunk), resumed=True)
            else:
                todo.append(index)
        todo.reverse()  # pop() takes the first
        live: set[int] = set()
        try:
            while todo or live:
                while todo and (not live or self.outstanding < self._capacity()):
                    index = todo.pop()
                    chunk = self._start(index, chunks[index])
                    if chunk.left:
                        live.add(index)
                    else:
                        finished[index] = self._save(chunk)
                if not live:
                    continue
                for flow in self._wait():
                    if flow.chunk.left == 0 and flow.chunk.index in live:
                        live.discard(flow.chunk.index)
                        finished[flow.chunk.index] = self._save(flow.chunk)
        finally:
            self._cancel()
            if self.submitter is self.engine and hasattr(self.engine, "report_retries"):
                self.engine.report_retries()  # one line with the run's HTTP retries, if any
        examples: list[AdaptedExample] = []
        for index in range(len(chunks)):
            examples.extend(stored_examples(finished[index], self.skipped))
        return examples

    def _capacity(self) -> int:
        """Samples that may wait before no new chunk is started (1 until the first request:
        a run that generates nothing, e.g. --strategy static, never loads the engine)."""
        return self.capacity if self.submitter is not None else 1

    def _submitter(self) -> Any:
        if self.submitter is None:
            submit = getattr(self.engine, "submit", None)
            if submit is not None:
                self.submitter = self.engine
                # twice what the engine sends at once: when a wave of answers frees its slots,
                # the next requests are already queued in the engine and go out at once, while
                # this thread judges the answers and starts the next chunks
                self.capacity = BACKLOG * int(getattr(self.engine, "concurrency", 0) or 256)
            else:
                self.submitter = _Batcher(self.engine, self.reporter.sequences_done)
                # the next chunk starts once only the method's overlap wave (DART: explorations) or
                # nothing is queued
                self.capacity = 1 + self.flows.overlap
        return self.submitter

    def _start(self, index: int, problems: list[Problem]) -> _Chunk:
        n = len(problems)
        chunk = _Chunk(index, problems, [None] * n, {}, [None] * n, left=n)
        for slot, (problem, gen) in enumerate(zip(problems, self.flows.start(chunk), strict=True)):
            self._advance(_Flow(chunk, slot, problem, gen), None, first=True)
        return chunk

    def _wait(self) -> list[_Flow]:
        """Answers that arrived; returns the flows whose problem finished."""
        if isinstance(self.submitter, _Batcher):
            self.submitter.flush()
        arrived = [self.done.get()]
        while True:
            try:
                arrived.append(self.done.get_nowait())
            except queue.Empty:
                break
        finished = []
        batched = isinstance(self.submitter, _Batcher)
        for flow, position, samples, future in arrived:
            self.outstanding -= samples
            self.pending.discard(future)
            if flow.failed or future.cancelled():
                continue
            error = future.exception()
            if error is not None:
                if getattr(error, "reason", None) != REJECTED:
                    raise error
                self._fail(flow, str(error))
                finished.append(flow)
                continue
            if not batched:  # the batcher's generate() reports its own progress
                self.reporter.sequences_done(len(future.result()))
            if hasattr(self.reporter, "tokens_done"):
                self.reporter.tokens_done(sum(c.completion_tokens for c in future.result()))
            flow.answers[position] = future.result()
            flow.waiting -= 1
            if flow.waiting == 0:
                outputs: list[list[Completion]] = flow.answers
                judged = judge([(flow.problem.answer, out) for out in outputs], self.checker, origin=flow.origin, ngram=self.flows.ngram)
                if self._advance(flow, list(zip(outputs, judged, strict=True))):
                    finished.append(flow)
        return finished

    def _advance(self, flow: _Flow, answers: Any, first: bool = False) -> bool:
        """Send the flow its answers and submit what it asks next. True: the problem is done."""
        try:
            step = next(flow.gen) if first else flow.gen.send(answers)
            while step[0] == PROBED:
                flow.chunk.probes[flow.slot] = step[1].to_dict()
                step = flow.gen.send(None)
        except StopIteration as done:
            self._finish(flow, done.value)
            return True
        flow.origin, requests = step
        flow.answers = [None] * len(requests)
        flow.waiting = len(requests)
        for position, request in enumerate(requests):
            future = self._submitter().submit(request)
            self.outstanding += request.n
            self.pending.add(future)
            future.add_done_callback(lambda f, flow=flow, i=position, n=request.n: self.done.put((flow, i, n, f)))
        return False

    def _fail(self, flow: _Flow, detail: str) -> None:
        flow.failed = True
        flow.gen.close()
        flow.chunk.skipped[flow.slot] = skipped_record(flow.problem, REJECTED, f"problem {flow.problem.id}: {detail}")
        self._finish(flow, None)

    def _finish(self, flow: _Flow, result: Any) -> None:
        flow.chunk.results[flow.slot] = result
        flow.chunk.left -= 1
        self.reporter.problems_done(1, resumed=False)

    def _save(self, chunk: _Chunk) -> list[dict[str, Any]]:
        done = iter(self.flows.finish(chunk, [r for slot, r in enumerate(chunk.results) if slot not in chunk.skipped]))
        records = [chunk.skipped[slot] if slot in chunk.skipped else next(done) for slot in range(len(chunk.problems))]
        self.work_dir.save_chunk(chunk.index, [p.id for p in chunk.problems], records)
        return records

    def _cancel(self) -> None:
        """On the way out (an error, Ctrl-C): drop what is queued, let nothing new start."""
        if isinstance(self.submitter, _Batcher):
            self.submitter.queued = []
        for future in list(self.pending):
            future.cancel()
        self.pending.clear()
