"""The eval stage as one call: a model on the benchmarks, results.json in the output folder."""

from __future__ import annotations

import json
import time

import click

from dart_hub.engines.factory import engine_for
from dart_hub.progress import library_progress_bars


class EvalProgressBar:
    """A rich progress bar per benchmark, with items/s and ETA (off with --quiet / --json)."""

    def __init__(self, enabled: bool):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.started = time.monotonic()
        self.progress = Progress(
            TextColumn("[bold]{task.description}[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("items"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not enabled,
        )
        self.task = None

    def __enter__(self):
        self.progress.__enter__()
        return self

    def __exit__(self, *exc):
        self.progress.__exit__(*exc)

    def benchmark_started(self, name: str, total: int, done: int) -> None:
        if self.task is not None:
            self.progress.update(self.task, visible=False)
        self.task = self.progress.add_task(name, total=total, completed=done)

    def items_done(self, count: int) -> None:
        if self.task is not None:
            self.progress.advance(self.task, count)


def run(**o) -> None:
    from dart_hub.answers import AnswerChecker
    from dart_hub.evaluation.benchmarks import parse_benchmark_list, parse_source_overrides
    from dart_hub.evaluation.run import Sampling, evaluate

    sampling = Sampling.make(o["samples"], o["temperature"], o["top_p"], o["pass_k"])
    names = parse_benchmark_list(o["benchmarks"])
    sources = parse_source_overrides(o["benchmark_sources"])
    unused = sorted(set(sources) - set(names))
    if unused:
        click.echo(f"warning: --benchmark-source given for {', '.join(unused)}, which is not evaluated", err=True)
    engine = engine_for(o, o["model"], o["model_revision"])
    show_progress = not o["quiet"] and not o["as_json"]
    try:
        with library_progress_bars(show_progress), AnswerChecker(timeout=o["answer_timeout"]) as checker, EvalProgressBar(show_progress) as bar:
            report = evaluate(
                engine,
                names,
                o["output"],
                limit=o["limit"],
                max_tokens=o["max_tokens"],
                checker=checker,
                sources=sources,
                chunk_size=o["chunk_size"],
                model_revision=o["model_revision"],
                progress=bar,
                sampling=sampling,
            )
    finally:
        engine.close()

    data = report.data
    if o["as_json"]:
        click.echo(json.dumps(report.to_dict(), sort_keys=True))
        return
    for name in names:
        for warning in data["benchmarks"][name].get("warnings", []):
            click.echo(f"warning: {warning}", err=True)
    click.echo(f"{data['model']} -> {report.output_dir}")
    for name, entry in data["benchmarks"].items():
        note = " (resumed)" if name in report.resumed else ""
        extra = f", {entry['truncated']} truncated" if entry.get("truncated") else ""
        if entry.get("mean_completion_tokens") is not None:
            extra += f", {entry['mean_completion_tokens']:g} tokens on average"
        if entry.get("pass_at_k"):
            shown = "  ".join(f"pass@{k} {100 * v:5.1f}" for k, v in entry["pass_at_k"].items())
            count = f"{entry['correct']}/{entry['total'] * entry['samples']} samples correct"
            click.echo(f"  {entry.get('title', name):<16}{shown}  ({count}{extra}){note}")
            continue
        click.echo(
            f"  {entry.get('title', name):<16}{100 * entry['accuracy']:6.1f}  "
            f"({entry['correct']}/{entry['total']}{extra}){note}"
        )
    if data.get("average") is not None:
        click.echo(f"  {'Average':<16}{100 * data['average']:6.1f}  over {len(data['average_over'])} benchmarks")
