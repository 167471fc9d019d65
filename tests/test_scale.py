"""Scaling past one node: `adapt --dry-run --tokens-per-second` (GPU-hours) and the Slurm
scripts in scripts/slurm/ (run here with a stub `dart-hub` that records its arguments)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from click.testing import CliRunner

from dart_hub.cli import cli

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data" / "limo_sample.jsonl"
SLURM = ROOT / "scripts" / "slurm"


def dry_run(tiny_model_dir: Path, *extra: str):
    return CliRunner().invoke(cli, ["adapt", "--student", str(tiny_model_dir), "--dataset", str(DATA), "--dry-run", "--json", "--sim-max-tokens", "3000", *extra])


def test_dry_run_prices_the_run_in_gpu_hours(tiny_model_dir):
    plain = dry_run(tiny_model_dir)
    priced = dry_run(tiny_model_dir, "--tokens-per-second", "20")
    assert plain.exit_code == 0 and priced.exit_code == 0, priced.output
    cost = json.loads(priced.stdout)
    assert "gpu_hours_max" not in json.loads(plain.stdout)
    assert cost["new_tokens_max"] == json.loads(plain.stdout)["new_tokens_max"] > 0
    assert cost["gpu_hours_max"] == round(cost["new_tokens_max"] / 20 / 3600, 2) > 0


def test_tokens_per_second_without_dry_run_is_a_one_line_error(tiny_model_dir):
    result = CliRunner().invoke(cli, ["adapt", "--student", str(tiny_model_dir), "--dataset", str(DATA), "--tokens-per-second", "20"])
    assert result.exit_code == 1 and "--tokens-per-second goes with --dry-run" in result.stderr


def _stub(tmp_path: Path) -> tuple[Path, Path]:
    log = tmp_path / "calls.log"
    stub = tmp_path / "dart-hub"
    stub.write_text(
        '#!/bin/bash\necho "$*" >> "$LOG"\n'
        'case "$*" in *--dry-run) echo "- push: to me/x";; esac\n'
    )
    stub.chmod(0o755)
    return stub, log


def test_slurm_array_task_runs_its_shard_of_the_recipe(tmp_path):
    stub, log = _stub(tmp_path)
    env = {
        "PATH": os.environ["PATH"], "LOG": str(log), "DART_HUB": str(stub), "RECIPE": "r.yaml",
        "OUTPUT": str(tmp_path / "out"), "SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_COUNT": "16",
        "SHARDS": "16", "PREFETCH": "0",  # the shard count is explicit; tests/test_slurm.py covers the rest
    }  # fmt: skip
    done = subprocess.run(["bash", str(SLURM / "adapt-array.sbatch")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = tmp_path / "out"
    assert log.read_text().split() == [
        "run", "r.yaml", "--only", "adapt", "--shard", "3/16", "--set", f"output={out}",
        "--set", f"adapt.work_dir={out}/work/shard-3",
    ]  # fmt: skip  (no --quiet: progress lines every 60 s in the job's log)
    # the flags are real `dart-hub run` options
    from dart_hub.commands.run import command

    flags = {opt for p in command.params for opt in p.opts}
    assert {"--only", "--shard", "--set"} <= flags


def test_slurm_array_task_refuses_to_run_outside_an_array(tmp_path):
    stub, log = _stub(tmp_path)
    env = {"PATH": os.environ["PATH"], "LOG": str(log), "DART_HUB": str(stub), "RECIPE": "r.yaml", "OUTPUT": "o"}
    done = subprocess.run(["bash", str(SLURM / "adapt-array.sbatch")], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "sbatch --array" in done.stderr and not log.exists()


def test_slurm_merge_merges_then_pushes(tmp_path):
    stub, log = _stub(tmp_path)
    env = {"PATH": os.environ["PATH"], "LOG": str(log), "DART_HUB": str(stub), "RECIPE": "r.yaml", "OUTPUT": "o"}
    done = subprocess.run(["bash", str(SLURM / "merge.sbatch")], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert log.read_text().splitlines() == [
        "merge o/shards --output o/dataset",
        "run r.yaml --set output=o --dry-run",
        "run r.yaml --only push --set output=o",
    ]
