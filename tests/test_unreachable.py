"""Issue 17 items 1-2: a Hub that never answers, refuses connections, or answers with a token
that cannot write: every command fails in seconds, on one line, before any generation.

Each case runs the CLI in a subprocess as a user would, against the Hub emulator in its
"hanging" mode (reads every request, never answers), a port that refuses connections, or a
listening socket that never accepts. HF_HUB_ETAG_TIMEOUT (huggingface_hub's own setting, the
first-contact timeout) is set to 3 s to keep the suite fast."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
LIMIT_S = 3


def dart_hub(args: list[str], env: dict[str, str]) -> tuple[subprocess.CompletedProcess, float]:
    env = {**os.environ, **env, "PYTHONPATH": str(ROOT), "HF_HUB_ETAG_TIMEOUT": str(LIMIT_S)}
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "dart_hub.cli", *args], env=env, capture_output=True, text=True, timeout=120)
    return result, time.monotonic() - started


def assert_one_line(result: subprocess.CompletedProcess, *needles: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr and "Retrying" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def static_folder(tmp_path) -> Path:
    from click.testing import CliRunner

    from dart_hub.cli import cli

    out = tmp_path / "out"
    args = ["adapt", "--student", "nobody/none", "--dataset", str(DATA / "limo_sample.jsonl"), "--strategy", "static",
            "--output", str(out), "--work-dir", str(tmp_path / "w0"), "--quiet"]  # fmt: skip
    assert CliRunner().invoke(cli, args).exit_code == 0
    return out


@pytest.fixture
def refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # closed again: connections are refused


@pytest.fixture
def black_hole_url():
    """Accepts TCP connections (the kernel's backlog) and never reads nor answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


def commands(folder: Path, work: Path, user: str) -> dict[str, list[str]]:
    adapt = ["adapt", "--dataset", str(DATA / "limo_sample.jsonl"), "--work-dir", str(work), "--quiet",
             "--engine", "transformers", "--n-sim", "1", "--sim-max-tokens", "4", "--n-explore", "1", "--explore-max-tokens", "4"]  # fmt: skip
    return {
        "inspect hub dataset": ["inspect", "owner/some-dataset"],
        "push": ["push", str(folder), f"{user}/x"],
        "adapt --push-to-hub": [*adapt, "--student", "./no-model-needed", "--push-to-hub", f"{user}/x"],
        "adapt --student hub id": [*adapt, "--student", "owner/some-model"],
    }


@pytest.mark.slow
@pytest.mark.parametrize("case", ["inspect hub dataset", "push", "adapt --push-to-hub", "adapt --student hub id"])
def test_a_hub_that_never_answers(hub, static_folder, tmp_path, case):
    hub.hanging = True
    result, seconds = dart_hub(commands(static_folder, tmp_path / "w", hub.user)[case], {})
    assert_one_line(result, "did not answer in time", "HF_ENDPOINT", "HF_HUB_OFFLINE", "local path")
    assert seconds < LIMIT_S + 20  # first contact: one timeout, no retries (import time included)
    assert not (tmp_path / "w" / "chunks").exists() or not any((tmp_path / "w" / "chunks").iterdir())


@pytest.mark.slow
@pytest.mark.parametrize("case", ["inspect hub dataset", "push", "adapt --push-to-hub", "adapt --student hub id"])
@pytest.mark.parametrize("server", ["refused", "black hole"])
def test_a_hub_that_cannot_be_reached(static_folder, tmp_path, refused_url, black_hole_url, case, server):
    url = refused_url if server == "refused" else black_hole_url
    env = {"HF_ENDPOINT": url, "HF_TOKEN": "hf_" + "x" * 30, "HF_HOME": str(tmp_path / "hf")}
    result, seconds = dart_hub(commands(static_folder, tmp_path / "w", "someone")[case], env)
    assert_one_line(result, url, "HF_ENDPOINT")
    assert seconds < LIMIT_S + 20


def test_read_only_token_fails_before_any_rollout(hub, tmp_path, tiny_model_dir):
    token = "hf_" + "readOnly" + "0" * 30
    hub.add_token(token, hub.user, write=False)
    args = ["adapt", "--student", str(tiny_model_dir), "--dataset", str(DATA / "limo_sample.jsonl"),
            "--engine", "transformers", "--work-dir", str(tmp_path / "w"), "--quiet", "--push-to-hub", f"{hub.user}/x"]  # fmt: skip
    result, _ = dart_hub(args, {"HF_TOKEN": token})
    assert_one_line(result, "read-only")
    assert token not in result.stderr
    assert not (tmp_path / "w" / "chunks").exists() or not any((tmp_path / "w" / "chunks").iterdir())


def test_a_namespace_the_token_cannot_write_fails_before_any_rollout(hub, tmp_path, tiny_model_dir):
    args = ["adapt", "--student", str(tiny_model_dir), "--dataset", str(DATA / "limo_sample.jsonl"),
            "--engine", "transformers", "--work-dir", str(tmp_path / "w"), "--quiet", "--push-to-hub", "someone-else/x"]  # fmt: skip
    result, _ = dart_hub(args, {})
    assert_one_line(result, "cannot create repos under someone-else", f"{hub.user}/x")
    assert not (tmp_path / "w" / "chunks").exists() or not any((tmp_path / "w" / "chunks").iterdir())


def test_an_existing_repo_of_another_user_is_refused_before_any_rollout(hub, tmp_path, tiny_model_dir):
    hub.create_dataset("someone-else/data", {"README.md": b"# x\n"})
    args = ["adapt", "--student", str(tiny_model_dir), "--dataset", str(DATA / "limo_sample.jsonl"),
            "--engine", "transformers", "--work-dir", str(tmp_path / "w"), "--quiet", "--push-to-hub", "someone-else/data"]  # fmt: skip
    result, _ = dart_hub(args, {})
    assert_one_line(result, "lacks write access to someone-else")


def test_an_invalid_token_fails_before_any_rollout(hub, tmp_path, tiny_model_dir):
    args = ["adapt", "--student", str(tiny_model_dir), "--dataset", str(DATA / "limo_sample.jsonl"),
            "--engine", "transformers", "--work-dir", str(tmp_path / "w"), "--quiet", "--push-to-hub", f"{hub.user}/x"]  # fmt: skip
    result, _ = dart_hub(args, {"HF_TOKEN": "hf_" + "unknown" + "0" * 30})
    assert_one_line(result, "rejected")


def test_retries_are_one_counted_line_not_one_log_line_each(refused_url):
    code = (
        "from dart_hub import hubnet\n"
        "hubnet.install()\n"
        "from huggingface_hub.utils import http_backoff\n"
        "try:\n"
        f"    http_backoff('GET', '{refused_url}/x', max_retries=4, base_wait_time=0.01, max_wait_time=0.02)\n"
        "except Exception as error:\n"
        "    print(type(error).__name__, hubnet.retries())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert result.stdout.split() == ["ConnectError", "4"]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "retrying (1 retries so far" in lines[0] and "further retries are counted" in lines[0]


def test_a_cached_hub_student_still_loads_when_the_hub_does_not_answer(hub, tmp_path, tiny_model_dir):
    files = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file()}
    hub.create_model(f"{hub.user}/tiny", files)
    from huggingface_hub import snapshot_download

    snapshot_download(f"{hub.user}/tiny")  # the user's cache, as after an earlier run
    hub.hanging = True
    args = ["adapt", "--student", f"{hub.user}/tiny", "--dataset", str(DATA / "limo_sample.jsonl"), "--limit", "1",
            "--engine", "transformers", "--n-sim", "1", "--sim-max-tokens", "4", "--n-explore", "1", "--explore-max-tokens", "4",
            "--work-dir", str(tmp_path / "w"), "--quiet", "--json"]  # fmt: skip
    result, seconds = dart_hub(args, {})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert seconds < LIMIT_S + 60  # one first-contact timeout, then the cache
    assert "using the cached copy, offline for the rest of this run" in result.stderr
