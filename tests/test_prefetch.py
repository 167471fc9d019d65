"""`dart-hub prefetch`: a recipe's student model and source dataset fetched into the Hugging Face
cache once, against the local Hub emulator; afterwards they load with the Hub offline."""

from __future__ import annotations

import json

from click.testing import CliRunner

from dart_hub.cli import cli
from tests.test_train import message_rows


def test_prefetch_fetches_the_recipes_model_and_dataset_once(hub, tmp_path, tiny_model_dir, monkeypatch):
    model_files = {p.name: p.read_bytes() for p in tiny_model_dir.iterdir() if p.is_file()}
    model_files["original/consolidated.pth"] = b"not needed by transformers or vLLM"
    hub.create_model(f"{hub.user}/tiny", model_files)
    rows = [{"question": r["question"], "solution": r["solution"], "answer": r["answer"]} for r in message_rows()]
    hub.create_dataset(f"{hub.user}/expert", {"train.jsonl": "".join(json.dumps(r) + "\n" for r in rows)})
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: p\noutput: {tmp_path / 'run'}\nsource:\n  dataset: {hub.user}/expert\nstudent:\n  model: {hub.user}/tiny\n"
    )

    result = CliRunner().invoke(cli, ["prefetch", str(recipe), str(recipe), "--no-eval"])
    assert result.exit_code == 0, result.output
    assert f"model {hub.user}/tiny:" in result.output
    assert f"dataset {hub.user}/expert: {len(rows)} problems (revision " in result.output
    assert result.output.count("model ") == 1  # the same recipe twice: fetched once

    # the cache now answers for both, with the Hub unreachable
    from huggingface_hub import constants, try_to_load_from_cache

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert isinstance(try_to_load_from_cache(f"{hub.user}/tiny", name), str), name
    assert not isinstance(try_to_load_from_cache(f"{hub.user}/tiny", "original/consolidated.pth"), str)
    before = len(hub.requests)
    from transformers import AutoModelForCausalLM

    AutoModelForCausalLM.from_pretrained(f"{hub.user}/tiny", local_files_only=True)
    assert len(hub.requests) == before


def test_prefetch_of_a_missing_model_is_one_line(hub, tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: p\noutput: {tmp_path / 'run'}\nstudent:\n  model: {hub.user}/nope\neval:\n  benchmarks: gsm8k\n")
    result = CliRunner().invoke(cli, ["prefetch", str(recipe)])
    assert result.exit_code == 1
    assert "not on the Hub" in result.stderr and "Traceback" not in result.output
