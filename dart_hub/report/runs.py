"""What the report of training / evaluation runs shows, as plain data.

Accepted folders (any mix, each given directly or found below a given folder):
* `dart-hub run` folders (run-summary.json; their eval/ and train/ stages are read);
* `dart-hub eval --output` folders (results.json);
* `dart-hub train --output` folders (training_summary.json);
* the `dart-hub demo --train` output (demo-results.json: the toy arms with bootstrap intervals).

The comparison table is the one `dart-hub compare` prints for the same folders (the grid for
run folders, the side-by-side table for eval folders), built by the same functions.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError

TRAINING_SUMMARY = "training_summary.json"
DEMO_RESULTS = "demo-results.json"


def wilson(correct: float, total: int, z: float = 1.96) -> tuple[float, float] | None:
    """Wilson score interval of a proportion (95% by default), or None without problems."""
    if not total:
        return None
    p = correct / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DartHubError(f"{path} is not readable JSON ({error})") from None
    if not isinstance(data, dict):
        raise DartHubError(f"{path} is not a dart-hub summary")
    return data


def benchmark_bars(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Accuracy per benchmark (percent) with a Wilson 95% interval over its problems, and the mean
    response length, from an eval results.json."""
    from dart_hub.evaluation.report import benchmark_columns

    entries = results.get("benchmarks") or {}
    bars = []
    for name in benchmark_columns(set(entries)):
        entry = entries[name]
        accuracy = float(entry["accuracy"])
        total = int(entry.get("total") or 0)
        interval = wilson(accuracy * total, total) if total else None
        bars.append(
            {
                "name": name,
                "label": str(entry.get("title") or name),
                "value": 100 * accuracy,
                "low": 100 * interval[0] if interval else None,
                "high": 100 * interval[1] if interval else None,
                "total": total,
                "tokens": entry.get("mean_completion_tokens"),
            }
        )
    return bars


def epochs(training: dict[str, Any]) -> dict[str, Any]:
    """Training loss and validation score per epoch, and the chosen epoch, of a training summary."""
    rows = []
    for item in training.get("epochs") or []:
        validation = item.get("validation") or {}
        rows.append(
            {
                "epoch": item.get("epoch"),
                "train_loss": item.get("train_loss"),
                "eval_loss": item.get("eval_loss"),
                "validation": 100 * validation["accuracy"] if validation.get("accuracy") is not None else None,
                "validation_counts": f"{validation.get('correct')}/{validation.get('total')}" if validation else None,
            }
        )
    return {
        "rows": rows,
        "chosen": training.get("chosen_epoch"),
        "selection": bool((training.get("selection") or {}).get("enabled")),
        "gpu_hours": training.get("gpu_hours"),
        "seconds": training.get("seconds"),
        "student": training.get("student"),
        "train_rows": (training.get("rows") or {}).get("train"),
    }


def _training_for_model(model: str) -> Path | None:
    """The training folder of an evaluated local checkpoint (runs/x/best -> runs/x)."""
    path = Path(model)
    for candidate in (path, path.parent):
        if (candidate / TRAINING_SUMMARY).is_file():
            return candidate
    return None


def collect(paths: list[Path]) -> dict[str, Any]:
    """Sort the given folders into run folders, eval folders, train folders and demo results."""
    from dart_hub.evaluation.report import RESULTS_FILE, RUN_SUMMARY

    found: dict[str, list[Path]] = {"grid": [], "eval": [], "train": [], "demo": []}

    def add(kind: str, path: Path) -> None:
        if path not in found[kind]:
            found[kind].append(path)

    for path in paths:
        if not path.is_dir():
            raise DartHubError(f"{path} is not a folder; pass run, eval or train folders (or a folder holding them)")
        matched = False
        for kind, name in (("grid", RUN_SUMMARY), ("eval", RESULTS_FILE), ("train", TRAINING_SUMMARY), ("demo", DEMO_RESULTS)):
            if (path / name).is_file():
                add(kind, path)
                matched = True
        if matched:
            continue
        for kind, name in (("grid", RUN_SUMMARY), ("demo", DEMO_RESULTS)):
            for hit in sorted(path.rglob(name)):
                add(kind, hit.parent)
                matched = True
        if not matched:
            for kind, name in (("eval", RESULTS_FILE), ("train", TRAINING_SUMMARY)):
                for hit in sorted(path.rglob(name)):
                    add(kind, hit.parent)
                    matched = True
        if not matched:
            raise DartHubError(
                f"{path} holds no {RUN_SUMMARY}, {RESULTS_FILE}, {TRAINING_SUMMARY} or {DEMO_RESULTS}: "
                f"pass folders written by `dart-hub run`, `eval --output`, `train --output` or `demo --train`"
            )
    return found


def runs_report(paths: list[Path]) -> dict[str, Any]:
    """{"grid", "comparison", "runs", "demo"}: the tables `compare` prints and one entry per run
    with its benchmark bars and its epochs."""
    from dart_hub.evaluation.report import (
        compare_runs,
        grid_table,
        load_grid_runs,
        load_runs,
        read_results_file,
        render_comparison,
        render_grid,
    )

    found = collect([Path(p) for p in paths])
    report: dict[str, Any] = {"grid": None, "grid_text": None, "comparison": None, "comparison_text": None, "runs": [], "demo": []}
    if found["grid"]:
        grid = grid_table(load_grid_runs(found["grid"]))
        report["grid"], report["grid_text"] = grid, render_grid(grid, "text")
        for group in grid["groups"]:
            for row in group["rows"]:
                directory = Path(row["directory"])
                results_path = directory / "eval" / "results.json"
                results = read_results_file(results_path) if row["evaluated"] and results_path.is_file() else None
                training = directory / "train" / TRAINING_SUMMARY
                report["runs"].append(_run_entry(f"{group['student']} / {row['dataset'] or '-'} / {row['arm']}", directory, results, training))
    if found["eval"]:
        runs = load_runs(found["eval"])
        comparison = compare_runs(runs)
        report["comparison"], report["comparison_text"] = comparison, render_comparison(comparison, "text")
        for run in runs:
            results = read_results_file(run.directory / "results.json")
            training_dir = _training_for_model(run.model) if run.model else None
            report["runs"].append(_run_entry(run.label, run.directory, results, training_dir / TRAINING_SUMMARY if training_dir else None))
    listed = {Path(r["training_path"]).resolve() for r in report["runs"] if r["training_path"]}
    for directory in found["train"]:
        if (directory / TRAINING_SUMMARY).resolve() not in listed:
            report["runs"].append(_run_entry(directory.name, directory, None, directory / TRAINING_SUMMARY))
    for directory in found["demo"]:
        report["demo"].append(_demo_entry(directory))
    return report


def _run_entry(label: str, directory: Path, results: dict[str, Any] | None, training_path: Path | None) -> dict[str, Any]:
    training = _read(training_path) if training_path and training_path.is_file() else None
    return {
        "label": label,
        "directory": str(directory),
        "model": (results or {}).get("model"),
        "bars": benchmark_bars(results) if results else [],
        "average": (results or {}).get("average"),
        "training": epochs(training) if training else None,
        "training_path": str(training_path) if training else None,
    }


def _demo_entry(directory: Path) -> dict[str, Any]:
    from dart_hub.toy.arms import LABELS

    data = _read(directory / DEMO_RESULTS)
    bars = [
        {
            "name": arm["arm"],
            "label": LABELS.get(arm["arm"], arm["arm"]),
            "value": 100 * arm["mean"],
            "low": 100 * arm["ci_low"],
            "high": 100 * arm["ci_high"],
            "total": arm.get("problems"),
            "seeds": arm.get("seeds"),
            "train_rows": arm.get("train_rows"),
            "per_seed": arm.get("per_seed"),
        }
        for arm in data.get("arms") or []
    ]
    return {"directory": str(directory), "bars": bars, "settings": data.get("settings") or {}, "skipped": data.get("skipped_arms") or [], "seconds": data.get("seconds")}
