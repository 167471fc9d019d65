"""Checkpoint selection, as in the DART paper: every epoch's checkpoint answers the validation
problems (greedy decoding; held-out training problems with the training prompt, or a benchmark
with the evaluation prompt: `dart_hub.training.validation`), answers are graded by mathematical
equivalence to the gold (`dart_hub.answers`), and the most accurate checkpoint wins; ties go to
the earlier epoch.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

# Trainer bookkeeping that is not part of the model (and must not be published: pickles).
TRAINER_FILES = ("optimizer.pt", "scheduler.pt", "scaler.pt", "training_args.bin", "trainer_state.json")
TRAINER_PREFIXES = ("rng_state", "global_step")


def list_checkpoints(output_dir: Path) -> list[dict[str, Any]]:
    """[{epoch, step, checkpoint}] of the Trainer's `checkpoint-N` folders, in step order."""
    found = []
    for path in output_dir.glob("checkpoint-*"):
        if not path.is_dir():
            continue
        try:
            step = int(path.name.split("-", 1)[1])
        except ValueError:
            continue
        epoch = None
        state = path / "trainer_state.json"
        if state.is_file():
            try:
                epoch = json.loads(state.read_text(encoding="utf-8")).get("epoch")
            except (OSError, ValueError):
                epoch = None
        found.append({"step": step, "checkpoint": path.name, "epoch_float": epoch})
    found.sort(key=lambda c: c["step"])
    for index, item in enumerate(found, start=1):
        raw = item.pop("epoch_float")
        if not isinstance(raw, int | float) or raw <= 0:
            item["epoch"] = index
        elif abs(raw - round(raw)) < 1e-6:
            item["epoch"] = round(raw)
        else:  # save_strategy "steps": checkpoints inside an epoch
            item["epoch"] = round(raw, 3)
    return found


def epoch_losses(log_history: list[dict[str, Any]]) -> dict[int, dict[str, float]]:
    """Mean training loss of each epoch's logged steps, and the epoch's eval loss, from the
    Trainer's log history."""
    import math

    sums: dict[int, list[float]] = {}
    evals: dict[int, float] = {}
    for entry in log_history:
        epoch = entry.get("epoch")
        if not isinstance(epoch, int | float):
            continue
        index = max(1, math.ceil(epoch - 1e-9))
        if "loss" in entry:
            sums.setdefault(index, []).append(float(entry["loss"]))
        if "eval_loss" in entry:
            evals[index] = float(entry["eval_loss"])
    out: dict[int, dict[str, float]] = {}
    for index in sorted(set(sums) | set(evals)):
        item: dict[str, float] = {}
        if index in sums:
            item["train_loss"] = sum(sums[index]) / len(sums[index])
        if index in evals:
            item["eval_loss"] = evals[index]
        out[index] = item
    return out


def heldout_items(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Held-out training rows -> {system message: [EvalItem]}: each problem is asked with the
    prompt the model was trained with (its rows' own system message, then the question)."""
    from dart_hub.evaluation import EvalItem

    groups: dict[str, list[Any]] = {}
    for row in rows:  # rows of one dataset normally share one system message
        system = row["messages"][0]["content"] if row["messages"][0]["role"] == "system" else ""
        groups.setdefault(system, []).append(
            EvalItem(benchmark="validation", id=row["id"], question=_question(row), gold=row["gold"])
        )
    return groups


# Share of each GPU a selection vLLM engine takes: the training processes have just released
# theirs, a CUDA context of the main process stays on GPU 0.
SELECTION_GPU_MEMORY = 0.8


def selection_plan(engine_kind: str, gpus: int | None = None) -> dict[str, Any]:
    """How the checkpoints are scored: {engine, data_parallel_size}. `auto` (the default) is
    vLLM over every visible GPU (one engine replica per GPU, the validation problems split
    between them) when vLLM is installed and torch sees a GPU, else transformers; an explicit
    `vllm` also spreads over the visible GPUs."""
    from dart_hub.engines.factory import resolve_engine_kind

    kind = resolve_engine_kind(engine_kind)
    if kind != "vllm":
        return {"engine": kind, "data_parallel_size": 1}
    if gpus is None:
        from dart_hub.training.launch import visible_gpus

        gpus = visible_gpus()
    return {"engine": "vllm", "data_parallel_size": max(1, gpus)}


def prunable(epochs: list[dict[str, Any]], keep_last: bool = False) -> list[dict[str, Any]]:
    """The scored checkpoints that can no longer be chosen: every scored one but the current
    best. A later checkpoint replaces the best only with a strictly higher accuracy (ties go to
    the earlier epoch), so one that lost once can never win. `keep_last`: the last checkpoint
    stays too (a resumable run continues from it)."""
    best = choose_best(epochs)
    last = epochs[-1] if keep_last and epochs else None
    return [e for e in epochs if e.get("validation") and e is not best and e is not last and not e.get("pruned")]


def prune_checkpoint(output_dir: Path, epoch: dict[str, Any]) -> None:
    """Delete a checkpoint folder that can no longer win (selection keeps scoring the others)."""
    shutil.rmtree(Path(output_dir) / epoch["checkpoint"], ignore_errors=True)
    epoch["pruned"] = True


def score_checkpoint(
    model_dir: str | Path,
    groups: dict[str, list[Any]],
    checker: Any,
    *,
    max_tokens: int,
    engine_kind: str = "transformers",
    batch_size: int = 32,
    data_parallel_size: int = 1,
) -> dict[str, Any]:
    """Greedy answers of one checkpoint on the validation items ({system prompt: [EvalItem]},
    see `heldout_items` and `dart_hub.training.validation`) -> {correct, total, accuracy,
    truncated}. Generation and grading go through `dart_hub.evaluation.evaluate_items`
    (math items by equivalence, multiple choice by letter)."""
    from dart_hub.engines.factory import create_engine
    from dart_hub.evaluation import evaluate_items
    from dart_hub.training.distributed import forget_deepspeed_config

    forget_deepspeed_config()  # a ZeRO-3 training's config would make the engine's load fail
    results = []
    options: dict[str, Any] = {"batch_size": batch_size}
    if engine_kind == "vllm":
        options.update(data_parallel_size=data_parallel_size, gpu_memory_utilization=SELECTION_GPU_MEMORY)
    engine = create_engine(engine_kind, str(model_dir), **options)
    try:
        for system, items in groups.items():
            results += evaluate_items(engine, items, checker, max_tokens, system_prompt=system)
    finally:
        engine.close()
    correct = sum(bool(r.correct) for r in results)
    return {
        "correct": correct,
        "total": len(results),
        "accuracy": correct / len(results) if results else 0.0,
        "truncated": sum(r.finish_reason == "length" for r in results),
    }


def _question(row: dict[str, Any]) -> str:
    messages = row["messages"]
    if messages and messages[-1]["role"] == "assistant":  # (GRPO prompt rows have no assistant turn)
        messages = messages[:-1]
    users = [m["content"] for m in messages if m["role"] == "user"]
    return users[-1] if users else ""


def choose_best(epochs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Highest validation accuracy; ties -> the earlier epoch."""
    scored = [e for e in epochs if e.get("validation")]
    if not scored:
        return None
    return max(scored, key=lambda e: (e["validation"]["accuracy"], -e["epoch"]))


ADAPTER_CONFIG = "adapter_config.json"


def export_model(checkpoint: Path, target: Path) -> Path:
    """Copy a checkpoint's model files (weights, config, tokenizer) to `target`, without the
    trainer's state. Hard links when the filesystem allows (no extra disk), else copies.
    A LoRA checkpoint (adapter only) is merged into the base model instead, and the adapter is
    kept in `target/adapter/`: best/ loads, evaluates and publishes like a full fine-tune."""
    if target.exists():
        shutil.rmtree(target)
    if (checkpoint / ADAPTER_CONFIG).is_file():
        return _export_merged(checkpoint, target)
    target.mkdir(parents=True)
    for source in sorted(checkpoint.rglob("*")):
        relative = source.relative_to(checkpoint)
        if source.is_dir():
            continue
        if relative.parts[0] in TRAINER_FILES or relative.name.startswith(TRAINER_PREFIXES):
            continue
        if relative.parts[0].startswith(TRAINER_PREFIXES):
            continue  # DeepSpeed's global_stepN/ optimizer shards
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(source, destination)
        except OSError:
            shutil.copy2(source, destination)
    return target


def _export_merged(checkpoint: Path, target: Path) -> Path:
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoTokenizer

    model = AutoPeftModelForCausalLM.from_pretrained(str(checkpoint), dtype="auto")
    merged = model.merge_and_unload()
    merged.save_pretrained(str(target))
    AutoTokenizer.from_pretrained(str(checkpoint)).save_pretrained(str(target))
    adapter = target / "adapter"
    adapter.mkdir()
    for source in sorted(checkpoint.iterdir()):
        if source.name.startswith("adapter_") and source.is_file():
            shutil.copy2(source, adapter / source.name)
    return target
