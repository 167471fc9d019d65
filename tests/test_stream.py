"""The streaming scheduler (dart_hub.adaptation.stream) gives the chunked runner's records: with an
engine that only batches (scripted), with one that answers out of order through futures, after
a lost chunk, and with a request the server refuses."""

from __future__ import annotations

import concurrent.futures
import random
import re
import threading
import time

import pytest

from dart_hub.adaptation.pipeline import run_adapt
from dart_hub.adaptation.stream import run_streaming
from dart_hub.engines.openai import RequestRejected
from dart_hub.store import ProbeStore, WorkDir, fingerprint
from tests.scripted_engine import ScriptedEngine, kind_of
from tests.test_pipeline import PROMPTS, EqualityChecker, config, make_problem, student

LOOP = " ".join(["so the value is forty two"] * 30) + " \\boxed{42}"


class FutureEngine(ScriptedEngine):
    """A ScriptedEngine with submit(): answers come back on threads, in random order."""

    def __init__(self, respond, concurrency=8, reject=None, seed=0):
        super().__init__(respond)
        self.concurrency = concurrency
        self.reject = reject or (lambda request: False)
        self.pool = concurrent.futures.ThreadPoolExecutor(4)
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.submitted = []

    def submit(self, request):
        with self.lock:
            delay = self.rng.random() * 0.003
            self.submitted.append(request)

        def answer():
            time.sleep(delay)
            if self.reject(request):
                raise RequestRejected("server refused POST /chat/completions (HTTP 400: too long)")
            return ScriptedEngine.generate(self, [request])[0]

        return self.pool.submit(answer)


def problems_and_script(count=7, steps=5):
    problems = [make_problem(str(k), steps, boxed=k % 3 == 0) for k in range(count)]
    curves = {str(k): [4, 4 - k % 3, (k % 2) * 4, 1, 0][:steps] for k in range(count)}
    explore = {str(k): ["fine \\boxed{42}", LOOP, "wrong \\boxed{7}"][k % 3 :] or ["x"] for k in range(count)}
    return problems, student(curves, explore)


def work(tmp_path, name, cfg):
    inputs = {"config": cfg.to_dict()}
    return WorkDir(tmp_path / name, fingerprint(inputs), inputs)


# the rules as the tests before --rules pinned them, the paper's Algorithm 1, and robust with
# confirmation (its extra rounds of rollouts go through the same flows)
RULES = {"robust-0": {}, "paper": {"rules": "paper", "confirm": None}, "robust-confirm": {"confirm": 8}}


@pytest.mark.parametrize("rules", list(RULES))
@pytest.mark.parametrize("probe", ["scan", "adaptive"])
@pytest.mark.parametrize("strategy", ["full", "gap", "first", "static"])
def test_streaming_gives_the_chunked_records(tmp_path, strategy, probe, rules):
    if rules == "paper" and probe == "adaptive":
        pytest.skip("the paper's global peak cannot be searched adaptively (refused by the CLI)")
    problems, script = problems_and_script()
    cfg = config(chunk_size=3, strategy=strategy, probe=probe, **RULES[rules])
    chunked = run_adapt(ScriptedEngine(script), problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "c", cfg))
    batched = run_streaming(ScriptedEngine(script), problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "b", cfg))
    futures = run_streaming(FutureEngine(script, concurrency=5), problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "f", cfg))
    expected = [e.to_dict() for e in chunked]
    if rules == "robust-confirm" and strategy in ("full", "gap"):  # confirmation drew more than N_sim somewhere
        assert any(n > cfg.n_sim for e in chunked for n in (e.samples or []))
    assert [e.to_dict() for e in batched] == expected
    assert [e.to_dict() for e in futures] == expected
    chunk_files = lambda name: sorted(p.name for p in (tmp_path / name / "chunks").glob("*.jsonl"))  # noqa: E731
    assert chunk_files("b") == chunk_files("f") == chunk_files("c")
    for name in ("b", "f"):
        for path in (tmp_path / name / "chunks").glob("*.jsonl"):
            assert path.read_text() == (tmp_path / "c" / "chunks" / path.name).read_text()


def test_a_batching_engine_gets_the_next_chunks_probes_with_the_explorations(tmp_path):
    problems, script = problems_and_script(count=6)
    cfg = config(chunk_size=2)
    engine = ScriptedEngine(script)
    run_streaming(engine, problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "w", cfg))
    mixed = [call for call in engine.calls if {kind_of(r) for r in call} >= {"simulation", "exploration"} or {kind_of(r) for r in call} >= {"simulation", "solve"}]
    assert mixed, "no call carried one chunk's explorations and the next chunk's probes"
    assert len(engine.calls) < 2 * 3  # fewer calls than the chunked runner's two per chunk


def test_streaming_keeps_the_engine_busy_across_chunks(tmp_path):
    """With futures, problems of later chunks are in flight before earlier chunks finish."""
    problems, script = problems_and_script(count=8)
    cfg = config(chunk_size=1)
    engine = FutureEngine(script, concurrency=64)
    run_streaming(engine, problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "w", cfg))
    kinds = [kind_of(r) for r in engine.submitted]
    first_explore = next(i for i, kind in enumerate(kinds) if kind != "simulation")
    before = {re.search(r"Problem (\d+):", r.messages[-1][1]).group(1) for r in engine.submitted[:first_explore]}
    # chunks are started until 64 samples are waiting, before any answer is looked at
    assert len(before) >= 4


def test_streaming_resumes_after_lost_chunks_and_fills_the_probe_cache(tmp_path):
    problems, script = problems_and_script()
    cfg = config(chunk_size=2)
    store = ProbeStore(tmp_path / "probes", "key", {"x": 1})
    done = run_streaming(FutureEngine(script), problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "w", cfg), probe_store=store)
    assert len(list(store.path.glob("probes-*.jsonl.gz"))) == 4
    for path in sorted((tmp_path / "w" / "chunks").glob("chunk-0000[13]-*.jsonl")):
        path.unlink()
    engine = FutureEngine(script)
    store = ProbeStore(tmp_path / "probes", "key", {"x": 1})
    redo = run_streaming(engine, problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "w", cfg), probe_store=store)
    assert [e.to_dict() for e in redo] == [e.to_dict() for e in done]
    assert {kind_of(r) for r in engine.submitted} <= {"exploration", "solve"}  # probes came from the cache
    assert store.reused == 2


def test_a_refused_request_costs_its_problem_only_and_is_not_retried_on_resume(tmp_path):
    problems, script = problems_and_script()
    cfg = config(chunk_size=3)
    refuse = lambda request: "Problem 4:" in request.messages[-1][1]  # noqa: E731
    skipped = []
    out = run_streaming(FutureEngine(script, reject=refuse), problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "w", cfg), skipped=skipped)
    assert [e.id for e in out] == ["0", "1", "2", "3", "5", "6"]
    assert [(s.reason, "HTTP 400" in s.detail) for s in skipped] == [("request_rejected", True)]
    reference = run_adapt(ScriptedEngine(script), [p for p in problems if p.id != "4"], config(chunk_size=3), PROMPTS, EqualityChecker(), work(tmp_path, "ref", cfg))
    by_id = {e.id: e.to_dict() for e in reference}
    assert all(e.to_dict() == by_id[e.id] for e in out)
    # a resume loads the skipped line instead of asking the server again
    again_skipped = []
    quiet = FutureEngine(lambda r, i: pytest.fail("resume must not generate"))
    again = run_streaming(quiet, problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "w", cfg), skipped=again_skipped)
    assert [e.to_dict() for e in again] == [e.to_dict() for e in out]
    assert again_skipped == skipped and quiet.submitted == []
    # the chunked runner reads the same work dir
    chunked = run_adapt(quiet, problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "w", cfg))
    assert [e.to_dict() for e in chunked] == [e.to_dict() for e in out]


def test_an_error_that_is_not_the_requests_own_ends_the_run_keeping_finished_chunks(tmp_path):
    from dart_hub.errors import DartHubError

    problems, script = problems_and_script()
    cfg = config(chunk_size=1)

    def respond(request, i):
        if "Problem 5:" in request.messages[-1][1]:
            raise DartHubError("server gone")
        return script(request, i)

    with pytest.raises(DartHubError, match="server gone"):
        run_streaming(FutureEngine(respond, concurrency=2), problems, cfg, PROMPTS, EqualityChecker(), work(tmp_path, "w", cfg))
    kept = list((tmp_path / "w" / "chunks").glob("*.jsonl"))
    assert 1 <= len(kept) < len(problems)
