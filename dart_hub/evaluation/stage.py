"""The eval stage as one call: a model on the benchmarks, results.json in the output folder."""

from __future__ import annotations

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


def run(**o):
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
    show_progress = not o["quiet"] and not o.get("as_json")
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

    return report
