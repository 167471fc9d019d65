"""`dart-hub train --objective grpo`: direct GRPO on the student with a 0/1 answer reward (the
mapper's RL baseline): the reward on crafted completions, the prompts taken from train's rows,
a real run of the toy student through the CLI (reward curve, compute, resume), the option
combinations refused, and the model card."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.toy import expert_dataset_path, toy_student_path
from tests.test_train import SYSTEM, jsonl, message_rows


def invoke(*args: str):
    return CliRunner().invoke(cli, ["train", *args])


def one_line_error(result, text: str) -> None:
    assert result.exit_code == 1, result.output
    last = result.stderr.strip().splitlines()[-1]  # (after any datasets progress bar)
    assert last.startswith("Error: ") and text in last and "Traceback" not in result.output


# -- the reward -------------------------------------------------------------------------------


def test_answer_reward_is_one_for_an_equivalent_final_box_and_zero_otherwise():
    from dart_hub.answers import AnswerChecker
    from dart_hub.training.grpo import REWARD_NAME, AnswerReward

    completions = [
        "12 + 30 = 42, so the answer is \\boxed{42}.",  # correct
        "84 / 2 = \\boxed{\\frac{84}{2}}",  # equivalent, not the same string
        "First \\boxed{7}, then corrected: \\boxed{42}",  # the final box counts
        "12 + 30 = 41, so \\boxed{41}.",  # wrong
        "12 + 30 = 42. The answer is 42.",  # right number, no box
        "",  # nothing
        "\\boxed{}",  # empty box
    ]
    gold = ["42"] * len(completions)
    with AnswerChecker(timeout=5) as checker:
        reward = AnswerReward(checker)
        assert reward.__name__ == REWARD_NAME  # TRL names the log column after it
        assert reward(prompts=[None] * len(gold), completions=completions, gold=gold) == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
        # conversational data: TRL passes the completion as chat turns
        turns = [[{"role": "assistant", "content": "so \\boxed{x^2+1}"}], [{"role": "assistant", "content": "\\boxed{x^2}"}]]
        assert reward(completions=turns, gold=["1+x^2", "1+x^2"]) == [1.0, 0.0]


def test_grpo_rows_are_the_sft_prompt_and_gold_one_per_problem():
    from dart_hub.training.grpo import NO_GOLD, grpo_rows

    rows = [{**r, "gold": r["answer"]} for r in message_rows()]
    rows.append({**rows[0], "messages": [*rows[0]["messages"][:2], {"role": "assistant", "content": "another trajectory"}]})
    rows.append({**rows[1], "id": "no-gold", "gold": ""})
    out, skipped = grpo_rows(rows)
    assert [r["id"] for r in out] == [f"p{i}" for i in range(6)]  # the duplicate trajectory of p0 is one prompt
    assert skipped == {NO_GOLD: 1}
    assert out[0]["prompt"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 12 + 30?"}]
    assert out[0]["gold"] == "42"


def test_question_and_answer_files_without_solutions_are_grpo_prompts(tiny_model_dir, tmp_path):
    """--static with --objective grpo takes problems without a solution (question + answer),
    which SFT still refuses; held-out ones are asked with their question."""
    pytest.importorskip("trl")
    from dart_hub.training.data import load_train_data
    from dart_hub.training.select import heldout_items

    data = tmp_path / "qa.jsonl"
    data.write_text(jsonl([{"question": q, "answer": a} for q, _, a in [("What is 2+2?", "", "4"), ("What is 3+3?", "", "6"), ("Name it.", "", "")]]))
    base = ["--student", str(tiny_model_dir), "--data", str(data), "--static", "--output", str(tmp_path / "o"), "--dry-run", "--json"]
    result = invoke(*base, "--objective", "grpo", "--validation-size", "0")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["rows"] == {"train": 2, "validation": 0, "skipped": {"no_gold_answer": 1}}
    assert plan["example"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 2+2?"}]
    one_line_error(invoke(*base), "column 'solution' not found")  # SFT needs solutions
    rows = load_train_data(str(data), static=True, prompts_only=True).rows
    assert [(item.question, item.gold) for item in heldout_items(rows[:1])[SYSTEM]] == [("What is 2+2?", "4")]


# -- a real run through the CLI -----------------------------------------------------------------


def grpo_args(out: Path, *extra: str) -> list[str]:
    """The toy student on the toy expert problems (--static: question + gold; the expert
    solutions are not used), 4 completions of up to 128 tokens per step (the toy student
    answers in about 70)."""
    return [
        "--objective", "grpo", "--student", str(toy_student_path()), "--data", str(expert_dataset_path()), "--static",
        "--output", str(out), "--grpo-num-generations", "4", "--grpo-max-completion-tokens", "128",
        "--learning-rate", "3e-5", "--grpo-save-steps", "2", "--validation-size", "2", "--validation-max-tokens", "128",
        *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_train_grpo_runs_records_rewards_and_compute_and_resumes(tmp_path):
    pytest.importorskip("trl")
    out = tmp_path / "run"
    result = invoke(*grpo_args(out, "--grpo-max-steps", "3", "--json"))
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "training_summary.json").read_text())
    assert json.loads(result.stdout)["gpu_hours"] == summary["gpu_hours"]

    # Objective and settings: our GRPO defaults where not given.
    objective = summary["objective"]
    assert objective["name"] == "grpo" and objective["num_generations"] == 4 and objective["max_completion_length"] == 128
    assert objective["beta"] == 0.01 and objective["temperature"] == 1.0 and objective["prompts_per_step"] == 1
    assert summary["hyperparameters"]["max_steps"] == 3 and summary["hyperparameters"]["learning_rate"] == 3e-5
    assert summary["loss"]["mode"] == "grpo" and summary["rows"]["validation"] == 2

    # Rewards: one point per step, each the mean of 4 completions' 0/1 rewards, as TRL logged them.
    rewards = summary["rewards"]
    state = json.loads((out / "checkpoint-3" / "trainer_state.json").read_text())
    logged = [e["reward"] for e in state["log_history"] if "reward" in e]
    assert [p["reward"] for p in rewards["curve"]] == logged and len(logged) == 3
    assert all(v * 4 == round(v * 4) and 0 <= v <= 1 for v in logged)
    assert [p["answer_correct"] for p in rewards["curve"]] == logged  # the only reward function
    assert max(logged) > 0  # the toy student boxes correct answers about half the time
    assert rewards["first"] == logged[0] and rewards["last"] == logged[-1]
    zero_std = [e["frac_reward_zero_std"] for e in state["log_history"] if "reward" in e]
    assert rewards["zero_std_share"] == pytest.approx(sum(zero_std) / 3) and 0 < rewards["mean_completion_tokens"] <= 128

    # Compute: one CPU session, 0 GPU-hours, its wall time recorded.
    assert summary["device"] == "cpu" and summary["gpu_hours"] == 0.0
    assert len(summary["sessions"]) == 1 and summary["sessions"][0]["devices"] == 1
    assert summary["sessions"][0]["seconds"] > 0 and summary["device_hours"] == pytest.approx(summary["sessions"][0]["seconds"] / 3600, abs=1e-5)

    # Checkpoints every 2 steps and at the end, each scored; the chosen one exported with its optimizer-free files.
    assert [e["checkpoint"] for e in summary["epochs"]] == ["checkpoint-2", "checkpoint-3"]
    assert all(e["validation"]["total"] == 2 for e in summary["epochs"])
    assert (out / "checkpoint-2" / "optimizer.pt").is_file()  # GRPO keeps the resume state
    model = out / summary["model_dir"]
    assert (model / "model.safetensors").is_file() and not (model / "optimizer.pt").exists()

    compute = json.loads((out / "compute.json").read_text())  # rewritten at every checkpoint
    assert compute == {k: summary[k] for k in ("sessions", "device", "device_hours", "gpu_hours")}

    # The same command with more steps resumes from the last checkpoint and adds its session,
    # also when the first session never wrote its summary (interrupted after its last checkpoint).
    (out / "training_summary.json").unlink()
    result = invoke(*grpo_args(out, "--grpo-max-steps", "4"))
    assert result.exit_code == 0, result.output
    assert "compute:" in result.stdout and "0 GPU-hours" in result.stdout and "mean reward:" in result.stdout
    summary = json.loads((out / "training_summary.json").read_text())
    assert len(summary["sessions"]) == 2 and summary["sessions"][1]["resumed_from"].endswith("checkpoint-3")
    assert "resuming GRPO from checkpoint-3" in summary["notes"]
    assert len(summary["rewards"]["curve"]) == 4 and summary["rewards"]["curve"][:3] == [{"step": i + 1, "reward": v, "answer_correct": v} for i, v in enumerate(logged)]
    assert summary["device_hours"] == pytest.approx(sum(s["seconds"] for s in summary["sessions"]) / 3600, abs=1e-5)

    # An SFT run's folder is not resumed with GRPO.
    summary["objective"] = {"name": "sft"}
    (out / "training_summary.json").write_text(json.dumps(summary))
    one_line_error(invoke(*grpo_args(out, "--grpo-max-steps", "5")), "earlier --objective sft run")


def test_lora_grpo_on_the_tiny_model_through_the_cli(tiny_model_dir, tmp_path):
    """--lora works with GRPO: the adapter is trained and best/ is the merged model."""
    pytest.importorskip("peft")
    student = shutil.copytree(tiny_model_dir, tmp_path / "student")
    data = tmp_path / "rows.jsonl"
    data.write_text(jsonl(message_rows()))
    out = tmp_path / "run"
    result = invoke(
        "--objective", "grpo", "--lora", "--lora-rank", "4", "--student", str(student), "--data", str(data), "--output", str(out),
        "--grpo-num-generations", "2", "--grpo-max-completion-tokens", "8", "--grpo-max-steps", "1", "--validation-size", "0", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["hyperparameters"]["learning_rate"] == 2e-5  # GRPO's LoRA default
    assert any("LoRA: GRPO learning rate" in n for n in summary["notes"])
    assert (out / "checkpoint-1" / "adapter_model.safetensors").is_file()
    assert (out / "final" / "model.safetensors").is_file() and (out / "final" / "adapter").is_dir()
    assert summary["rewards"]["steps_logged"] == 1 and summary["gpu_hours"] == 0.0


# -- settings and refused combinations (no model loaded) ------------------------------------------


def test_grpo_dry_run_shows_the_prompt_and_the_defaults(tiny_model_dir, tmp_path):
    pytest.importorskip("trl")
    data = tmp_path / "rows.jsonl"
    data.write_text(jsonl(message_rows()))
    common = ["--objective", "grpo", "--student", str(tiny_model_dir), "--data", str(data), "--output", str(tmp_path / "o"), "--dry-run", "--json"]
    result = invoke(*common)
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    hp = plan["hyperparameters"]
    assert (hp["num_generations"], hp["max_completion_length"], hp["temperature"], hp["beta"]) == (8, 2048, 1.0, 0.01)
    assert (hp["learning_rate"], hp["max_steps"], hp["per_device_train_batch_size"]) == (1e-6, 200, 8)
    assert plan["sft_config"]["save_steps"] == 50 and plan["sft_config"]["save_only_model"] is False
    assert plan["example"] == [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "What is 12 + 30?"}]
    assert plan["objective"]["name"] == "grpo" and "answer_correct" in plan["loss"]["note"]
    # Flags map onto GRPOConfig; --epochs alone trains by epochs; prompts per step set the batch.
    result = invoke(*common, "--epochs", "2", "--grpo-num-generations", "4", "--grpo-prompts-per-step", "3", "--grpo-beta", "0")
    hp = json.loads(result.stdout)["hyperparameters"]
    assert (hp["max_steps"], hp["num_train_epochs"], hp["per_device_train_batch_size"], hp["beta"]) == (-1, 2, 12, 0)
    # GRPOConfig keys from --config
    config = tmp_path / "grpo.yaml"
    config.write_text("loss_type: grpo\nscale_rewards: batch\nnum_generations: 2\n")
    hp = json.loads(invoke(*common, "--config", str(config)).stdout)["hyperparameters"]
    assert hp["loss_type"] == "grpo" and hp["num_generations"] == 2 and hp["per_device_train_batch_size"] == 2


def test_options_of_another_objective_are_one_line_errors(tiny_model_dir, tmp_path):
    pytest.importorskip("trl")
    data = tmp_path / "rows.jsonl"
    data.write_text(jsonl(message_rows()))
    base = ["--student", str(tiny_model_dir), "--data", str(data), "--output", str(tmp_path / "o")]
    one_line_error(invoke(*base, "--objective", "grpo", "--dail-lambda", "0.2"), "--dail-lambda only apply to --objective dail")
    one_line_error(invoke(*base, "--grpo-beta", "0.1"), "--grpo-beta only apply to --objective grpo")
    one_line_error(invoke(*base, "--objective", "dail", "--grpo-num-generations", "4"), "only apply to --objective grpo")
    one_line_error(invoke(*base, "--objective", "grpo", "--max-length", "64"), "--grpo-max-completion-tokens")
    one_line_error(invoke(*base, "--objective", "grpo", "--batch-size", "2"), "--grpo-prompts-per-step")
    config = tmp_path / "c.yaml"
    config.write_text("beta: 0.1\n")
    one_line_error(invoke(*base, "--config", str(config)), "beta: GRPOConfig setting(s), only for --objective grpo")
    config.write_text("max_length: 64\npacking: true\n")
    one_line_error(invoke(*base, "--config", str(config), "--objective", "grpo"), "max_length, packing: SFTConfig setting(s)")
    config.write_text("per_device_train_batch_size: 8\n")
    one_line_error(invoke(*base, "--config", str(config), "--objective", "grpo", "--grpo-prompts-per-step", "2"), "keep one")
    one_line_error(invoke(*base, "--objective", "grpo", "--grpo-num-generations", "3", "--dry-run", "--config", str(config)), "invalid GRPO settings")
    # no gold answer anywhere: nothing to reward
    rows = [{**r, "answer": ""} for r in message_rows()]
    for row in rows:
        row["messages"][-1]["content"] = "no box here"
    data.write_text(jsonl(rows))
    one_line_error(invoke(*base, "--objective", "grpo", "--dry-run"), "GRPO needs a gold answer")


def test_sft_keeps_its_defaults_and_refuses_nothing_new(tiny_model_dir, tmp_path):
    pytest.importorskip("trl")
    data = tmp_path / "rows.jsonl"
    data.write_text(jsonl(message_rows()))
    result = invoke("--student", str(tiny_model_dir), "--data", str(data), "--output", str(tmp_path / "o"), "--dry-run", "--json", "--dail-lambda", "0.3")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["objective"] == {"name": "sft"} and plan["example"][-1]["role"] == "assistant"
    assert plan["hyperparameters"]["num_train_epochs"] == 15 and plan["hyperparameters"]["learning_rate"] == 5e-6
    assert plan["hyperparameters"]["max_length"] == 16384 and "num_generations" not in plan["hyperparameters"]


# -- the model card ------------------------------------------------------------------------------


def test_model_card_of_a_grpo_run_names_the_objective_and_the_gpu_hours(tiny_model_dir, tmp_path):
    from dart_hub.publish.model_card import render_model_card

    summary = {
        "status": "finished", "student": "Qwen/Qwen2.5-0.5B-Instruct",
        "request": {"static": True, "data": "GAIR/LIMO", "validation_size": 2},
        "data": {"method": "static", "kind": "hub", "repo_id": "GAIR/LIMO"},
        "rows": {"train": 10, "validation": 2, "skipped": {}}, "loss": {"mode": "grpo"},
        "objective": {
            "name": "grpo", "reward": "answer_correct: 1 when the final \\boxed{} answer is equivalent to the gold (math-verify), else 0",
            "num_generations": 8, "temperature": 1.0, "beta": 0.01, "max_completion_length": 2048, "max_steps": 100, "loss_type": "dapo",
        },
        "hyperparameters": {"max_steps": 100, "learning_rate": 1e-6, "num_generations": 8},
        "epochs": [
            {"epoch": 0.5, "step": 50, "checkpoint": "checkpoint-50", "validation": {"correct": 1, "total": 2, "accuracy": 0.5}},
            {"epoch": 1.0, "step": 100, "checkpoint": "checkpoint-100", "validation": {"correct": 2, "total": 2, "accuracy": 1.0}},
        ],
        "selection": {"enabled": True, "best_epoch": 1.0, "best_checkpoint": "checkpoint-100"},
        "chosen_epoch": 1.0, "chosen_checkpoint": "checkpoint-100", "model_dir": "best",
        "sessions": [{"seconds": 3600.0, "devices": 2, "device": "cuda", "resumed_from": None}, {"seconds": 1800.0, "devices": 2, "device": "cuda", "resumed_from": "x"}],
        "device": "cuda", "device_hours": 3.0, "gpu_hours": 3.0,
    }  # fmt: skip
    text = str(render_model_card(summary, "me/grpo-baseline"))
    assert "GRPO reinforcement learning with a 0/1 answer reward (TRL `GRPOTrainer`)" in text
    assert "- Compute: 3.000 GPU-hours of training" in text
    assert "- Loss: GRPO (TRL `GRPOTrainer`), reward answer_correct" in text
    assert "**This model is the checkpoint of step 100.**" in text and "| 100 (kept) | 100.0% (2/2) |" in text
    assert "--objective grpo --grpo-num-generations 8" in text and "--grpo-max-steps 100" in text and "--epochs" not in text
