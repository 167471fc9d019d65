"""`dart-hub demo --train`: No-Tuning / Static / DART on the toy world, with the project's own
train and evaluation code.

All three arms use the prompt the toy student was trained with (dart-hub's `solve` template as
the user turn, no system prompt), for training rows and for evaluation alike, so the table
compares what the student learned, not prompt formats. The toy student is tiny, so training
uses toy settings (learning rate 1e-4, a few epochs) instead of LIMO's 5e-6 x 15 epochs.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

TOY_TRAIN = {"epochs": 3.0, "learning_rate": 1e-4, "max_length": 512, "batch_size": 8}
HELDOUT_ITEMS = 60
EVAL_MAX_TOKENS = 128


def _conversation(question: str, solution: str) -> dict[str, Any]:
    from dart_hub.prompts import default_prompts

    user = default_prompts().render("solve", question)
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": solution}], "answer": None}


def write_training_files(adapted_dir: Path, work: Path) -> dict[str, Path]:
    """Static rows (expert traces) and DART rows (adapted trajectories) in the student's prompt."""
    from dart_hub.publish.folder import read_examples

    examples = read_examples(adapted_dir)
    files = {"static": work / "static.jsonl", "dart": work / "dart.jsonl"}
    work.mkdir(parents=True, exist_ok=True)
    with files["static"].open("w") as static, files["dart"].open("w") as dart:
        for example in examples:
            row = _conversation(example.question, example.expert_solution) | {"answer": example.gold}
            static.write(json.dumps(row) + "\n")
            for trajectory in example.trajectories:
                dart.write(json.dumps(_conversation(example.question, trajectory) | {"answer": example.gold}) + "\n")
    return files


def heldout_items(limit: int = HELDOUT_ITEMS):
    from dart_hub.evaluation.benchmarks import EvalItem
    from dart_hub.prompts import default_prompts
    from dart_hub.toy import heldout_dataset_path

    prompts = default_prompts()
    rows = [json.loads(line) for line in heldout_dataset_path().read_text().splitlines() if line.strip()][:limit]
    return [
        EvalItem(benchmark="toy-heldout", id=str(i), question=prompts.render("solve", r["question"]), gold=str(r["answer"]), choices=None)
        for i, r in enumerate(rows)
    ]


def train_arm(data: Path, output: Path, seed: int, quiet: bool) -> str:
    from dart_hub.commands import train
    from dart_hub.commands.options import cli_defaults
    from dart_hub.toy import toy_student_path

    options = cli_defaults(train.command)
    options.update(
        student=str(toy_student_path()), data=str(data), output=output, seed=seed,
        validation_size=0.0, select_best=False, quiet=True, as_json=True, **TOY_TRAIN,
    )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        summary = train.run(**options) or {}
    return summary["model_path"]


def accuracy(model: str, items, checker) -> float:
    from dart_hub.engines.factory import create_engine
    from dart_hub.evaluation.run import evaluate_items

    engine = create_engine("transformers", model, dtype="float32", device="cpu")
    try:
        results = evaluate_items(engine, items, checker, EVAL_MAX_TOKENS, system_prompt="")
    finally:
        engine.close()
    return sum(r.correct for r in results) / len(results)


def compare_training(adapted_dir: Path, quiet: bool = False, seed: int = 0) -> dict[str, Any]:
    from dart_hub.answers import AnswerChecker
    from dart_hub.toy import toy_student_path

    work = Path(adapted_dir).with_name(Path(adapted_dir).name + "-training")  # beside the Hub-ready folder, not in it
    files = write_training_files(Path(adapted_dir), work)
    if not files["dart"].read_text().strip():
        raise_nothing_kept()
    items = heldout_items()
    scores: dict[str, float] = {}
    with AnswerChecker() as checker:
        scores["No-Tuning"] = accuracy(str(toy_student_path()), items, checker)
        for arm, label in (("static", "Static"), ("dart", "DART (Adaptation-Full)")):
            model = train_arm(files[arm], work / arm, seed, quiet)
            scores[label] = accuracy(model, items, checker)
    base = scores["No-Tuning"]
    lines = [f"held-out toy problems ({len(items)}), greedy, same prompt for every arm:", "  arm                      accuracy   vs No-Tuning"]
    for label, score in scores.items():
        delta = "" if label == "No-Tuning" else f"{(score - base) * 100:+.1f}"
        lines.append(f"  {label:<24} {score * 100:6.1f}%   {delta}")
    return {"heldout": len(items), "accuracy": scores, "settings": TOY_TRAIN, "lines": lines}


def raise_nothing_kept() -> None:
    from dart_hub.errors import DartHubError

    raise DartHubError("the adapted toy set kept no example, so there is nothing to train DART on; rerun `dart-hub demo` (more --n-sim) first")
