"""`dart-hub demo` as one call: DART end to end on the bundled toy world (offline, CPU,
minutes), and with `train` the arms fine-tuned and graded (dart_hub.toy.compare).

`DemoSpec` is the demo's spec (one field per option of `dart-hub demo`, as dart_hub.specs'
classes); it lives here because its defaults are the toy comparison's (toy/compare.py)."""

from __future__ import annotations

import statistics
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from dart_hub.errors import DartHubError
from dart_hub.specs import Spec, option
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
# the rules docs/toy-world.md's figures were measured with (before --rules existed):
# dart-hub's robust rules without confirmation, not Algorithm 1 as written
DEMO_RULES = "robust"
DEMO_CONFIRM = 0


@dataclass(kw_only=True)
class DemoSpec(Spec):
    """`dart-hub demo`: field = option (`with_train` is `--train`, `methods` the repeatable
    `--method`); see `dart-hub demo --help` for each."""

    output: Path = option(Path("dart-demo"), "--output", click.Path(file_okay=False, dir_okay=True, path_type=Path))
    work_dir: Path | None = option(None, "--work-dir", click.Path(file_okay=False, dir_okay=True, path_type=Path))
    limit: int | None = option(None, "--limit", click.IntRange(min=1))
    engine: str = option("transformers", "--engine", click.Choice(["transformers", "vllm"]))
    n_sim: int = option(4, "--n-sim", click.IntRange(min=1))
    probe: str = option("scan", "--probe", click.Choice(["scan", "adaptive"]))
    methods: tuple[str, ...] = option((), "--method", click.Choice(EXTRA_METHODS))
    mapper: Path | None = option(None, "--mapper", click.Path(exists=True, file_okay=False, dir_okay=True, path_type=Path))
    world: str = option("default", "--world", click.Choice(sorted(WORLDS)))
    seed: int = option(0, "--seed", click.INT)
    with_train: bool = option(False, "--train")
    seeds: int = option(SEEDS, "--seeds", click.IntRange(min=1))
    heldout: int = option(HELDOUT_ITEMS, "--heldout", click.IntRange(min=1))
    sampled_problems: int = option(SAMPLED_PROBLEMS, "--sampled-problems", click.IntRange(min=0))
    tune: bool = option(False, "--tune")
    quiet: bool = option(False, "--quiet")


@dataclass
class DemoResult:
    """What the demo did: `data` is what `dart-hub demo --json` prints (the adapt summaries,
    the baselines, the comparison table with `train`), `text` the report it prints otherwise."""

    data: dict[str, Any]
    text: str

    @property
    def output(self) -> Path:
        return Path(self.data["output"])


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


def adapt_toy(strategy: str, output: Path, work_root: Path | None, o: dict, method: str = "dart") -> dict:
    """`dart-hub adapt` on the toy expert set for the toy student (the adapt stage the command
    runs, so the demo runs exactly what users run). DART's strategies share one probe cache,
    so the simulation rollouts are generated once and gap / first reuse them. `method` dail or
    mapper runs that method instead, with the toy student's own rewrite wording as its prompt."""
    from dart_hub.adaptation.stage import run
    from dart_hub.specs import AdaptSpec
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
    return run(**AdaptSpec(**options).options())


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


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run_demo(spec: DemoSpec, log: Callable[[str], None] | None = None) -> DemoResult:
    """Adapt the toy expert set for the toy student (and the other methods of `spec.methods`);
    with `spec.with_train` also the gap / first strategies and the baselines, each set trained
    on and graded on held-out problems. `log`: the training's progress lines [default: stderr,
    none with `spec.quiet`]."""
    from dart_hub.publish.layout import read_examples
    from dart_hub.toy import toy_student_path

    o = spec.options()
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
        if log is None:
            log = (lambda _m: None) if o["quiet"] else _stderr
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
    return DemoResult(data=result, text="\n".join(lines))
