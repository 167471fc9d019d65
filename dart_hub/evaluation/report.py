"""results.json files and the comparison of several runs (the paper's Table 1 layout)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
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
    tokens: dict[str, float] = field(default_factory=dict)  # benchmark -> mean response tokens
    pass_at_k: dict[str, dict[str, float]] = field(default_factory=dict)  # benchmark -> {k: pass@k}


def run_extras(entries: Mapping[str, Any]) -> dict[str, Any]:
    """A results.json's mean response tokens and pass@k per benchmark (when recorded)."""
    return {
        "tokens": {n: float(e["mean_completion_tokens"]) for n, e in entries.items() if e.get("mean_completion_tokens") is not None},
        "pass_at_k": {n: {str(k): float(v) for k, v in e["pass_at_k"].items()} for n, e in entries.items() if e.get("pass_at_k")},
    }


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
                **run_extras(entries),
            )
        )
    return runs


def compare_runs(runs: Sequence[Run], baseline: int = 0) -> dict[str, Any]:
    """One row per run, one column per benchmark (registry order) plus the unweighted average,
    in percent; deltas (percentage points) against `runs[baseline]` where both have a value.
    A run's average covers the benchmarks it has; its delta needs the same set as the baseline."""
    present = {name for run in runs for name in run.accuracies}
    columns = benchmark_columns(present)
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
            "tokens": {n: run.tokens[n] for n in columns if n in run.tokens},
            "pass_at_k": {n: run.pass_at_k[n] for n in columns if n in run.pass_at_k},
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


def benchmark_columns(present: set[str]) -> list[str]:
    """Benchmarks in registry order (the paper's column order), unknown names last."""
    from dart_hub.evaluation.benchmarks import ALL_BENCHMARKS

    return [n for n in ALL_BENCHMARKS if n in present] + sorted(present - set(ALL_BENCHMARKS))


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
    lines = _layout(header, body, fmt, left=1)
    if partial:
        lines += ["", "* average over the benchmarks this run has"]
    return "\n".join(lines + _extra_tables(table, fmt))


def _extra_tables(table: dict[str, Any], fmt: str) -> list[str]:
    """pass@k (one table per k, runs with several samples) and the mean response length in
    tokens, under the accuracy table, when the runs recorded them."""
    rows, columns = table["rows"], table["columns"]
    header_cells = [table["titles"][n] for n in columns]
    out: list[str] = []
    ks = sorted({k for row in rows for per in row.get("pass_at_k", {}).values() for k in per}, key=int)
    for k in ks:
        body = []
        for row in rows:
            per = row.get("pass_at_k", {})
            if not any(k in per.get(n, {}) for n in columns):
                continue
            values = [100 * per[n][k] if k in per.get(n, {}) else None for n in columns]
            present = [v for v in values if v is not None]
            cells = [f"{v:.1f}" if v is not None else "-" for v in values]
            body.append([row["label"], *cells, f"{sum(present) / len(present):.1f}" if present else "-"])
        out += ["", f"pass@{k} (%, unbiased estimator):" if fmt == "text" else f"**pass@{k}** (%, unbiased estimator)", ""]
        out += _layout(["Run", *header_cells, "Avg."], body, fmt, left=1)
    if any(row.get("tokens") for row in rows):
        body = []
        for row in rows:
            values = [row.get("tokens", {}).get(n) for n in columns]
            present = [v for v in values if v is not None]
            cells = [f"{v:.0f}" if v is not None else "-" for v in values]
            body.append([row["label"], *cells, f"{sum(present) / len(present):.0f}" if present else "-"])
        title = "Mean response tokens per answer"
        out += ["", f"{title}:" if fmt == "text" else f"**{title}**", ""]
        out += _layout(["Run", *header_cells, "Avg."], body, fmt, left=1)
    return out


def _layout(header: list[str], body: list[list[str]], fmt: str, left: int) -> list[str]:
    """Markdown or aligned text; the first `left` columns are labels (left-aligned)."""
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * left + "---:|" * (len(header) - left)]
        return lines + ["| " + " | ".join(cells) + " |" for cells in body]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]
        return "  ".join(parts).rstrip()

    return [line(header), "  ".join("-" * w for w in widths)] + [line(c) for c in body]


# ---------------------------------------------------------------------------------------------
# The paper's grid: finished `dart-hub run` folders laid out as Tables 1, 3 and 5
# ---------------------------------------------------------------------------------------------

RUN_SUMMARY = "run-summary.json"
# Row order inside a student's group: Table 1's (No-Tuning, then per dataset Static and Full),
# with Table 3's and Table 5's arms between Static and Full.
ARM_ORDER = ("No-Tuning", "Static", "Adaptation-First", "Adaptation-Gap", "Adaptation-Raw", "Adaptation-Full")
DATASET_ORDER = ("Math-QwQ-32B", "LIMO")
STUDENT_ORDER = ("Qwen2.5-0.5B-Instruct", "Qwen2.5-1.5B-Instruct", "Qwen2.5-3B-Instruct", "Llama-3.2-3B-Instruct")


@dataclass(frozen=True)
class GridRun:
    """One `dart-hub run` output folder: where it sits in the grid, and its eval results."""

    directory: Path
    student: str
    dataset: str | None
    arm: str
    tables: tuple[int, ...]
    results: dict[str, Any] | None  # the eval stage's results.json; None until it has run


def find_run_dirs(paths: Sequence[str | Path]) -> list[Path]:
    """Run folders (holding run-summary.json) given directly or anywhere below the paths."""
    found: list[Path] = []
    for value in paths:
        path = Path(value)
        matches = []
        if path.is_dir():
            matches = [path] if (path / RUN_SUMMARY).is_file() else sorted(p.parent for p in path.rglob(RUN_SUMMARY))
        if not matches:
            raise DartHubError(
                f"{path} has no {RESULTS_FILE} (a `dart-hub eval` folder) and no {RUN_SUMMARY} below it "
                f"(`dart-hub run` folders); pass one or the other"
            )
        found += [m for m in matches if m not in found]
    return found


def load_grid_runs(paths: Sequence[str | Path]) -> list[GridRun]:
    runs = []
    for directory in find_run_dirs(paths):
        summary = read_json(directory / RUN_SUMMARY)
        paper = summary.get("paper") or {}
        eval_stage = (summary.get("stages") or {}).get("eval") or {}
        results = None
        if eval_stage.get("status") == "done":
            # the eval folder moves with the run folder; the recorded path is the fallback
            candidates = [directory / "eval", Path(str(eval_stage.get("output", "")))]
            path = next((c / RESULTS_FILE for c in candidates if (c / RESULTS_FILE).is_file()), None)
            results = read_results_file(path) if path else None
        student = paper.get("student") or Path(str(summary.get("student") or directory.name)).name
        runs.append(
            GridRun(
                directory=directory,
                student=student,
                dataset=paper.get("dataset"),
                arm=paper.get("arm") or "Adaptation-Full",
                tables=tuple(paper.get("tables") or ()),
                results=results,
            )
        )
    return runs


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise DartHubError(f"{path} is not readable JSON ({error})") from error
    if not isinstance(data, dict):
        raise DartHubError(f"{path} is not a dart-hub run summary")
    return data


def _order(items: Sequence[str], known: Sequence[str]) -> list[str]:
    return [k for k in known if k in items] + sorted(set(items) - set(known))


def grid_table(runs: Sequence[GridRun], table: int | None = None) -> dict[str, Any]:
    """Rows grouped by student (Table 1's layout): No-Tuning, then per dataset each arm; columns
    = the benchmarks the runs have plus the unweighted average; deltas (points) against the
    student's No-Tuning run where there is one. `table`: only the runs of that paper table."""
    if table is not None:
        runs = [r for r in runs if table in r.tables]
        if not runs:
            raise DartHubError(f"no run belongs to Table {table} (its recipe's `paper.tables`)")
    present = {n for r in runs if r.results for n in r.results["benchmarks"]}
    columns = benchmark_columns(present)
    titles: dict[str, str] = {}
    for run in runs:
        for name, entry in ((run.results or {}).get("benchmarks") or {}).items():
            titles.setdefault(name, str(entry.get("title") or name))
    groups = []
    for student in _order([r.student for r in runs], STUDENT_ORDER):
        mine = [r for r in runs if r.student == student]
        datasets = _order([r.dataset for r in mine if r.dataset], DATASET_ORDER)
        ordered = sorted(
            mine,
            key=lambda r: (r.arm != "No-Tuning", datasets.index(r.dataset) if r.dataset in datasets else -1,
                           ARM_ORDER.index(r.arm) if r.arm in ARM_ORDER else len(ARM_ORDER), str(r.directory)),
        )
        base = next((r for r in ordered if r.arm == "No-Tuning" and r.results), None)
        base_scores = _scores(base, columns) if base else {}
        rows = []
        for run in ordered:
            scores = _scores(run, columns)
            average = _mean(scores.values())
            row: dict[str, Any] = {
                "dataset": run.dataset,
                "arm": "Adaptation-Cleaned" if table == 5 and run.arm == "Adaptation-Full" else run.arm,
                "directory": str(run.directory),
                "evaluated": run.results is not None,
                "scores": scores,
                "average": average,
                "complete": len(scores) == len(columns),
                "deltas": {},
                "average_delta": None,
            }
            if base is not None and run is not base:
                row["deltas"] = {n: scores[n] - base_scores[n] for n in scores if n in base_scores}
                if scores and set(scores) == set(base_scores):
                    row["average_delta"] = average - _mean(base_scores.values())
            rows.append(row)
        groups.append({"student": student, "baseline": str(base.directory) if base else None, "rows": rows})
    return {"table": table, "columns": columns, "titles": {n: titles.get(n, n) for n in columns}, "groups": groups}


def _scores(run: GridRun, columns: Sequence[str]) -> dict[str, float]:
    entries = (run.results or {}).get("benchmarks") or {}
    return {n: 100 * float(entries[n]["accuracy"]) for n in columns if n in entries}


def render_grid(table: dict[str, Any], fmt: str = "markdown") -> str:
    if fmt == "json":
        return json.dumps(table, indent=2)
    if fmt not in FORMATS:
        raise DartHubError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")
    header = ["Dataset", "Method", *(table["titles"][n] for n in table["columns"]), "Avg."]
    body: list[list[str]] = []
    pending = partial = False
    for group in table["groups"]:
        title = f"**{group['student']}**" if fmt == "markdown" else group["student"]
        body.append([title, "", *[""] * (len(table["columns"]) + 1)])
        for row in group["rows"]:
            cells = [row["dataset"] or "-", row["arm"]]
            if not row["evaluated"]:
                pending = True
                cells += ["-"] * len(table["columns"]) + ["not evaluated yet"]
            else:
                cells += [_cell(row["scores"].get(n), row["deltas"].get(n)) for n in table["columns"]]
                average = _cell(row["average"], row["average_delta"])
                if not row["complete"] and row["average"] is not None:
                    average += "*"
                    partial = True
                cells.append(average)
            body.append(cells)
    lines = _layout(header, body, fmt, left=2)
    notes = ["In parentheses: points against the student's No-Tuning run."]
    if partial:
        notes.append("* average over the benchmarks this run has")
    if pending:
        notes.append("not evaluated yet: the run's eval stage has not finished (`dart-hub run` resumes it)")
    return "\n".join([*lines, "", *notes])


def _cell(score: float | None, delta: float | None) -> str:
    if score is None:
        return "-"
    text = f"{score:.1f}"
    if delta is not None:
        delta = round(delta, 1) or 0.0  # no "-0.0"
        text += f" ({delta:+.1f})"
    return text
