"""Issue 17 items 5-6: problems too long for the student, and gold answers the checker cannot
verify in time, are skipped once before generating, with a reason counted in the summary and the
card; memory stays bounded whatever the input size."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
FAST = ["--n-sim", "1", "--sim-max-tokens", "8", "--n-explore", "1", "--explore-max-tokens", "8", "--quiet", "--json", "--engine", "transformers"]


def dataset(tmp_path: Path, *extra: dict) -> Path:
    rows = [json.loads(line) for line in (DATA / "limo_sample.jsonl").read_text().splitlines()][:3]
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [*rows, *extra]))
    return path


LONG = {"question": "Long one?", "solution": "\n\n".join(f"Paragraph {i}: we note that {i} + 1 = {i + 1}." for i in range(500)) + " \\boxed{1}", "answer": "1"}
HUGE = {"question": "Huge one?", "solution": "x = 1. " * 800_000 + "\\boxed{1}", "answer": "1"}  # about 5 MB


def test_too_long_problems_are_skipped_before_generating_and_counted(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    args = ["adapt", "--student", str(tiny_model_dir), "--dataset", str(dataset(tmp_path, LONG)), "--output", str(out), "--work-dir", str(tmp_path / "w"), *FAST]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["skipped_before_generation"] == {"too_long": 1}
    assert summary["problems"] == 2  # the others went through (the third sample row has no solution)
    card = (out / "README.md").read_text()
    assert "| too\\_long | 1 |" in card
    skipped = json.loads((out / "dart_config.json").read_text())["source"]["skipped"]
    assert skipped["too_long"] == 1


@pytest.mark.slow
def test_a_5_mb_solution_costs_bounded_memory_and_no_traceback(tiny_model_dir, tmp_path):
    path = dataset(tmp_path, HUGE, LONG)
    args = [sys.executable, "-m", "dart_hub.cli", "adapt", "--student", str(tiny_model_dir), "--dataset", str(path),
            "--output", str(tmp_path / "out"), "--work-dir", str(tmp_path / "w"), *FAST]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(ROOT)})
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["skipped_before_generation"] == {"too_long": 2}
    if peak_kb > before:  # the largest child so far is this one
        assert peak_kb < 3 * 1024 * 1024  # KiB: well under the 10-15 GB the issue saw


def test_a_generation_budget_larger_than_the_window_is_one_line(tiny_model_dir, tmp_path):
    args = ["adapt", "--student", str(tiny_model_dir), "--dataset", str(dataset(tmp_path)), "--work-dir", str(tmp_path / "w"),
            "--engine", "transformers", "--sim-max-tokens", "5000", "--quiet"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert "--sim-max-tokens 5000 does not fit the student's context window of 4096 tokens" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unverifiable_golds_are_found_once_and_skipped(tiny_model_dir, tmp_path):
    towers = [
        {"question": f"Tower {k}?", "solution": f"It is \\boxed{{{gold}}}", "answer": gold}
        for k, gold in enumerate(["2^{2^{2^{2^{2^{2}}}}}", "10^{10^{10^{10}}}", "9^{9^{9^{9}}}", "7^{7^{7^{7}}}"])
    ]
    args = ["adapt", "--student", str(tiny_model_dir), "--dataset", str(dataset(tmp_path, *towers)), "--output", str(tmp_path / "out"),
            "--work-dir", str(tmp_path / "w"), "--answer-timeout", "1", *FAST]  # fmt: skip
    started = time.monotonic()
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["skipped_before_generation"] == {"unverifiable_gold": 4}
    assert summary["problems"] == 2
    card = (tmp_path / "out" / "README.md").read_text()
    assert "| unverifiable\\_gold | 4 |" in card
    assert time.monotonic() - started < 120


def test_static_runs_need_no_admission(tmp_path):
    args = ["adapt", "--student", "nobody/none", "--dataset", str(dataset(tmp_path, LONG)), "--strategy", "static",
            "--work-dir", str(tmp_path / "w"), "--quiet", "--json"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["skipped_before_generation"] == {}
