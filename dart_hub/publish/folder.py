"""Write an adapted run as a Hub-ready dataset folder that `load_dataset(DIR)` reads as the Hub would.

    DIR/README.md                              card (YAML `configs` tell datasets what is what)
    DIR/data/train-00000-of-00001.parquet      default config: one row per adapted trajectory
    DIR/steps/train-00000-of-00001.parquet     `steps` config: every example, scores, reasons
    DIR/dart_config.json                       the run's full configuration
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from dart_hub.records import AdaptedExample
from dart_hub.store import write_atomic

DATA_FILE = "data/train-00000-of-00001.parquet"
STEPS_FILE = "steps/train-00000-of-00001.parquet"
CONFIG_FILE = "dart_config.json"
RESERVED = {"id", "messages", "expert_solution", "strategy", "keep_steps", "num_expert_steps", "trajectory_index"}


def messages_for(question: str, solution: str, system: str) -> list[dict[str, str]]:
    """SFT-ready chat: optional system prompt, the question, the adapted solution."""
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": question}, {"role": "assistant", "content": solution}]


def train_rows(examples: Sequence[AdaptedExample], columns: dict[str, str | None], system: str) -> list[dict[str, Any]]:
    """One row per kept trajectory, with the source's own column names (a drop-in replacement:
    the solution column holds the adapted solution) plus `messages` for TRL."""
    rows = []
    for example in examples:
        for index, trajectory in enumerate(example.trajectories):
            row: dict[str, Any] = {"id": example.id}
            row.update({k: v for k, v in example.extra.items() if k not in RESERVED})
            row[columns["question"] or "question"] = example.question
            row[columns["solution"] or "solution"] = trajectory
            row[columns.get("answer") or "answer"] = example.gold
            row["messages"] = messages_for(example.question, trajectory, system)
            row["expert_solution"] = example.expert_solution
            row["strategy"] = example.strategy
            row["keep_steps"] = example.keep_steps
            row["num_expert_steps"] = len(example.expert_steps)
            row["trajectory_index"] = index
            rows.append(row)
    return rows


def steps_rows(examples: Sequence[AdaptedExample]) -> list[dict[str, Any]]:
    rows = []
    for example in examples:
        row = example.to_dict()
        row["num_steps"] = len(example.expert_steps)
        row["provenance"] = json.dumps(row["provenance"], sort_keys=True)
        row["extra"] = json.dumps(row["extra"], sort_keys=True, ensure_ascii=False, default=str)
        rows.append(row)
    return rows


_TRAIN_FALLBACK = datasets.Features(
    {
        "id": datasets.Value("string"),
        "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
    }
)


def _write_parquet(rows: list[dict[str, Any]], path: Path, fallback: datasets.Features | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rows:
        dataset = datasets.Dataset.from_list(rows)
    else:
        dataset = datasets.Dataset.from_dict({k: [] for k in fallback or {}}, features=fallback)
    tmp = path.with_name(f".{path.name}.tmp")
    dataset.to_parquet(str(tmp))
    tmp.replace(path)


def configs_yaml() -> str:
    return (
        "configs:\n"
        "- config_name: default\n"
        "  default: true\n"
        "  data_files:\n"
        "  - split: train\n"
        f"    path: {DATA_FILE}\n"
        "- config_name: steps\n"
        "  data_files:\n"
        "  - split: train\n"
        f"    path: {STEPS_FILE}\n"
    )


def write_folder(
    out_dir: str | Path,
    examples: Sequence[AdaptedExample],
    run_config: dict[str, Any],
    columns: dict[str, str | None],
    system: str,
    card: str | None = None,
) -> Path:
    """Write the folder; `card` is the README text (a minimal one with the configs if None)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _write_parquet(train_rows(examples, columns, system), out / DATA_FILE, _TRAIN_FALLBACK)
    _write_parquet(steps_rows(examples), out / STEPS_FILE, _TRAIN_FALLBACK)
    write_atomic(out / CONFIG_FILE, json.dumps(run_config, indent=2, sort_keys=True, default=str) + "\n")
    if card is None:
        card = f"---\n{configs_yaml()}---\n\nDART-adapted dataset written by dart-hub.\n"
    write_atomic(out / "README.md", card)
    return out
