"""vLLM's dtype `auto` (dart_hub.engines.vllm): on GPU the checkpoint's own dtype, float16 where
the GPU lacks it or the checkpoint is float32; float32 on CPU. Recipes of the paper's cells pin
float16 (the paper's Appendix A). Runs without vLLM installed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch
import yaml

from dart_hub.engines.vllm import VLLMEngine, _checkpoint_dtype

ROOT = Path(__file__).resolve().parents[1]


class Platform:
    def __init__(self, *dtypes):
        self.supported_dtypes = list(dtypes)


def test_auto_is_the_checkpoints_dtype_on_gpu():
    ampere = Platform(torch.bfloat16, torch.float16, torch.float32)
    turing = Platform(torch.float16, torch.float32)  # no bf16 (T4, V100)
    assert VLLMEngine._resolve_dtype("auto", "cuda", ampere, "bfloat16") == "bfloat16"
    assert VLLMEngine._resolve_dtype("auto", "cuda", turing, "bfloat16") == "float16"
    assert VLLMEngine._resolve_dtype("auto", "cuda", ampere, "float16") == "float16"
    assert VLLMEngine._resolve_dtype("auto", "cuda", ampere, "float32") == "float16"
    assert VLLMEngine._resolve_dtype("auto", "cuda", ampere, None) == "float16"
    assert VLLMEngine._resolve_dtype("auto", "cpu", ampere, "bfloat16") == "float32"
    assert VLLMEngine._resolve_dtype("float16", "cuda", ampere, "bfloat16") == "float16"  # pinned wins


def test_checkpoint_dtype_is_read_from_config(tiny_model_dir, tmp_path):
    model = Path(shutil.copytree(tiny_model_dir, tmp_path / "m"))
    config = json.loads((model / "config.json").read_text())
    config.pop("torch_dtype", None)
    config["dtype"] = "bfloat16"
    (model / "config.json").write_text(json.dumps(config))
    assert _checkpoint_dtype(str(model), None, False) == "bfloat16"
    assert _checkpoint_dtype(str(tmp_path / "missing"), None, False) is None


def test_recipes_of_the_papers_cells_pin_float16():
    """Every recipe that names a paper table and generates with vLLM pins the paper's float16."""
    pinned = 0
    for path in sorted((ROOT / "recipes").rglob("*.yaml")):
        recipe = yaml.safe_load(path.read_text())
        if (recipe.get("paper") or {}).get("tables") and (recipe.get("engine") or {}).get("name", "vllm") == "vllm":
            assert recipe["engine"].get("dtype") == "float16", path
            pinned += 1
    assert pinned >= 15


def test_the_model_card_says_which_dtype_generated_the_results(tiny_model_dir, tmp_path):
    import shutil as sh

    from dart_hub.publish.model_card import render_model_card
    from tests.test_train import trained_folder, write_eval

    student = Path(sh.copytree(tiny_model_dir, tmp_path / "student"))
    out = trained_folder(tmp_path, student)
    summary = json.loads((out / "training_summary.json").read_text())
    texts = {}
    for requested, used in (("auto", "bfloat16"), ("float16", "float16")):
        folder = write_eval(tmp_path / f"eval-{requested}", str(out / "best"), {"gsm8k": 0.5})
        results = json.loads((folder / "results.json").read_text())
        results["engine"] = {"engine": "vllm", "dtype": used, "dtype_requested": requested}
        (folder / "results.json").write_text(json.dumps(results))
        texts[requested] = str(render_model_card(summary, "me/x", eval_dirs=[folder], base_model="Qwen/Qwen2.5-0.5B-Instruct"))
    assert "(generated with vllm, bfloat16 (dtype auto: the checkpoint's own))" in texts["auto"]
    assert "(generated with vllm, float16)" in texts["float16"]
