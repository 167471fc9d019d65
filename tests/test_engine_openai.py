"""OpenAIEngine against a local fake OpenAI-compatible server (tests/fake_openai_server.py)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import socket
import threading
import time

import pytest

from dart_hub.engines.base import Completion, Engine, GenerationRequest
from dart_hub.engines.openai import OpenAIEngine, default_request_timeout, map_finish_reason
from dart_hub.errors import DartHubError
from tests.fake_openai_server import FakeOpenAIServer, generate_choice

MODEL = "fake/student"
SECRET = "sk-test-SECRET-do-not-leak-1234"


@pytest.fixture(autouse=True)
def fast_backoff(monkeypatch):
    """The SDK's backoff starts at 0.5 s; tests retry in milliseconds (Retry-After still wins)."""
    import openai._base_client as base_client

    monkeypatch.setattr(base_client, "INITIAL_RETRY_DELAY", 0.001)
    monkeypatch.setattr(base_client, "MAX_RETRY_DELAY", 0.01)


@pytest.fixture
def server():
    with FakeOpenAIServer(models=[MODEL]) as fake:
        yield fake


def make_engine(server: FakeOpenAIServer, **kwargs) -> OpenAIEngine:
    kwargs.setdefault("request_timeout", 10.0)
    return OpenAIEngine(kwargs.pop("model_id", MODEL), base_url=server.base_url, **kwargs)


def chat(question: str, **kwargs) -> GenerationRequest:
    return GenerationRequest.chat([{"role": "user", "content": question}], **kwargs)


def expected(prompt_key: str, seed: int, n: int, max_tokens: int = 256, stop=(), offset=0) -> list[str]:
    """Sample k of (seed, offset) is the fake's one-choice answer at seed + offset + k."""
    return [
        generate_choice(prompt_key, seed + offset + k, 0, max_tokens, list(stop))[0]
        for k in range(n)
    ]


def chat_key(question: str) -> str:
    return json.dumps([{"role": "user", "content": question}], sort_keys=True)


# ---------------------------------------------------------------- endpoints, seeds, sampling fields


def test_chat_request_is_one_seeded_request_per_sample():
    with FakeOpenAIServer(models=[MODEL]) as server:
        engine = make_engine(server)
        assert isinstance(engine, Engine)
        out = engine.generate([chat("What is 1+1?", n=4, seed=7, temperature=0.8)])
    assert [c.text for c in out[0]] == expected(chat_key("What is 1+1?"), 7, 4)
    assert all(c.finish_reason == "stop" for c in out[0])
    posts = server.generation_requests
    assert len(posts) == 4 and {p.path for p in posts} == {"/v1/chat/completions"}
    assert sorted(p.body["seed"] for p in posts) == [7, 8, 9, 10]
    for post in posts:
        assert post.body["messages"] == [{"role": "user", "content": "What is 1+1?"}]
        assert (post.body["model"], post.body["n"], post.body["temperature"]) == (MODEL, 1, 0.8)
        assert post.authorization == "Bearer EMPTY"


def test_neutral_sampling_fields_arrive_and_override_the_servers_generation_config():
    # What `vllm serve Qwen/Qwen2.5-*-Instruct` does with fields a request leaves out.
    qwen_defaults = {"top_k": 20, "repetition_penalty": 1.05, "min_p": 0.0}
    with FakeOpenAIServer(models=[MODEL], generation_config=qwen_defaults) as server:
        out = make_engine(server).generate(
            [chat("q", n=2, seed=3, temperature=0.7), GenerationRequest(prompt="p", seed=1)]
        )
    for post in server.generation_requests:
        body = post.body
        assert (body["top_k"], body["min_p"], body["repetition_penalty"]) == (-1, 0.0, 1.0)
        assert (body["presence_penalty"], body["frequency_penalty"]) == (0.0, 0.0)
        assert server.non_neutral_sampling(body) == {}
    # the texts are those of a server without generation_config: nothing was filled in
    assert [c.text for c in out[0]] == expected(chat_key("q"), 3, 2)
    assert out[1][0].text == expected("p", 1, 1)[0]
    # and the fake really would have changed them had a field been left out
    assert server.non_neutral_sampling({}) == {"top_k": 20, "repetition_penalty": 1.05}


def test_sample_offset_continues_the_seed_stream(server):
    engine = make_engine(server)
    whole = engine.generate([chat("rounds", n=4, seed=5, temperature=1.0)])[0]
    first = engine.generate([chat("rounds", n=2, seed=5, temperature=1.0)])[0]
    rest = engine.generate([chat("rounds", n=2, seed=5, temperature=1.0, sample_offset=2)])[0]
    assert first + rest == whole
    assert len({c.text for c in whole}) == 4


def test_prompt_requests_use_completions_endpoint_and_keep_request_order(server):
    engine = make_engine(server, concurrency=3)
    prompts = [f"Problem {i}: compute {i} * 2." for i in range(10)]
    out = engine.generate([GenerationRequest(prompt=p, n=2, seed=i) for i, p in enumerate(prompts)])
    assert [[c.text for c in cs] for cs in out] == [
        expected(p, i, 2) for i, p in enumerate(prompts)
    ]
    assert {r.path for r in server.generation_requests} == {"/v1/completions"}
    assert all(r.body["prompt"] in prompts for r in server.generation_requests)


def test_same_seed_same_texts_whatever_else_is_in_the_call(server):
    engine = make_engine(server)
    alone = engine.generate([chat("q", n=3, seed=5)])[0]
    mixed = engine.generate([chat("other", n=2, seed=1), chat("q", n=3, seed=5)])[1]
    reseeded = engine.generate([chat("q", n=3, seed=60)])[0]
    assert alone == mixed
    assert [c.text for c in alone] != [c.text for c in reseeded]


def test_stop_max_tokens_and_top_p_are_forwarded_and_applied(server):
    engine = make_engine(server)
    stopped, cut = engine.generate(
        [
            GenerationRequest(prompt="p", n=2, stop=("so the", "</s>"), top_p=0.9),
            GenerationRequest(prompt="p", n=1, max_tokens=2),
        ]
    )
    bodies = sorted((r.body for r in server.generation_requests), key=lambda b: b["max_tokens"])
    assert bodies[0]["max_tokens"] == 2 and "stop" not in bodies[0]
    assert bodies[1]["stop"] == ["so the", "</s>"] and bodies[1]["top_p"] == 0.9
    assert all("boxed" not in c.text and c.finish_reason == "stop" for c in stopped)
    assert [c.text for c in stopped] == expected("p", 0, 2, stop=("so the", "</s>"))
    assert cut[0].finish_reason == "length" and cut[0].completion_tokens == 2
    assert len(cut[0].text.split()) == 2


def test_token_counts_come_from_each_responses_usage(server):
    engine = make_engine(server)
    [out] = engine.generate([GenerationRequest(prompt="two words", n=6, seed=3, max_tokens=10)])
    true_counts = [generate_choice("two words", 3 + k, 0, 10, [])[2] for k in range(6)]
    assert [c.completion_tokens for c in out] == true_counts
    assert all(c.prompt_tokens == 2 for c in out)


def test_no_usage_counts_with_tokenizer_or_zero(server):
    server.usage = "none"

    class WordTokenizer:
        bos_token = None

        def encode(self, text, add_special_tokens=True):
            return text.split()

    [[plain]] = make_engine(server).generate([GenerationRequest(prompt="a b c")])
    [[counted]] = make_engine(server, tokenizer=WordTokenizer()).generate(
        [GenerationRequest(prompt="a b c")]
    )
    assert (plain.prompt_tokens, plain.completion_tokens) == (0, 0)
    assert counted.prompt_tokens == 3
    assert counted.completion_tokens == len(counted.text.split()) > 0


def test_use_chat_false_renders_template_locally_without_bos(server):
    class TemplateTokenizer:
        bos_token = "<s>"

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert not tokenize and add_generation_prompt
            return "<s>" + "".join(f"[{m['role']}]{m['content']}" for m in messages) + "[assistant]"

    engine = make_engine(server, use_chat=False, tokenizer=TemplateTokenizer())
    [[c]] = engine.generate([chat("hi")])
    [post] = server.generation_requests
    assert post.path == "/v1/completions"
    assert post.body["prompt"] == "[user]hi[assistant]"
    assert c.text == expected("[user]hi[assistant]", 0, 1)[0]


def test_use_chat_false_without_tokenizer_is_an_actionable_error(server):
    with pytest.raises(DartHubError, match="pass a tokenizer"):
        make_engine(server, use_chat=False).generate([chat("hi")])


def test_progress_reports_every_sample(server):
    seen: list[int] = []
    make_engine(server).generate([chat(f"q{i}", n=i + 1) for i in range(4)], progress=seen.append)
    assert sorted(seen) == [1, 2, 3, 4]  # each request's samples, as it finishes


def test_empty_call_sends_nothing(server):
    assert make_engine(server).generate([]) == []
    assert server.requests == []


def test_a_server_capping_n_cannot_change_the_samples():
    with FakeOpenAIServer(models=[MODEL], max_n=1) as capped, FakeOpenAIServer(models=[MODEL]) as free:
        a = make_engine(capped).generate([chat("capped", n=5, seed=11)])[0]
        b = make_engine(free).generate([chat("capped", n=5, seed=11)])[0]
    assert a == b and len({c.text for c in a}) == 5


# ---------------------------------------------------------------- concurrency and event loops


def test_concurrency_bound_is_respected_and_used():
    with FakeOpenAIServer(models=[MODEL], delay=0.05) as server:
        engine = make_engine(server, concurrency=4)
        out = engine.generate([chat(f"q{i}", n=2) for i in range(12)])
    assert [len(cs) for cs in out] == [2] * 12
    assert server.max_in_flight <= 4
    assert server.max_in_flight >= 2  # requests really run in parallel


def test_generate_works_from_a_thread_and_inside_a_running_loop(server):
    engine = make_engine(server)
    reference = engine.generate([chat("loop", n=2)])
    box: dict[str, list[list[Completion]]] = {}
    thread = threading.Thread(
        target=lambda: box.setdefault("out", engine.generate([chat("loop", n=2)]))
    )
    thread.start()
    thread.join(10)

    async def inside_loop():
        return engine.generate([chat("loop", n=2)])

    assert box["out"] == reference
    assert asyncio.run(inside_loop()) == reference


# ---------------------------------------------------------------- retries and timeouts


def test_retries_recover_from_503_429_dropped_connections_and_timeouts(server):
    server.fail_next(503, times=2)
    server.fail_next(429)
    server.fail_next("drop")
    engine = make_engine(server, max_retries=5)
    out = engine.generate([chat("flaky", n=1, seed=1)])
    assert [c.text for c in out[0]] == expected(chat_key("flaky"), 1, 1)
    assert len(server.generation_requests) == 5
    assert engine.retries == 4

    server.fail_next("slow", delay=1.5)
    timed = make_engine(server, request_timeout=0.3)
    assert timed.generate([chat("flaky", n=1, seed=1)]) == out
    assert timed.retries == 1


def test_retries_are_counted_not_logged_one_line_each(server, caplog):
    server.fail_next(503, times=6)
    engine = make_engine(server, max_retries=6, concurrency=1)
    with caplog.at_level(logging.INFO):
        out = engine.generate([chat(f"q{i}") for i in range(4)])
    assert len(out) == 4 and engine.retries == 6
    ours = [r.getMessage() for r in caplog.records if r.name == "dart_hub.engines.openai"]
    assert len(ours) == 2  # the first retry, then the count at the end of the call
    assert "retrying a request (last failure: HTTP 503)" in ours[0]
    assert "6 HTTP retries in this call (last: HTTP 503)" in ours[1]
    # the SDK's own "Retrying request" lines are INFO: hidden at Python's default level
    loud = [r for r in caplog.records if r.levelno >= logging.WARNING and r.name != "dart_hub.engines.openai"]
    assert loud == []


def test_slow_server_is_retried_then_fails_with_the_timeout_and_what_to_do():
    with FakeOpenAIServer(models=[MODEL], delay=1.0) as server:
        engine = make_engine(server, request_timeout=0.2, max_retries=1)
        start = time.monotonic()
        with pytest.raises(DartHubError) as info:
            engine.generate([chat("slow")])
    assert time.monotonic() - start < 3
    message = str(info.value)
    assert "within 0.2 s, 2 times" in message and "--request-timeout" in message
    assert len(server.generation_requests) == 2


def test_default_request_timeout_is_bounded_and_fits_long_generations():
    assert default_request_timeout(256) == pytest.approx(132.8)
    assert 15 * 60 <= default_request_timeout(16_384) <= 20 * 60
    assert default_request_timeout(32_768) < 30 * 60


def test_retry_after_is_respected(server):
    server.fail_next(429, retry_after="0.4")
    engine = make_engine(server)
    start = time.monotonic()
    engine.generate([chat("wait")])
    assert time.monotonic() - start >= 0.4
    first, second = server.generation_requests
    assert second.at - first.at >= 0.4


def test_exhausted_retries_raise_without_the_api_key(caplog):
    with FakeOpenAIServer(models=[MODEL], always_fail=503) as server:
        engine = make_engine(server, api_key=SECRET, max_retries=2)
        url = server.base_url
        with caplog.at_level(logging.DEBUG), pytest.raises(DartHubError) as info:
            engine.generate([chat("doomed")])
    message = str(info.value)
    assert url in message and "3 times" in message and "HTTP 503" in message
    assert len(server.generation_requests) == 3
    assert server.generation_requests[0].authorization == f"Bearer {SECRET}"
    assert SECRET not in message and info.value.__cause__ is None
    assert SECRET not in caplog.text


def test_client_errors_are_not_retried(server):
    engine = make_engine(server)
    engine.check()
    engine._request_model = "not/served"  # as if the server dropped the model after the check
    with pytest.raises(DartHubError, match="HTTP 404"):
        engine.generate([chat("x")])
    assert len(server.generation_requests) == 1


# ---------------------------------------------------------------- first contact and secrets


def test_unreachable_server_fails_at_once_and_says_how_to_start_one():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = OpenAIEngine(MODEL, base_url=f"http://127.0.0.1:{port}/v1")
    start = time.monotonic()
    with pytest.raises(DartHubError) as info:
        engine.generate([chat("x")])
    assert time.monotonic() - start < 5
    message = str(info.value)
    assert message.startswith(f"cannot reach OpenAI-compatible server at http://127.0.0.1:{port}/v1")
    assert f"GET http://127.0.0.1:{port}/v1/models" in message
    assert f"vllm serve {MODEL}" in message and "--base-url" in message
    assert "\n" not in message


def test_server_that_accepts_but_never_answers_fails_within_seconds():
    # A listening socket nobody reads: connections are accepted by the kernel, never answered.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        port = sock.getsockname()[1]
        engine = OpenAIEngine(MODEL, base_url=f"http://127.0.0.1:{port}/v1")  # default timeouts
        start = time.monotonic()
        with pytest.raises(DartHubError) as info:
            engine.generate([chat("x")])
        elapsed = time.monotonic() - start
    assert elapsed < 15  # two attempts of 5 s, then one line
    message = str(info.value)
    assert "no answer (GET" in message and "2 attempts of 5 s" in message
    assert "vllm serve" in message and "\n" not in message


def test_wrong_model_lists_served_models():
    with FakeOpenAIServer(models=["Qwen/Qwen2.5-Math-7B", "other/model"]) as server:
        engine = make_engine(server, model_id="meta-llama/Llama-3.2-1B")
        with pytest.raises(DartHubError) as info:
            engine.generate([chat("x")])
    message = str(info.value)
    assert "Qwen/Qwen2.5-Math-7B" in message and "other/model" in message
    assert "--student" in message and "meta-llama/Llama-3.2-1B" in message
    assert server.generation_requests == []


def test_model_found_by_root_is_sent_under_its_served_name():
    with FakeOpenAIServer(models=["student"], roots={"student": "org/model"}) as server:
        engine = make_engine(server, model_id="org/model")
        [[c]] = engine.generate([chat("alias")])
        info = engine.describe()
    assert server.generation_requests[0].body["model"] == "student"
    assert c.text
    assert info["served_as"] == "student" and info["model"] == "org/model"


def test_missing_v1_in_base_url_is_suggested(server):
    engine = OpenAIEngine(MODEL, base_url=f"http://127.0.0.1:{server.port}")
    with pytest.raises(DartHubError, match=r"try --base-url http://127\.0\.0\.1:\d+/v1"):
        engine.check()


def test_wrong_api_key_says_which_env_var_to_set_and_never_echoes_it():
    with FakeOpenAIServer(models=[MODEL], api_key="right-key") as server:
        with pytest.raises(DartHubError) as info:
            make_engine(server, api_key=SECRET).generate([chat("x")])
        ok = make_engine(server, api_key="right-key").generate([chat("x")])
    assert "OPENAI_API_KEY" in str(info.value) and "401" in str(info.value)
    assert SECRET not in str(info.value)
    assert ok[0][0].text


def test_api_key_defaults_to_env_var(server, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    make_engine(server).generate([chat("env")])
    assert server.generation_requests[0].authorization == f"Bearer {SECRET}"


def test_describe_has_served_models_and_no_credentials(server, caplog):
    url = server.base_url.replace("http://", "http://user:pw-SECRET@")
    engine = OpenAIEngine(MODEL, base_url=url + "/", api_key=SECRET, concurrency=8)
    with caplog.at_level(logging.DEBUG):
        info = engine.describe()
    assert info["engine"] == "openai" and info["model"] == MODEL
    assert info["base_url"] == server.base_url
    assert info["served_models"] == [MODEL] and info["concurrency"] == 8
    assert info["client"].startswith("openai ")
    text = json.dumps(info) + repr(engine) + caplog.text
    assert SECRET not in text and "pw-SECRET" not in text
    expected_auth = "Basic " + base64.b64encode(b"user:pw-SECRET").decode()
    assert server.requests[0].authorization == expected_auth  # URL credentials -> basic auth


def test_bad_base_url_is_rejected_up_front():
    with pytest.raises(DartHubError, match="--base-url"):
        OpenAIEngine(MODEL, base_url="localhost:8000/v1")
    with pytest.raises(DartHubError, match="query string"):
        OpenAIEngine(MODEL, base_url="http://localhost:8000/v1?key=abc")


# ---------------------------------------------------------------- the CLI


def test_cli_request_timeout_reaches_the_engine(tmp_path):
    from click.testing import CliRunner

    from dart_hub.cli import cli

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"question": "1+1?", "solution": "So \\\\boxed{2}.", "answer": "2"}) + "\n")
    with FakeOpenAIServer(models=[MODEL], delay=1.0) as server:
        result = CliRunner().invoke(cli, [
            "adapt", "--student", MODEL, "--dataset", str(data), "--engine", "openai",
            "--base-url", server.base_url, "--request-timeout", "0.2", "--max-retries", "0",
            "--work-dir", str(tmp_path / "w"), "--output", str(tmp_path / "out"), "--quiet",
        ])  # fmt: skip
    assert result.exit_code != 0
    assert "within 0.2 s, 1 times" in result.output and "--request-timeout" in result.output
    assert "Traceback" not in result.output


# ---------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("reason", "mapped"),
    [("stop", "stop"), ("length", "length"), ("eos", "stop"), (None, "stop"),
     ("abort", "abort"), ("max_tokens", "length"), ("content_filter", "stop")],
)  # fmt: skip
def test_finish_reasons_map_to_stop_or_length(reason, mapped):
    assert map_finish_reason(reason) == mapped


# ---------------------------------------------------------------- one client, n per request, aborts


@pytest.fixture
def fast_abort(monkeypatch):
    import dart_hub.engines.openai as module

    monkeypatch.setattr(module, "ABORT_BACKOFF", 0.001)


def test_n_samples_in_one_request_on_vllm_equal_one_request_per_sample():
    """vLLM seeds sample i of an n-sample request with seed + i: one request with n samples
    and n seeded one-sample requests give the same texts and token counts."""
    requests = [
        chat("batched", n=4, seed=7, temperature=0.8),
        chat("batched", n=2, seed=7, temperature=0.8, sample_offset=2),
        GenerationRequest(prompt="raw prompt", n=3, seed=11, max_tokens=5),
    ]
    with FakeOpenAIServer(models=[MODEL], vllm=True) as server:
        batched = make_engine(server)
        out_batched = batched.generate(requests)
        posts_batched = list(server.generation_requests)
        server.requests.clear()
        single = make_engine(server, sample_batching="off")
        out_single = single.generate(requests)
        posts_single = list(server.generation_requests)
    assert out_batched == out_single
    assert [c.text for c in out_batched[0]] == expected(chat_key("batched"), 7, 4)
    assert out_batched[1] == out_batched[0][2:]  # the offset continues the same stream
    # the requests go out concurrently, so the server sees them in any order
    assert sorted(p.body["n"] for p in posts_batched) == [2, 3, 4]
    assert sorted(p.body["seed"] for p in posts_batched) == [7, 9, 11]
    assert len(posts_single) == 9 and {p.body["n"] for p in posts_single} == {1}
    assert "n samples per request" in batched.describe()["sampling"]
    assert "one request per sample" in single.describe()["sampling"]
    batched.close()
    single.close()


def test_servers_that_are_not_vllm_get_one_request_per_sample(server):
    make_engine(server).generate([chat("plain", n=3)])
    assert [p.body["n"] for p in server.generation_requests] == [1, 1, 1]


def test_an_n_request_answered_with_fewer_choices_falls_back_to_one_request_per_sample():
    with FakeOpenAIServer(models=[MODEL], vllm=True, max_n=1) as capped:
        engine = make_engine(capped)
        out = engine.generate([chat("capped", n=3, seed=5)])
    assert [c.text for c in out[0]] == expected(chat_key("capped"), 5, 3)
    assert [p.body["n"] for p in capped.generation_requests] == [3, 1, 1, 1]
    assert "one request per sample" in engine.describe()["sampling"]


def test_one_tcp_connection_per_pool_slot_across_calls():
    with FakeOpenAIServer(models=[MODEL], delay=0.01) as server:
        engine = make_engine(server, concurrency=6)
        for call in range(4):
            out = engine.generate([chat(f"c{call}-{i}", n=2) for i in range(30)])
            assert len(out) == 30
        engine.close()
    assert len(server.generation_requests) == 4 * 30 * 2
    assert server.max_in_flight <= 6
    assert 1 <= server.connections <= 6  # not one per request, not one per call


def test_pool_is_sized_by_concurrency_past_the_sdks_1000_cap():
    engine = OpenAIEngine(MODEL, base_url="http://127.0.0.1:9/v1", concurrency=2050)
    try:
        engine._run(_client_of(engine))
        pools = [c._client._transport._pool for c in engine._clients]
        assert sum(p._max_connections for p in pools) >= 2050 and len(pools) == 33
        assert all(p._max_connections == p._max_keepalive_connections <= 64 for p in pools)
    finally:
        engine.close()


async def _client_of(engine):
    return engine._client()


def test_submit_returns_futures_that_share_the_engines_slots(server):
    engine = make_engine(server, concurrency=3)
    engine.check()
    futures = [engine.submit(chat(f"s{i}", n=2, seed=i)) for i in range(5)]
    results = [f.result(10) for f in futures]
    assert [[c.text for c in r] for r in results] == [expected(chat_key(f"s{i}"), i, 2) for i in range(5)]
    assert server.max_in_flight <= 3
    engine.close()
    with pytest.raises(RuntimeError):
        engine.submit(chat("late"))


def test_aborted_samples_are_retried_not_recorded_as_cut(server, fast_abort):
    server.fail_next("abort")
    engine = make_engine(server)
    out = engine.generate([chat("aborted", n=1, seed=3)])
    assert [c.text for c in out[0]] == expected(chat_key("aborted"), 3, 1)
    assert out[0][0].finish_reason == "stop"
    assert len(server.generation_requests) == 2 and engine.aborted == 1


def test_a_sample_aborted_every_time_is_that_requests_failure(server, fast_abort):
    from dart_hub.engines.openai import RequestRejected

    server.fail_next("abort", times=3)
    engine = make_engine(server, max_retries=2)
    with pytest.raises(RequestRejected, match="aborted the same request 3 times"):
        engine.generate([chat("aborted")])


def test_a_400_is_the_requests_own_failure_and_max_model_len_is_learned():
    from dart_hub.engines.openai import RequestRejected

    with FakeOpenAIServer(models=[MODEL], max_model_len=8, reject_over=True) as server:
        engine = make_engine(server)
        assert engine.check() == [MODEL] and engine.max_model_len == 8
        assert engine.describe()["max_model_len"] == 8
        ok = engine.submit(chat("short"))
        bad = engine.submit(chat("far too many words for the context of this model"))
        assert len(ok.result(10)) == 1
        with pytest.raises(RequestRejected, match="HTTP 400.*maximum context length"):
            bad.result(10)
        assert isinstance(RequestRejected("x"), DartHubError)


def test_answers_near_the_timeout_print_the_queue_arithmetic(caplog):
    with FakeOpenAIServer(models=[MODEL], delay=0.6) as server:
        engine = make_engine(server, request_timeout=1.0, concurrency=8)
        with caplog.at_level(logging.WARNING):
            engine.generate([chat(f"q{i}") for i in range(24)])
    ours = [r.getMessage() for r in caplog.records if "timeout" in r.getMessage()]
    assert len(ours) == 1, ours
    assert "finished per second" in ours[0] and "--concurrency" in ours[0]
