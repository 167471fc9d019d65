"""`dart-hub adapt --engine openai` against the fake server (tests/fake_openai_server.py): the
streaming scheduler gives the chunked runner's rows, n-sample requests give the per-sample
rows, a refused request costs its problem only (and is not retried on resume), --dry-run skips
what the real run skips, and kill -9 under streaming resumes to the uninterrupted result."""

from __future__ import annotations

import json
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

DATA = Path(__file__).parent / "data"
MODEL = "fake/student"
FAST = ["--n-sim", "3", "--sim-max-tokens", "16", "--n-explore", "3", "--explore-max-tokens", "16", "--quiet", "--json"]
LONG = {"question": "A long one?", "solution": "\n\n".join(f"Paragraph {i}: we note that {i} + 1 = {i + 1}." for i in range(60)) + " \\boxed{1}", "answer": "1"}


def args(server, tmp_path: Path, name: str, *extra: str, data: Path | None = None, student: str = MODEL) -> list[str]:
    return [
        "adapt", "--student", student, "--dataset", str(data or DATA / "limo_sample.jsonl"), "--engine", "openai",
        "--base-url", server.base_url, "--output", str(tmp_path / name), "--work-dir", str(tmp_path / f"w-{name}"),
        "--probe-cache", str(tmp_path / f"p-{name}"), "--chunk-size", "2", *FAST, *extra,
    ]  # fmt: skip


def rows(out: Path, config: str = "steps") -> list[dict]:
    folder = "data" if config == "default" else config
    return pq.read_table(out / folder / "train-00000-of-00001.parquet").to_pylist()


def summary_of(result) -> dict:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def with_long(tmp_path: Path) -> Path:
    lines = (DATA / "limo_sample.jsonl").read_text().splitlines()
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join([*lines[:2], json.dumps(LONG), *lines[2:]]) + "\n")
    return path


def test_streaming_and_chunks_and_n_per_request_give_the_same_rows(tmp_path):
    with FakeOpenAIServer(models=[MODEL], vllm=True) as server:
        stream = summary_of(CliRunner().invoke(cli, args(server, tmp_path, "stream")))
        batched_posts = len(server.generation_requests)
        server.requests.clear()
        chunks = summary_of(CliRunner().invoke(cli, args(server, tmp_path, "chunks", "--scheduler", "chunks", "--sample-batching", "off")))
        single_posts = len(server.generation_requests)
    assert stream["rollouts"] == chunks["rollouts"] > 0
    assert batched_posts * 2 < single_posts  # n samples per request on a vLLM server
    for config in ("steps", "default"):
        assert rows(tmp_path / "stream", config) == rows(tmp_path / "chunks", config)
    assert sorted(p.name for p in (tmp_path / "w-stream" / "chunks").iterdir()) == sorted(
        p.name for p in (tmp_path / "w-chunks" / "chunks").iterdir()
    )


def test_a_400_costs_one_problem_and_a_resume_does_not_retry_it(tmp_path):
    data = with_long(tmp_path)
    with FakeOpenAIServer(models=[MODEL], max_model_len=200, reject_over=True) as server:
        first = CliRunner().invoke(cli, args(server, tmp_path, "out", data=data))
        summary = summary_of(first)
        assert "prompt lengths not checked" in first.stderr  # no tokenizer for "fake/student"
        assert summary["skipped_during_generation"] == {"request_rejected": 1}
        assert summary["problems"] == 5 - 1  # the sample's row without a solution, and the long one
        config = json.loads((tmp_path / "out" / "dart_config.json").read_text())
        assert config["source"]["skipped"]["request_rejected"] == 1
        asked = len(server.generation_requests)
        again = summary_of(CliRunner().invoke(cli, args(server, tmp_path, "out", data=data)))
        assert len(server.generation_requests) == asked  # everything, the refusal too, was stored
    assert again["skipped_during_generation"] == {"request_rejected": 1}
    assert rows(tmp_path / "out") == rows(tmp_path / "out")


def test_dry_run_and_real_run_skip_the_same_problems(tmp_path, tiny_model_dir):
    """The server's max_model_len (from /v1/models) and the student's tokenizer decide
    too_long, in the dry run as in the real run; nothing too long reaches the server."""
    data = with_long(tmp_path)
    student = str(tiny_model_dir)
    with FakeOpenAIServer(models=[student], max_model_len=1200, reject_over=True) as server:
        dry = summary_of(CliRunner().invoke(cli, [*args(server, tmp_path, "out", data=data, student=student), "--dry-run"]))
        assert server.generation_requests == []
        real = summary_of(CliRunner().invoke(cli, args(server, tmp_path, "out", data=data, student=student)))
        refused = [r for r in server.generation_requests if "Paragraph 59" in json.dumps(r.body)]
    assert dry["skipped_before_generation"] == real["skipped_before_generation"] == {"too_long": 1}
    assert [row["row_index"] for row in dry["would_skip"]] == [2]
    assert "skipped_during_generation" not in real and refused == []
    assert dry["problems"] == real["problems"]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # minutes of tiny-model work: the suite's 300 s is a guard for quick tests
def test_kill_9_under_streaming_resumes_to_the_uninterrupted_result(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    extra = ["--chunk-size", "1", "--dataset", str(DATA / "qwq_sample.jsonl"), "--preset", "math-qwq-32b"]
    with FakeOpenAIServer(models=[MODEL], vllm=True, delay=0.02) as server:
        cmd = [sys.executable, "-m", "dart_hub.cli", *args(server, tmp_path, "a"), *extra, "--concurrency", "4"]
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
        straight = subprocess.run(
            [sys.executable, "-m", "dart_hub.cli", *args(server, tmp_path, "b"), *extra], env=env, capture_output=True, text=True, timeout=300
        )
        assert straight.returncode == 0, straight.stderr
    for config in ("steps", "default"):
        assert rows(tmp_path / "a", config) == rows(tmp_path / "b", config)


def test_progress_lines_in_logs_and_a_calm_bar_on_terminals(tmp_path):
    import io

    from dart_hub.adaptation.stage import ProgressReporter

    with FakeOpenAIServer(models=[MODEL], delay=0.05) as server:
        cli_args = [a for a in args(server, tmp_path, "out") if a not in ("--quiet", "--json")]
        result = CliRunner().invoke(cli, [*cli_args, "--progress-every", "0.2", "--concurrency", "2"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("adapt: ")]
    assert len(lines) >= 2  # at least one while running, one at the end
    assert lines[-1].startswith("adapt: 4/4 problems (100%)") and "rollouts (" in lines[-1] and "tokens (" in lines[-1]
    assert "ETA" in lines[0]

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    bar = ProgressReporter(10, True, stream=Terminal())
    assert bar.progress is not None and bar.progress.live.refresh_per_second == 2
    quiet = ProgressReporter(10, False, stream=io.StringIO())
    with quiet:
        quiet.problems_done(3, resumed=False)
    assert quiet.stream.getvalue() == ""
