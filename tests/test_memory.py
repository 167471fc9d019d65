"""Every shipped recipe's training fits the GPUs its `# hardware:` comment names, by the memory
arithmetic of docs/training.md (dart_hub.training.memory), under the launch the recipe selects
(its accelerate config, or plain DDP)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dart_hub.training.distributed import kind_from_accelerate_config
from dart_hub.training.launch import read_accelerate_config
from dart_hub.training.memory import GPUS, KNOWN_MODELS, ModelShape, estimate

ROOT = Path(__file__).resolve().parents[1]
RECIPES = sorted((ROOT / "recipes").rglob("*.yaml"))
HARDWARE = re.compile(r"#\s*hardware:\s*(\d+)\s*x\s*(.+?)\s*\(")


def training_recipes() -> list[Path]:
    return [p for p in RECIPES if "train" in (yaml.safe_load(p.read_text()) or {})]


def test_every_training_recipe_names_its_hardware():
    recipes = training_recipes()
    assert len(recipes) >= 20
    for path in recipes:
        assert HARDWARE.search(path.read_text()), f"{path}: no '# hardware: N x GPU (...)' comment in its train section"


@pytest.mark.parametrize("path", training_recipes(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipe_training_fits_the_gpus_its_comment_names(path):
    recipe = yaml.safe_load(path.read_text())
    count, card = HARDWARE.search(path.read_text()).groups()
    assert card in GPUS, f"{path}: unknown card {card!r} (known: {', '.join(GPUS)})"
    train = recipe["train"]
    config = train.get("accelerate_config")
    launch = kind_from_accelerate_config(read_accelerate_config(config) if config else None, int(count))
    shape = KNOWN_MODELS[recipe["student"]["model"]]
    memory = estimate(
        shape, kind=launch.kind, zero_stage=launch.zero_stage, processes=int(count),
        tokens=int(train.get("max_length", 16384)), lora=bool(train.get("lora")),
        objective=train.get("objective", "sft"), batch=int(train.get("batch_size", 1)),
    )  # fmt: skip
    assert memory.fits(GPUS[card]), f"{path}: {launch.label} needs {memory.describe()}, more than 90% of a {card}"


def test_the_arithmetic_reproduces_the_docs_table():
    """docs/training.md: a 3B full fine-tune at 16k tokens does not fit plain DDP on 80 GB; ZeRO-3
    over 8 GPUs fits 40 GB; ZeRO-2 fits 80 GB but not 40 GB; plain DDP fits 1.5B on 80 GB."""
    qwen3b = KNOWN_MODELS["Qwen/Qwen2.5-3B-Instruct"]
    assert 3.0e9 < qwen3b.parameters < 3.2e9  # 3.09 B (the model card)
    assert not estimate(qwen3b, kind="ddp", processes=8).fits(80)
    assert estimate(qwen3b, kind="deepspeed", zero_stage=3, processes=8).fits(40)
    assert estimate(qwen3b, kind="fsdp", processes=8).fits(40)
    zero2 = estimate(qwen3b, kind="deepspeed", zero_stage=2, processes=8)
    assert zero2.fits(80) and not zero2.fits(40)
    assert estimate(KNOWN_MODELS["Qwen/Qwen2.5-1.5B-Instruct"], kind="ddp", processes=8).fits(80)
    assert estimate(qwen3b, kind="deepspeed", zero_stage=3, processes=8).states == pytest.approx(16 * qwen3b.parameters / 8 / 1e9)


def test_shape_from_config_counts_the_same_parameters():
    config = {
        "model_type": "qwen2", "hidden_size": 2048, "intermediate_size": 11008, "num_hidden_layers": 36,
        "num_attention_heads": 16, "num_key_value_heads": 2, "vocab_size": 151936, "tie_word_embeddings": True,
    }  # fmt: skip
    assert ModelShape.from_config(config) == KNOWN_MODELS["Qwen/Qwen2.5-3B-Instruct"]
    assert ModelShape.from_config(config).parameters == 3_085_938_688


# -- the arithmetic in the command ---------------------------------------------------------------


@pytest.fixture
def student_3b(tiny_model_dir, tmp_path):
    """The tiny model's tokenizer with Qwen2.5-3B's config.json: what the launch decision reads."""
    import json
    import shutil

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "qwen3b-shape"))
    config = json.loads((folder / "config.json").read_text())
    config.pop("layer_types", None)  # one per layer: recomputed for 36
    config.update(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                  num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True)  # fmt: skip
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def rows(tmp_path):
    import json

    from tests.test_train import message_rows

    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in message_rows()))
    return path


def test_dry_run_shows_the_memory_of_the_launch(student_3b, rows, tmp_path):
    import json

    from click.testing import CliRunner

    from dart_hub.cli import cli

    def plan(*extra):
        result = CliRunner().invoke(cli, ["train", "--student", str(student_3b), "--data", str(rows), "--output", str(tmp_path / "o"),
                                          "--dry-run", "--json", "--num-processes", "8", *extra])  # fmt: skip
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["memory"]

    ddp, zero3 = plan(), plan("--accelerate-config", "deepspeed_zero3")
    assert ddp["launch"] == "plain DDP" and ddp["per_gpu_gb"] == pytest.approx(88.5, abs=1)
    assert zero3["launch"] == "DeepSpeed ZeRO-3" and zero3["per_gpu_gb"] == pytest.approx(33.0, abs=1)
    assert ddp["parameters"] == KNOWN_MODELS["Qwen/Qwen2.5-3B-Instruct"].parameters


def fake_gpu_node(monkeypatch, gpu_gb: float):
    from dart_hub.training import launch as launch_module

    calls = []

    class Failed:
        returncode = 9  # stop after the launch: only the command matters here

    monkeypatch.setattr(launch_module, "visible_gpus", lambda: 8)
    monkeypatch.setattr("dart_hub.gpu.gpu_visible", lambda: (True, None))
    monkeypatch.setattr("dart_hub.training.memory.gpu_memory_gb", lambda: gpu_gb)
    monkeypatch.setattr(launch_module.subprocess, "run", lambda cmd, **kw: calls.append(cmd) or Failed())
    return calls


def test_a_3b_student_without_a_config_is_launched_under_zero3(monkeypatch, student_3b, rows, tmp_path):
    """`dart-hub train` on an 8 x 80 GB node without --accelerate-config: plain DDP would not fit
    a 3B full fine-tune at 16k tokens, so the shipped ZeRO-3 config is used, with a note."""
    from click.testing import CliRunner

    from dart_hub.cli import cli
    from dart_hub.training.launch import SHIPPED_CONFIGS

    calls = fake_gpu_node(monkeypatch, 80)
    result = CliRunner().invoke(cli, ["train", "--student", str(student_3b), "--data", str(rows), "--output", str(tmp_path / "o")])
    [cmd] = calls
    assert cmd[cmd.index("--config_file") + 1] == str(SHIPPED_CONFIGS / "deepspeed_zero3.yaml") and "--multi_gpu" not in cmd
    assert "launching with the shipped DeepSpeed ZeRO-3 config" in result.stderr and "exit code 9" in result.stderr


def test_a_small_student_stays_on_plain_ddp(monkeypatch, tiny_model_dir, rows, tmp_path):
    from click.testing import CliRunner

    from dart_hub.cli import cli

    calls = fake_gpu_node(monkeypatch, 80)
    CliRunner().invoke(cli, ["train", "--student", str(tiny_model_dir), "--data", str(rows), "--output", str(tmp_path / "o")])
    [cmd] = calls
    assert "--multi_gpu" in cmd and "--config_file" not in cmd


def test_gpu_memory_is_read_from_nvidia_smi(monkeypatch, tmp_path):
    from dart_hub.training.memory import gpu_memory_gb

    tool = tmp_path / "nvidia-smi"
    tool.write_text("#!/bin/sh\necho '0, 81559'\necho '1, 40960'\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert gpu_memory_gb() == pytest.approx(40960 * 2**20 / 1e9)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert gpu_memory_gb() == pytest.approx(81559 * 2**20 / 1e9)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert gpu_memory_gb() is None
