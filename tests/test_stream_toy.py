"""On the toy world (the shipped toy student, transformers engine): the streaming scheduler gives
the chunked runner's dataset, row for row."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.toy import expert_dataset_path, toy_student_path
from dart_hub.toy.demo import TOY_EXPLORE_MAX_TOKENS, TOY_SIM_MAX_TOKENS
from dart_hub.toy.styles import MIN_STEP_CHARS


def rows(out: Path, config: str) -> list[dict]:
    folder = "data" if config == "default" else config
    return pq.read_table(out / folder / "train-00000-of-00001.parquet").to_pylist()


@pytest.mark.slow
@pytest.mark.timeout(1200)  # minutes of tiny-model work: the suite's 300 s is a guard for quick tests
def test_streaming_gives_the_chunked_dataset_on_the_toy_world(tmp_path):
    def adapt(name: str, *extra: str) -> None:
        args = [
            "adapt", "--student", str(toy_student_path()), "--dataset", str(expert_dataset_path()), "--engine", "transformers",
            "--dtype", "float32", "--device", "cpu", "--limit", "3", "--chunk-size", "2", "--n-sim", "2", "--n-explore", "2",
            "--sim-max-tokens", str(TOY_SIM_MAX_TOKENS), "--explore-max-tokens", str(TOY_EXPLORE_MAX_TOKENS),
            "--min-step-chars", str(MIN_STEP_CHARS), "--output", str(tmp_path / name), "--work-dir", str(tmp_path / f"w-{name}"),
            "--probe-cache", str(tmp_path / f"p-{name}"), "--quiet", *extra,
        ]  # fmt: skip
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output

    adapt("stream")
    adapt("chunks", "--scheduler", "chunks")
    steps = rows(tmp_path / "stream", "steps")
    assert len(steps) == 3 and sum(r["rollouts"] for r in steps) > 0
    assert any(0 < s < 1 for r in steps for s in r["scores"] if s is not None) or any(r["cut_reason"] == "gap" for r in steps)
    assert steps == rows(tmp_path / "chunks", "steps")
    assert rows(tmp_path / "stream", "default") == rows(tmp_path / "chunks", "default")


TOY_METHODS = {
    "dail": ["--method", "dail", "--dail-samples", "3", "--dail-max-tokens", "256"],
    "mapper": ["--method", "mapper", "--mapper-samples", "3", "--mapper-max-tokens", "256", "--scorer-device", "cpu"],
}


@pytest.mark.slow
@pytest.mark.timeout(1200)
@pytest.mark.parametrize("method", list(TOY_METHODS))
def test_dail_and_the_mapper_stream_to_the_chunked_dataset_on_the_toy_world(tmp_path, method):
    """The toy student rewrites with the toy world's prompt (the mapper scores with the toy
    student's likelihood, per chunk in both schedulers): every table and chunk file the same."""
    from dart_hub.toy import method_prompts_path

    def adapt(name: str, *extra: str) -> None:
        args = [
            "adapt", "--student", str(toy_student_path()), "--dataset", str(expert_dataset_path()), "--engine", "transformers",
            "--dtype", "float32", "--device", "cpu", "--limit", "3", "--chunk-size", "2", *TOY_METHODS[method],
            "--method-prompts", str(method_prompts_path(method)), "--output", str(tmp_path / name),
            "--work-dir", str(tmp_path / f"w-{name}"), "--quiet", *extra,
        ]  # fmt: skip
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output

    adapt("stream")
    adapt("chunks", "--scheduler", "chunks")
    tables = {p.relative_to(tmp_path / "stream"): pq.read_table(p).to_pylist() for p in (tmp_path / "stream").rglob("*.parquet")}
    assert tables and sum(len(rows) for rows in tables.values()) > 0
    assert tables == {p.relative_to(tmp_path / "chunks"): pq.read_table(p).to_pylist() for p in (tmp_path / "chunks").rglob("*.parquet")}
    chunks = {p.name: p.read_bytes() for p in (tmp_path / "w-stream" / "chunks").glob("*.jsonl")}
    assert len(chunks) == 2 and chunks == {p.name: p.read_bytes() for p in (tmp_path / "w-chunks" / "chunks").glob("*.jsonl")}
