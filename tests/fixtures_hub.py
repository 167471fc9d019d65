"""Fixtures: a local Hub emulator (``tests/hub_emulator.py``) that the real clients talk to.

``hub`` starts a fresh emulator for the test (its own port, its own empty state) and points
huggingface_hub and datasets at it, in this process and in subprocesses:

* environment (``monkeypatch.setenv``): ``hub.env(home)``: ``HF_ENDPOINT``, ``HF_HUB_DISABLE_XET=1``,
  ``HF_TOKEN``, ``HF_HOME`` and the caches under ``tmp_path``, offline/telemetry switches. Variables
  that would override them (``HF_HUB_CACHE``, ``HUGGING_FACE_HUB_TOKEN``, ``HF_OIDC_RESOURCE``, ...)
  are removed. A CLI subprocess started with ``env={**os.environ, **hub.env()}`` (or just
  ``os.environ``, already patched) reaches the emulator.
* already-imported modules read their settings once, at import: the fixture imports
  huggingface_hub and datasets and ``monkeypatch.setattr``s the copies they made
  (``huggingface_hub.constants.ENDPOINT``, ``HUGGINGFACE_CO_URL_TEMPLATE``, ``HF_URL_HOSTS``,
  ``HF_HUB_DISABLE_XET``, ``HF_HUB_OFFLINE``, the cache/token paths; the module-level
  ``huggingface_hub.hf_api.api`` (behind ``huggingface_hub.dataset_info`` & co) and ``hffs``;
  ``datasets.config.HF_ENDPOINT``, ``HUB_DATASETS_URL``, offline flags, cache paths) and clears
  fsspec's ``HfFileSystem`` instance cache. Everything is restored when the test ends.

Code under test must read the endpoint at call time (``huggingface_hub.constants.ENDPOINT``,
``HfApi()`` created in the function), never ``from huggingface_hub.constants import ENDPOINT``.

API: ``hub.url``, ``hub.token``, ``hub.user``, ``hub.home``, ``hub.env()``,
``hub.create_dataset(repo_id, files, private=False) -> sha``, ``hub.commit_files(...)``,
``hub.create_repo(...)``, ``hub.commits(repo_id)``, ``hub.head(repo_id)``,
``hub.read_file(repo_id, path, revision=None)``, ``hub.list_files(...)``, ``hub.refs(...)``,
``hub.pull_requests(...)``, ``hub.requests`` / ``hub.count_requests(method, path_contains)`` /
``hub.clear_requests()``, ``hub.add_token(...)``, ``hub.server_errors``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub_emulator import DEFAULT_TOKEN, DEFAULT_USER, HubEmulator

# Variables that would take precedence over what the fixture sets, or send traffic elsewhere.
_UNSET_ENV = (
    "HUGGINGFACE_CO_STAGING",
    "HUGGING_FACE_HUB_TOKEN",
    "HF_OIDC_RESOURCE",
    "HUGGINGFACE_HUB_CACHE",
    "HUGGINGFACE_ASSETS_CACHE",
    "HF_DATASETS_DOWNLOADED_DATASETS_PATH",
    "HF_DATASETS_EXTRACTED_DATASETS_PATH",
    "HF_HUB_DISABLE_IMPLICIT_TOKEN",
    "HF_INFERENCE_ENDPOINT",
    "HF_HUB_ENABLE_HF_TRANSFER",
)


class HubFixture(HubEmulator):
    """The emulator as the ``hub`` fixture hands it out: knows its HF home and token."""

    home: Path
    token: str = DEFAULT_TOKEN
    user: str = DEFAULT_USER

    def env(self, home: str | os.PathLike[str] | None = None, token: str | None = DEFAULT_TOKEN):
        return super().env(str(home if home is not None else self.home), token)


def point_clients_at(
    monkeypatch: pytest.MonkeyPatch, url: str, home: Path, env: dict[str, str]
) -> None:
    """Point the (possibly already imported) huggingface_hub and datasets at ``url``."""
    for name in _UNSET_ENV:
        monkeypatch.delenv(name, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)

    import huggingface_hub
    from huggingface_hub import constants, hf_api, hf_file_system

    hub_cache = str(home / "hub")
    settings: dict[str, Any] = {
        "ENDPOINT": url,
        "HUGGINGFACE_CO_URL_TEMPLATE": url + "/{repo_id}/resolve/{revision}/{filename}",
        "HF_URL_HOSTS": frozenset(constants.HF_URL_HOSTS | {"127.0.0.1", "localhost"}),
        "HF_HUB_DISABLE_XET": True,
        "HF_HUB_OFFLINE": False,
        "HF_HUB_DISABLE_TELEMETRY": True,
        "HF_HUB_DISABLE_UPDATE_CHECK": True,
        "HF_HUB_DISABLE_IMPLICIT_TOKEN": False,
        "HF_HOME": str(home),
        "HF_HUB_CACHE": hub_cache,
        "HUGGINGFACE_HUB_CACHE": hub_cache,
        "HF_ASSETS_CACHE": str(home / "assets"),
        "HUGGINGFACE_ASSETS_CACHE": str(home / "assets"),
        "HF_XET_CACHE": str(home / "xet"),
        "HF_TOKEN_PATH": str(home / "token"),
        "HF_STORED_TOKENS_PATH": str(home / "stored_tokens"),
        "CHECK_FOR_UPDATE_DONE_PATH": str(home / ".check_for_update_done"),
        "HF_HUB_ETAG_TIMEOUT": 30,
        "HF_HUB_DOWNLOAD_TIMEOUT": 30,
    }
    for attr, value in settings.items():
        monkeypatch.setattr(constants, attr, value, raising=False)

    # Module-level objects built at import time with the old endpoint.
    monkeypatch.setattr(hf_api.api, "endpoint", url)
    hf_file_system.HfFileSystem.clear_instance_cache()
    monkeypatch.setattr(hf_file_system, "hffs", hf_file_system.HfFileSystem())
    if "hffs" in vars(huggingface_hub):
        monkeypatch.setattr(huggingface_hub, "hffs", hf_file_system.hffs)

    import datasets.config as dconfig

    datasets_cache = home / "datasets"
    downloads = datasets_cache / dconfig.DOWNLOADED_DATASETS_DIR
    dsettings: dict[str, Any] = {
        "HF_ENDPOINT": url,
        "HUB_DATASETS_URL": url + "/datasets/{repo_id}/resolve/{revision}/{path}",
        "HF_HUB_OFFLINE": False,
        "HF_DATASETS_OFFLINE": False,
        "HF_UPDATE_DOWNLOAD_COUNTS": False,
        # No dataset viewer here: skip the request to datasets-server.<endpoint host>.
        "USE_PARQUET_EXPORT": False,
        "HF_CACHE_HOME": str(home),
        "HF_DATASETS_CACHE": datasets_cache,
        "HF_MODULES_CACHE": home / "modules",
        "DOWNLOADED_DATASETS_PATH": downloads,
        "EXTRACTED_DATASETS_PATH": downloads / dconfig.EXTRACTED_DATASETS_DIR,
    }
    for attr, value in dsettings.items():
        monkeypatch.setattr(dconfig, attr, value, raising=False)

    # transformers keeps its own copies of a few of these (only if the test process imported it).
    tf_hub = sys.modules.get("transformers.utils.hub")
    if tf_hub is not None and hasattr(tf_hub, "HF_MODULES_CACHE"):
        monkeypatch.setattr(tf_hub, "HF_MODULES_CACHE", str(home / "modules"))


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubFixture]:
    """A fresh local Hub emulator, with huggingface_hub and datasets pointed at it."""
    emulator = HubFixture()
    emulator.home = tmp_path / "hf_home"
    emulator.home.mkdir()
    emulator.start()
    try:
        point_clients_at(monkeypatch, emulator.url, emulator.home, emulator.env())
        yield emulator
    finally:
        emulator.stop()
        from huggingface_hub import hf_file_system

        hf_file_system.HfFileSystem.clear_instance_cache()
