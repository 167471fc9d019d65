"""The Slurm scripts under a fake Slurm environment: array id / count / range and node list set as
Slurm sets them, stand-ins for `dart-hub`, `srun` and `scontrol` on PATH that record what they
were given. The recorded environment of a training task then builds the real launch command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dart_hub.training import launch as launch_module

ROOT = Path(__file__).resolve().parents[1]
SLURM = ROOT / "scripts" / "slurm"
RECORDED_ENV = (
    "HF_HOME", "HF_TOKEN", "HF_HUB_OFFLINE", "SLURM_NODEID", "SLURM_JOB_NUM_NODES", "SLURM_JOB_NODELIST",
    "SLURM_STEP_NUM_NODES", "SLURM_STEP_NODELIST", "MASTER_ADDR", "MASTER_PORT",
)  # fmt: skip

STAND_IN = f"""#!{sys.executable}
import json, os, sys
with open(os.environ["RECORD"], "a") as f:
    f.write(json.dumps({{"args": sys.argv[1:], "env": {{k: os.environ.get(k) for k in {RECORDED_ENV!r}}}}}) + "\\n")
"""
# srun: one task per node, each with its SLURM_NODEID (options before the command are skipped)
SRUN = """#!/bin/bash
while [[ "$1" == --* ]]; do shift; done
export SLURM_STEP_NUM_NODES=${SLURM_JOB_NUM_NODES:-1} SLURM_STEP_NODELIST=$SLURM_JOB_NODELIST
for ((node = 0; node < SLURM_STEP_NUM_NODES; node++)); do SLURM_NODEID=$node "$@" || exit $?; done
"""
SCONTROL = """#!/bin/bash
# scontrol show hostnames gpu[03-04] -> one host per line
[ "$1 $2" = "show hostnames" ] || exit 1
echo "$3" | sed -E 's/^([a-z]+)\\[([0-9]+)-([0-9]+)\\]$/\\1 \\2 \\3/' | { read p a b; for i in $(seq -w "$a" "$b"); do echo "$p$i"; done; }
"""


@pytest.fixture
def fake_slurm(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("dart-hub", STAND_IN), ("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    record = tmp_path / "calls.jsonl"

    def run(script: str, env: dict[str, str], scontrol: bool = True) -> tuple[subprocess.CompletedProcess, list[dict]]:
        if not scontrol:
            (bin_dir / "scontrol").unlink(missing_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "HF_", "MASTER_")) and k not in ("SHARDS", "OFFLINE")}
        full = {**base, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "RECORD": str(record), **env}
        record.unlink(missing_ok=True)
        done = subprocess.run(["bash", str(SLURM / script)], env=full, capture_output=True, text=True, timeout=60)
        calls = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
        return done, calls

    return run


def array_env(tmp_path, task: int, low: int, high: int, count: int, **extra: str) -> dict[str, str]:
    return {
        "RECIPE": "recipes/qwen2.5-3b-instruct/limo.yaml", "OUTPUT": str(tmp_path / "out"),
        "SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_MIN": str(low), "SLURM_ARRAY_TASK_MAX": str(high),
        "SLURM_ARRAY_TASK_COUNT": str(count), "SLURM_ARRAY_JOB_ID": "77", **extra,
    }  # fmt: skip


def shard_arg(call: dict) -> str:
    return call["args"][call["args"].index("--shard") + 1]


def run_calls(calls: list[dict]) -> list[dict]:
    return [c for c in calls if c["args"][0] == "run"]


def test_adapt_array_over_the_whole_range(fake_slurm, tmp_path):
    done, [prefetch, call] = fake_slurm("adapt-array.sbatch", array_env(tmp_path, 3, 0, 4, 5))  # --array=0-4
    assert done.returncode == 0, done.stderr
    # the model and dataset are fetched under a lock first: one task downloads, the others find them
    assert prefetch["args"] == ["prefetch", "recipes/qwen2.5-3b-instruct/limo.yaml", "--set", f"output={tmp_path / 'out'}", "--no-eval", "--quiet"]
    assert (tmp_path / "out" / ".prefetch.lock").exists()
    assert call["args"][:4] == ["run", "recipes/qwen2.5-3b-instruct/limo.yaml", "--only", "adapt"]
    assert shard_arg(call) == "3/5"
    assert f"adapt.work_dir={tmp_path / 'out'}/work/shard-3" in call["args"]


def test_adapt_array_of_one_task_needs_the_shard_count(fake_slurm, tmp_path):
    """`sbatch --array=5` on a first submission: Slurm says COUNT=1; that is not N."""
    done, calls = fake_slurm("adapt-array.sbatch", array_env(tmp_path, 5, 5, 5, 1))
    assert done.returncode == 2 and not calls
    assert "set SHARDS=N" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    done, [call] = fake_slurm("adapt-array.sbatch", array_env(tmp_path, 5, 5, 5, 1, SHARDS="16", PREFETCH="0"))
    assert done.returncode == 0 and shard_arg(call) == "5/16"
    # a step (--array=0-15:2) is not the whole range either
    done, calls = fake_slurm("adapt-array.sbatch", array_env(tmp_path, 4, 0, 14, 8))
    assert done.returncode == 2 and not calls


def test_a_resubmitted_task_keeps_the_count_of_the_shards_already_written(fake_slurm, tmp_path):
    shards = tmp_path / "out" / "shards"
    for index in (0, 1, 2):
        (shards / f"shard-{index:05d}-of-00016").mkdir(parents=True)
    done, [call] = fake_slurm("adapt-array.sbatch", array_env(tmp_path, 5, 5, 5, 1, PREFETCH="0"))  # sbatch --array=5
    assert done.returncode == 0 and shard_arg(call) == "5/16"
    done, calls = fake_slurm("adapt-array.sbatch", array_env(tmp_path, 16, 16, 16, 1))
    assert done.returncode == 2 and "not a shard of 16" in done.stderr and not calls


def test_the_users_hugging_face_home_and_token_are_left_alone(fake_slurm, tmp_path):
    done, calls = fake_slurm("adapt-array.sbatch", array_env(tmp_path, 0, 0, 1, 2))
    [call] = run_calls(calls)
    assert done.returncode == 0
    assert call["env"]["HF_HOME"] is None and call["env"]["HF_HUB_OFFLINE"] is None  # not moved into OUTPUT
    home = str(tmp_path / "my-hf")
    done, [call] = fake_slurm("adapt-array.sbatch", array_env(tmp_path, 0, 0, 1, 2, HF_HOME=home, HF_TOKEN="hf_x", OFFLINE="1"))  # no prefetch offline
    assert call["env"]["HF_HOME"] == home and call["env"]["HF_TOKEN"] == "hf_x" and call["env"]["HF_HUB_OFFLINE"] == "1"
    done, calls = fake_slurm("merge.sbatch", {"RECIPE": "r.yaml", "OUTPUT": str(tmp_path / "out"), "HF_HOME": home})
    assert calls[0]["args"][:2] == ["merge", f"{tmp_path / 'out'}/shards"] and calls[0]["env"]["HF_HOME"] == home


@pytest.mark.parametrize("scontrol", [True, False], ids=["scontrol", "no-scontrol"])
def test_train_over_two_nodes_forms_one_launch(fake_slurm, tmp_path, scontrol):
    env = {"RECIPE": "recipes/qwen2.5-3b-instruct/limo.yaml", "OUTPUT": str(tmp_path / "out"),
           "SLURM_JOB_NUM_NODES": "2", "SLURM_NNODES": "2", "SLURM_JOB_NODELIST": "gpu[03-04]", "SLURM_JOB_ID": "91"}  # fmt: skip
    done, calls = fake_slurm("train.sbatch", env, scontrol=scontrol)
    assert done.returncode == 0, done.stderr
    assert [c["env"]["SLURM_NODEID"] for c in calls] == ["0", "1"]
    for rank, call in enumerate(calls):
        assert call["args"] == ["run", env["RECIPE"], "--only", "train", "--set", f"output={env['OUTPUT']}", "--quiet"]
        # what dart-hub's launcher builds on that node from this environment
        recorded = {k: v for k, v in call["env"].items() if v is not None}
        cmd = launch_module.launch_command(tmp_path / "spec.json", 16, "configs/accelerate/deepspeed_zero3.yaml", env=recorded)
        value = {flag: cmd[cmd.index(flag) + 1] for flag in ("--num_machines", "--machine_rank", "--main_process_ip", "--main_process_port")}
        assert value == {"--num_machines": "2", "--machine_rank": str(rank), "--main_process_ip": "gpu03", "--main_process_port": "29500"}
