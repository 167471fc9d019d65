"""The report's pages: jinja2 templates from dart_hub/resources/report with autoescaping on (every
string from data is HTML-escaped), CSS and JS inlined, no network reference of any kind.

Safety: besides escaping, every page carries a Content-Security-Policy. Problem pages allow no
script at all; the index allows only its own inline script, by hash. A `<script>` in a question,
solution or candidate therefore shows as text and could not run even if an escape were missed.

Output folder (written to a hidden sibling first, then swapped in, so a kill never leaves half a
report):
    OUT/index.html                 overview and the problem list (filter, sort, search)
    OUT/problems/NNNNN-ID.html     one page per problem, static (no script)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from dart_hub.errors import DartHubError

REPORT_DIR = "report"  # default place of a folder's report: FOLDER/report
INDEX = "index.html"
_MATH = re.compile(r"(\$\$.+?\$\$|\\\[.+?\\\]|\\\(.+?\\\)|\$[^$\n]+?\$|\\(?:boxed|fbox)\{)", re.S)


def resource(name: str) -> str:
    return resources.files("dart_hub").joinpath("resources", "report", name).read_text(encoding="utf-8")


def tex(text: Any) -> Markup:
    """Escaped text with its LaTeX made easy to spot: math spans and \\boxed{...} answers get a
    class of their own (no renderer is bundled: the LaTeX itself is shown as written)."""
    from dart_hub.boxed import braced_group

    text = "" if text is None else str(text)
    out: list[str] = []
    position = 0
    for match in _MATH.finditer(text):
        if match.start() < position:
            continue
        out.append(str(escape(text[position : match.start()])))
        token = match.group(0)
        if token.endswith("{"):  # \boxed{ ... } with nested braces
            content = braced_group(text, match.end() - 1)
            if content is None:
                out.append(str(escape(token)))
                position = match.end()
                continue
            end = match.end() + len(content) + 1
            out.append(f'<mark class="boxed">{escape(text[match.start() : end])}</mark>')
            position = end
        else:
            out.append(f'<span class="math">{escape(token)}</span>')
            position = match.end()
    out.append(str(escape(text[position:])))
    return Markup("".join(out))


def json_for_script(data: Any) -> Markup:
    """JSON for a <script type="application/json"> block: `<`, `>` and `&` escaped so no text in
    the data can close the block."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    text = text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
    return Markup(text)


def script_hash(script: str) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(lambda name: resource(name)),
        undefined=jinja2.StrictUndefined,
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(tex=tex, json_script=json_for_script, number=_number, pct=_percent)
    return env


def _number(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and digits:
        return f"{value:,.{digits}f}"
    if isinstance(value, int | float):
        return f"{value:,.0f}" if digits == 0 and float(value).is_integer() else f"{value:,.{max(digits, 2)}f}"
    return str(value)


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def page_context() -> dict[str, Any]:
    from dart_hub import __version__

    return {"css": Markup(resource("report.css")), "version": __version__}


def render_dataset_pages(data: dict[str, Any], folder_link: str) -> dict[str, str]:
    """{relative path: HTML} of a dataset report. `folder_link`: the adapted folder as seen from
    the report's index (e.g. ".." for FOLDER/report), for the links to the card and parquet."""
    from dart_hub.report import svg
    from dart_hub.report.dataset import list_entry

    env = environment()
    overview, problems = data["overview"], data["problems"]
    script = resource("index.js")
    base = page_context()
    entries = [list_entry(p) for p in problems]
    links = [{**link, "href": _join(folder_link, link["path"])} for link in overview["links"]]
    reasons = sorted({p["cut_reason"] for p in problems})
    outcomes = sorted({p["outcome"] for p in problems})
    pages = {
        INDEX: env.get_template("dataset_index.html.j2").render(
            **base,
            o=overview,
            entries=entries,
            links=links,
            reasons=reasons,
            outcomes=outcomes,
            mean_curve=Markup(svg.mean_curve(overview["curve"])) if overview["curve"] else None,
            cut_histogram=Markup(svg.cut_histogram(overview["cut_histogram"], overview["table6_marks"])) if overview["cut_positions"] else None,
            script=Markup(script),
            script_hash=script_hash(script),
        )
    }
    template = env.get_template("problem.html.j2")
    for index, problem in enumerate(problems):
        previous = problems[index - 1]["file"] if index else None
        following = problems[index + 1]["file"] if index + 1 < len(problems) else None
        pages[problem["file"]] = template.render(
            **base,
            o=overview,
            p=problem,
            curve=Markup(svg.problem_curve(problem)) if problem["probed_steps"] else None,
            previous=_sibling(previous),
            following=_sibling(following),
            step_rows=_step_rows(problem),
        )
    return pages


def _sibling(path: str | None) -> str | None:
    return path.split("/", 1)[1] if path else None


def _join(prefix: str, path: str) -> str:
    return f"{prefix.rstrip('/')}/{path}" if prefix else path


def _step_rows(problem: dict[str, Any]) -> list[dict[str, Any]]:
    """Each expert step with its fate: kept, cut, or answer-revealing; its f and counts."""
    rows = []
    scores, successes, samples = problem["scores"], problem["successes"], problem["samples"]
    for t, text in enumerate(problem["expert_steps"]):
        state = "kept" if t < problem["keep_steps"] else "cut"
        if problem["method"] != "dart":  # DAIL / mapper rewrite the whole trace: nothing is cut at a step
            state = "kept" if problem["cut_reason"] == "mapper_original" else "rewritten"
        score = scores[t] if t < len(scores) else None
        drawn = samples[t] if t < len(samples) else None
        rows.append(
            {
                "t": t,
                "text": text,
                "state": state,
                "score": score,
                "successes": successes[t] if t < len(successes) else None,
                "samples": drawn,
                "revealing": problem["reveal_step"] is not None and t >= problem["reveal_step"],
                "peak": t == problem["peak"],
                "gap": t == problem["gap"],
            }
        )
    return rows


def write_pages(pages: dict[str, str], out: Path) -> Path:
    """Write the pages into `out` as a whole: a hidden sibling first, then swapped in."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for pattern in (f".{out.name}.partial-*", f".{out.name}.old-*"):  # left by a killed write
        for leftover in out.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)
    staged = out.parent / f".{out.name}.partial-{os.getpid()}"
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    try:
        shutil.rmtree(staged, ignore_errors=True)
        for relative, text in pages.items():
            path = staged / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        if out.exists():
            if not (out / INDEX).is_file() and any(out.iterdir()):
                raise DartHubError(f"{out} exists and is not a dart-hub report (no {INDEX}); choose another --output")
            out.rename(old)
        staged.rename(out)
    except OSError as error:
        shutil.rmtree(staged, ignore_errors=True)
        raise DartHubError(f"could not write the report to {out}: {error.strerror or error}; check the path and its permissions") from None
    finally:
        shutil.rmtree(staged, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    return out


def write_dataset_report(folder: str | Path, out: str | Path | None = None) -> Path:
    """Build and write the report of an adapt output folder (default FOLDER/report); returns
    the path of its index.html."""
    from dart_hub.report.dataset import dataset_report

    folder = Path(folder)
    out = Path(out) if out is not None else folder / REPORT_DIR
    data = dataset_report(folder)
    link = os.path.relpath(folder.resolve(), out.resolve())  # relative: the pair can be moved together
    pages = render_dataset_pages(data, Path(link).as_posix())
    write_pages(pages, out)
    return out / INDEX


def grid_cells(grid: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid's rows as `dart-hub compare` prints them (same cell text), for the HTML table."""
    from dart_hub.evaluation.report import _cell

    rows = []
    for group in grid["groups"]:
        rows.append({"group": group["student"]})
        for row in group["rows"]:
            if not row["evaluated"]:
                cells = ["-"] * len(grid["columns"]) + ["not evaluated yet"]
            else:
                cells = [_cell(row["scores"].get(n), row["deltas"].get(n)) for n in grid["columns"]]
                cells.append(_cell(row["average"], row["average_delta"]) + ("" if row["complete"] or row["average"] is None else "*"))
            rows.append({"group": None, "dataset": row["dataset"] or "-", "arm": row["arm"], "cells": cells})
    return rows


def comparison_cells(table: dict[str, Any]) -> list[dict[str, Any]]:
    """The eval folders' table as `dart-hub compare` prints it (same cell text)."""
    from dart_hub.evaluation.report import _cell

    rows = []
    for row in table["rows"]:
        cells = [_cell(row["scores"].get(n), row["deltas"].get(n)) for n in table["columns"]]
        cells.append(_cell(row["average"], row["average_delta"]) + ("" if row["complete"] or row["average"] is None else "*"))
        rows.append({"label": row["label"] + (" (baseline)" if row["baseline"] else ""), "cells": cells})
    return rows


def render_runs_pages(data: dict[str, Any]) -> dict[str, str]:
    from dart_hub.report import svg

    env = environment()
    runs = []
    for run in data["runs"]:
        charts = {"bars": None, "loss": None, "validation": None}
        if run["bars"]:
            charts["bars"] = Markup(svg.interval_bars(run["bars"], title=f"accuracy per benchmark: {run['label']}"))
        training = run["training"]
        if training and training["rows"]:
            chosen = training["chosen"]
            loss = [(r["epoch"], r["train_loss"]) for r in training["rows"] if r["train_loss"] is not None and r["epoch"] is not None]
            valid = [(r["epoch"], r["validation"]) for r in training["rows"] if r["validation"] is not None and r["epoch"] is not None]
            if loss:
                charts["loss"] = Markup(svg.epoch_chart(loss, chosen, "training loss", "loss-chart"))
            if valid:
                charts["validation"] = Markup(svg.epoch_chart(valid, chosen, "validation accuracy (%)", "validation-chart", percent=True))
        runs.append({**run, "charts": charts})
    demos = [{**d, "chart": Markup(svg.interval_bars(d["bars"], width=640, title="toy held-out accuracy per arm"))} for d in data["demo"]]
    benchmarks = benchmark_charts(data["runs"])
    grid = data["grid"]
    comparison = data["comparison"]
    page = env.get_template("runs.html.j2").render(
        **page_context(),
        grid=grid,
        grid_rows=grid_cells(grid) if grid else [],
        comparison=comparison,
        comparison_rows=comparison_cells(comparison) if comparison else [],
        data=data,
        runs=runs,
        demos=demos,
        benchmarks=benchmarks,
    )
    return {INDEX: page}


def benchmark_charts(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One chart per benchmark with a bar per evaluated run (runs side by side)."""
    from dart_hub.report import svg

    order: list[str] = []
    titles: dict[str, str] = {}
    for run in runs:
        for bar in run["bars"]:
            if bar["name"] not in titles:
                order.append(bar["name"])
                titles[bar["name"]] = bar["label"]
    charts = []
    for name in order:
        items = [{**bar, "label": run["label"]} for run in runs for bar in run["bars"] if bar["name"] == name]
        width = max(360, 120 * len(items) + 60)
        charts.append({"name": name, "title": titles[name], "chart": Markup(svg.interval_bars(items, width=width, title=f"{titles[name]}: accuracy per run"))})
    return charts


def write_runs_report(paths, out: str | Path) -> Path:
    """Build and write the report of training / eval runs; returns the path of its index.html."""
    from dart_hub.report.runs import runs_report

    data = runs_report([Path(p) for p in paths])
    out = Path(out)
    write_pages(render_runs_pages(data), out)
    return out / INDEX
