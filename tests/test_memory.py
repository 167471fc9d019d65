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
