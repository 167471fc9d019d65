"""`dart-hub demo --train`: No-Tuning / Static / First / Gap / Full on the toy world, with the
project's own train and evaluation code, over several training seeds.

Every arm uses the prompt the toy student was trained with (dart-hub's `solve` template as the
user turn, no system prompt), for training rows and for evaluation alike, so the table compares
what the student learned, not prompt formats. Every trained arm uses the same toy settings
(`TOY_TRAIN`: the toy student is tiny, so learning rate 1e-4 and 3 epochs instead of LIMO's
5e-6 x 15) and the same seeds; only the training rows differ:

- static: the expert traces unchanged (every expert problem);
- first / gap / full: the trajectories `dart-hub adapt --strategy first|gap|full` kept;
- dail / mapper (`dart-hub demo --method ...`): the rows `dart-hub adapt --method dail|mapper`
  kept, trained with the same SFT settings (DAIL's contrastive objective is not used here).

The interval of an arm is a 95% percentile bootstrap over held-out problems and training seeds
(both resampled), so it covers the spread between seeds as well as the sampling of problems.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

ARMS = ("no-tuning", "static", "first", "gap", "full", "dail", "mapper")
ADAPTED_ARMS = ("first", "gap", "full", "dail", "mapper")
LABELS = {
    "no-tuning": "No-Tuning",
    "static": "Static",
    "first": "Adaptation-First",
    "gap": "Adaptation-Gap",
    "full": "Adaptation-Full",
    "dail": "DAIL (SFT)",
    "mapper": "Mapper",
}
TOY_TRAIN = {"epochs": 3.0, "learning_rate": 1e-4, "max_length": 1024, "batch_size": 8}
HELDOUT_ITEMS = 300
SEEDS = 3
# Greedy answers of every arm get this many tokens: more than the longest expert trace (576
# tokens), so no arm is cut short for writing in the expert's long style.
EVAL_MAX_TOKENS = 768
EVAL_BATCH = 100
BOOTSTRAP = 2000
RESULTS_FILE = "demo-results.json"
FIGURE_FILE = "demo-results.png"


def _conversation(question: str, solution: str, gold: str) -> dict[str, Any]:
    from dart_hub.prompts import default_prompts

    user = default_prompts().render("solve", question)
    return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": solution}], "answer": gold}


def write_training_files(adapted: dict[str, Path], work: Path) -> dict[str, Path]:
    """One jsonl of chat rows per trained arm: static from the expert traces of the `full`
    folder, every other arm (first / gap / full, dail, mapper) from the trajectories its adapt
    run kept."""
    from dart_hub.publish.folder import read_examples

    work.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    static = work / "static.jsonl"
    with static.open("w") as handle:
        for example in read_examples(adapted["full"]):
            handle.write(json.dumps(_conversation(example.question, example.expert_solution, example.gold)) + "\n")
    files["static"] = static
    for arm in ADAPTED_ARMS:
        if arm not in adapted:
            continue
        path = work / f"{arm}.jsonl"
        with path.open("w") as handle:
            for example in read_examples(adapted[arm]):
                for trajectory in example.trajectories:
                    handle.write(json.dumps(_conversation(example.question, trajectory, example.gold)) + "\n")
        files[arm] = path
    return files


def heldout_items(limit: int = HELDOUT_ITEMS):
    from dart_hub.errors import DartHubError
    from dart_hub.evaluation.benchmarks import EvalItem
    from dart_hub.prompts import default_prompts
    from dart_hub.toy import heldout_dataset_path

    prompts = default_prompts()
    rows = [json.loads(line) for line in heldout_dataset_path().read_text().splitlines() if line.strip()]
    if limit > len(rows):
        raise DartHubError(f"the toy held-out set has {len(rows)} problems; pass --heldout {len(rows)} or less")
    return [
        EvalItem(benchmark="toy-heldout", id=str(i), question=prompts.render("solve", r["question"]), gold=str(r["answer"]), choices=None)
        for i, r in enumerate(rows[:limit])
    ]


def train_arm(data: Path, output: Path, seed: int) -> str:
    """Fine-tune the toy student on `data`; a model this function already trained on the same
    rows with the same settings is reused (a rerun of `demo --train` retrains nothing), and
    anything else left in `output` (an interrupted run, other rows) is replaced."""
    import hashlib
    import shutil

    from dart_hub.api import TrainSpec, train
    from dart_hub.toy import toy_student_path

    marker = output / "demo-train.json"
    key = {"data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(), "seed": seed, "settings": TOY_TRAIN}
    if marker.exists():
        done = json.loads(marker.read_text())
        if done.get("key") == key and Path(done["model_path"]).exists():
            return done["model_path"]
    if output.exists():
        shutil.rmtree(output)
    spec = TrainSpec(
        student=str(toy_student_path()), data=str(data), output=output, seed=seed,
        validation_size=0.0, select_best=False, quiet=True, **TOY_TRAIN,
    )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):  # the trainer's own logs
        summary = train(spec).summary or {}
    marker.write_text(json.dumps({"key": key, "model_path": summary["model_path"]}, indent=2) + "\n")
    return summary["model_path"]


def correctness(model: str, items, checker) -> list[int]:
    """1/0 per held-out item: greedy answer of `model` graded against the gold."""
    from dart_hub.engines.factory import create_engine
    from dart_hub.evaluation.run import evaluate_items

    engine = create_engine("transformers", model, dtype="float32", device="cpu", batch_size=EVAL_BATCH)
    try:
        results = evaluate_items(engine, items, checker, EVAL_MAX_TOKENS, system_prompt="")
    finally:
        engine.close()
    return [int(r.correct) for r in results]


def bootstrap_interval(grid: Sequence[Sequence[int]], resamples: int = BOOTSTRAP, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of `grid` (rows: seeds, columns: problems), resampling
    seeds and problems with replacement. One row: problems only."""
    rng = random.Random(seed)
    seeds, problems = len(grid), len(grid[0])
    means = []
    for _ in range(resamples):
        rows = [grid[rng.randrange(seeds)] for _ in range(seeds)]
        columns = [rng.randrange(problems) for _ in range(problems)]
        means.append(sum(row[c] for row in rows for c in columns) / (seeds * problems))
    means.sort()
    return means[int(0.025 * resamples)], means[min(resamples - 1, int(0.975 * resamples))]


def summarize_arm(arm: str, grid: Sequence[Sequence[int]], rows: int | None) -> dict[str, Any]:
    low, high = bootstrap_interval(grid)
    total = sum(sum(row) for row in grid)
    return {
        "arm": arm,
        "mean": round(total / (len(grid) * len(grid[0])), 4),
        "ci_low": round(low, 4),
        "ci_high": round(high, 4),
        "seeds": len(grid),
        "problems": len(grid[0]),
        "per_seed": [round(sum(row) / len(row), 4) for row in grid],
        "train_rows": rows,
    }


def compare_training(
    adapted: dict[str, Path],
    work: Path,
    *,
    seeds: int = SEEDS,
    heldout: int = HELDOUT_ITEMS,
    base_seed: int = 0,
    log: Callable[[str], None] = lambda _message: None,
) -> dict[str, Any]:
    """Train every arm `seeds` times and grade each model on `heldout` toy problems."""
    from dart_hub.answers import AnswerChecker
    from dart_hub.toy import toy_student_path

    started = time.monotonic()
    files = write_training_files(adapted, work)
    counts = {arm: sum(1 for line in path.read_text().splitlines() if line.strip()) for arm, path in files.items()}
    items = heldout_items(heldout)
    grids: dict[str, list[list[int]]] = {}
    skipped: list[dict[str, Any]] = []  # arms with no training rows: in the table, not trained
    with AnswerChecker() as checker:
        grids["no-tuning"] = [correctness(str(toy_student_path()), items, checker)]  # greedy: no seed to vary
        log(f"no-tuning: {sum(grids['no-tuning'][0]) / len(items):.3f}")
        for arm in ARMS[1:]:
            if arm not in files:
                continue
            if counts[arm] == 0:
                log(f"{arm}: adapt kept no example; arm skipped")
                skipped.append({"arm": arm, "train_rows": 0, "reason": "adapt kept no example"})
                continue
            grids[arm] = []
            for index in range(seeds):
                seed = base_seed + index
                model = train_arm(files[arm], work / f"{arm}-seed{seed}", seed)
                grids[arm].append(correctness(model, items, checker))
                log(f"{arm} seed {seed}: {sum(grids[arm][-1]) / len(items):.3f} ({time.monotonic() - started:.0f} s)")
    arms = [summarize_arm(arm, grid, counts.get(arm)) for arm, grid in grids.items()]
    return {
        "arms": arms,
        "skipped_arms": skipped,
        "settings": TOY_TRAIN | {"eval_max_tokens": EVAL_MAX_TOKENS, "prompt": "solve", "decoding": "greedy"},
        "seconds": round(time.monotonic() - started, 1),
    }


def table_lines(results: dict[str, Any]) -> list[str]:
    arms = results["arms"]
    base = next((a["mean"] for a in arms if a["arm"] == "no-tuning"), None)
    first = arms[0]
    lines = [
        f"held-out toy problems: {first['problems']}, greedy, same prompt for every arm; "
        f"trained arms: {max(a['seeds'] for a in arms)} seeds; 95% bootstrap interval over problems and seeds",
        f"  {'arm':<18} {'rows':>5} {'accuracy':>9}   {'95% interval':<15} {'vs No-Tuning':>12}",
    ]
    for arm in arms:
        delta = "" if base is None or arm["arm"] == "no-tuning" else f"{(arm['mean'] - base) * 100:+.1f}"
        rows = "" if arm["train_rows"] is None else str(arm["train_rows"])
        interval = f"{arm['ci_low'] * 100:.1f} - {arm['ci_high'] * 100:.1f}"
        lines.append(f"  {LABELS[arm['arm']]:<18} {rows:>5} {arm['mean'] * 100:8.1f}%   {interval:<15} {delta:>12}")
    for arm in results.get("skipped_arms", []):
        lines.append(f"  {LABELS[arm['arm']]:<18} {arm['train_rows']:>5}         -   not trained: {arm['reason']}")
    return lines


def write_results(results: dict[str, Any], folder: Path) -> tuple[Path, Path]:
    """demo-results.json and a bar chart with the intervals (demo-results.png) in `folder`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    json_path, figure_path = folder / RESULTS_FILE, folder / FIGURE_FILE
    json_path.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    arms = results["arms"]
    means = [a["mean"] * 100 for a in arms]
    errors = [[m - a["ci_low"] * 100 for m, a in zip(means, arms, strict=True)],
              [a["ci_high"] * 100 - m for m, a in zip(means, arms, strict=True)]]
    figure, axes = plt.subplots(figsize=(6.4, 3.6), dpi=120)
    palette = {"no-tuning": "#9e9e9e", "static": "#d98c5f", "dail": "#59a14f", "mapper": "#b07aa1"}
    colors = [palette.get(a["arm"], "#4c78a8") for a in arms]  # DART's arms blue
    axes.bar([LABELS[a["arm"]] for a in arms], means, yerr=errors, capsize=4, color=colors)
    axes.set_ylabel("held-out accuracy (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"toy world: {arms[0]['problems']} held-out problems, 95% intervals", fontsize=10)
    axes.tick_params(axis="x", labelsize=8)
    figure.tight_layout()
    figure.savefig(figure_path)
    plt.close(figure)
    return json_path, figure_path
