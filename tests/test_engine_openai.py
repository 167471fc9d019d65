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
from dart_hub.engines.openai import (
    OpenAIEngine,
    _derived_seed,
    _parse_retry_after,
    map_finish_reason,
    split_completion_tokens,
)
from dart_hub.errors import DartHubError
from tests.fake_openai_server import FakeOpenAIServer, generate_choice

MODEL = "fake/student"
SECRET = "sk-test-SECRET-do-not-leak-1234"


@pytest.fixture
def server():
    with FakeOpenAIServer(models=[MODEL]) as fake:
        yield fake


def make_engine(server: FakeOpenAIServer, **kwargs) -> OpenAIEngine:
    kwargs.setdefault("backoff_base", 0.001)
    kwargs.setdefault("backoff_max", 0.01)
    kwargs.setdefault("timeout", 10.0)
    return OpenAIEngine(kwargs.pop("model_id", MODEL), base_url=server.base_url, **kwargs)


def chat(question: str, **kwargs) -> GenerationRequest:
    return GenerationRequest.chat([{"role": "user", "content": question}], **kwargs)


def expected(prompt_key: str, seed, n: int, max_tokens: int = 256, stop=()) -> list[str]:
    return [generate_choice(prompt_key, seed, i, max_tokens, list(stop))[0] for i in range(n)]


def chat_key(question: str) -> str:
    return json.dumps([{"role": "user", "content": question}], sort_keys=True)


# ---------------------------------------------------------------- endpoints, order, tokens


def test_chat_requests_use_chat_endpoint_and_return_n_choices_in_index_order():
    with FakeOpenAIServer(models=[MODEL], shuffle_choices=True) as server:
        engine = make_engine(server)
        assert isinstance(engine, Engine)
        out = engine.generate([chat("What is 1+1?", n=4, seed=7, temperature=0.8)])
    assert [c.text for c in out[0]] == expected(chat_key("What is 1+1?"), 7, 4)
    assert all(c.finish_reason == "stop" for c in out[0])
    [post] = server.generation_requests
    assert post.path == "/v1/chat/completions"
    assert post.body["messages"] == [{"role": "user", "content": "What is 1+1?"}]
    assert post.body["model"] == MODEL
    assert (post.body["n"], post.body["temperature"], post.body["seed"]) == (4, 0.8, 7)
    assert post.authorization == "Bearer EMPTY"


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
    reseeded = engine.generate([chat("q", n=3, seed=6)])[0]
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


def test_usage_total_is_split_over_choices_and_sums_to_server_total(server):
    engine = make_engine(server)
    [out] = engine.generate([GenerationRequest(prompt="two words", n=6, seed=3, max_tokens=10)])
    true_counts = [generate_choice("two words", 3, i, 10, [])[2] for i in range(6)]
    assert sum(c.completion_tokens for c in out) == sum(true_counts)  # the response's total
    for c in out:
        assert c.prompt_tokens == 2
        if c.finish_reason == "length":
            assert c.completion_tokens == 10
    assert {c.finish_reason for c in out} == {"stop", "length"}  # the seed exercises both


def test_per_choice_token_counts_are_preferred(server):
    server.usage = "per_choice"
    engine = make_engine(server)
    [out] = engine.generate([chat("count me", n=5, seed=2, max_tokens=11)])
    expected_counts = [generate_choice(chat_key("count me"), 2, i, 11, [])[2] for i in range(5)]
    assert [c.completion_tokens for c in out] == expected_counts
    assert len(set(expected_counts)) > 1  # a split of the total would not give these


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


def test_progress_reports_each_batch_of_sequences(server):
    seen: list[int] = []
    make_engine(server).generate([chat(f"q{i}", n=i + 1) for i in range(4)], progress=seen.append)
    assert sorted(seen) == [1, 2, 3, 4]


def test_empty_call_sends_nothing(server):
    assert make_engine(server).generate([]) == []
    assert server.requests == []


# ---------------------------------------------------------------- n-capping servers


def test_server_capping_n_still_gives_n_distinct_reproducible_completions():
    with FakeOpenAIServer(models=[MODEL], max_n=2) as server:
        engine = make_engine(server)
        first = engine.generate([chat("capped", n=5, seed=11)])[0]
        again = engine.generate([chat("capped", n=5, seed=11)])[0]
    assert len(first) == 5
    assert len({c.text for c in first}) == 5  # extra calls use derived seeds, not copies
    assert first == again
    calls = server.generation_requests[:3]
    assert [r.body["n"] for r in calls] == [5, 2, 1]
    assert calls[0].body["seed"] == 11
    assert len({r.body["seed"] for r in calls}) == 3
    assert [c.text for c in first[:2]] == expected(chat_key("capped"), 11, 2)


def test_client_side_max_n_splits_up_front(server):
    engine = make_engine(server, max_n=3)
    [out] = engine.generate([GenerationRequest(prompt="split", n=7, seed=4)])
    assert len(out) == 7 and len({c.text for c in out}) == 7
    assert sorted(r.body["n"] for r in server.generation_requests) == [1, 3, 3]
    assert (
        out[:3] == make_engine(server).generate([GenerationRequest(prompt="split", n=3, seed=4)])[0]
    )


# ---------------------------------------------------------------- concurrency and event loops


def test_concurrency_bound_is_respected_and_used():
    with FakeOpenAIServer(models=[MODEL], delay=0.05) as server:
        engine = make_engine(server, concurrency=4)
        out = engine.generate([chat(f"q{i}") for i in range(24)])
    assert len(out) == 24
    assert server.max_in_flight <= 4
    assert server.max_in_flight >= 2  # requests really run in parallel


def test_capped_n_top_ups_also_respect_the_bound():
    with FakeOpenAIServer(models=[MODEL], max_n=1, delay=0.02) as server:
        engine = make_engine(server, concurrency=3)
        out = engine.generate([chat(f"q{i}", n=4) for i in range(5)])
    assert [len(cs) for cs in out] == [4] * 5
    assert len(server.generation_requests) == 20
    assert 2 <= server.max_in_flight <= 3


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


# ---------------------------------------------------------------- retries


def test_retries_recover_from_503_429_dropped_connections_and_timeouts(server):
    server.fail_next(503, times=2)
    server.fail_next(429)
    server.fail_next("drop")
    engine = make_engine(server, max_retries=5)
    out = engine.generate([chat("flaky", n=2, seed=1)])
    assert [c.text for c in out[0]] == expected(chat_key("flaky"), 1, 2)
    assert len(server.generation_requests) == 5

    server.fail_next("slow", delay=1.5)
    timed = make_engine(server, timeout=0.3)
    assert timed.generate([chat("flaky", n=2, seed=1)]) == out


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
    assert SECRET not in message and SECRET not in repr(info.value.__cause__)
    assert SECRET not in caplog.text and "retry 1/2" in caplog.text


def test_client_errors_are_not_retried(server):
    engine = make_engine(server)
    engine.check()
    engine._request_model = "not/served"  # as if the server dropped the model after the check
    with pytest.raises(DartHubError, match="HTTP 404"):
        engine.generate([chat("x")])
    assert len(server.generation_requests) == 1


# ---------------------------------------------------------------- server check and secrets


def test_unreachable_server_says_how_to_start_one():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    engine = OpenAIEngine(
        MODEL, base_url=f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_base=0.001
    )
    with pytest.raises(DartHubError) as info:
        engine.generate([chat("x")])
    message = str(info.value)
    assert message.startswith(
        f"cannot reach OpenAI-compatible server at http://127.0.0.1:{port}/v1"
    )
    assert f"vllm serve {MODEL}" in message and "--base-url" in message


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
    text = json.dumps(info) + repr(engine) + caplog.text
    assert SECRET not in text and "pw-SECRET" not in text
    expected_auth = "Basic " + base64.b64encode(b"user:pw-SECRET").decode()
    assert server.requests[0].authorization == expected_auth  # URL credentials -> basic auth


def test_bad_base_url_is_rejected_up_front():
    with pytest.raises(DartHubError, match="--base-url"):
        OpenAIEngine(MODEL, base_url="localhost:8000/v1")
    with pytest.raises(DartHubError, match="query string"):
        OpenAIEngine(MODEL, base_url="http://localhost:8000/v1?key=abc")


# ---------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("reason", "mapped"),
    [("stop", "stop"), ("length", "length"), ("eos", "stop"), (None, "stop"),
     ("abort", "length"), ("max_tokens", "length"), ("content_filter", "stop")],
)  # fmt: skip
def test_finish_reasons_map_to_stop_or_length(reason, mapped):
    assert map_finish_reason(reason) == mapped


def test_split_completion_tokens():
    # two "length" choices at max_tokens=10; the remaining 9 shared 1:2 by text length
    assert split_completion_tokens(
        29, ["length", "stop", "length", "stop"], ["x" * 50, "ab", "y", "abcde"], 10
    ) == [10, 3, 10, 6]
    assert split_completion_tokens(5, ["length", "length"], ["a", "b"], 10) == [3, 2]
    assert sum(split_completion_tokens(101, ["stop"] * 7, ["a" * i for i in range(7)], 50)) == 101


def test_retry_after_parsing_and_derived_seeds():
    assert _parse_retry_after("2") == 2.0
    assert _parse_retry_after("0.25") == 0.25
    assert _parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # a date in the past
    assert _parse_retry_after("soon") is None
    assert _derived_seed(42, 0) == 42
    assert len({_derived_seed(42, j) for j in range(1, 100)} | {42}) == 100
