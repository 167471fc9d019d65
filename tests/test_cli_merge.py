"""`adapt --shard I/N` + `dart-hub merge`, driven through the CLI (static strategy: no model)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.shards import Shard

DATA = Path(__file__).parent / "data" / "limo_sample.jsonl"


def adapt(tmp_path: Path, output: Path, *extra: str):
    args = [
        "adapt", "--student", "any/student", "--dataset", str(DATA), "--strategy", "static",
        "--work-dir", str(tmp_path / "work"), "--output", str(output), "--quiet", *extra,
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return result


def rows(folder: Path, sub: str = "data") -> list[dict]:
    return pq.read_table(folder / sub / "train-00000-of-00001.parquet").to_pylist()


def test_shards_partition_the_problems_and_merge_to_the_unsharded_result(tmp_path):
    adapt(tmp_path, tmp_path / "whole")
    for i in range(3):
        adapt(tmp_path, tmp_path / "shards", "--shard", f"{i}/3")
    assert len(list((tmp_path / "shards").glob("shard-*-of-00003"))) == 3
    shard_ids = [r["id"] for i in range(3) for r in rows(tmp_path / "shards" / Shard(i, 3).name, "steps")]
    assert len(shard_ids) == len(set(shard_ids)) == len(rows(tmp_path / "whole", "steps"))

    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "shards"), "--output", str(tmp_path / "merged"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["shards"] == 3 and summary["missing_shards"] == [] and summary["duplicate_examples"] == 0
    assert rows(tmp_path / "merged") == rows(tmp_path / "whole")
    assert rows(tmp_path / "merged", "steps") == rows(tmp_path / "whole", "steps")


def test_merge_reports_missing_shards(tmp_path):
    for i in (0, 2):
        adapt(tmp_path, tmp_path / "shards", "--shard", f"{i}/3")
    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "shards"), "--output", str(tmp_path / "m")])
    assert result.exit_code == 1 and "missing shards [1] of 3" in result.stderr
    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "shards"), "--output", str(tmp_path / "m"), "--allow-missing", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["missing_shards"] == [1]


def test_merge_refuses_shards_of_different_runs(tmp_path):
    adapt(tmp_path, tmp_path / "shards", "--shard", "0/2")
    adapt(tmp_path / "other", tmp_path / "shards", "--shard", "1/2", "--seed", "7")
    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "shards"), "--output", str(tmp_path / "m")])
    assert result.exit_code == 1 and "different" in result.stderr


def test_merge_refuses_the_same_shard_twice(tmp_path):
    adapt(tmp_path, tmp_path / "shards", "--shard", "0/2")
    shutil.copytree(tmp_path / "shards" / "shard-00000-of-00002", tmp_path / "shards" / "shard-00000-of-00002-copy")
    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "shards"), "--output", str(tmp_path / "m"), "--allow-missing"])
    assert result.exit_code == 1 and "twice" in result.stderr


@pytest.mark.parametrize("text", ["3", "3/3", "a/b", "-1/4", "1/0"])
def test_bad_shard_spec(tmp_path, text):
    args = ["adapt", "--student", "s", "--dataset", str(DATA), "--strategy", "static", "--shard", text, "--work-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1 and "--shard" in result.stderr


def test_shard_selection_is_a_partition():
    ids = [f"{n:016x}" for n in range(0, 10_000, 37)]
    owners = [[Shard(i, 4).owns(pid) for i in range(4)] for pid in ids]
    assert all(sum(o) == 1 for o in owners)


@pytest.mark.slow
def test_four_generated_shards_merge_to_the_single_run(tmp_path, tiny_model_dir):
    """Full strategy with a real (tiny) model: per-request seeds make every problem's samples
    independent of which shard and batch it ran in, so 4 shards merged equal one run."""
    generate = [
        "--student", str(tiny_model_dir), "--strategy", "full", "--engine", "transformers", "--seed", "3",
        "--n-sim", "2", "--sim-max-tokens", "10", "--n-explore", "2", "--explore-max-tokens", "10",
    ]  # fmt: skip

    def run(output: Path, *extra: str) -> None:
        args = ["adapt", "--dataset", str(DATA), "--work-dir", str(tmp_path / "work"), "--output", str(output), "--quiet", *generate, *extra]
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0, result.output

    run(tmp_path / "whole")
    for i in range(4):
        run(tmp_path / "shards", "--shard", f"{i}/4")
    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "shards"), "--output", str(tmp_path / "merged")])
    assert result.exit_code == 0, result.output
    whole, merged = rows(tmp_path / "whole", "steps"), rows(tmp_path / "merged", "steps")
    assert [r["id"] for r in merged] == [r["id"] for r in whole]
    assert merged == whole


def test_merge_takes_the_engine_from_a_shard_that_has_one_and_says_when_they_disagree(tmp_path):
    for i in range(3):
        adapt(tmp_path, tmp_path / "shards", "--shard", f"{i}/3")
    described = {"engine": "openai", "model": "any/student", "base_url": "http://router/v1", "concurrency": 2048}

    def set_engine(i, engine):
        path = tmp_path / "shards" / Shard(i, 3).name / "dart_config.json"
        config = json.loads(path.read_text())
        config["engine"] = engine
        path.write_text(json.dumps(config))

    # shard 0 generated nothing (its engine was never loaded): it only knows a name
    set_engine(1, described)
    set_engine(2, {**described, "prefix_cache_hit_rate": 0.5})
    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "shards"), "--output", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    merged = json.loads((tmp_path / "m" / "dart_config.json").read_text())
    assert merged["engine"] == described and "engine_by_shard" not in merged
    assert "different engines" not in result.stderr

    set_engine(2, {**described, "concurrency": 64})
    result = CliRunner().invoke(cli, ["merge", str(tmp_path / "shards"), "--output", str(tmp_path / "m2")])
    assert result.exit_code == 0, result.output
    assert "the shards ran on different engines (shard-00001-of-00003, shard-00002-of-00003)" in result.stderr
    merged = json.loads((tmp_path / "m2" / "dart_config.json").read_text())
    assert merged["engine"] == described
    assert merged["engine_by_shard"]["shard-00002-of-00003"]["concurrency"] == 64
