"""`dart-hub train --objective dail`: DAIL's contrastive distillation through the train command
(data columns, featurisation, a real run on the tiny model, the summary's objective record)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from tests.test_train import PROBLEMS, SYSTEM


def dail_rows() -> list[dict]:
    """Rows as `adapt --method dail` writes them: plain messages + the two other prompts."""
    rows = []
    for i, (q, s, a) in enumerate(PROBLEMS):
        rows.append({
            "id": f"p{i}",
            "answer": a,
            "messages": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": q}, {"role": "assistant", "content": s}],
            "privileged_messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"{q}\n\nReference solution:\n{s}\n\nReason it out yourself, in your own words."},
            ],
            "negative_messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": f"{q}\n\nThe final answer is {a}."},
                {"role": "assistant", "content": s},  # a trailing assistant turn is allowed
            ],
        })  # fmt: skip
    return rows


def write_dail_folder(folder: Path) -> Path:
    """An adapt output folder written by the project's writer (`publish.folder.write_folder`)
    from DAIL records: `messages` plus `privileged_messages` / `negative_messages` (each ending
    in the kept response), and the run config naming the objective."""
    from dart_hub.publish.folder import configs_yaml, write_folder
    from dart_hub.records import AdaptedExample

    examples = []
    for row in dail_rows():
        question, solution = row["messages"][1]["content"], row["messages"][2]["content"]
        contexts = {"privileged": row["privileged_messages"], "negative": row["negative_messages"][:-1]}
        examples.append(AdaptedExample(
            id=row["id"], question=question, gold=row["answer"], expert_solution=solution, expert_steps=[solution],
            provenance={}, extra={}, strategy="dail", scores=[], successes=[], peak=None, gap=None, cut_reason="dail",
            keep_steps=0, candidates=[], trajectories=[solution], outcome="kept", discard_reason=None, rollouts=1,
            prompt_tokens=0, completion_tokens=0, method="dail", method_data={"contexts": contexts},
        ))  # fmt: skip
    config = {"method": "dail", "objective": "dail", "student": "tiny", "versions": {}}
    return write_folder(folder, examples, config, {"question": "question", "solution": "solution"}, SYSTEM, card=f"---\n{configs_yaml()}---\n\nDAIL-adapted\n")


@pytest.fixture
def student(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "student"))


def invoke(*args: str):
    return CliRunner().invoke(cli, ["train", *args])


def test_featurize_shares_the_response_and_fits_max_length(student):
    from transformers import AutoTokenizer

    from dart_hub.training.dail import NO_ROOM_FOR_RESPONSE, RESPONSE_MISMATCH, featurize

    tokenizer = AutoTokenizer.from_pretrained(student)
    row = dail_rows()[0]
    feature = featurize(tokenizer, row, max_length=4096)
    full = tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=True)["input_ids"]
    assert full[: len(feature["prompt_ids"]) + len(feature["response_ids"])] == feature["prompt_ids"] + feature["response_ids"]
    assert tokenizer.decode(feature["response_ids"]) == row["messages"][-1]["content"] + "<|im_end|>"
    assert len(feature["privileged_prompt_ids"]) > len(feature["negative_prompt_ids"]) > len(feature["prompt_ids"])
    # The privileged prompt is the longest view: the response is cut so that it fits.
    limit = len(feature["privileged_prompt_ids"]) + 3
    assert featurize(tokenizer, row, max_length=limit)["response_ids"] == feature["response_ids"][:3]
    assert featurize(tokenizer, row, max_length=len(feature["privileged_prompt_ids"])) == NO_ROOM_FOR_RESPONSE
    other = {**row, "negative_messages": [*row["negative_messages"][:-1], {"role": "assistant", "content": "something else"}]}
    assert featurize(tokenizer, other, max_length=4096) == RESPONSE_MISMATCH


def test_dail_on_plain_sft_data_is_a_one_line_error(student, tmp_path):
    from tests.test_train import jsonl, message_rows

    data = tmp_path / "rows.jsonl"
    data.write_text(jsonl(message_rows()))
    result = invoke("--student", str(student), "--data", str(data), "--output", str(tmp_path / "run"), "--objective", "dail", "--dry-run")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "privileged_messages" in result.stderr and "adapt --method dail" in result.stderr


def test_dry_run_names_the_objective(student, tmp_path):
    pytest.importorskip("trl")
    folder = write_dail_folder(tmp_path / "adapted")
    result = invoke(
        "--student", str(student), "--data", str(folder), "--output", str(tmp_path / "run"),
        "--objective", "dail", "--dail-lambda", "0.2", "--dail-kl", "forward", "--dry-run", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["loss"]["mode"] == "dail" and plan["objective"]["lambda"] == 0.2 and plan["objective"]["kl"] == "forward"
    assert "KL(P_t || p_t)" in plan["objective"]["formula"]
    assert not any("objective" in note for note in plan["notes"])
    # the same data with plain SFT still trains (on `messages`), with a note saying what it was made for
    sft = invoke("--student", str(student), "--data", str(folder), "--output", str(tmp_path / "run"), "--dry-run", "--json")
    assert sft.exit_code == 0, sft.output
    plan = json.loads(sft.stdout)
    assert plan["objective"] == {"name": "sft"} and plan["loss"]["mode"] != "dail"
    assert any("objective 'dail'" in note for note in plan["notes"])


@pytest.mark.slow
def test_dail_cli_run_without_lora_trains_against_a_frozen_copy(student, tmp_path):
    pytest.importorskip("trl")
    from safetensors.torch import load_file

    folder = write_dail_folder(tmp_path / "adapted")
    out = tmp_path / "run"
    result = invoke(
        "--student", str(student), "--data", str(folder), "--output", str(out), "--objective", "dail",
        "--epochs", "1", "--batch-size", "2", "--max-length", "320", "--learning-rate", "1e-3",
        "--validation-size", "1", "--validation-max-tokens", "4", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["objective"]["name"] == "dail" and summary["objective"]["lambda"] == 0.1
    assert summary["objective"]["kl"] == "reverse" and "frozen copy" in summary["objective"]["reference"]
    assert summary["loss"]["mode"] == "dail"
    [epoch] = summary["epochs"]
    assert "train_loss" in epoch and "eval_loss" in epoch and epoch["validation"]["total"] == 1
    logs = json.loads((out / epoch["checkpoint"] / "trainer_state.json").read_text())["log_history"]
    assert any("kl_privileged" in entry and "kl_negative" in entry for entry in logs)
    trained = load_file(str(out / "best" / "model.safetensors"))
    initial = load_file(str(student / "model.safetensors"))
    assert any(not (trained[k] == initial[k]).all() for k in initial)  # the weights moved


@pytest.mark.slow
def test_dail_cli_run_with_lora_uses_the_disabled_adapter_as_reference(student, tmp_path):
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    from safetensors.torch import load_file

    folder = write_dail_folder(tmp_path / "adapted")
    out = tmp_path / "run"
    result = invoke(
        "--student", str(student), "--data", str(folder), "--output", str(out), "--objective", "dail",
        "--lora", "--lora-rank", "4", "--dail-lambda", "0.2", "--dail-kl", "forward", "--epochs", "1",
        "--batch-size", "2", "--max-length", "320", "--validation-size", "1", "--validation-max-tokens", "4", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["request"]["lora"] is True and summary["request"]["objective"] == "dail"
    objective = summary["objective"]
    assert (objective["lambda"], objective["kl"]) == (0.2, "forward") and "adapter disabled" in objective["reference"]
    [epoch] = summary["epochs"]
    adapter = load_file(str(out / epoch["checkpoint"] / "adapter_model.safetensors"))
    assert adapter and all("lora_" in name for name in adapter)  # only the adapters were trained
    # lora_B starts at zero: non-zero values mean gradients reached the adapters through the
    # gradient-checkpointed trunk
    assert any(float(t.abs().sum()) > 0 for name, t in adapter.items() if "lora_B" in name)
    assert (out / "best" / "adapter" / "adapter_config.json").is_file()  # merged export, as for SFT
    steps = [e for e in json.loads((out / epoch["checkpoint"] / "trainer_state.json").read_text())["log_history"] if "loss" in e]
    assert steps and all("kl_privileged" in e for e in steps)
