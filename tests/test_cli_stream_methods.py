"""`dart-hub adapt --method dail|mapper --engine openai` against the fake server
(tests/fake_openai_server.py), as a user types it: streaming (the default) gives the rows and
chunk files of `--scheduler chunks`, a 400 costs its problem only and is not retried on resume,
progress counts problems and rollouts, kill -9 under streaming resumes to the uninterrupted result, and DAIL with --dail-tau below 1
says that it runs chunk by chunk."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from tests.fake_openai_server import FakeOpenAIServer
from tests.test_cli_openai import DATA, MODEL, summary_of, with_long

METHODS = {
    "dail": ["--method", "dail", "--dail-samples", "3", "--dail-max-tokens", "16"],
    # the rewards that need no student likelihood (the fake server's model has no weights)
    "mapper": ["--method", "mapper", "--mapper-samples", "3", "--mapper-max-tokens", "16", "--mapper-rewards", "alignment=0,too_short=0"],
}


def args(server, tmp_path: Path, name: str, method: str, *extra: str, data: Path | None = None) -> list[str]:
    return [
        "adapt", "--student", MODEL, "--dataset", str(data or DATA / "limo_sample.jsonl"), "--engine", "openai",
        "--base-url", server.base_url, "--output", str(tmp_path / name), "--work-dir", str(tmp_path / f"w-{name}"),
        "--chunk-size", "2", "--quiet", "--json", *METHODS[method], *extra,
    ]  # fmt: skip


def tables(out: Path) -> dict[str, list[dict]]:
    return {str(p.relative_to(out)): pq.read_table(p).to_pylist() for p in sorted(out.rglob("*.parquet"))}


def chunk_files(work: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((work / "chunks").glob("*.jsonl"))}


@pytest.mark.parametrize("method", list(METHODS))
def test_streaming_and_chunks_give_the_same_rows_and_chunk_files(tmp_path, method):
    with FakeOpenAIServer(models=[MODEL], vllm=True) as server:
        stream = summary_of(CliRunner().invoke(cli, args(server, tmp_path, "stream", method)))
        chunks = summary_of(CliRunner().invoke(cli, args(server, tmp_path, "chunks", method, "--scheduler", "chunks")))
    assert stream["method"] == chunks["method"] == method
    assert stream["rollouts"] == chunks["rollouts"] == 4 * 3
    streamed = tables(tmp_path / "stream")
    assert streamed and streamed == tables(tmp_path / "chunks")
    assert chunk_files(tmp_path / "w-stream") == chunk_files(tmp_path / "w-chunks") != {}


@pytest.mark.parametrize("method", list(METHODS))
def test_a_400_costs_one_problem_and_a_resume_does_not_retry_it(tmp_path, method):
    data = with_long(tmp_path)
    with FakeOpenAIServer(models=[MODEL], max_model_len=400, reject_over=True) as server:
        summary = summary_of(CliRunner().invoke(cli, args(server, tmp_path, "out", method, data=data)))
        assert summary["skipped_during_generation"] == {"request_rejected": 1}
        assert summary["problems"] == 5 - 1  # the sample's row without a solution, and the long one
        asked = len(server.generation_requests)
        again = summary_of(CliRunner().invoke(cli, args(server, tmp_path, "out", method, data=data)))
        assert len(server.generation_requests) == asked  # everything, the refusal too, was stored
    assert again["skipped_during_generation"] == {"request_rejected": 1} and again["problems"] == 4


@pytest.mark.parametrize("method", list(METHODS))
def test_progress_counts_problems_and_rollouts_under_streaming(tmp_path, method):
    with FakeOpenAIServer(models=[MODEL], delay=0.05) as server:
        cli_args = [a for a in args(server, tmp_path, "out", method) if a not in ("--quiet", "--json")]
        result = CliRunner().invoke(cli, [*cli_args, "--progress-every", "0.2", "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("adapt: ")]
    assert len(lines) >= 2 and lines[-1].startswith("adapt: 4/4 problems (100%), 12 rollouts (")


def test_dail_below_tau_1_says_it_runs_chunk_by_chunk(tmp_path):
    with FakeOpenAIServer(models=[MODEL]) as server:
        cli_args = [a for a in args(server, tmp_path, "out", "dail", "--dail-tau", "0.5") if a not in ("--quiet", "--json")]
        result = CliRunner().invoke(cli, cli_args)
    assert "dail: runs chunk by chunk (--dail-tau below 1 decodes two contexts in lock-step" in result.stderr
    assert result.exit_code == 1 and "needs --engine transformers" in result.output  # and on this engine it cannot run


@pytest.mark.slow
@pytest.mark.timeout(1200)  # subprocesses on a shared machine: the suite's 300 s is a guard for quick tests
@pytest.mark.parametrize("method", list(METHODS))
def test_kill_9_under_streaming_resumes_to_the_uninterrupted_result(tmp_path, method):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    extra = ["--chunk-size", "1", "--concurrency", "3"]
    with FakeOpenAIServer(models=[MODEL], vllm=True, delay=0.3) as server:
        cmd = [sys.executable, "-m", "dart_hub.cli", *args(server, tmp_path, "a", method), *extra]
        chunks = tmp_path / "w-a" / "chunks"
        for kill_after in (1, 2):  # two kills at different moments
            victim = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and victim.poll() is None and len(list(chunks.glob("chunk-*.jsonl"))) < kill_after:
                time.sleep(0.01)
            victim.send_signal(signal.SIGKILL)
            victim.wait()
        done_before = len(list(chunks.glob("chunk-*.jsonl")))
        assert 1 <= done_before < 4, done_before
        resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stderr
        straight = subprocess.run([sys.executable, "-m", "dart_hub.cli", *args(server, tmp_path, "b", method), *extra],
                                  env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert straight.returncode == 0, straight.stderr
    assert tables(tmp_path / "a") == tables(tmp_path / "b") != {}
    assert chunk_files(tmp_path / "w-a") == chunk_files(tmp_path / "w-b")
