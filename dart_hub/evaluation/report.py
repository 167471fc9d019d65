"""results.json files and the comparison of several runs (the paper's Table 1 layout)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError

RESULTS_FILE = "results.json"
RESULTS_FORMAT = "dart-hub-eval/1"
FORMATS = ("markdown", "text", "json")
_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")


def read_results_file(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DartHubError(f"{path} is not a readable results file ({error}); rerun `dart-hub eval`") from error
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict):
        raise DartHubError(f"{path} is not a dart-hub results file (no 'benchmarks'); rerun `dart-hub eval`")
    return data


def read_results(directory: str | Path) -> dict[str, Any]:
    """The results.json of an eval output directory."""
    directory = Path(directory)
    path = directory / RESULTS_FILE
    if not directory.is_dir():
        raise DartHubError(f"{directory} is not a directory; pass eval output directories (dart-hub eval --output DIR)")
    if not path.is_file():
        raise DartHubError(f"{directory} has no {RESULTS_FILE}; pass a directory written by `dart-hub eval --output DIR`")
    return read_results_file(path)


@dataclass(frozen=True)
class Run:
    directory: Path
    label: str
    model: str
    accuracies: dict[str, float]  # benchmark -> accuracy in [0, 1]
    titles: dict[str, str]


def _default_label(directory: Path, model: str) -> str:
    # A Hub id names the model; a local checkpoint path says less than the run's folder name.
    if model and _HUB_ID.match(model) and not Path(model).exists():
        return model
    return directory.name or str(directory)


def match_directory(key: str, directories: Sequence[Path], option: str) -> int:
    for index, directory in enumerate(directories):
        if key == str(directory) or key == directory.name:
            return index
    resolved = Path(key).resolve()
    for index, directory in enumerate(directories):
        if directory.resolve() == resolved:
            return index
    raise DartHubError(f"{option} {key!r} is none of the directories given: {', '.join(str(d) for d in directories)}")


def load_runs(directories: Sequence[str | Path], labels: Mapping[str, str] | None = None) -> list[Run]:
    """Read each directory's results.json. `labels`: {DIR: NAME} overrides (DIR as given, its
    folder name, or any path to it)."""
    if not directories:
        raise DartHubError("give at least one eval output directory")
    dirs = [Path(d) for d in directories]
    data = [read_results(d) for d in dirs]
    names = [_default_label(d, str(r.get("model") or "")) for d, r in zip(dirs, data, strict=True)]
    for index, name in enumerate(names):
        if names.count(name) > 1:  # two runs of one model: tell them apart by folder
            names[index] = str(dirs[index])
    for key, value in (labels or {}).items():
        names[match_directory(key, dirs, "--label")] = value
    runs = []
    for directory, results, label in zip(dirs, data, names, strict=True):
        entries = results["benchmarks"]
        runs.append(
            Run(
                directory=directory,
                label=label,
                model=str(results.get("model") or ""),
                accuracies={name: float(e["accuracy"]) for name, e in entries.items()},
                titles={name: str(e.get("title") or name) for name, e in entries.items()},
            )
        )
    return runs


def compare_runs(runs: Sequence[Run], baseline: int = 0) -> dict[str, Any]:
    """One row per run, one column per benchmark (registry order) plus the unweighted average,
    in percent; deltas (percentage points) against `runs[baseline]` where both have a value.
    A run's average covers the benchmarks it has; its delta needs the same set as the baseline."""
    from dart_hub.evaluation.benchmarks import BENCHMARK_NAMES

    present = {name for run in runs for name in run.accuracies}
    columns = [n for n in BENCHMARK_NAMES if n in present] + sorted(present - set(BENCHMARK_NAMES))
    titles: dict[str, str] = {}
    for run in runs:
        for name, title in run.titles.items():
            titles.setdefault(name, title)
    base = runs[baseline]
    base_scores = {n: 100 * base.accuracies[n] for n in columns if n in base.accuracies}
    base_average = _mean(base_scores.values())
    rows = []
    for index, run in enumerate(runs):
        scores = {n: 100 * run.accuracies[n] for n in columns if n in run.accuracies}
        average = _mean(scores.values())
        row: dict[str, Any] = {
            "label": run.label,
            "directory": str(run.directory),
            "model": run.model,
            "baseline": index == baseline,
            "scores": scores,
            "average": average,
            "average_over": list(scores),
            "complete": len(scores) == len(columns),
            "deltas": {},
            "average_delta": None,
        }
        if index != baseline:
            row["deltas"] = {n: scores[n] - base_scores[n] for n in scores if n in base_scores}
            if set(scores) == set(base_scores) and average is not None and base_average is not None:
                row["average_delta"] = average - base_average
        rows.append(row)
    return {
        "columns": columns,
        "titles": {n: titles.get(n, n) for n in columns},
        "baseline": base.label,
        "rows": rows,
    }


def _mean(values: Any) -> float | None:
    values = list(values)
    return sum(values) / len(values) if values else None


def render_comparison(table: dict[str, Any], fmt: str = "markdown") -> str:
    if fmt == "json":
        return json.dumps(table, indent=2)
    if fmt not in FORMATS:
        raise DartHubError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    header = ["Run", *(table["titles"][n] for n in table["columns"]), "Avg."]
    body = []
    partial = False
    for row in table["rows"]:
        cells = [row["label"] + (" (baseline)" if row["baseline"] else "")]
        for name in table["columns"]:
            cells.append(_cell(row["scores"].get(name), row["deltas"].get(name)))
        average = _cell(row["average"], row["average_delta"])
        if not row["complete"] and row["average"] is not None:
            average += "*"
            partial = True
        cells.append(average)
        body.append(cells)
    footnote = "* average over the benchmarks this run has" if partial else ""
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * (len(header) - 1)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
    else:
        widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]
        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
            return "  ".join([first, *rest]).rstrip()
        lines = [line(header), "  ".join("-" * w for w in widths)] + [line(c) for c in body]
    if footnote:
        lines += ["", footnote]
    return "\n".join(lines)


def _cell(score: float | None, delta: float | None) -> str:
    if score is None:
        return "-"
    text = f"{score:.1f}"
    if delta is not None:
        delta = round(delta, 1) or 0.0  # no "-0.0"
        text += f" ({delta:+.1f})"
    return text
