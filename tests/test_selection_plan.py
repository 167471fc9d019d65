"""Checkpoint selection on a GPU node (dart_hub.training.select): vLLM over every visible GPU by
default, and checkpoints that can no longer be chosen deleted as soon as they are scored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.training.select import choose_best, prunable, prune_checkpoint, selection_plan
from tests.test_train import message_rows


def test_auto_scores_with_vllm_over_every_visible_gpu(monkeypatch):
    from dart_hub.engines import factory

    real_find_spec = factory.importlib.util.find_spec
    monkeypatch.setattr("dart_hub.gpu.gpu_visible", lambda: (True, None))
    monkeypatch.setattr(factory.importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real_find_spec(name, *a))
    assert selection_plan("auto", gpus=8) == {"engine": "vllm", "data_parallel_size": 8}
    assert selection_plan("vllm", gpus=4) == {"engine": "vllm", "data_parallel_size": 4}
    assert selection_plan("transformers", gpus=8) == {"engine": "transformers", "data_parallel_size": 1}
    # no vLLM, or no GPU: transformers, as before
    monkeypatch.setattr(factory.importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real_find_spec(name, *a))
    assert selection_plan("auto", gpus=8) == {"engine": "transformers", "data_parallel_size": 1}


def test_score_checkpoint_passes_the_data_parallel_size_to_vllm(monkeypatch, tmp_path):
    from dart_hub.training import select

    made = {}

    class Engine:
        def close(self):
            pass

    def fake_create(kind, model, **options):
        made.update(kind=kind, **options)
        return Engine()

    monkeypatch.setattr("dart_hub.engines.factory.create_engine", fake_create)
    monkeypatch.setattr("dart_hub.evaluation.evaluate_items", lambda *a, **k: [])
    select.score_checkpoint(tmp_path, {"": []}, None, max_tokens=8, engine_kind="vllm", data_parallel_size=8)
    assert made["kind"] == "vllm" and made["data_parallel_size"] == 8 and made["gpu_memory_utilization"] == select.SELECTION_GPU_MEMORY


def scored(epochs: list[dict], accuracy: float) -> None:
    n = len(epochs) + 1
    epochs.append({"epoch": n, "checkpoint": f"checkpoint-{n}", "validation": {"accuracy": accuracy}})


def test_a_checkpoint_that_lost_once_is_never_chosen(tmp_path):
    """Pruning after each score leaves exactly the checkpoint the full comparison would choose."""
    for accuracies in ([0.5, 0.7, 0.7, 0.6, 0.9, 0.9], [0.9, 0.1, 0.9, 0.95], [0.2], [0.3, 0.3, 0.3]):
        epochs: list[dict] = []
        for accuracy in accuracies:
            (tmp_path / f"checkpoint-{len(epochs) + 1}").mkdir(exist_ok=True)
            scored(epochs, accuracy)
            for loser in prunable(epochs):
                prune_checkpoint(tmp_path, loser)
        best = choose_best(epochs)
        full = max(range(len(accuracies)), key=lambda i: (accuracies[i], -i)) + 1
        assert best["epoch"] == full
        assert [e["epoch"] for e in epochs if not e.get("pruned")] == [full]
        assert [p.name for p in tmp_path.glob("checkpoint-*")] == [f"checkpoint-{full}"]
        for e in epochs:
            assert (tmp_path / e["checkpoint"]).exists() == (not e.get("pruned"))
        shutil.rmtree(tmp_path)
        tmp_path.mkdir()
    # a resumable run keeps its last checkpoint as well
    epochs = []
    for accuracy in (0.9, 0.1, 0.2):
        scored(epochs, accuracy)
    assert [e["epoch"] for e in prunable(epochs, keep_last=True)] == [2]


def test_keep_checkpoints_keeps_every_epoch(tiny_model_dir, tmp_path):
    pytest.importorskip("trl")
    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps(r) + "\n" for r in message_rows()))
    student = Path(shutil.copytree(tiny_model_dir, tmp_path / "student"))
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "train", "--student", str(student), "--data", str(rows), "--output", str(out), "--epochs", "2",
        "--max-length", "96", "--batch-size", "4", "--validation-size", "2", "--validation-max-tokens", "4",
        "--keep-checkpoints", "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["selection"]["pruned"] == []
    steps = sorted(e["checkpoint"] for e in summary["epochs"])
    assert len(steps) == 2 and sorted(p.name for p in out.glob("checkpoint-*")) == steps
