"""OpenAI-compatible HTTP engine: how a run scales past one machine.

Sends each `GenerationRequest` to a server that speaks the OpenAI API (`vllm serve MODEL`,
an SGLang router in front of many workers, ...) through the official `openai` SDK
(`AsyncOpenAI`): the SDK owns the HTTP client, retries with exponential backoff and jitter,
`Retry-After`, and timeouts. This module adds only what the SDK does not do:

- Long-lived clients. The engine owns one event loop (on a daemon thread) and its HTTP clients
  for its whole life: `concurrency` connections in all, all kept alive between requests (the
  SDK's default pool caps a process at 1,000 connections and keeps only 100 alive, so most
  requests opened a new TCP connection), spread over pools of at most 64 connections (a pool's
  bookkeeping walks all its connections on every request), HTTP/2 when `h2` is installed and
  an HTTPS server offers it. `generate()` and `submit()` both run on that loop; `close()`
  closes the pool.
- Samples. Sample k of a request's seed stream has seed `request seed + k` (k counts from
  `sample_offset`), the rule the offline vLLM engine uses and the one vLLM itself applies to
  the children of an `n > 1` request. On a vLLM server (its `/models` says `owned_by: vllm`)
  a request's samples go out as one HTTP request with `n` samples and seed
  `seed + sample_offset` (`sample_batching="auto"`; the prompt is sent once instead of n
  times); elsewhere, or with `sample_batching="off"`, each sample is one request with `n=1`
  and its own seed. Both give the same texts on a server that follows vLLM's rule (tested on
  the fake server); a server that returns fewer choices than asked, or no per-choice token
  counts, makes the engine fall back to one request per sample for the rest of the run.
- Neutral sampling. Every sampling field the offline engines leave neutral is sent explicitly
  (`top_k=-1`, `min_p=0`, `repetition_penalty=1`, `presence_penalty=0`, `frequency_penalty=0`):
  vLLM and SGLang otherwise fill a missing field from the model's `generation_config.json`
  (Qwen2.5-Instruct: `top_k` 20, `repetition_penalty` 1.05), and rollouts would differ from the
  offline engines'.
- Bounded concurrency: at most `concurrency` samples in flight for the whole engine (a request
  with n samples takes n slots), whoever submits them.
- Aborted samples (`finish_reason: "abort"`: the server dropped the sequence, e.g. preempted
  or shutting down) are retried like a failed request, never recorded as length-cut samples.
- Timeouts. The first contact (`GET /models`) must answer within `probe_timeout` seconds
  (one retry), so a wrong URL or a hung server fails in seconds with one line that says what was
  tried and what to do. A generation request may take `request_timeout` seconds (default:
  120 s plus 1 s per 20 tokens of its `max_tokens`, i.e. about 15 minutes at 16k tokens).
  That time includes the time a request waits in the server's queue, which the client cannot
  see: when answers come close to the timeout the engine prints, once, the arithmetic
  (requests in flight / samples finished per second = seconds a request waits) and the
  `--concurrency` that keeps the wait inside the timeout.
- Retries are counted, not logged one by one: one warning at the first retry, then one line
  with the running count at most every 30 s, and a summary at the end of the call.
- Errors are one line, name the server and what to do, and never carry the API key. A request
  the server refuses (HTTP 400/422, e.g. a prompt longer than its context) raises
  `RequestRejected`, which a caller can charge to that request's problem only.
- Token counts: `usage` of each single-choice response, the choices' `token_ids` of an
  n-sample response (vLLM's `return_token_ids`); without them, a `tokenizer` (if given) counts
  the texts, else counts are 0.
- Context length: vLLM's `/models` reports `max_model_len`; it is kept in `max_model_len`
  for admission checks.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import importlib.util
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import httpx2
import openai

from dart_hub.engines.base import Completion, GenerationRequest, ProgressCallback
from dart_hub.errors import DartHubError

logger = logging.getLogger(__name__)

T = TypeVar("T")

API_KEY_ENV = "OPENAI_API_KEY"
PROBE_TIMEOUT = 5.0  # seconds for the first contact (GET /models), per attempt
PROBE_RETRIES = 1
CONNECT_TIMEOUT = 10.0
RETRY_REPORT_EVERY = 30.0  # seconds between two "retries so far" lines
# Sent with every generation request: the values under which the offline engines sample.
NEUTRAL_EXTRA_BODY = {"top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0}
NEUTRAL_PENALTIES = {"presence_penalty": 0.0, "frequency_penalty": 0.0}
KEEPALIVE_EXPIRY = 300.0  # seconds an idle pooled connection stays open
# Connections per HTTP pool: the pool's bookkeeping walks all its connections on every request
# (httpcore), so one pool of 2,048 made CPU per request grow with --concurrency; the engine
# spreads its `concurrency` connections over pools of at most this many.
POOL_CONNECTIONS = 64
ABORT_BACKOFF = 0.5  # seconds before the first retry of an aborted sample, doubling, capped:
ABORT_BACKOFF_MAX = 8.0
SAMPLE_BATCHING = ("auto", "on", "off")
SLOW_SHARE = 0.5  # answers slower than this share of the timeout trigger the queue arithmetic


class RequestRejected(DartHubError):
    """The server refused one request (HTTP 400/422, or kept aborting it): the request's own
    fault, not the server's or the run's. Callers may skip the request's problem and go on."""

    reason = "request_rejected"


def default_request_timeout(max_tokens: int) -> float:
    """Seconds one generation request may take: 120 s + 1 s per 20 tokens (a loaded server
    decodes each sequence at 20+ tokens/s), so 16k tokens get about 15 minutes, not forever."""
    return 120.0 + max_tokens / 20.0


class OpenAIEngine:
    """Generate through an OpenAI-compatible server (vLLM serve, SGLang router, ...).

    Args:
        model_id: the model the server must serve (sent as `model`).
        base_url: API root, e.g. "http://localhost:8000/v1".
        api_key: sent as `Authorization: Bearer ...`; default: $OPENAI_API_KEY, else "EMPTY"
            (what vLLM accepts when started without --api-key). Never logged or shown.
        concurrency: most samples in flight at once, for the engine as a whole; also the size
            of the HTTP connection pool.
        request_timeout: seconds one generation request may take; None: see
            `default_request_timeout` (scales with the request's max_tokens).
        max_retries: retries per HTTP request after the first attempt (the SDK's backoff:
            0.5 s doubling, capped at 8 s, or the server's Retry-After up to 2 minutes); also
            the retries of an aborted sample.
        use_chat: True: chat requests go to /chat/completions (server-side chat template).
            False: chat messages are rendered here with `tokenizer.apply_chat_template`
            (generation prompt added, a leading BOS removed since the server adds one) and sent
            to /completions, so the template is exactly the local one.
        tokenizer: a transformers tokenizer or a Hub id to load one; needed for use_chat=False,
            and used to count tokens when the server returns no `usage`.
        probe_timeout: seconds the first contact (GET /models) may take per attempt.
        sample_batching: "auto" (n samples in one request on vLLM servers), "on", "off"
            (one request per sample); see the module docstring.

    The server is checked once (`check()`), lazily on the first `generate()`/`describe()`.
    `generate()` is synchronous (callable from any thread, also from inside a running event
    loop); `submit()` returns a future at once, for callers that keep work flowing.
    """

    name = "openai"

    def __init__(
        self,
        model_id: str,
        *,
        base_url: str,
        api_key: str | None = None,
        concurrency: int = 256,
        request_timeout: float | None = None,
        max_retries: int = 5,
        use_chat: bool = True,
        tokenizer: Any = None,
        probe_timeout: float = PROBE_TIMEOUT,
        sample_batching: str = "auto",
    ) -> None:
        if concurrency < 1:
            raise DartHubError("concurrency must be >= 1")
        if max_retries < 0:
            raise DartHubError("max_retries must be >= 0")
        if request_timeout is not None and request_timeout <= 0:
            raise DartHubError("--request-timeout must be > 0 seconds")
        if sample_batching not in SAMPLE_BATCHING:
            raise DartHubError(f"--sample-batching must be one of {', '.join(SAMPLE_BATCHING)}")
        parts = urlsplit(base_url.strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise DartHubError(
                f"--base-url must look like http://HOST:PORT/v1, got {_strip_credentials(base_url)!r}"
            )
        if parts.query or parts.fragment:
            raise DartHubError(
                "--base-url must not have a query string; give the API root, e.g. http://HOST:PORT/v1"
            )
        self.model_id = model_id
        # user:password@ in the URL becomes HTTP basic auth (then no Bearer key is sent); it is
        # removed from the URL itself so that no log line shows it.
        self.display_url = _strip_credentials(base_url.strip()).rstrip("/")
        self.base_url = self.display_url
        self._basic_auth = (
            (unquote(parts.username or ""), unquote(parts.password or ""))
            if "@" in parts.netloc
            else None
        )
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or "EMPTY"
        self.concurrency = concurrency
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.use_chat = use_chat
        self.probe_timeout = probe_timeout
        self.sample_batching = sample_batching
        self._tokenizer = tokenizer
        password = self._basic_auth[1] if self._basic_auth else None
        self._secrets = [s for s in (self._api_key, password) if s and s != "EMPTY"]
        self._served: list[str] | None = None  # None: not checked yet
        self._owners: dict[str, str] = {}
        self.max_model_len: int | None = None  # from the server's /models, when it says
        self._request_model = model_id
        self._batched = False  # decided by check(): n samples per request
        self._closed = False
        self.retries = 0  # HTTP retries over the engine's life (also in describe())
        self.aborted = 0  # aborted samples retried over the engine's life
        self._retry_reported_at: float | None = None
        self._last_failure = ""
        self.http2 = importlib.util.find_spec("h2") is not None
        self._loop: _LoopThread | None = None
        self._client_obj: openai.AsyncOpenAI | None = None
        self._clients: list[openai.AsyncOpenAI] = []  # pools of <= POOL_CONNECTIONS connections
        self._client_load: list[int] = []  # requests in flight per pool
        self._slots: _Slots | None = None
        self._lock = threading.Lock()
        # Queue arithmetic: samples finished recently (for the throughput) and the warning.
        self._finished_at: collections.deque[float] = collections.deque(maxlen=4096)
        self.in_flight = 0  # samples now in flight
        self._queue_warned = False

    # ------------------------------------------------------------------ public API

    def check(self) -> list[str]:
        """GET /models: fail with an actionable error unless the server serves `model_id`.

        Returns the served model ids. Done once; later calls return the cached list.
        """
        if self._served is None:
            self._run(self._check_once())
        return list(self._served or [])

    def submit(self, request: GenerationRequest) -> concurrent.futures.Future[list[Completion]]:
        """Send one request now; the future holds its `n` completions in order (or the error).
        The engine's slots bound what is in flight; submit as much as you like."""
        if self._closed:
            raise RuntimeError("OpenAIEngine.submit() called after close()")
        if self._served is None:
            self.check()  # once, before the first request: one GET /models, not one per request
        prepared = self._prepare(request)
        return self._loop_thread().submit(self._complete(request, prepared))

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressCallback | None = None
    ) -> list[list[Completion]]:
        """For each request in order, its `n` completions in order (see module docstring)."""
        if self._closed:
            raise RuntimeError("OpenAIEngine.generate() called after close()")
        reqs = list(requests)
        if not reqs:
            return []
        self.check()
        retries_before = self.retries
        # Request-major: the samples of one prompt go out together, so a server's prefix
        # cache sees them close in time.
        futures = [self.submit(r) for r in reqs]
        index = {f: i for i, f in enumerate(futures)}
        results: list[list[Completion]] = [[] for _ in reqs]
        try:
            for future in concurrent.futures.as_completed(futures):
                results[index[future]] = future.result()
                if progress is not None:
                    progress(len(results[index[future]]))
        finally:  # first failure (or Ctrl-C): stop the others
            for future in futures:
                future.cancel()
            self.report_retries(retries_before)
        return results

    def report_retries(self, since: int = 0) -> None:
        """One line with the HTTP retries since `since` (the end of a call or a run)."""
        if self.retries > since:
            logger.warning(
                "OpenAI-compatible server at %s: %d HTTP retries in this call (last: %s)",
                self.display_url, self.retries - since, self._last_failure or "?",
            )  # fmt: skip
        self._retry_reported_at = None

    def describe(self) -> dict[str, Any]:
        served = self.check()
        info: dict[str, Any] = {
            "engine": self.name,
            "model": self.model_id,
            "base_url": self.display_url,
            "served_models": served,
            "concurrency": self.concurrency,
            "use_chat": self.use_chat,
            "max_retries": self.max_retries,
            "request_timeout": self.request_timeout or "120 s + max_tokens / 20 s",
            "client": f"openai {openai.__version__}",
            "connection_pool": f"{self.concurrency} connections, kept alive"
            + (", HTTP/2 when the server offers it" if self.http2 else ""),
            "sampling": (
                "n samples per request (the server seeds sample i with seed + i)"
                if self._batched
                else "one request per sample, seed = request seed + sample index"
            )
            + "; neutral top_k/min_p/repetition_penalty/presence_penalty/frequency_penalty "
            "sent explicitly; aborted samples retried",
        }
        if self.max_model_len:
            info["max_model_len"] = self.max_model_len
        if self._request_model != self.model_id:
            info["served_as"] = self._request_model
        return info

    def close(self) -> None:
        """Close the connection pool and stop the engine's event loop."""
        self._closed = True
        loop, self._loop = self._loop, None
        if loop is None:
            return
        clients, self._clients, self._client_obj = self._clients, [], None
        for client in clients:
            with contextlib.suppress(Exception):  # closing is best effort
                loop.run(client.close(), timeout=10)
        loop.stop()

    def __del__(self) -> None:  # an engine dropped without close(): stop its thread
        loop = getattr(self, "_loop", None)
        if loop is not None:
            loop.stop()

    def __repr__(self) -> str:
        return f"OpenAIEngine(model_id={self.model_id!r}, base_url={self.display_url!r})"

    # ------------------------------------------------------------------ loop and client

    def _loop_thread(self) -> _LoopThread:
        with self._lock:
            if self._loop is None:
                self._loop = _LoopThread()
            return self._loop

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self._loop_thread().run(coro)

    def _client(self) -> openai.AsyncOpenAI:
        """The engine's first client (for GET /models); created with the others on first use,
        on the engine's loop, and used only there."""
        if self._client_obj is None:
            pools = math.ceil(self.concurrency / POOL_CONNECTIONS)
            size = math.ceil(self.concurrency / pools)
            self._clients = [self._new_client(size) for _ in range(pools)]
            self._client_load = [0] * pools
            self._client_obj = self._clients[0]
            self._slots = _Slots(self.concurrency)
        return self._client_obj

    def _new_client(self, connections: int) -> openai.AsyncOpenAI:
        limits = httpx2.Limits(
            max_connections=connections,
            max_keepalive_connections=connections,
            keepalive_expiry=KEEPALIVE_EXPIRY,
        )
        http_client = openai.DefaultAsyncHttpxClient(
            auth=self._basic_auth,
            limits=limits,
            http2=self.http2,
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )
        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._api_key,
            max_retries=self.max_retries,
            timeout=openai.Timeout(600.0, connect=CONNECT_TIMEOUT),  # replaced per request
            http_client=http_client,
        )

    def _pick_client(self) -> int:
        """The least busy pool (a handful of pools: a short scan)."""
        self._client()
        load = self._client_load
        best = min(range(len(load)), key=load.__getitem__)
        load[best] += 1
        return best

    async def _on_request(self, request: Any) -> None:
        """Count the SDK's retries (it numbers each attempt in x-stainless-retry-count)."""
        try:
            attempt = int(request.headers.get("x-stainless-retry-count") or 0)
        except ValueError:
            attempt = 0
        if attempt > 0:
            self.retries += 1
            now = time.monotonic()
            if self._retry_reported_at is None or now - self._retry_reported_at >= RETRY_REPORT_EVERY:
                first = self._retry_reported_at is None
                self._retry_reported_at = now
                logger.warning(
                    "OpenAI-compatible server at %s: %s (last failure: %s); retrying with backoff, "
                    "up to %d times per request",
                    self.display_url,
                    "retrying a request" if first else f"{self.retries} retries so far",
                    self._last_failure or "no answer",
                    self.max_retries,
                )

    async def _on_response(self, response: Any) -> None:
        if response.status_code >= 400:
            self._last_failure = f"HTTP {response.status_code}"

    async def _check_once(self) -> None:
        await self._check(self._client())

    async def _check(self, client: openai.AsyncOpenAI) -> None:
        if self._served is not None:
            return
        url = f"{self.display_url}/models"
        probe = client.with_options(
            max_retries=PROBE_RETRIES,
            timeout=openai.Timeout(self.probe_timeout, connect=min(self.probe_timeout, CONNECT_TIMEOUT)),
        )
        tried = f"GET {url}, {PROBE_RETRIES + 1} attempts of {self.probe_timeout:g} s"
        try:
            raw = await probe.models.with_raw_response.list()
        except openai.APITimeoutError:
            raise DartHubError(
                f"cannot reach OpenAI-compatible server at {self.display_url}: no answer ({tried}); "
                f"check that the server is up and finished loading (`vllm serve {self.model_id}`) "
                "and that --base-url is right"
            ) from None
        except openai.APIConnectionError as exc:
            raise DartHubError(
                f"cannot reach OpenAI-compatible server at {self.display_url}: "
                f"{self._redact(_cause(exc))} ({tried}); start it with `vllm serve {self.model_id}` "
                "or check --base-url"
            ) from None
        except openai.APIStatusError as exc:
            status = exc.status_code
            if status == 404:
                if not urlsplit(self.base_url).path.rstrip("/").endswith("/v1"):
                    raise DartHubError(
                        f"{url} not found (HTTP 404); OpenAI-compatible servers usually live "
                        f"under /v1: try --base-url {self.display_url}/v1"
                    ) from None
                logger.warning(
                    "%s has no /models endpoint; cannot check that it serves %s",
                    self.display_url,
                    self.model_id,
                )
                self._served = []
                return
            raise self._status_error("GET /models", exc) from None
        try:
            data = json.loads(raw.text)
            entries = [m for m in data.get("data") or [] if isinstance(m, dict)]
            models = [(str(m["id"]), str(m.get("root") or "")) for m in entries]
        except (ValueError, AttributeError, TypeError, KeyError):
            raise DartHubError(
                f"{url} did not answer with an OpenAI model list; check --base-url points at an "
                "OpenAI-compatible API (e.g. http://HOST:8000/v1)"
            ) from None
        ids = [model_id for model_id, _ in models]
        if ids and self.model_id not in ids:
            by_root = [model_id for model_id, root in models if root == self.model_id]
            if len(by_root) == 1:
                self._request_model = by_root[0]
            else:
                shown = ", ".join(ids[:10]) + (
                    f", ... ({len(ids)} in all)" if len(ids) > 10 else ""
                )
                raise DartHubError(
                    f"OpenAI-compatible server at {self.display_url} serves {shown}, not "
                    f"{self.model_id}; pass the matching --student (e.g. --student {ids[0]}) "
                    f"or point --base-url at a server running {self.model_id}"
                )
        served = next((m for m in entries if str(m["id"]) == self._request_model), None)
        if served is not None:
            length = served.get("max_model_len")
            if isinstance(length, int) and length > 0:
                self.max_model_len = length
        vllm = served is not None and str(served.get("owned_by") or "").lower() == "vllm"
        self._batched = self.sample_batching == "on" or (self.sample_batching == "auto" and vllm)
        self._served = ids

    # ------------------------------------------------------------------ generation

    async def _complete(self, req: GenerationRequest, prep: _Prepared) -> list[Completion]:
        """The request's n samples: one HTTP request with n samples, or n with one each."""
        await self._check(self._client())
        if self._batched and req.n > 1:
            batch = await self._attempt(req, prep, 0, req.n)
            if batch is not None:
                return batch
        parts = await asyncio.gather(*(self._attempt(req, prep, j, 1) for j in range(req.n)))
        return [c for part in parts for c in part or []]

    async def _attempt(
        self, req: GenerationRequest, prep: _Prepared, first: int, count: int
    ) -> list[Completion] | None:
        """Samples first..first+count-1 of the request (relative to its sample_offset), with
        aborted samples retried. None: an n-sample answer the engine cannot use (the caller
        falls back to one request per sample)."""
        assert self._slots is not None
        for attempt in range(self.max_retries + 1):
            await self._slots.acquire(count)
            self.in_flight += count
            started = time.monotonic()
            try:
                data = await self._post(req, prep, first, count)
            finally:
                self.in_flight -= count
                self._slots.release(count)
            completions = self._parse(data, prep, req, count)
            if completions is None:
                return None
            if not any(c.finish_reason == "abort" for c in completions):
                self._finished(len(completions), time.monotonic() - started, req)
                return completions
            self.aborted += 1
            if attempt < self.max_retries:
                if attempt == 0:
                    logger.warning(
                        "OpenAI-compatible server at %s aborted a sample (finish_reason abort: "
                        "preempted or shutting down); retrying it", self.display_url,
                    )  # fmt: skip
                delay = min(ABORT_BACKOFF * 2**attempt, ABORT_BACKOFF_MAX)
                await asyncio.sleep(delay * (0.75 + 0.5 * random.random()))
        raise RequestRejected(
            f"OpenAI-compatible server at {self.display_url} aborted the same request "
            f"{self.max_retries + 1} times (finish_reason abort); check the server's logs"
        )

    async def _post(self, req: GenerationRequest, prep: _Prepared, first: int, count: int) -> Any:
        timeout = self.request_timeout or default_request_timeout(req.max_tokens)
        kwargs: dict[str, Any] = {
            "model": self._request_model,
            **prep.body,
            "n": count,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
            "seed": req.seed + req.sample_offset + first,
            **NEUTRAL_PENALTIES,
            "extra_body": dict(NEUTRAL_EXTRA_BODY),
            "timeout": openai.Timeout(timeout, connect=CONNECT_TIMEOUT),
        }
        if count > 1:  # per-choice token counts (vLLM's return_token_ids)
            kwargs["extra_body"]["return_token_ids"] = True
        if req.stop:
            kwargs["stop"] = list(req.stop)
        what = f"POST {prep.path}"
        pool = self._pick_client()
        client = self._clients[pool]
        endpoint = client.chat.completions if prep.chat else client.completions
        attempts = self.max_retries + 1
        try:
            raw = await endpoint.with_raw_response.create(**kwargs)
        except openai.APITimeoutError:
            raise DartHubError(
                f"OpenAI-compatible server at {self.display_url} did not answer {what} within "
                f"{timeout:g} s, {attempts} times; {self._queue_advice(timeout)}raise "
                "--request-timeout for long generations, lower --concurrency, or check the "
                "server's health"
            ) from None
        except openai.APIConnectionError as exc:
            raise DartHubError(
                f"OpenAI-compatible server at {self.display_url} failed {what} {attempts} times "
                f"(last: {self._redact(_cause(exc))}); check the server's logs and health, "
                "lower --concurrency, or raise --max-retries"
            ) from None
        except openai.APIStatusError as exc:
            raise self._status_error(what, exc, attempts) from None
        finally:
            self._client_load[pool] -= 1
        try:
            return json.loads(raw.text)
        except ValueError:
            raise DartHubError(
                f"OpenAI-compatible server at {self.display_url} answered {what} with a body that "
                "is not JSON; check --base-url points at an OpenAI-compatible API"
            ) from None

    # ------------------------------------------------------------------ the server's queue

    def _finished(self, samples: int, seconds: float, req: GenerationRequest) -> None:
        """Record finished samples; the first answer that took more than SLOW_SHARE of its
        timeout while the engine is full prints the queue arithmetic (once)."""
        now = time.monotonic()
        self._finished_at.extend([now] * min(samples, 64))
        timeout = self.request_timeout or default_request_timeout(req.max_tokens)
        if self._queue_warned or seconds < SLOW_SHARE * timeout:
            return
        advice = self._queue_advice(timeout)
        if not advice:  # too few answers yet to measure the throughput
            return
        self._queue_warned = True
        logger.warning(
            "OpenAI-compatible server at %s: an answer took %.0f s of its %g s timeout; %s"
            "a request that times out is retried at the back of the queue",
            self.display_url, seconds, timeout, advice,
        )  # fmt: skip

    def _throughput(self) -> float | None:
        """Samples finished per second over the last minute (None: too few to say)."""
        now = time.monotonic()
        recent = [t for t in self._finished_at if now - t <= 60.0]
        if len(recent) < 8:
            return None
        return len(recent) / max(now - recent[0], 1.0)

    def _queue_advice(self, timeout: float) -> str:
        """The arithmetic: in flight / throughput = seconds a request waits for its answer."""
        rate = self._throughput()
        if rate is None:
            return ""
        flight = max(self.in_flight, 1)
        wait = flight / rate
        fits = max(1, int(rate * timeout * SLOW_SHARE))
        return (
            f"{flight} samples in flight / {rate:.1f} finished per second = {wait:.0f} s per "
            f"answer, queue included (the timeout counts the queue); --concurrency {fits} "
            f"(= {rate:.1f}/s x {timeout:g} s x {SLOW_SHARE}) keeps answers inside the timeout; "
        )

    # ------------------------------------------------------------------ requests and responses

    def _prepare(self, req: GenerationRequest) -> _Prepared:
        if req.prompt is not None:
            return _Prepared("/completions", {"prompt": req.prompt}, chat=False)
        if self.use_chat:
            return _Prepared("/chat/completions", {"messages": req.message_dicts()}, chat=True)
        tok = self._get_tokenizer("use_chat=False renders chat messages locally")
        text = tok.apply_chat_template(
            req.message_dicts(), tokenize=False, add_generation_prompt=True
        )
        bos = getattr(tok, "bos_token", None)
        if bos and text.startswith(bos):  # the server's tokenizer adds BOS to /completions prompts
            text = text[len(bos) :]
        return _Prepared("/completions", {"prompt": text}, chat=False)

    def _parse(
        self, data: Any, prep: _Prepared, req: GenerationRequest, count: int = 1
    ) -> list[Completion] | None:
        """The `count` samples of one response (finish_reason "abort" kept for the caller to
        retry); None when an n-sample response lacks choices or per-choice token counts."""
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            error = data.get("error") if isinstance(data, dict) else None
            if error:  # some servers answer 200 with an error object
                message = error.get("message", error) if isinstance(error, dict) else error
                detail = self._redact(" ".join(str(message).split())[:300])
                raise DartHubError(
                    f"OpenAI-compatible server at {self.display_url} failed POST {prep.path}: "
                    f"{detail}; check the server's logs"
                )
            raise DartHubError(
                f"OpenAI-compatible server at {self.display_url} answered POST {prep.path} "
                "without a choice; check --base-url points at an OpenAI-compatible API"
            )
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        prompt_tokens = usage.get("prompt_tokens")
        if count == 1:
            choice = choices[0]
            text = _choice_text(choice)
            completion_tokens = usage.get("completion_tokens")
            if completion_tokens is None:
                completion_tokens = self._count_tokens(text)
            if prompt_tokens is None:
                prompt_tokens = self._count_prompt_tokens(req, prep)
            return [_completion(text, choice, int(prompt_tokens), int(completion_tokens))]
        ordered = sorted(
            (c for c in choices if isinstance(c, dict)), key=lambda c: int(c.get("index") or 0)
        )
        counted = all(isinstance(c.get("token_ids"), list) for c in ordered)
        if len(ordered) != count or not (counted or self._tokenizer is not None):
            self._batched = False
            logger.warning(
                "OpenAI-compatible server at %s answered an n=%d request with %s; sending one "
                "request per sample from now on", self.display_url, count,
                f"{len(ordered)} choices" if len(ordered) != count else "no per-choice token counts",
            )  # fmt: skip
            return None
        if prompt_tokens is None:
            prompt_tokens = self._count_prompt_tokens(req, prep)
        out = []
        for choice in ordered:
            text = _choice_text(choice)
            tokens = len(choice["token_ids"]) if counted else self._count_tokens(text)
            out.append(_completion(text, choice, int(prompt_tokens), tokens))
        return out

    def _get_tokenizer(self, why: str) -> Any:
        if isinstance(self._tokenizer, str):
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self._tokenizer)
        if self._tokenizer is None:
            raise DartHubError(f"{why}: pass a tokenizer to OpenAIEngine, or use use_chat=True")
        return self._tokenizer

    def _count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            return 0
        return len(self._get_tokenizer("counting tokens").encode(text, add_special_tokens=False))

    def _count_prompt_tokens(self, req: GenerationRequest, prep: _Prepared) -> int:
        if self._tokenizer is None:
            return 0
        tok = self._get_tokenizer("counting tokens")
        if prep.chat:
            return len(
                tok.apply_chat_template(
                    req.message_dicts(), tokenize=True, add_generation_prompt=True
                )
            )
        return len(tok.encode(prep.body["prompt"]))

    def _status_error(
        self, what: str, exc: openai.APIStatusError, attempts: int | None = None
    ) -> DartHubError:
        status = exc.status_code
        if status in (401, 403):
            return DartHubError(
                f"OpenAI-compatible server at {self.display_url} rejected the API key "
                f"(HTTP {status}); set {API_KEY_ENV} to the key the server expects "
                "(e.g. the value given to `vllm serve --api-key`)"
            )
        detail = self._excerpt(exc.response)
        if status in (408, 409, 429) or status >= 500:
            tries = f" {attempts} times" if attempts else ""
            return DartHubError(
                f"OpenAI-compatible server at {self.display_url} failed {what}{tries} "
                f"(last: HTTP {status}: {detail}); check the server's logs and health, "
                "lower --concurrency, or raise --max-retries"
            )
        if status == 404:
            hint = f"check --base-url and that the server serves {self._request_model}"
        elif status in (400, 422):
            hint = (
                "the prompt may exceed the model's context length, or the server rejects a "
                "sampling field (dart-hub sends top_k, min_p, repetition_penalty, seed: vLLM and "
                "SGLang accept them)"
            )
        else:
            hint = "check the server's logs"
        error_type = RequestRejected if status in (400, 413, 422) else DartHubError
        return error_type(
            f"OpenAI-compatible server at {self.display_url} refused {what} "
            f"(HTTP {status}: {detail}); {hint}"
        )

    def _excerpt(self, resp: Any) -> str:
        try:
            body = resp.json()
            message = body.get("error", body) if isinstance(body, dict) else body
            if isinstance(message, dict):
                message = message.get("message", message)
            text = str(message)
        except (ValueError, AttributeError):
            text = getattr(resp, "text", "") or ""
        text = " ".join(text.split())
        return self._redact(text[:300] or getattr(resp, "reason_phrase", "") or "no details")

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


# ---------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class _Prepared:
    path: str  # "/chat/completions" or "/completions"
    body: dict[str, Any]  # {"messages": [...]} or {"prompt": "..."}
    chat: bool


def _cause(exc: BaseException) -> str:
    """The underlying transport error of an SDK connection error, in a few words."""
    inner = exc.__cause__ or exc.__context__
    if inner is not None:
        text = f"{type(inner).__name__}: {inner}".strip().rstrip(":")
        return " ".join(text.split())[:200]
    return str(exc) or type(exc).__name__


class _LoopThread:
    """An event loop on a daemon thread for the engine's life: the HTTP client and its pool
    live there across calls, whichever thread (or running loop) the caller is on."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="dart-hub-openai", daemon=True
        )
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        if self.loop.is_closed():
            return
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        if threading.current_thread() is not self.thread and self.thread.is_alive():
            with contextlib.suppress(Exception):  # stopping is best effort
                self.run(cancel_all(), timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            if not self.thread.is_alive():
                self.loop.close()


class _Slots:
    """A weighted FIFO semaphore: a request with n samples waits for n of the engine's
    `concurrency` slots. Waiters are served in order, each release wakes only those it can
    serve (O(1) per request, whatever the concurrency)."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.free = total
        self.waiters: collections.deque[tuple[int, asyncio.Future[None]]] = collections.deque()

    async def acquire(self, count: int) -> None:
        count = min(count, self.total)
        if not self.waiters and self.free >= count:
            self.free -= count
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiters.append((count, future))
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(count)  # granted, then cancelled: give the slots back
            else:
                self.waiters.remove((count, future))
                self._wake()
            raise

    def release(self, count: int) -> None:
        self.free += min(count, self.total)
        self._wake()

    def _wake(self) -> None:
        while self.waiters and self.free >= self.waiters[0][0]:
            count, future = self.waiters.popleft()
            if future.done():
                continue
            self.free -= count
            future.set_result(None)


def _completion(text: str, choice: dict[str, Any], prompt_tokens: int, tokens: int) -> Completion:
    return Completion(
        text=text,
        finish_reason=map_finish_reason(choice.get("finish_reason")),
        prompt_tokens=prompt_tokens,
        completion_tokens=tokens,
    )


def _strip_credentials(url: str) -> str:
    """The URL without user:password@, query or fragment: safe to print."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def map_finish_reason(reason: Any) -> str:
    """Server finish reasons -> "stop" | "length" | "abort".

    "length"/"max_tokens" map to "length"; vLLM's "abort" (the server dropped the sequence)
    stays "abort", which the engine retries and never returns; "stop", "eos", "end_turn",
    "stop_sequence", tool calls, content filters and a missing reason map to "stop".
    """
    text = str(reason or "stop").lower()
    if text == "abort":
        return "abort"
    if text in ("length", "max_tokens", "max_length") or "length" in text:
        return "length"
    return "stop"


def _choice_text(choice: dict[str, Any]) -> str:
    message = choice.get("message")
    if isinstance(message, dict):
        return message.get("content") or ""
    text = choice.get("text")
    return text if isinstance(text, str) else ""
