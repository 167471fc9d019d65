"""`dart-hub train --lora`: LoRA adapters on the tiny model; checkpoints hold the adapter, best/
holds the merged model (loads, evaluates and pushes like a full fine-tune) plus the adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from tests.test_train import message_rows


@pytest.mark.slow
def test_lora_trains_adapters_scores_them_and_exports_the_merged_model(tiny_model_dir, tmp_path):
    pytest.importorskip("peft")
    pytest.importorskip("trl")
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    student = Path(shutil.copytree(tiny_model_dir, tmp_path / "student"))
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in message_rows()))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "train", "--student", str(student), "--data", str(data), "--output", str(out), "--lora",
        "--lora-rank", "4", "--epochs", "1", "--batch-size", "4", "--max-length", "96",
        "--validation-size", "1", "--validation-max-tokens", "4", "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["request"]["lora"] is True and summary["request"]["lora_rank"] == 4
    assert summary["hyperparameters"]["learning_rate"] == 1e-4  # LoRA's default, with a note
    assert any("LoRA" in note for note in summary["notes"])

    [checkpoint] = out.glob("checkpoint-*")
    assert (checkpoint / "adapter_model.safetensors").is_file()
    assert not (checkpoint / "model.safetensors").exists()  # adapters only: small checkpoints
    adapter = load_file(str(checkpoint / "adapter_model.safetensors"))
    assert adapter and all("lora_" in name for name in adapter)
    assert summary["epochs"][0]["validation"]["total"] == 1  # the adapter checkpoint was scored

    best = out / "best"
    assert (best / "adapter" / "adapter_config.json").is_file()
    merged = AutoModelForCausalLM.from_pretrained(best)
    base = AutoModelForCausalLM.from_pretrained(student)
    changed = [
        name
        for (name, p), (_, q) in zip(merged.named_parameters(), base.named_parameters(), strict=True)
        if not torch.equal(p, q)
    ]
    assert changed and all("proj" in name for name in changed)  # the linear layers moved
    assert not any("lora" in name for name, _ in merged.named_parameters())  # really merged


def test_lora_without_peft_is_a_one_line_error(monkeypatch):
    import importlib.util

    from dart_hub.errors import DartHubError
    from dart_hub.training.trainer import lora_config

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(DartHubError, match=r"--lora needs PEFT"):
        lora_config(8)


def test_lora_alpha_and_dropout_are_settable_for_dail():
    from dart_hub.training.trainer import lora_config

    default = lora_config(16)
    assert (default.r, default.lora_alpha, default.lora_dropout) == (16, 32, 0.05)
    dail = lora_config(32, 32, 0.0)  # the DAIL authors' r = alpha = 32, no dropout
    assert (dail.r, dail.lora_alpha, dail.lora_dropout) == (32, 32, 0.0)
