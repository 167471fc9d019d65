"""OpenAI-compatible HTTP engine: how a run scales past one machine.

Sends each `GenerationRequest` to a server that speaks the OpenAI API (`vllm serve MODEL`,
an SGLang router in front of many workers, ...) through the official `openai` SDK
(`AsyncOpenAI`): the SDK owns the HTTP client, retries with exponential backoff and jitter,
`Retry-After`, and timeouts. This module adds only what the SDK does not do:

- Samples. Sample k of a request's seed stream is one HTTP request with `n=1` and
  `seed = request seed + k` (k counts from `sample_offset`), the rule the offline vLLM engine
  uses and the one vLLM itself applies to the children of an `n > 1` request. So
  (seed, n=4) returns the same texts as (seed, n=2) then (seed, n=2, sample_offset=2), on any
  server that honours per-request seeds; no server-side cap on `n` can change the result.
- Neutral sampling. Every sampling field the offline engines leave neutral is sent explicitly
  (`top_k=-1`, `min_p=0`, `repetition_penalty=1`, `presence_penalty=0`, `frequency_penalty=0`):
  vLLM and SGLang otherwise fill a missing field from the model's `generation_config.json`
  (Qwen2.5-Instruct: `top_k` 20, `repetition_penalty` 1.05), and rollouts would differ from the
  offline engines'.
- Bounded concurrency: at most `concurrency` samples in flight per `generate()` call.
- Timeouts. The first contact (`GET /models`) must answer within `probe_timeout` seconds
  (one retry), so a wrong URL or a hung server fails in seconds with one line that says what was
  tried and what to do. A generation request may take `request_timeout` seconds (default:
  120 s plus 1 s per 20 tokens of its `max_tokens`, i.e. about 15 minutes at 16k tokens).
- Retries are counted, not logged one by one: one warning at the first retry, then one line
  with the running count at most every 30 s, and a summary at the end of the call.
- Errors are one line, name the server and what to do, and never carry the API key.
- Token counts: `usage` of each (single-choice) response; without usage, a `tokenizer` (if
  given) counts the texts, else counts are 0.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

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
        concurrency: most samples (HTTP requests, one per sample) in flight at once.
        request_timeout: seconds one generation request may take; None: see
            `default_request_timeout` (scales with the request's max_tokens).
        max_retries: retries per HTTP request after the first attempt (the SDK's backoff:
            0.5 s doubling, capped at 8 s, or the server's Retry-After up to 2 minutes).
        use_chat: True: chat requests go to /chat/completions (server-side chat template).
            False: chat messages are rendered here with `tokenizer.apply_chat_template`
            (generation prompt added, a leading BOS removed since the server adds one) and sent
            to /completions, so the template is exactly the local one.
        tokenizer: a transformers tokenizer or a Hub id to load one; needed for use_chat=False,
            and used to count tokens when the server returns no `usage`.
        probe_timeout: seconds the first contact (GET /models) may take per attempt.

    The server is checked once (`check()`), lazily on the first `generate()`/`describe()`.
    `generate()` is synchronous: it runs its own event loop (on a helper thread when called
    from inside a running loop) and closes its HTTP client before returning.
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
    ) -> None:
        if concurrency < 1:
            raise DartHubError("concurrency must be >= 1")
        if max_retries < 0:
            raise DartHubError("max_retries must be >= 0")
        if request_timeout is not None and request_timeout <= 0:
            raise DartHubError("--request-timeout must be > 0 seconds")
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
        self._tokenizer = tokenizer
        password = self._basic_auth[1] if self._basic_auth else None
        self._secrets = [s for s in (self._api_key, password) if s and s != "EMPTY"]
        self._served: list[str] | None = None  # None: not checked yet
        self._request_model = model_id
        self._closed = False
        self.retries = 0  # HTTP retries over the engine's life (also in describe())
        self._retry_reported_at: float | None = None
        self._last_failure = ""

    # ------------------------------------------------------------------ public API

    def check(self) -> list[str]:
        """GET /models: fail with an actionable error unless the server serves `model_id`.

        Returns the served model ids. Done once; later calls return the cached list.
        """
        if self._served is None:
            _run_sync(self._check_standalone)
        return list(self._served or [])

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressCallback | None = None
    ) -> list[list[Completion]]:
        """For each request in order, its `n` completions in order (see module docstring)."""
        if self._closed:
            raise RuntimeError("OpenAIEngine.generate() called after close()")
        reqs = list(requests)
        if not reqs:
            return []
        prepared = [self._prepare(r) for r in reqs]
        retries_before = self.retries
        try:
            return _run_sync(lambda: self._generate_all(reqs, prepared, progress))
        finally:
            if self.retries > retries_before:
                logger.warning(
                    "OpenAI-compatible server at %s: %d HTTP retries in this call (last: %s)",
                    self.display_url, self.retries - retries_before, self._last_failure or "?",
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
            "sampling": "one request per sample, seed = request seed + sample index; neutral "
            "top_k/min_p/repetition_penalty/presence_penalty/frequency_penalty sent explicitly",
        }
        if self._request_model != self.model_id:
            info["served_as"] = self._request_model
        return info

    def close(self) -> None:
        """Nothing is held between calls (each generate() closes its client); marks closed."""
        self._closed = True

    def __repr__(self) -> str:
        return f"OpenAIEngine(model_id={self.model_id!r}, base_url={self.display_url!r})"

    # ------------------------------------------------------------------ client

    def _client(self) -> openai.AsyncOpenAI:
        http_client = openai.DefaultAsyncHttpxClient(
            auth=self._basic_auth,
            event_hooks={"request": [self._on_request], "response": [self._on_response]},
        )
        return openai.AsyncOpenAI(
            base_url=self.base_url,
            api_key=self._api_key,
            max_retries=self.max_retries,
            timeout=openai.Timeout(600.0, connect=CONNECT_TIMEOUT),  # replaced per request
            http_client=http_client,
        )

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

    async def _check_standalone(self) -> None:
        async with self._client() as client:
            await self._check(client)

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
            models = [(str(m["id"]), str(m.get("root") or "")) for m in data.get("data") or []]
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
        self._served = ids

    # ------------------------------------------------------------------ generation

    async def _generate_all(
        self,
        reqs: list[GenerationRequest],
        prepared: list[_Prepared],
        progress: ProgressCallback | None,
    ) -> list[list[Completion]]:
        async with self._client() as client:
            await self._check(client)
            results: list[list[Completion | None]] = [[None] * r.n for r in reqs]
            # One job per sample, request-major: the samples of one prompt go out together,
            # so a server's prefix cache sees them close in time.
            pending = iter([(i, j) for i, r in enumerate(reqs) for j in range(r.n)])

            async def worker() -> None:
                for i, j in pending:  # shared iterator; one event-loop thread
                    results[i][j] = await self._sample(client, reqs[i], prepared[i], j)
                    if progress is not None:
                        progress(1)

            total = sum(r.n for r in reqs)
            tasks = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, total))]
            try:
                await asyncio.gather(*tasks)
            finally:  # first failure (or Ctrl-C): stop the others before the client closes
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return [[c for c in cs if c is not None] for cs in results]

    async def _sample(
        self, client: openai.AsyncOpenAI, req: GenerationRequest, prep: _Prepared, j: int
    ) -> Completion:
        """Sample `sample_offset + j` of the request's seed stream: one request, n=1."""
        timeout = self.request_timeout or default_request_timeout(req.max_tokens)
        kwargs: dict[str, Any] = {
            "model": self._request_model,
            **prep.body,
            "n": 1,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
            "seed": req.seed + req.sample_offset + j,
            **NEUTRAL_PENALTIES,
            "extra_body": dict(NEUTRAL_EXTRA_BODY),
            "timeout": openai.Timeout(timeout, connect=CONNECT_TIMEOUT),
        }
        if req.stop:
            kwargs["stop"] = list(req.stop)
        what = f"POST {prep.path}"
        endpoint = client.chat.completions if prep.chat else client.completions
        attempts = self.max_retries + 1
        try:
            raw = await endpoint.with_raw_response.create(**kwargs)
        except openai.APITimeoutError:
            raise DartHubError(
                f"OpenAI-compatible server at {self.display_url} did not answer {what} within "
                f"{timeout:g} s, {attempts} times; raise --request-timeout for long generations, "
                "lower --concurrency, or check the server's health"
            ) from None
        except openai.APIConnectionError as exc:
            raise DartHubError(
                f"OpenAI-compatible server at {self.display_url} failed {what} {attempts} times "
                f"(last: {self._redact(_cause(exc))}); check the server's logs and health, "
                "lower --concurrency, or raise --max-retries"
            ) from None
        except openai.APIStatusError as exc:
            raise self._status_error(what, exc, attempts) from None
        try:
            data = json.loads(raw.text)
        except ValueError:
            raise DartHubError(
                f"OpenAI-compatible server at {self.display_url} answered {what} with a body that "
                "is not JSON; check --base-url points at an OpenAI-compatible API"
            ) from None
        return self._parse(data, prep, req)

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

    def _parse(self, data: Any, prep: _Prepared, req: GenerationRequest) -> Completion:
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
        choice = choices[0]
        text = _choice_text(choice)
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
        completion_tokens = usage.get("completion_tokens")
        if completion_tokens is None:
            completion_tokens = self._count_tokens(text)
        prompt_tokens = usage.get("prompt_tokens")
        if prompt_tokens is None:
            prompt_tokens = self._count_prompt_tokens(req, prep)
        return Completion(
            text=text,
            finish_reason=map_finish_reason(choice.get("finish_reason")),
            prompt_tokens=int(prompt_tokens),
            completion_tokens=int(completion_tokens),
        )

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
        return DartHubError(
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


def _run_sync(factory: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run a coroutine to completion from synchronous code, with a fresh event loop.

    asyncio.run cannot nest; from inside a running loop (Jupyter, async callers) the coroutine
    runs on a helper thread with its own loop. Either way the loop is closed afterwards.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dart-hub-openai") as pool:
        return pool.submit(lambda: asyncio.run(factory())).result()


def _strip_credentials(url: str) -> str:
    """The URL without user:password@, query or fragment: safe to print."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def map_finish_reason(reason: Any) -> str:
    """Server finish reasons -> "stop" | "length".

    "length"/"max_tokens" and vLLM's "abort" (cut short: the text did not end on its own) map to
    "length"; "stop", "eos", "end_turn", "stop_sequence", tool calls, content filters and a missing
    reason map to "stop".
    """
    text = str(reason or "stop").lower()
    if text in ("length", "max_tokens", "max_length", "abort") or "length" in text:
        return "length"
    return "stop"


def _choice_text(choice: dict[str, Any]) -> str:
    message = choice.get("message")
    if isinstance(message, dict):
        return message.get("content") or ""
    text = choice.get("text")
    return text if isinstance(text, str) else ""
