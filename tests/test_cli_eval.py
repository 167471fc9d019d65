"""`dart-hub eval` and `dart-hub compare` through CliRunner, as a user types them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.evaluation import BENCHMARK_NAMES, BENCHMARKS
from tests.test_evaluation import hub_files, write_local, write_results


def one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


def test_eval_with_a_tiny_model_writes_results_and_resumes(tiny_model_dir, tmp_path, hub):
    local = write_local(tmp_path)
    sha = hub.create_dataset("openai/gsm8k", hub_files("gsm8k"))
    sources = [f"{name}={path}" for name, path in local.items() if name != "gsm8k"]
    sources.append(f"gsm8k=openai/gsm8k@{sha}")  # through the emulated Hub
    out = tmp_path / "eval"
    args = [
        "eval", "--model", str(tiny_model_dir), "--engine", "transformers", "--device", "cpu",
        "--limit", "2", "--max-tokens", "6", "--output", str(out), "--json",
        *[arg for source in sources for arg in ("--benchmark-source", source)],
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout.strip().splitlines()[-1])
    results = json.loads((out / "results.json").read_text())
    assert printed["computed"] == list(BENCHMARK_NAMES)
    assert list(results["benchmarks"]) == list(BENCHMARK_NAMES)
    for name in BENCHMARK_NAMES:
        entry = results["benchmarks"][name]
        assert entry["total"] == 2 and entry["limit"] == 2 and not entry["complete"]
        assert 0 <= entry["correct"] <= 2 and entry["accuracy"] == entry["correct"] / 2
        rows = [json.loads(line) for line in (out / f"{name}.jsonl").read_text().splitlines()]
        assert len(rows) == 2 and all(r["completion_tokens"] <= 6 for r in rows)
    assert results["benchmarks"]["gsm8k"]["source"]["revision"] == sha
    assert results["engine"]["engine"] == "transformers"
    assert results["settings"]["max_tokens"] == 6
    average = sum(e["accuracy"] for e in results["benchmarks"].values()) / 5
    assert results["average"] == pytest.approx(average)

    # Same command again: everything resumes, the model is not even loaded.
    again = CliRunner().invoke(cli, [a if a != "--json" else "--quiet" for a in args])
    assert again.exit_code == 0, again.output
    assert again.stdout.count("(resumed)") == 5 and "Average" in again.stdout
    assert json.loads((out / "results.json").read_text())["benchmarks"] == results["benchmarks"]


def test_eval_errors_are_one_line(tmp_path):
    runner = CliRunner()
    one_line_error(
        runner.invoke(cli, ["eval", "--model", "a/b", "--benchmarks", "gsm8k,aime24", "--output", str(tmp_path / "o")]),
        "unknown benchmark 'aime24'", "known benchmarks: gsm8k, gaokao2023en, olympiadbench, college_math, mmlu_stem",
    )
    one_line_error(
        runner.invoke(cli, ["eval", "--model", "a/b", "--output", str(tmp_path / "o"), "--benchmark-source", "gsm8k"]),
        "expected NAME=PATH_OR_REPO",
    )
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "x"}\n')
    one_line_error(
        runner.invoke(cli, ["eval", "--model", "a/b", "--benchmarks", "gsm8k", "--output", str(tmp_path / "o"),
                            "--benchmark-source", f"gsm8k={bad}", "--quiet"]),
        "gsm8k source", "lacks a question column",
    )


def test_eval_help_documents_benchmarks_and_budget():
    result = CliRunner().invoke(cli, ["eval", "--help"])
    assert result.exit_code == 0
    for benchmark in BENCHMARKS.values():
        assert benchmark.name in result.output and benchmark.repo_id in result.output
    assert "16384" in result.output and "--benchmark-source" in result.output
    assert "eval" in CliRunner().invoke(cli, ["--help"]).output


def test_compare_prints_the_table_with_deltas(tmp_path):
    base = write_results(tmp_path / "no-tuning", "Qwen/Qwen2.5-0.5B-Instruct",
                         {"gsm8k": 0.40, "gaokao2023en": 0.30, "olympiadbench": 0.10, "college_math": 0.20, "mmlu_stem": 0.50})
    full = write_results(tmp_path / "full", "./checkpoints/full",
                         {"gsm8k": 0.46, "gaokao2023en": 0.30, "olympiadbench": 0.12, "college_math": 0.25, "mmlu_stem": 0.47})
    result = CliRunner().invoke(cli, ["compare", str(base), str(full), "--label", f"{base}=No-Tuning"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "| Run | GSM8K | GaoKao 2023 En | OlympiadBench | College Math | MMLU-STEM | Avg. |"
    assert lines[2] == "| No-Tuning (baseline) | 40.0 | 30.0 | 10.0 | 20.0 | 50.0 | 30.0 |"
    assert lines[3] == "| full | 46.0 (+6.0) | 30.0 (+0.0) | 12.0 (+2.0) | 25.0 (+5.0) | 47.0 (-3.0) | 32.0 (+2.0) |"

    flipped = CliRunner().invoke(cli, ["compare", str(base), str(full), "--baseline", "full", "--format", "json"])
    assert flipped.exit_code == 0, flipped.output
    table = json.loads(flipped.stdout)
    assert table["baseline"] == "full"
    assert table["rows"][0]["average_delta"] == pytest.approx(-2.0)

    text = CliRunner().invoke(cli, ["compare", str(base), str(full), "--format", "text"])
    assert text.exit_code == 0 and "32.0 (+2.0)" in text.stdout.splitlines()[3]


def test_compare_errors_are_one_line(tmp_path):
    (tmp_path / "not-a-run").mkdir()
    one_line_error(CliRunner().invoke(cli, ["compare", str(tmp_path / "not-a-run")]), "has no results.json")
    base = write_results(tmp_path / "a", "x/y", {"gsm8k": 0.5})
    one_line_error(CliRunner().invoke(cli, ["compare", str(base), "--baseline", "zzz"]), "--baseline 'zzz' is none")
    one_line_error(CliRunner().invoke(cli, ["compare", str(base), "--label", "oops"]), "expected DIR=NAME")
