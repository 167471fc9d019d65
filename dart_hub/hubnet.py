"""Bounded Hub HTTP: no call to the Hub waits forever, first contact fails in seconds, retries
are counted on one line.

huggingface_hub 2.x sends every request through one shared ``httpx`` client built by a factory
that the library lets applications replace (``huggingface_hub.set_client_factory``). Its default
client has no timeout, and API calls such as ``dataset_info`` or ``create_repo`` pass
``timeout=None`` through, which disables any client default. `install()` replaces the factory
with one whose transport gives every request that has no timeout of its own:

- connect timeout: HF_HUB_ETAG_TIMEOUT (huggingface_hub's own setting for metadata calls,
  default 10 s);
- read / write / pool timeout: DART_HUB_HUB_TIMEOUT seconds (default 120: a large commit may
  take the Hub a while to answer, but never forever).

Requests that do set a timeout (downloads: HF_HUB_DOWNLOAD_TIMEOUT; file metadata:
HF_HUB_ETAG_TIMEOUT) keep it. The first contact with the Hub for a run (`first_contact_timeout`)
uses HF_HUB_ETAG_TIMEOUT for everything, with no retry, so an unreachable or silent endpoint is
reported in about that long.

huggingface_hub logs two warnings per retry (the error, then "Retrying in Ns"); `install()` also
adds a logging filter that swallows them and keeps one status line on stderr instead (rewritten in place on a
terminal, printed once otherwise); `retries()` gives the count for error messages.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

DEFAULT_READ_TIMEOUT = 120.0
_installed = False
_lock = threading.Lock()


def etag_timeout() -> float:
    from huggingface_hub import constants

    return float(constants.HF_HUB_ETAG_TIMEOUT)


def read_timeout() -> float:
    value = os.environ.get("DART_HUB_HUB_TIMEOUT")
    try:
        return float(value) if value else DEFAULT_READ_TIMEOUT
    except ValueError:
        return DEFAULT_READ_TIMEOUT


def first_contact_timeout() -> float:
    """Seconds the first call to a server may take (connect + answer)."""
    return etag_timeout()


def _bounded_transport_class():
    import httpx2

    class BoundedTransport(httpx2.BaseTransport):
        """Fills in the timeouts a request leaves unset, then hands it to the real transport."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def handle_request(self, request):
            limits = dict(request.extensions.get("timeout") or {})
            defaults = {"connect": etag_timeout(), "read": read_timeout(), "write": read_timeout(), "pool": read_timeout()}
            request.extensions["timeout"] = {key: limits.get(key) or value for key, value in defaults.items()}
            return self.inner.handle_request(request)

        def close(self) -> None:
            self.inner.close()

    return BoundedTransport


def _client_factory():
    from huggingface_hub.utils import _http

    client = _http.default_client_factory()
    # The library's own client (its event hooks: offline mode, request ids), with bounded waits.
    client._transport = _bounded_transport_class()(client._transport)
    return client


class _RetryLine(logging.Filter):
    """Turns huggingface_hub's one-warning-per-retry into one counted status line."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0
        self._shown = False

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "thrown while requesting" in message:
            return False  # the error of the try that failed: the status line and the final error say it
        if not message.startswith(("Retrying in", "Rate limited")):
            return True
        self.count += 1
        text = f"Hub request failed; retrying ({self.count} retries so far, {message.split('[')[0].strip().lower()})"
        stream = sys.stderr
        try:
            if stream.isatty():
                stream.write("\r\033[K" + text)
                stream.flush()
            elif not self._shown:
                stream.write(f"{text}; further retries are counted, not printed\n")
                stream.flush()
        except (OSError, ValueError):
            pass
        self._shown = True
        return False


_retry_line = _RetryLine()


def retries() -> int:
    """How many Hub requests were retried in this process so far."""
    return _retry_line.count


def install() -> None:
    """Bound every Hub request made by huggingface_hub (and so by datasets and transformers) in
    this process, and count retries on one line. Idempotent."""
    global _installed
    with _lock:
        if _installed:
            return
        from huggingface_hub import set_client_factory

        set_client_factory(_client_factory)
        logging.getLogger("huggingface_hub.utils._http").addFilter(_retry_line)
        _installed = True


def is_network_error(error: BaseException) -> bool:
    """A connection / timeout / protocol error of the HTTP stack (not an HTTP status)."""
    seen = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        module = type(error).__module__
        if module.startswith(("httpx", "httpcore", "requests", "urllib3")) and "HTTPStatus" not in type(error).__name__:
            return True
        if isinstance(error, TimeoutError | ConnectionError):
            return True
        error = error.__cause__ or error.__context__
    return False


def unreachable_message(what: str, error: BaseException) -> str:
    """One line for a Hub that cannot be reached: what was tried, why, what to do."""
    from huggingface_hub import constants

    kind = "did not answer in time" if "Timeout" in type(error).__name__ or isinstance(error, TimeoutError) else "could not be reached"
    return (
        f"{what}: the Hub at {constants.ENDPOINT} {kind} ({type(error).__name__}, "
        f"{first_contact_timeout():g} s limit). Check the network and HF_ENDPOINT, set "
        f"HF_HUB_OFFLINE=1 to use the local cache, or pass a local path"
    )
