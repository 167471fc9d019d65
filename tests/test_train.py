"""`dart-hub train`: TRL SFT on `messages` rows, assistant-only loss, per-epoch checkpoint
selection, recipe YAML mapping, the Static baseline's data, the model card and the model push.

Tests that train or build a trainer need the `train` extra (trl); the data, card and push tests
do not. The tiny model is copied before training (the session fixture is shared).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli

LIMO_SAMPLE = Path(__file__).parent / "data" / "limo_sample.jsonl"
SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."

# (question, assistant solution, gold answer): short, so a training step is quick.
PROBLEMS = [
    ("What is 12 + 30?", "Step 1: compute 12 + 30 = 42.\n\nSo the final answer is \\boxed{42}.", "42"),
    ("What is 7 * 6?", "Step 1: compute 7 * 6 = 42.\n\nSo the final answer is \\boxed{42}.", "42"),
    ("What is 100 - 1?", "Step 1: compute 100 - 1 = 99.\n\nTherefore the result is \\boxed{99}.", "99"),
    ("What is 9 / 3?", "Let x = 9. Then x / 3 = 3.\n\nSo the final answer is \\boxed{3}.", "3"),
    ("What is 5 + 5?", "Step 1: compute 5 + 5 = 10.\n\nSo the final answer is \\boxed{10}.", "10"),
    ("What is 8 - 2?", "Step 1: compute 8 - 2 = 6.\n\nSo the final answer is \\boxed{6}.", "6"),
]


def message_rows() -> list[dict]:
    return [
        {
            "id": f"p{i}",
            "question": q,
            "solution": s,
            "answer": a,
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": q},
                {"role": "assistant", "content": s},
            ],
        }
        for i, (q, s, a) in enumerate(PROBLEMS)
    ]


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def write_adapt_folder(folder: Path) -> Path:
    """The layout `dart-hub adapt --output` writes: default config (messages rows) + steps."""
    import datasets

    from dart_hub.publish.folder import CONFIG_FILE, DATA_FILE, STEPS_FILE

    (folder / DATA_FILE).parent.mkdir(parents=True)
    (folder / STEPS_FILE).parent.mkdir(parents=True)
    datasets.Dataset.from_list(message_rows()).to_parquet(str(folder / DATA_FILE))
    datasets.Dataset.from_list([{"id": "p0", "scores": "[1.0]"}]).to_parquet(str(folder / STEPS_FILE))
    configs = (
        "configs:\n- config_name: default\n  default: true\n  data_files:\n  - split: train\n"
        f"    path: {DATA_FILE}\n- config_name: steps\n  data_files:\n  - split: train\n"
        f"    path: {STEPS_FILE}\n"
    )
    (folder / "README.md").write_text(f"---\n{configs}---\n\nadapted\n")
    run = {"student": "Qwen/Qwen2.5-0.5B-Instruct", "source": {"repo_id": "GAIR/LIMO", "license": "apache-2.0"}, "adapt": {"strategy": "full"}}
    (folder / CONFIG_FILE).write_text(json.dumps(run))
    return folder


@pytest.fixture
def student(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "student"))


def invoke(*args: str):
    return CliRunner().invoke(cli, ["train", *args])


# -- training end to end --------------------------------------------------------------------


def test_train_two_epochs_from_the_hub_scores_each_epoch_and_keeps_the_best(hub, student, tmp_path):
    pytest.importorskip("trl")
    sha = hub.create_dataset("test-user/adapted", {"data/train.jsonl": jsonl(message_rows())})
    config = tmp_path / "train.yaml"
    # Known SFTConfig keys are applied (weight_decay), CLI flags win over the file (epochs).
    config.write_text("num_train_epochs: 5\nweight_decay: 0.01\ngradient_checkpointing: false\nlearning_rate: 1e-4\n")
    out = tmp_path / "run"
    result = invoke(
        "--config", str(config), "--student", str(student), "--data", "test-user/adapted",
        "--output", str(out), "--epochs", "2", "--max-length", "96", "--batch-size", "4",
        "--validation-size", "2", "--validation-max-tokens", "8", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    text = (out / "training_summary.json").read_text()
    assert hub.token not in text and hub.token not in result.output
    summary = json.loads(text)
    assert json.loads(result.stdout)["chosen_checkpoint"] == summary["chosen_checkpoint"]

    # One checkpoint per epoch.
    epochs = summary["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    for e in epochs:
        assert e["validation"]["total"] == 2 and 0 <= e["validation"]["correct"] <= 2
        assert "train_loss" in e and "eval_loss" in e
        if e.get("pruned"):  # scored, lost, deleted (--keep-checkpoints keeps it)
            assert not (out / e["checkpoint"]).exists()
            continue
        state = json.loads((out / e["checkpoint"] / "trainer_state.json").read_text())
        assert round(state["epoch"]) == e["epoch"]
        assert (out / e["checkpoint"] / "model.safetensors").is_file()
        assert not (out / e["checkpoint"] / "optimizer.pt").exists()  # save_only_model default

    # The best epoch: highest validation accuracy, ties -> the earlier epoch.
    top = max(e["validation"]["accuracy"] for e in epochs)
    expected = next(e for e in epochs if e["validation"]["accuracy"] == top)
    assert summary["selection"]["enabled"] and summary["selection"]["best_epoch"] == expected["epoch"]
    assert summary["chosen_checkpoint"] == expected["checkpoint"] and summary["model_dir"] == "best"
    best = out / "best"
    assert summary["model_path"] == str(best)
    assert (best / "config.json").is_file() and (best / "model.safetensors").is_file()
    assert (best / "model.safetensors").read_bytes() == (out / expected["checkpoint"] / "model.safetensors").read_bytes()
    assert not (best / "trainer_state.json").exists() and not (best / "training_args.bin").exists()
    # the checkpoint that lost was deleted once scored: only the chosen one is left
    assert summary["selection"]["pruned"] == [e["checkpoint"] for e in epochs if e is not expected]
    assert [p.name for p in out.glob("checkpoint-*")] == [expected["checkpoint"]]
    assert summary["selection"]["engine"] == {"engine": "transformers", "data_parallel_size": 1}

    # Settings: YAML applied, flags over YAML, paper defaults otherwise; data provenance.
    assert summary["sft_config"]["weight_decay"] == 0.01
    assert summary["sft_config"]["learning_rate"] == 1e-4  # "1e-4" is a string in YAML 1.1
    assert summary["hyperparameters"]["num_train_epochs"] == 2
    assert summary["hyperparameters"]["lr_scheduler_type"] == "cosine"
    assert summary["hyperparameters"]["warmup_steps"] == 0
    assert summary["hyperparameters"]["bf16"] is False and any("bf16" in n for n in summary["notes"])
    assert summary["data"]["repo_id"] == "test-user/adapted" and summary["data"]["revision"] == sha
    assert summary["rows"] == {"train": 4, "validation": 2, "skipped": {}}
    assert len(set(summary["validation_ids"])) == 2
    assert summary["loss"]["mode"] == "completion_only"  # the tiny template has no generation markers
    # Compute, as `mapper train` and `--objective grpo` record it: wall time x devices.
    assert summary["device"] == "cpu" and summary["gpu_hours"] == 0.0 and len(summary["sessions"]) == 1
    assert summary["sessions"][0]["resumed_from"] is None and summary["sessions"][0]["seconds"] <= summary["seconds"]["training"]


def test_output_with_checkpoints_is_not_overwritten(student, tmp_path):
    (tmp_path / "run" / "checkpoint-3").mkdir(parents=True)
    result = invoke("--student", str(student), "--data", str(tmp_path), "--output", str(tmp_path / "run"))
    assert result.exit_code == 1
    assert "already holds checkpoints" in result.stderr and "Traceback" not in result.output


# -- loss on the assistant turn only ------------------------------------------------------


def _labels(trainer):
    batch = trainer.data_collator([trainer.train_dataset[0]])
    return batch["input_ids"][0].tolist(), batch["labels"][0].tolist()


def _check_assistant_only(trainer, tokenizer, row, header_masked: bool):
    ids, labels = _labels(trainer)
    turns = tokenizer.apply_chat_template(row["messages"][:-1], tokenize=True, return_dict=True)["input_ids"]
    prompt = tokenizer.apply_chat_template(row["messages"][:-1], add_generation_prompt=True, tokenize=True, return_dict=True)["input_ids"]
    assert ids[: len(prompt)] == prompt and len(prompt) > len(turns)
    # Every system / user token is masked (and, with completion_only_loss, the assistant header) ...
    assert set(labels[: len(prompt) if header_masked else len(turns)]) == {-100}
    # ... and what is trained on is the assistant turn, its end-of-turn token included.
    trained = tokenizer.decode([t for t in labels if t != -100])
    assert trained.strip() == row["messages"][-1]["content"] + "<|im_end|>"


def test_completion_only_loss_when_the_template_has_no_generation_markers(student, tmp_path):
    pytest.importorskip("trl")
    from transformers import AutoTokenizer

    from dart_hub.training.config import resolve_sft_kwargs
    from dart_hub.training.trainer import COMPLETION_ONLY, build_trainer

    rows = [{**r, "gold": r["answer"]} for r in message_rows()]
    kwargs, _ = resolve_sft_kwargs({"max_length": 256}, {}, tmp_path / "out")
    trainer, plan, config = build_trainer(str(student), rows[:2], [], kwargs)
    assert plan.mode == COMPLETION_ONLY and config.completion_only_loss and not config.assistant_only_loss
    _check_assistant_only(trainer, AutoTokenizer.from_pretrained(student), rows[0], header_masked=True)


def test_trl_assistant_only_loss_with_a_template_trl_can_patch(student, tmp_path):
    """Qwen2.5-Instruct's own template has no {% generation %} markers: TRL swaps in its
    training copy. The tiny model gets that exact template (same special tokens)."""
    pytest.importorskip("trl")
    from transformers import AutoTokenizer
    from trl.chat_template_utils import qwen2_5_chat_template

    from dart_hub.training.config import resolve_sft_kwargs
    from dart_hub.training.trainer import ASSISTANT_ONLY, build_trainer

    tokenizer = AutoTokenizer.from_pretrained(student)
    tokenizer.chat_template = qwen2_5_chat_template
    tokenizer.save_pretrained(student)
    rows = [{**r, "gold": r["answer"]} for r in message_rows()]
    kwargs, _ = resolve_sft_kwargs({"max_length": 256}, {}, tmp_path / "out")
    trainer, plan, config = build_trainer(str(student), rows[:2], [], kwargs)
    assert plan.mode == ASSISTANT_ONLY and config.assistant_only_loss
    # TRL's Qwen2.5 training template opens {% generation %} right after "<|im_start|>assistant",
    # so the newline ending the header is trained too (harmless: it is always the same token).
    _check_assistant_only(trainer, AutoTokenizer.from_pretrained(student), rows[0], header_masked=False)
    # The template swap is for training only: the tokenizer that is saved keeps the original.
    assert trainer.processing_class.chat_template == qwen2_5_chat_template


# -- recipe YAML ----------------------------------------------------------------------------


def test_yaml_keys_map_onto_sftconfig_and_flags_override(student, tmp_path):
    pytest.importorskip("trl")
    from dart_hub.training.config import (
        PAPER_DEFAULTS,
        load_recipe_yaml,
        make_sft_config,
        resolve_sft_kwargs,
    )

    path = tmp_path / "train.yaml"
    path.write_text(
        f"student: {student}\nvalidation_size: 3\ngradient_accumulation_steps: 8\n"
        "learning_rate: 5e-6\nmax_length: 4096\nlr_scheduler_type: linear\n"
    )
    sft, train = load_recipe_yaml(path)
    assert train == {"student": str(student), "validation_size": 3}
    assert sft["learning_rate"] == 5e-6 and isinstance(sft["learning_rate"], float)
    kwargs, _ = resolve_sft_kwargs(sft, {"max_length": 512, "num_train_epochs": None}, tmp_path / "o")
    config = make_sft_config(kwargs)
    assert config.gradient_accumulation_steps == 8 and config.max_length == 512
    assert config.lr_scheduler_type == "linear" and config.num_train_epochs == PAPER_DEFAULTS["num_train_epochs"]

    # Through the CLI (dry run: no model loaded).
    data = write_adapt_folder(tmp_path / "adapted")
    result = invoke("--config", str(path), "--data", str(data), "--output", str(tmp_path / "o"), "--dry-run", "--json", "--learning-rate", "2e-5")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["hyperparameters"]["gradient_accumulation_steps"] == 8
    assert plan["hyperparameters"]["learning_rate"] == 2e-5
    assert plan["rows"] == {"train": 3, "validation": 3, "skipped": {}}
    # The adapt folder's default config is read (not the steps config); its provenance is kept.
    assert plan["example"][-1]["role"] == "assistant"
    assert plan["data"]["adapt"]["expert_dataset"] == "GAIR/LIMO"


def test_unknown_yaml_key_is_a_one_line_error_naming_it(student, tmp_path):
    pytest.importorskip("trl")
    path = tmp_path / "train.yaml"
    path.write_text("learning_rat: 1e-5\n")
    result = invoke("--config", str(path), "--student", str(student), "--data", "x.jsonl", "--output", str(tmp_path / "o"))
    assert result.exit_code == 1
    assert "unknown key 'learning_rat'" in result.stderr and "did you mean 'learning_rate'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output

    path.write_text("num_train_epochs: many\n")
    result = invoke("--config", str(path), "--student", str(student), "--data", "x.jsonl", "--output", str(tmp_path / "o"))
    assert result.exit_code == 1 and "num_train_epochs" in result.stderr


# -- data -----------------------------------------------------------------------------------


def test_static_builds_messages_from_the_expert_traces():
    from dart_hub.training.data import load_train_data

    data = load_train_data(str(LIMO_SAMPLE), static=True)
    source = [json.loads(line) for line in LIMO_SAMPLE.read_text().splitlines() if line.strip()]
    by_question = {r["question"]: r for r in source}
    # Rows that cannot be problems (empty solution, no gold answer) are skipped and counted.
    assert data.skipped == {"empty_solution": 1, "no_gold_answer": 1}
    assert len(data.rows) == len(source) - 2
    for row in data.rows:
        expert = by_question[row["messages"][1]["content"]]
        assert row["messages"] == [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": expert["question"]},
            {"role": "assistant", "content": expert["solution"]},
        ]
        assert row["gold"] == str(expert["answer"]).strip()
    assert data.source["method"] == "static" and data.source["kind"] == "local"


def test_static_through_the_cli_and_preset_without_static(student, tmp_path):
    result = invoke("--student", str(student), "--data", "limo", "--output", str(tmp_path / "o"))
    assert result.exit_code == 1 and "--static" in result.stderr

    pytest.importorskip("trl")
    result = invoke("--student", str(student), "--data", str(LIMO_SAMPLE), "--static", "--output", str(tmp_path / "o"), "--dry-run", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["request"]["static"] is True and plan["data"]["method"] == "static"
    assert plan["example"][0] == {"role": "system", "content": SYSTEM}


def test_validation_slice_holds_out_whole_problems_with_gold_answers():
    from dart_hub.training.data import split_validation, validation_count

    rows = [{"id": f"q{i // 2}", "messages": [], "gold": "1" if i < 16 else ""} for i in range(20)]  # 10 problems, 2 rows each
    train, validation = split_validation(rows, 0.3, seed=1)
    held = {r["id"] for r in validation}
    assert len(validation) == len(held) == 3 and all(r["gold"] for r in validation)
    assert not held & {r["id"] for r in train} and len(train) == 14
    assert split_validation(rows, 0.3, seed=1) == (train, validation)  # stable
    assert split_validation(list(reversed(rows)), 0.3, seed=1)[1] != [] and {r["id"] for r in split_validation(list(reversed(rows)), 0.3, seed=1)[1]} == held
    assert validation_count(0, 10) == 0 and validation_count(50, 10) == 9 and validation_count(0.01, 10) == 1


def test_choose_best_prefers_accuracy_then_the_earlier_epoch():
    from dart_hub.training.select import choose_best

    def epoch(n, acc):
        return {"epoch": n, "checkpoint": f"checkpoint-{n}", "validation": {"accuracy": acc}}

    assert choose_best([epoch(1, 0.2), epoch(2, 0.5), epoch(3, 0.5)])["epoch"] == 2
    assert choose_best([epoch(1, 0.4), epoch(2, 0.1)])["epoch"] == 1
    assert choose_best([{"epoch": 1, "checkpoint": "c"}]) is None


# -- model card and push --------------------------------------------------------------------


def write_eval(folder: Path, model: str, accuracies: dict[str, float]) -> Path:
    """A results.json as `dart-hub eval` writes it (format dart-hub-eval/1)."""
    from dart_hub.evaluation.benchmarks import BENCHMARKS

    folder.mkdir(parents=True)
    benchmarks = {
        name: {
            "title": BENCHMARKS[name].title,
            "accuracy": acc,
            "correct": round(acc * 100),
            "total": 100,
            "complete": True,
            "source": {"kind": "hub", "repo_id": BENCHMARKS[name].repo_id, "revision": "abc123", "config": BENCHMARKS[name].config, "split": BENCHMARKS[name].split},
        }
        for name, acc in accuracies.items()
    }
    results = {
        "format": "dart-hub-eval/1", "model": model, "benchmarks": benchmarks,
        "average": sum(accuracies.values()) / len(accuracies), "settings": {"max_tokens": 16384},
    }  # fmt: skip
    (folder / "results.json").write_text(json.dumps(results))
    return folder


def trained_folder(tmp_path: Path, student: Path) -> Path:
    """A finished train output (as run_training leaves it) without paying for training."""
    out = tmp_path / "run"
    shutil.copytree(student, out / "best")
    summary = {
        "status": "finished", "student": str(student), "request": {"static": False, "validation_size": 0.05, "data": "test-user/adapted"},
        "data": {"method": "adapted", "kind": "hub", "repo_id": "test-user/adapted", "revision": "0" * 40, "adapt": {"expert_dataset": "GAIR/LIMO"}},
        "rows": {"train": 4, "validation": 2, "skipped": {}}, "loss": {"mode": "completion_only"},
        "notes": ["bf16 is not supported on CPU: training in float32 (the paper uses bf16)"],
        "hyperparameters": {"num_train_epochs": 2.0, "learning_rate": 5e-06, "lr_scheduler_type": "cosine", "warmup_steps": 0, "max_length": 96},
        "epochs": [
            {"epoch": 1, "step": 1, "checkpoint": "checkpoint-1", "train_loss": 6.9, "validation": {"correct": 1, "total": 2, "accuracy": 0.5}},
            {"epoch": 2, "step": 2, "checkpoint": "checkpoint-2", "train_loss": 6.8, "validation": {"correct": 0, "total": 2, "accuracy": 0.0}},
        ],
        "selection": {"enabled": True, "best_epoch": 1, "best_checkpoint": "checkpoint-1"},
        "chosen_epoch": 1, "chosen_checkpoint": "checkpoint-1", "model_dir": "best",
    }  # fmt: skip
    (out / "training_summary.json").write_text(json.dumps(summary))
    return out


def test_model_card_metadata_results_and_comparison(student, tmp_path):
    from huggingface_hub import ModelCard

    from dart_hub.publish.model_card import render_model_card

    out = trained_folder(tmp_path, student)
    mine = write_eval(tmp_path / "eval-dart", str(out / "best"), {"gsm8k": 0.62, "mmlu_stem": 0.40})
    base = write_eval(tmp_path / "eval-base", "Qwen/Qwen2.5-0.5B-Instruct", {"gsm8k": 0.50, "mmlu_stem": 0.41})
    static = write_eval(tmp_path / "eval-static", "me/static", {"gsm8k": 0.55, "mmlu_stem": 0.39})
    summary = json.loads((out / "training_summary.json").read_text())
    card = render_model_card(
        summary, "test-user/tiny-dart", eval_dirs=[mine], compare=[("No-Tuning", base), ("Static", static)],
        base_model="Qwen/Qwen2.5-0.5B-Instruct", license="apache-2.0",
    )  # fmt: skip
    reparsed = ModelCard(str(card))  # what the Hub reads back
    data = reparsed.data
    assert data.base_model == "Qwen/Qwen2.5-0.5B-Instruct" and data.license == "apache-2.0"
    assert data.datasets == ["test-user/adapted", "GAIR/LIMO"]
    assert "dart-hub" in data.tags and data.pipeline_tag == "text-generation"
    meta = data.to_dict()
    assert meta["model-index"][0]["name"] == "tiny-dart"
    scores = {(r.dataset_type, r.metric_type): r.metric_value for r in data.eval_results}
    assert scores == {("openai/gsm8k", "accuracy"): 62.0, ("TIGER-Lab/MMLU-STEM", "accuracy"): 40.0}
    text = reparsed.text
    assert "| No-Tuning (baseline) | 50.0 | 41.0 | 45.5 |" in text
    assert "| Static | 55.0 (+5.0) | 39.0 (-2.0) | 47.0 (+1.5) |" in text
    assert "| tiny-dart | 62.0 (+12.0) | 40.0 (-1.0) | 51.0 (+5.5) |" in text
    assert "[test-user/adapted](https://huggingface.co/datasets/test-user/adapted)" in text
    assert "| `learning_rate` | 5e-06 |" in text and "This model is epoch 1" in text
    assert "| 1 (kept) | 50.0% (1/2) |" in text and "float32" in text


def test_push_only_makes_one_commit_with_weights_config_and_card(hub, student, tmp_path):
    from huggingface_hub import ModelCard

    out = trained_folder(tmp_path, student)
    mine = write_eval(tmp_path / "eval-dart", "x", {"gsm8k": 0.3})
    base = write_eval(tmp_path / "eval-base", "Qwen/Qwen2.5-0.5B-Instruct", {"gsm8k": 0.2})
    result = invoke(
        "--output", str(out), "--push-only", "--push-to-hub", "test-user/tiny-dart",
        "--eval-dir", str(mine), "--compare-eval", f"No-Tuning={base}", "--base-model", "Qwen/Qwen2.5-0.5B-Instruct",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert hub.token not in result.output
    commits = hub.commits("test-user/tiny-dart", repo_type="model")
    ours = [c for c in commits if "model.safetensors" in c.changed]
    assert len(ours) == 1 and commits[0].oid == ours[0].oid
    assert all(set(c.changed) <= {".gitattributes"} for c in commits if c.oid != ours[0].oid)
    files = set(hub.list_files("test-user/tiny-dart", repo_type="model"))
    assert {"config.json", "model.safetensors", "README.md", "tokenizer.json", "training_summary.json"} <= files
    assert set(ours[0].changed) >= {"config.json", "model.safetensors", "README.md"}
    card = ModelCard(hub.read_file("test-user/tiny-dart", "README.md", repo_type="model").decode())
    assert card.data.base_model == "Qwen/Qwen2.5-0.5B-Instruct"
    assert [r.metric_value for r in card.data.eval_results] == [30.0]
    assert (out / "best" / "README.md").read_text() == str(card)  # the folder holds what was pushed


def test_push_refuses_a_folder_without_a_model(hub, tmp_path):
    (tmp_path / "empty").mkdir()
    result = invoke("--output", str(tmp_path / "empty"), "--push-only", "--push-to-hub", "test-user/x")
    assert result.exit_code == 1 and "not a model folder" in result.stderr


def test_python_m_dart_hub_cli_train_runs():
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "dart_hub.cli", "train", "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--validation-size" in done.stdout and "accelerate launch" in done.stdout
