"""A small OpenAI-compatible server for tests: loopback only, deterministic, with fault knobs.

    with FakeOpenAIServer(models=["fake/student"]) as server:
        engine = OpenAIEngine("fake/student", base_url=server.base_url)
        server.fail_next(503, times=2)          # the next 2 generation requests answer 503
        server.fail_next(429, retry_after="0.2")
        server.fail_next("drop")                # close the connection without an answer
        server.fail_next("slow", delay=1.0)     # answer after 1 s
        server.fail_next("abort")               # answer with every choice aborted
        ...
        server.generation_requests              # logged bodies, in arrival order
        server.max_in_flight                    # most generation requests handled at once
        server.connections                      # TCP connections accepted

Generation is a pure function of (prompt or messages, seed, choice index): a few "words" (one
word = one token) ending in "so the answer is \\boxed{D}". `max_tokens` truncates (finish
"length"), `stop` strings cut the text before the first match (finish "stop").
Faults apply to /chat/completions and /completions only, in the order they were queued.

`generation_config` emulates vLLM / SGLang filling every sampling field a request leaves out
from the model's generation_config.json: a field that is missing from the request takes the
configured value, and any non-neutral effective value changes the generated text.
"""

from __future__ import annotations

import hashlib
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def fake_text(prompt_key: str, seed: Any, index: int) -> str:
    """The full (untruncated) text the fake model generates for one choice."""
    digest = hashlib.sha256(f"{prompt_key}|{seed}|{index}".encode()).hexdigest()
    n_words = 3 + int(digest[0], 16) % 6
    words = [f"w{digest[2 * i + 1 : 2 * i + 5]}" for i in range(n_words)]
    answer = int(digest[-4:], 16) % 10
    return " ".join(words) + f" so the answer is \\boxed{{{answer}}}"


def count_tokens(text: str) -> int:
    return len(text.split())


def generate_choice(prompt_key: str, seed: Any, index: int, max_tokens: int, stop: Sequence[str]):
    """(text, finish_reason, completion_tokens) as the fake model produces them."""
    text = fake_text(prompt_key, seed, index)
    finish = "stop"
    cut = min((text.find(s) for s in stop if s and s in text), default=-1)
    if cut >= 0:
        text = text[:cut]
    words = text.split(" ")
    if count_tokens(text) > max_tokens:
        text, finish = " ".join(words[:max_tokens]), "length"
    return text, finish, count_tokens(text)


@dataclass
class Fault:
    kind: str  # "status" | "drop" | "slow" | "abort"
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0


@dataclass
class LoggedRequest:
    method: str
    path: str
    body: dict[str, Any] | None
    authorization: str | None
    at: float = field(default_factory=time.monotonic)


class FakeOpenAIServer:
    """Threaded HTTP server on 127.0.0.1 (an OS-chosen port) speaking enough of the OpenAI API.

    models: served ids; roots: optional {id: root} (vLLM's `root`, the path given to vllm serve).
    api_key: when set, every endpoint requires `Authorization: Bearer <api_key>` (else 401).
    max_n: cap on the choices returned per request (like servers that limit n).
    delay: seconds each generation request takes (to observe concurrency).
    usage: "total" (vLLM/OpenAI: one usage per response), "per_choice" (also `token_ids` per
        choice, like vLLM's return_token_ids) or "none" (no usage at all).
    shuffle_choices: return choices out of index order.
    always_fail: an HTTP status every generation request answers (after queued faults).
    generation_config: server-side defaults for missing sampling fields (see module docstring).
    vllm: behave like `vllm serve`: /models says owned_by "vllm", choice i of a request with
        seed s is the text of a one-choice request with seed s + i, and `return_token_ids`
        adds each choice's token ids.
    max_model_len: reported per model by /models (vLLM does); with `reject_over`, prompts
        longer than it (in words) answer HTTP 400 like vLLM's context-length error.
    """

    def __init__(
        self,
        models: Sequence[str] = ("fake/student",),
        *,
        roots: dict[str, str] | None = None,
        api_key: str | None = None,
        max_n: int | None = None,
        delay: float = 0.0,
        usage: str = "total",
        shuffle_choices: bool = False,
        always_fail: int | None = None,
        generation_config: dict[str, Any] | None = None,
        vllm: bool = False,
        max_model_len: int | None = None,
        reject_over: bool = False,
    ) -> None:
        self.models = list(models)
        self.roots = dict(roots or {})
        self.api_key = api_key
        self.max_n = max_n
        self.delay = delay
        self.usage = usage
        self.shuffle_choices = shuffle_choices
        self.always_fail = always_fail
        self.generation_config = dict(generation_config or {})
        self.vllm = vllm
        self.max_model_len = max_model_len
        self.reject_over = reject_over
        self.connections = 0
        self.requests: list[LoggedRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> FakeOpenAIServer:
        handler = type("_BoundHandler", (_Handler,), {"fake": self})
        httpd = _QuietServer(("127.0.0.1", 0), handler)
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever, args=(0.05,), name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # ---------------------------------------------------------------- knobs and log

    def fail_next(
        self,
        kind: int | str,
        *,
        times: int = 1,
        retry_after: str | None = None,
        delay: float = 0.0,
    ) -> None:
        """Queue faults for the next generation requests: an HTTP status, "drop" or "slow"."""
        if isinstance(kind, int):
            fault = Fault("status", status=kind, retry_after=retry_after)
        elif kind in ("drop", "slow", "abort"):
            fault = Fault(kind, delay=delay)
        else:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            self._faults.extend([fault] * times)

    @property
    def generation_requests(self) -> list[LoggedRequest]:
        return [r for r in self.requests if r.path.endswith("completions")]

    def _next_fault(self) -> Fault | None:
        with self._lock:
            if self._faults:
                return self._faults.popleft()
        if self.always_fail is not None:
            return Fault("status", status=self.always_fail)
        return None

    # ---------------------------------------------------------------- responses

    def completion_body(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        chat = path.endswith("/chat/completions")
        if chat:
            prompt_key = json.dumps(body["messages"], sort_keys=True)
            prompt_tokens = sum(count_tokens(m["content"]) for m in body["messages"])
        else:
            prompt_key = body["prompt"]
            prompt_tokens = count_tokens(prompt_key)
        altered = self.non_neutral_sampling(body)
        if altered:  # e.g. a repetition penalty from generation_config: different texts
            prompt_key += "|" + json.dumps(altered, sort_keys=True)
        n = int(body.get("n") or 1)
        if self.max_n is not None:
            n = min(n, self.max_n)
        stop = body.get("stop") or []
        if isinstance(stop, str):
            stop = [stop]
        max_tokens = int(body.get("max_tokens") or 16)
        choices = []
        total = 0
        for i in range(n):
            if self.vllm and body.get("seed") is not None:  # vLLM: child i is seeded seed + i
                text, finish, tokens = generate_choice(
                    prompt_key, int(body["seed"]) + i, 0, max_tokens, stop
                )
            else:
                text, finish, tokens = generate_choice(
                    prompt_key, body.get("seed"), i, max_tokens, stop
                )
            total += tokens
            choice: dict[str, Any] = {"index": i, "finish_reason": finish}
            if chat:
                choice["message"] = {"role": "assistant", "content": text}
            else:
                choice["text"] = text
            if self.usage == "per_choice" or (self.vllm and body.get("return_token_ids")):
                choice["token_ids"] = list(range(tokens))
            choices.append(choice)
        if self.shuffle_choices:
            random.Random(0).shuffle(choices)
        out: dict[str, Any] = {
            "id": "fake",
            "object": "chat.completion" if chat else "text_completion",
            "model": body.get("model"),
            "choices": choices,
        }
        if self.usage != "none":
            out["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": total,
                "total_tokens": prompt_tokens + total,
            }
        return out


    def non_neutral_sampling(self, body: dict[str, Any]) -> dict[str, Any]:
        """Effective sampling fields (request, else generation_config) that are not neutral."""
        neutral = {
            "top_k": (-1, 0), "min_p": (0, 0.0), "repetition_penalty": (1, 1.0),
            "presence_penalty": (0, 0.0), "frequency_penalty": (0, 0.0),
        }  # fmt: skip
        altered = {}
        for key, values in neutral.items():
            value = body[key] if key in body else self.generation_config.get(key)
            if value is not None and value not in values:
                altered[key] = value
        return altered


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # bursts of concurrent connects must not hit the listen backlog

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that time out and hang up are expected here


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    fake: FakeOpenAIServer  # set on the per-server subclass

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        with self.fake._lock:
            self.fake.connections += 1

    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        self._send_json(status, {"error": {"message": message, "code": status}}, headers)

    def _authorized(self, auth: str | None) -> bool:
        if self.fake.api_key is None:
            return True
        if auth == f"Bearer {self.fake.api_key}":
            return True
        self._error(401, f"Incorrect API key provided: {auth}")  # echoes it, like some servers
        return False

    def do_GET(self) -> None:
        fake = self.fake
        auth = self.headers.get("Authorization")
        with fake._lock:
            fake.requests.append(LoggedRequest("GET", self.path, None, auth))
        if not self._authorized(auth):
            return
        if self.path.rstrip("/") == "/v1/models":
            data = [
                {"id": m, "object": "model", "owned_by": "vllm" if fake.vllm else "fake",
                 "root": fake.roots.get(m, m),
                 **({"max_model_len": fake.max_model_len} if fake.max_model_len else {})}
                for m in fake.models
            ]  # fmt: skip
            self._send_json(200, {"object": "list", "data": data})
        else:
            self._error(404, f"no route {self.path}")

    def do_POST(self) -> None:
        fake = self.fake
        auth = self.headers.get("Authorization")
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            self._error(400, "body is not JSON")
            return
        with fake._lock:
            fake.requests.append(LoggedRequest("POST", self.path, body, auth))
        if not self._authorized(auth):
            return
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            self._error(404, f"no route {self.path}")
            return
        if body.get("model") not in fake.models:
            self._error(404, f"The model `{body.get('model')}` does not exist.")
            return
        with fake._lock:
            fake.in_flight += 1
            fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
        try:
            fault = fake._next_fault()
            if fault is not None and fault.kind == "drop":
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            if fault is not None and fault.kind == "slow":
                time.sleep(fault.delay)
            if fake.delay:
                time.sleep(fake.delay)
            if fake.reject_over and fake.max_model_len and _prompt_words(body) > fake.max_model_len:
                self._error(400, "This model's maximum context length is "
                            f"{fake.max_model_len} tokens. However, you requested more.")
                return
            if fault is not None and fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                self._error(fault.status, f"injected failure {fault.status}", headers)
                return
            payload = fake.completion_body(self.path, body)
            if fault is not None and fault.kind == "abort":
                for choice in payload["choices"]:
                    choice["finish_reason"] = "abort"
        finally:
            with fake._lock:
                fake.in_flight -= 1
        self._send_json(200, payload)


def _prompt_words(body: dict[str, Any]) -> int:
    if "messages" in body:
        return sum(count_tokens(m["content"]) for m in body["messages"])
    return count_tokens(body.get("prompt") or "")
