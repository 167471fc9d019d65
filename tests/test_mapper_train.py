"""`dart-hub mapper train`: GRPO on the mapper (TRL GRPOTrainer) with the mapper rewards."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.toy import expert_dataset_path, method_prompts_path, toy_student_path

PROMPTS = method_prompts_path("mapper")


def train_args(output: Path, *extra: str) -> list[str]:
    return [
        "mapper", "train", "--student", str(toy_student_path()), "--dataset", str(expert_dataset_path()),
        "--mapper-prompts", str(PROMPTS), "--output", str(output), "--scorer-device", "cpu", "--scorer-dtype", "float32",
        "--max-completion-length", "96", "--beta", "0", "--quiet", "--json", *extra,
    ]  # fmt: skip


def invoke(args):
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_mapper_train_runs_grpo_records_compute_and_resumes(tmp_path):
    out = tmp_path / "run"
    common = ["--limit", "2", "--num-generations", "2", "--max-completion-length", "32", "--learning-rate", "1e-5", "--save-steps", "2", "--rewards", "copy=0.5"]
    summary = invoke(train_args(out, *common, "--max-steps", "2"))
    record = json.loads((out / "mapper_run.json").read_text())
    assert summary["steps"] == record["steps"] == 2 and (out / "checkpoint-2").is_dir()
    assert record["reward_functions"] == ["correctness", "alignment", "too_short", "answer_first", "unsupported_answer", "copy", "repetition"]
    assert record["reward_weights"] == [1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 1.0]
    assert [p["step"] for p in record["reward_curve"]] == [1, 2] and all("alignment" in p for p in record["reward_curve"])
    assert record["device"] == "cpu" and record["gpu_hours"] == 0.0 and record["device_hours"] > 0
    assert summary["scorer"] == record["scorer"]["scorer"] == "transformers" and record["scorer"]["device"] == "cpu"
    assert (out / "final" / "model.safetensors").is_file() and (out / "final" / "tokenizer.json").is_file()
    # the same command with more steps resumes from checkpoint-2 and adds its session's time
    resumed = invoke(train_args(out, *common, "--max-steps", "3"))
    record = json.loads((out / "mapper_run.json").read_text())
    assert resumed["steps"] == 3 and len(record["sessions"]) == 2
    assert record["sessions"][1]["resumed_from"].endswith("checkpoint-2")
    assert record["device_hours"] > record["sessions"][0]["seconds"] / 3600


def test_mapper_train_bad_options_are_one_line_errors(tmp_path):
    result = CliRunner().invoke(cli, train_args(tmp_path / "x", "--rewards", "style=1"))
    assert result.exit_code == 1 and "unknown mapper reward(s) ['style']" in result.output
    result = CliRunner().invoke(cli, train_args(tmp_path / "x", "--rewards", "correctness=0,alignment=0,too_short=0,answer_first=0,unsupported_answer=0,copy=0,repetition=0"))
    assert result.exit_code == 1 and "nothing to train on" in result.output


@pytest.mark.mapper_train
@pytest.mark.timeout(1800)  # about 1 minute on an idle 2-core CPU; much longer on a shared one
def test_grpo_on_the_toy_world_raises_the_mean_reward(tmp_path):
    """The toy student as both mapper and student: 40 GRPO steps over 8 toy expert problems
    (4 steps per pass, 2 prompts x 8 rewrites each); the mean reward of the last two passes
    must beat the first two (same prompts, a real measurement)."""
    started = time.monotonic()
    out = tmp_path / "run"
    args = ["--limit", "8", "--num-generations", "8", "--prompts-per-step", "2", "--learning-rate", "3e-5",
            "--max-steps", "40", "--save-steps", "40", "--temperature", "1.0"]  # fmt: skip
    invoke(train_args(out, *args))
    record = json.loads((out / "mapper_run.json").read_text())
    curve = record["reward_curve"]
    rewards = [p["reward"] for p in curve]
    correct = [p["correctness"] for p in curve]
    first, last = statistics.fmean(rewards[:8]), statistics.fmean(rewards[-8:])
    print(f"GRPO toy: {time.monotonic() - started:.0f}s, reward first 8 steps {first:.3f}, last 8 {last:.3f}, "
          f"correctness {statistics.fmean(correct[:8]):.3f} -> {statistics.fmean(correct[-8:]):.3f}; "
          f"per pass {[round(statistics.fmean(rewards[i:i + 4]), 2) for i in range(0, 40, 4)]}")
    assert len(curve) == 40 and last > first
    assert statistics.fmean(correct[-8:]) > statistics.fmean(correct[:8])
