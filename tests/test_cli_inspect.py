"""`dart-hub inspect`, driven through click's CliRunner exactly as a user types it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from dart_hub.cli import cli
from dart_hub.steps import join_steps
from tests.test_sources import (  # noqa: F401  (fake_hub is a fixture)
    SHA,
    FakeHub,
    fake_hub,
    limo_repo_files,
)

DATA = Path(__file__).parent / "data"
LIMO = str(DATA / "limo_sample.jsonl")
QWQ = str(DATA / "qwq_sample.jsonl")
CUSTOM = str(DATA / "custom_sample.jsonl")


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, ["inspect", *args], catch_exceptions=False)


def run_json(*args: str) -> list[dict[str, Any]]:
    result = run(*args, "--json")
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines()]


def assert_one_line_error(result: Result, *fragments: str) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


def test_inspect_limo_sample() -> None:
    result = run(LIMO)
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.count("Problem ") == 3
    assert "Problem 1/3  id 0c23bfdbce42fc7f  (row 1)" in out
    assert "Gold answer: 50" in out
    assert "Gold answer: 25" in out  # the answer column, not the box's "025"
    assert "  1. Let me call the width $w$." in out
    assert "problems read: 3 (from 4 of 6 rows)" in out
    assert "skipped rows:  1 (empty_solution: 1)" in out
    assert "steps/problem: mean 3.67, median 4" in out
    assert "local, 1 file(s)" in out


def test_inspect_all_rows_counts_every_skip_reason() -> None:
    out = run(LIMO, "--limit", "0").stdout
    assert "problems read: 4 (from 6 of 6 rows)" in out
    assert "skipped rows:  2 (empty_solution: 1, no_gold_answer: 1)" in out


def test_inspect_qwq_sample_with_preset_and_with_columns() -> None:
    by_preset = run_json(QWQ, "--preset", "math-qwq-32b", "--limit", "0")
    by_columns = run_json(QWQ, "--question-column", "problem", "--limit", "0")
    assert by_preset[:-1] == by_columns[:-1]
    problems = [r for r in by_preset if r["type"] == "problem"]
    assert [p["answer"] for p in problems] == ["12", "5", "\\frac{3}{28}", "42", "9"]
    assert [by_preset[-1]["preset"], by_columns[-1]["preset"]] == ["math-qwq-32b", None]
    for summary in (by_preset[-1], by_columns[-1]):
        assert summary["answer_column"] is None and summary["question_column"] == "problem"


def test_inspect_custom_sample_with_column_override() -> None:
    result = run(CUSTOM, "--question-column", "prompt", "--solution-column", "response")
    assert result.exit_code == 0, result.output
    assert "Gold answer: 5\\sqrt{2}" in result.stdout
    assert "gold answer:   the solution's last \\boxed{}" in result.stdout


def test_missing_column_is_a_one_line_error() -> None:
    result = run(CUSTOM)
    assert_one_line_error(
        result,
        "column 'question' not found in",
        "columns are: prompt, response, origin",
        "--question-column",
    )
    assert result.stdout == ""


def test_nonexistent_path_is_an_error(tmp_path: Path) -> None:
    assert_one_line_error(run(str(tmp_path / "missing.jsonl")), "no such file or folder")


def test_empty_split_is_an_error(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert_one_line_error(run(str(empty)), "split 'train' of", "is empty")


def test_unknown_split_is_an_error() -> None:
    assert_one_line_error(run(LIMO, "--split", "test"), "available splits: train", "--split")


def test_json_output_parses_and_steps_rebuild_the_solution() -> None:
    records = run_json(LIMO, "--limit", "0")
    kinds = [r["type"] for r in records]
    assert kinds == ["problem"] * 4 + ["skipped"] * 2 + ["summary"]
    solutions = {
        problem_id: row["solution"]
        for problem_id, row in zip(
            [
                "0c23bfdbce42fc7f",
                "3f405d2404dd6a52",
                None,
                "c90b7043139cc56b",
                None,
                "9490f56f12fd2993",
            ],
            (json.loads(line) for line in Path(LIMO).read_text().splitlines()),
            strict=True,
        )
    }
    for problem in records[:4]:
        assert problem["num_steps"] == len(problem["steps"]) >= 1
        rebuilt = join_steps(problem["steps"])
        assert " ".join(rebuilt.split()) == " ".join(solutions[problem["id"]].split())
        assert problem["provenance"]["split"] == "train"
    assert [(r["row_index"], r["reason"]) for r in records[4:6]] == [
        (2, "empty_solution"),
        (4, "no_gold_answer"),
    ]
    summary = records[-1]
    assert summary["problems"] == 4 and summary["rows_read"] == 6 and summary["num_rows"] == 6
    assert summary["skipped"] == {"empty_solution": 1, "no_gold_answer": 1}
    assert summary["columns"] == ["question", "solution", "answer"]
    assert summary["kind"] == "local" and summary["repo_id"] is None
    assert len(summary["fingerprint"]) == 64


def test_min_step_chars_changes_the_segmentation() -> None:
    default = run_json(LIMO, "--limit", "1")[0]
    fine = run_json(LIMO, "--limit", "1", "--min-step-chars", "0")[0]
    assert default["num_steps"] == 4
    assert fine["num_steps"] == 6
    assert fine["steps"][2] == "Wait,"


def test_full_prints_steps_unshortened() -> None:
    short = run(QWQ, "--preset", "math-qwq-32b", "--limit", "1").stdout
    full = run(QWQ, "--preset", "math-qwq-32b", "--limit", "1", "--full").stdout
    assert "…" in short
    assert "…" not in full
    assert "Let me think about what that means: $n^2 \\equiv 44 \\pmod{100}$." in full


def test_parquet_file_and_folder(tmp_path: Path) -> None:
    table = pa_json.read_json(LIMO)
    pq.write_table(table, tmp_path / "limo.parquet")
    folder = tmp_path / "shards"
    folder.mkdir()
    pq.write_table(table.slice(0, 2), folder / "train-00000.parquet")
    pq.write_table(table.slice(2), folder / "train-00001.parquet")
    expected = [r["id"] for r in run_json(LIMO, "--limit", "0") if r["type"] == "problem"]
    for target in (tmp_path / "limo.parquet", folder):
        records = run_json(str(target), "--limit", "0")
        assert [r["id"] for r in records if r["type"] == "problem"] == expected
        assert records[-1]["skipped"] == {"empty_solution": 1, "no_gold_answer": 1}
    out = run(str(folder)).stdout
    assert "local, 2 file(s)" in out


def test_ids_are_stable_across_runs_and_files(tmp_path: Path) -> None:
    first = [r["id"] for r in run_json(LIMO, "--limit", "0") if r["type"] == "problem"]
    copy = tmp_path / "again.jsonl"
    shutil.copy(LIMO, copy)
    second = [r["id"] for r in run_json(str(copy), "--limit", "0") if r["type"] == "problem"]
    assert first == second
    custom = run_json(CUSTOM, "--question-column", "prompt", "--solution-column", "response")
    assert custom[0]["id"] == first[0]  # same question, other whitespace, other file


def test_preset_names_load_their_hub_repos(fake_hub: FakeHub) -> None:  # noqa: F811
    limo = run_json("limo", "--limit", "2")
    assert fake_hub.load_calls[-1] == (
        ("GAIR/LIMO",),
        {"name": None, "split": "train", "revision": SHA},
    )
    summary = limo[-1]
    assert (summary["repo_id"], summary["revision"], summary["license"]) == (
        "GAIR/LIMO",
        SHA,
        "apache-2.0",
    )
    assert summary["answer_column"] == "answer"
    assert limo[0]["provenance"]["repo_id"] == "GAIR/LIMO"

    result = run("math-qwq-32b", "--revision", "main")
    assert result.exit_code == 0, result.output
    assert fake_hub.info_calls[-1] == ("UWNSL/MATH_training_split_long_cot", "main")
    assert f"UWNSL/MATH_training_split_long_cot at revision {SHA}" in result.stdout
    assert "gold answer:   the solution's last \\boxed{}" in result.stdout


def test_hub_not_found_is_a_one_line_error(fake_hub: FakeHub) -> None:  # noqa: F811
    assert_one_line_error(
        run("nobody/nothing"), "dataset 'nobody/nothing' not found on the Hub", "presets are"
    )


def test_inspect_a_dataset_on_the_emulated_hub(hub: Any) -> None:
    sha = hub.create_dataset("GAIR/LIMO", limo_repo_files())
    result = run("limo", "--limit", "0")
    assert result.exit_code == 0, result.output
    assert f"GAIR/LIMO at revision {sha}" in result.stdout
    assert "license:       apache-2.0" in result.stdout
    assert "skipped rows:  2 (empty_solution: 1, no_gold_answer: 1)" in result.stdout
    mirror = run_json("GAIR/LIMO", "--revision", sha, "--answer-column", "", "--limit", "2")
    assert [r["answer"] for r in mirror[:2]] == ["50", "025"]
    assert mirror[0]["provenance"]["revision"] == sha


def test_every_option_is_documented() -> None:
    from dart_hub.commands.inspect import command

    options = [p for p in command.params if p.param_type_name == "option"]
    assert len(options) >= 11
    for option in options:
        assert option.help and len(option.help) > 20, option.name
    by_name = {option.name: option.help for option in options}
    assert "--answer-column ''" in by_name["answer_column"]
    assert "0 reads all" in by_name["limit"]
    text = CliRunner().invoke(cli, ["inspect", "--help"]).output
    for needle in ("GAIR/LIMO", "UWNSL/MATH_training_split_long_cot", "--question-column prompt"):
        assert needle in text


@pytest.mark.parametrize("limit", ["-1", "x"])
def test_bad_limit_is_a_usage_error(limit: str) -> None:
    result = run(LIMO, "--limit", limit)
    assert result.exit_code == 2
