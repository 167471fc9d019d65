"""OpenAI-compatible HTTP engine: how a run scales past one machine.

Sends each `GenerationRequest` to a server that speaks the OpenAI API (`vllm serve MODEL`,
an SGLang router in front of many workers, ...). Chat requests go to `POST /chat/completions`
(the server applies the model's chat template), raw-prompt requests to `POST /completions`.

Written on httpx rather than the `openai` package: we need only two endpoints, and owning the
retry loop lets us bound in-flight requests, honour Retry-After, and keep the API key out of
every message, which the `openai` client's own retries and errors do not promise.

Behaviour worth knowing (also in the class docstring):

- Server check. `check()` GETs `/models` once, lazily on the first `generate()` (or
  `describe()`); call it yourself to fail fast. It resolves the name sent as `model`: the id
  itself when served, else the served id whose `root` (vLLM: the path given to `vllm serve`)
  equals it; otherwise it raises, listing what the server serves.
- Concurrency. At most `concurrency` HTTP requests are in flight per `generate()` call
  (one asyncio.Semaphore around every attempt; backoff sleeps do not hold a slot).
- Retries. 408, 429, 5xx, timeouts, connection errors and unreadable 2xx bodies are retried up
  to `max_retries` times with exponential backoff and equal jitter
  (`backoff_base * 2**attempt`, capped at `backoff_max`, then a random 50-100% of it), or
  the server's `Retry-After` when that is longer (capped at 5 minutes). Other 4xx fail at once.
- n. One request asks for all `n` samples. A server that returns fewer choices than asked (a
  cap on n) is asked again for the rest, in parallel blocks of the size it did return;
  `max_n` splits client-side up front for servers that reject large n with an error. Call
  number j > 0 of one request uses a seed derived from (seed, j), so the extra samples are not
  copies of the first ones and the whole set is still reproducible on a deterministic server.
- Token counts. `prompt_tokens` is the response's `usage.prompt_tokens`. Per-choice completion
  counts are used when the server gives them (`choices[i].usage.completion_tokens` or
  `choices[i].token_ids`); otherwise (vLLM, OpenAI: one total per response) the total is split:
  a choice that ended on "length" gets `max_tokens`, the rest is shared among the other choices
  in proportion to their text length, so the per-choice counts always sum to the server's total.
  With no usage at all, a `tokenizer` (if given) counts the texts, else counts are 0.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import hashlib
import logging
import math
import os
import random
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

try:  # huggingface_hub >= 2 installs httpx under the name `httpx2`; same API.
    import httpx2 as httpx
except ImportError:  # pragma: no cover - depends on the environment
    import httpx  # type: ignore[no-redef]

from dart_hub.engines.base import Completion, GenerationRequest, ProgressCallback
from dart_hub.errors import DartHubError

logger = logging.getLogger(__name__)

T = TypeVar("T")

API_KEY_ENV = "OPENAI_API_KEY"
_RETRY_AFTER_CAP = 300.0  # never sleep longer than this on a server's Retry-After
_CONNECT_TIMEOUT_CAP = 30.0
_RANDOM = random.Random()  # jitter only; never affects generated texts


class OpenAIEngine:
    """Generate through an OpenAI-compatible server (vLLM serve, SGLang router, ...).

    Args:
        model_id: the model the server must serve (sent as `model`).
        base_url: API root, e.g. "http://localhost:8000/v1".
        api_key: sent as `Authorization: Bearer ...`; default: $OPENAI_API_KEY, else "EMPTY"
            (what vLLM accepts when started without --api-key). Never logged or shown.
        concurrency: most HTTP requests in flight at once.
        timeout: seconds to wait for one HTTP response (connect: at most 30 s).
        max_retries: retries per HTTP request after the first attempt (see module docstring).
        use_chat: True: chat requests go to /chat/completions (server-side chat template).
            False: chat messages are rendered here with `tokenizer.apply_chat_template`
            (generation prompt added, a leading BOS removed since the server adds one) and sent
            to /completions, so the template is exactly the local one.
        tokenizer: a transformers tokenizer or a Hub id to load one; needed for use_chat=False,
            and used to count tokens when the server returns no `usage`.
        max_n: split every request into calls of at most this many samples (None: no split).
        backoff_base, backoff_max: exponential backoff parameters, in seconds.

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
        concurrency: int = 64,
        timeout: float = 600.0,
        max_retries: int = 5,
        use_chat: bool = True,
        tokenizer: Any = None,
        max_n: int | None = None,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
    ) -> None:
        if concurrency < 1:
            raise DartHubError("concurrency must be >= 1")
        if max_retries < 0:
            raise DartHubError("max_retries must be >= 0")
        if timeout <= 0:
            raise DartHubError("timeout must be > 0 seconds")
        if max_n is not None and max_n < 1:
            raise DartHubError("max_n must be >= 1 (or None for no client-side split)")
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
        # removed from the URL itself so that no log line (httpx logs every request) shows it.
        self.display_url = _strip_credentials(base_url.strip()).rstrip("/")
        self.base_url = self.display_url
        self._basic_auth = (
            (unquote(parts.username or ""), unquote(parts.password or ""))
            if "@" in parts.netloc
            else None
        )
        self._api_key = api_key if api_key is not None else os.environ.get(API_KEY_ENV) or "EMPTY"
        self.concurrency = concurrency
        self.timeout = timeout
        self.max_retries = max_retries
        self.use_chat = use_chat
        self.max_n = max_n
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._tokenizer = tokenizer
        password = self._basic_auth[1] if self._basic_auth else None
        self._secrets = [s for s in (self._api_key, password) if s and s != "EMPTY"]
        self._served: list[str] | None = None  # None: not checked yet
        self._request_model = model_id
        self._closed = False

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
        """For each request in order, its `n` completions in order (see class docstring)."""
        if self._closed:
            raise RuntimeError("OpenAIEngine.generate() called after close()")
        reqs = list(requests)
        if not reqs:
            return []
        prepared = [self._prepare(r) for r in reqs]
        return _run_sync(lambda: self._generate_all(reqs, prepared, progress))

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
            "client": f"{httpx.__name__} {httpx.__version__}",
        }
        if self._request_model != self.model_id:
            info["served_as"] = self._request_model
        if self.max_n is not None:
            info["max_n"] = self.max_n
        return info

    def close(self) -> None:
        """Nothing is held between calls (each generate() closes its client); marks closed."""
        self._closed = True

    def __repr__(self) -> str:
        return f"OpenAIEngine(model_id={self.model_id!r}, base_url={self.display_url!r})"

    # ------------------------------------------------------------------ async core

    def _client(self) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=self.concurrency, max_keepalive_connections=self.concurrency
        )
        timeout = httpx.Timeout(self.timeout, connect=min(self.timeout, _CONNECT_TIMEOUT_CAP))
        return httpx.AsyncClient(
            headers={"Authorization": f"Bearer {self._api_key}"},
            auth=httpx.BasicAuth(*self._basic_auth) if self._basic_auth else None,
            timeout=timeout,
            limits=limits,
        )

    async def _check_standalone(self) -> None:
        async with self._client() as client:
            await self._check(client)

    async def _check(self, client: httpx.AsyncClient) -> None:
        if self._served is not None:
            return
        try:
            resp, data = await self._request(client, "GET", "/models", None, None)
        except _RetriesExhausted as exc:
            if exc.transport:
                raise DartHubError(
                    f"cannot reach OpenAI-compatible server at {self.display_url}: {exc.reason}; "
                    f"start it with `vllm serve {self.model_id}` or check --base-url"
                ) from None
            raise DartHubError(
                f"OpenAI-compatible server at {self.display_url} kept failing on GET /models "
                f"({exc.reason}, {exc.attempts} attempts); check the server's logs"
            ) from None
        if resp.status_code == 404:
            if not urlsplit(self.base_url).path.rstrip("/").endswith("/v1"):
                raise DartHubError(
                    f"{self.display_url}/models not found (HTTP 404); OpenAI-compatible servers "
                    f"usually live under /v1: try --base-url {self.display_url}/v1"
                )
            logger.warning(
                "%s has no /models endpoint; cannot check that it serves %s",
                self.display_url,
                self.model_id,
            )
            self._served = []
            return
        if resp.status_code >= 300:
            raise self._http_error("GET /models", resp)
        try:
            entries = data.get("data") or []
            models = [(str(m["id"]), str(m.get("root") or "")) for m in entries]
        except (ValueError, AttributeError, TypeError, KeyError):
            raise DartHubError(
                f"{self.display_url}/models did not answer with an OpenAI model list; "
                "check --base-url points at an OpenAI-compatible API (e.g. http://HOST:8000/v1)"
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

    async def _generate_all(
        self,
        reqs: list[GenerationRequest],
        prepared: list[_Prepared],
        progress: ProgressCallback | None,
    ) -> list[list[Completion]]:
        async with self._client() as client:
            await self._check(client)
            semaphore = asyncio.Semaphore(self.concurrency)
            results: list[list[Completion]] = [[] for _ in reqs]
            pending = iter(range(len(reqs)))  # shared by the workers; one event loop thread

            async def worker() -> None:
                for i in pending:
                    results[i] = await self._one(client, semaphore, reqs[i], prepared[i], progress)

            tasks = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(reqs)))]
            try:
                await asyncio.gather(*tasks)
            finally:  # first failure (or Ctrl-C): stop the others before the client closes
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            return results

    async def _one(
        self,
        client: httpx.AsyncClient,
        semaphore: asyncio.Semaphore,
        req: GenerationRequest,
        prep: _Prepared,
        progress: ProgressCallback | None,
    ) -> list[Completion]:
        done: list[Completion] = []
        step = min(req.n, self.max_n or req.n)
        calls = 0
        while len(done) < req.n:
            sizes = [min(step, req.n - start) for start in range(len(done), req.n, step)]
            seeds = [_derived_seed(req.seed, calls + j) for j in range(len(sizes))]
            calls += len(sizes)
            batches = await asyncio.gather(
                *(
                    self._call(client, semaphore, req, prep, size, seed, progress)
                    for size, seed in zip(sizes, seeds, strict=True)
                )
            )
            for batch in batches:
                done.extend(batch)
            fewest = min(len(b) for b in batches)
            if fewest == 0:
                raise DartHubError(
                    f"OpenAI-compatible server at {self.display_url} returned no choices for a "
                    f"request with n={step}; check the server's logs"
                )
            step = min(step, fewest)  # the server caps n: ask for what it gives
        return done[: req.n]

    async def _call(
        self,
        client: httpx.AsyncClient,
        semaphore: asyncio.Semaphore,
        req: GenerationRequest,
        prep: _Prepared,
        n: int,
        seed: int,
        progress: ProgressCallback | None,
    ) -> list[Completion]:
        payload: dict[str, Any] = {
            "model": self._request_model,
            **prep.body,
            "n": n,
            "temperature": req.temperature,
            "top_p": req.top_p,
            "max_tokens": req.max_tokens,
            "seed": seed,
        }
        if req.stop:
            payload["stop"] = list(req.stop)
        what = f"POST {prep.path}"
        try:
            resp, data = await self._request(client, "POST", prep.path, payload, semaphore)
        except _RetriesExhausted as exc:
            raise DartHubError(
                f"OpenAI-compatible server at {self.display_url} failed {what} "
                f"{exc.attempts} times (last: {exc.reason}); check the server's logs and health, "
                "lower --concurrency, or raise --max-retries"
            ) from None
        if resp.status_code >= 300:
            raise self._http_error(what, resp)
        completions = self._parse(data, prep, req, n)
        if progress is not None and completions:
            progress(len(completions))
        return completions

    async def _request(
        self,
        client: httpx.AsyncClient,
        method: str,
        path: str,
        payload: dict[str, Any] | None,
        semaphore: asyncio.Semaphore | None,
    ) -> tuple[httpx.Response, Any]:
        """One HTTP exchange with retries. Returns (2xx response, its parsed JSON body) or
        (non-retryable error response, None); raises _RetriesExhausted, or DartHubError on
        401/403."""
        url = self.base_url + path
        attempts = self.max_retries + 1
        reason, transport = "", False
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                if semaphore is None:
                    resp = await client.request(method, url, json=payload)
                else:
                    async with semaphore:
                        resp = await client.request(method, url, json=payload)
            except httpx.TimeoutException as exc:
                reason, transport = (
                    f"no answer within {self.timeout:g} s ({type(exc).__name__})",
                    True,
                )
            except httpx.TransportError as exc:  # refused, reset, dropped mid-response, ...
                reason, transport = self._redact(f"{type(exc).__name__}: {exc}"), True
            else:
                status = resp.status_code
                transport = False
                if status in (401, 403):
                    raise DartHubError(
                        f"OpenAI-compatible server at {self.display_url} rejected the API key "
                        f"(HTTP {status}); set {API_KEY_ENV} to the key the server expects "
                        "(e.g. the value given to `vllm serve --api-key`)"
                    )
                if status < 300:
                    try:
                        return resp, resp.json()
                    except ValueError:
                        reason = f"HTTP {status} with a body that is not JSON"
                elif status in (408, 429) or status >= 500:
                    reason = f"HTTP {status}: {self._excerpt(resp)}"
                    retry_after = _parse_retry_after(resp.headers.get("retry-after"))
                else:
                    return resp, None
            if attempt + 1 < attempts:
                delay = self._backoff(attempt, retry_after)
                logger.warning(
                    "%s %s%s: %s; retry %d/%d in %.1f s",
                    method,
                    self.display_url,
                    path,
                    reason,
                    attempt + 1,
                    self.max_retries,
                    delay,
                )
                await asyncio.sleep(delay)
        raise _RetriesExhausted(reason, attempts, transport)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self.backoff_max, self.backoff_base * 2**attempt)
        delay = ceiling / 2 + _RANDOM.uniform(0, ceiling / 2)
        if retry_after is not None:
            delay = max(delay, min(retry_after, _RETRY_AFTER_CAP))
        return delay

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
        self, data: Any, prep: _Prepared, req: GenerationRequest, asked: int
    ) -> list[Completion]:
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not all(isinstance(c, dict) for c in choices):
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
                "without a `choices` list; check --base-url points at an OpenAI-compatible API"
            )
        choices = sorted(choices, key=lambda c: c.get("index", 0))[:asked]
        texts = [_choice_text(c) for c in choices]
        finishes = [map_finish_reason(c.get("finish_reason")) for c in choices]
        usage = data.get("usage") if isinstance(data.get("usage"), dict) else None

        per_choice = [_choice_tokens(c) for c in choices]
        if all(count is not None for count in per_choice):
            counts = [int(c) for c in per_choice]  # type: ignore[arg-type]
        elif usage is not None and usage.get("completion_tokens") is not None:
            counts = split_completion_tokens(
                int(usage["completion_tokens"]), finishes, texts, req.max_tokens
            )
        else:
            counts = [self._count_tokens(t) for t in texts]
        if usage is not None and usage.get("prompt_tokens") is not None:
            prompt_tokens = int(usage["prompt_tokens"])
        else:
            prompt_tokens = self._count_prompt_tokens(req, prep)
        return [
            Completion(text=t, finish_reason=f, prompt_tokens=prompt_tokens, completion_tokens=c)
            for t, f, c in zip(texts, finishes, counts, strict=True)
        ]

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

    def _http_error(self, what: str, resp: httpx.Response) -> DartHubError:
        status = resp.status_code
        detail = self._excerpt(resp)
        if status == 404:
            hint = f"check --base-url and that the server serves {self._request_model}"
        elif status in (400, 422):
            hint = "the prompt may exceed the model's context length, or the server rejects a sampling option"
        else:
            hint = "check the server's logs"
        return DartHubError(
            f"OpenAI-compatible server at {self.display_url} refused {what} "
            f"(HTTP {status}: {detail}); {hint}"
        )

    def _excerpt(self, resp: httpx.Response) -> str:
        try:
            body = resp.json()
            message = body.get("error", body) if isinstance(body, dict) else body
            if isinstance(message, dict):
                message = message.get("message", message)
            text = str(message)
        except ValueError:
            text = resp.text
        text = " ".join(text.split())
        return self._redact(text[:300] or resp.reason_phrase or "no details")

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


class _RetriesExhausted(Exception):
    def __init__(self, reason: str, attempts: int, transport: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempts = attempts
        self.transport = transport  # the last failure never reached an HTTP answer


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


def _parse_retry_after(value: str | None) -> float | None:
    """Retry-After as seconds: delta-seconds (fractions accepted) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=_dt.UTC)
        seconds = (when - _dt.datetime.now(_dt.UTC)).total_seconds()
    if math.isnan(seconds) or math.isinf(seconds):
        return None
    return max(0.0, seconds)


def _derived_seed(seed: int, call: int) -> int:
    """Seed for call number `call` of one request: the request's own seed for the first call,
    a stable hash of (seed, call) for the extra calls of n-capping servers."""
    if call == 0:
        return seed
    digest = hashlib.sha256(f"{seed}:{call}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


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


def split_completion_tokens(
    total: int, finishes: Sequence[str], texts: Sequence[str], max_tokens: int
) -> list[int]:
    """Split a response's completion-token total over its choices; the counts sum to `total`.

    A choice that ended on "length" generated `max_tokens` tokens; the remainder is shared by the
    other choices in proportion to their text length (largest-remainder rounding). If the total
    cannot cover the "length" choices (e.g. cut by the context length), everything is shared by
    text length.
    """
    k = len(texts)
    if k == 0:
        return []
    total = max(0, total)
    lengths = [i for i, f in enumerate(finishes) if f == "length"]
    others = [i for i in range(k) if i not in set(lengths)]
    counts = [0] * k
    rest = total - max_tokens * len(lengths)
    if rest < 0 or (not others and rest > 0):  # inconsistent with max_tokens: share it all
        return _proportional(total, [len(t) + 1 for t in texts])
    for i in lengths:
        counts[i] = max_tokens
    if others:
        share = _proportional(rest, [len(texts[i]) + 1 for i in others])
        for i, c in zip(others, share, strict=True):
            counts[i] = c
    return counts


def _proportional(total: int, weights: Sequence[int]) -> list[int]:
    weight_sum = sum(weights)
    exact = [total * w / weight_sum for w in weights]
    counts = [math.floor(x) for x in exact]
    leftover = total - sum(counts)
    order = sorted(range(len(weights)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[:leftover]:
        counts[i] += 1
    return counts


def _choice_text(choice: dict[str, Any]) -> str:
    message = choice.get("message")
    if isinstance(message, dict):
        return message.get("content") or ""
    text = choice.get("text")
    return text if isinstance(text, str) else ""


def _choice_tokens(choice: dict[str, Any]) -> int | None:
    usage = choice.get("usage")
    if isinstance(usage, dict) and isinstance(usage.get("completion_tokens"), int):
        return usage["completion_tokens"]
    token_ids = choice.get("token_ids")
    if isinstance(token_ids, list):
        return len(token_ids)
    return None
