"""`dart-hub demo --train`: No-Tuning / Static / First / Gap / Full on the toy world, the
skeptic's baselines (RFT, fixed cut, random cut) and the other methods' arms, with the project's
own train and evaluation code, over several training seeds.

Every arm uses the prompt the toy student was trained with (dart-hub's `solve` template as the
user turn, no system prompt), for training rows and for evaluation alike, so the table compares
what the student learned, not prompt formats. Every trained arm uses the same toy settings
(`TOY_TRAIN`: the toy student is tiny, so learning rate 1e-4 and 3 epochs instead of LIMO's
5e-6 x 15) and the same seeds; only the training rows differ:

- static: the expert traces unchanged (every expert problem);
- first / gap / full: the trajectories `dart-hub adapt --strategy first|gap|full` kept;
- rft / fixed-cut / random-cut (kind `baseline`, ours, not the paper's): DART's exploration
  from no expert step, from the first k steps (k = DART's median cut) or from a random cut
  (dart_hub.toy.baselines);
- dail (`dart-hub demo --method dail`): the rows `dart-hub adapt --method dail` kept, trained
  with DAIL's own contrastive objective (`train --objective dail`); dail-sft: the same rows
  with plain SFT;
- mapper: the rows `dart-hub adapt --method mapper` kept, SFT.

Every arm records its `kind` (paper, baseline, method) and its training `objective` (sft, dail;
none for No-Tuning). Beside greedy accuracy, every arm gets the probability its models put on
the deciding token (`x` after `Start: b`, every seed) and pass@1 at temperature 0.7 over 8
samples (the first seed's model, the first SAMPLED_PROBLEMS held-out problems; dart_hub.toy.sampled).

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

from dart_hub.toy.arms import LABELS

ARMS = ("no-tuning", "static", "first", "gap", "full", "rft", "fixed-cut", "random-cut", "dail", "dail-sft", "mapper")
ADAPTED_ARMS = ("first", "gap", "full", "rft", "fixed-cut", "random-cut", "dail", "dail-sft", "mapper")
BASELINES = ("rft", "fixed-cut", "random-cut")
# paper: the DART paper's arms; baseline: the skeptic's (ours); method: the other methods
KINDS = {arm: "paper" for arm in ("no-tuning", "static", "first", "gap", "full")} | dict.fromkeys(BASELINES, "baseline") | dict.fromkeys(("dail", "dail-sft", "mapper"), "method")
OBJECTIVES = {arm: "sft" for arm in ARMS} | {"no-tuning": "none", "dail": "dail"}
SAMPLED_PROBLEMS = 100
# `demo --train --tune`: every trained arm's grid (learning rate x epochs), scored on the
# validation split (VALIDATION_ITEMS problems, disjoint from the held-out ones), first seed.
TUNE_LEARNING_RATES = (3e-5, 1e-4, 3e-4)
TUNE_EPOCHS = (3.0, 8.0)
VALIDATION_ITEMS = 150
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
    folder; first / gap / full, dail, mapper from the trajectories their adapt run kept (dail
    with the privileged and negative contexts its objective needs, dail-sft from the same
    folder without them); a baseline from its jsonl (question, solution, answer)."""
    from dart_hub.publish.folder import read_examples

    work.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}
    static = work / "static.jsonl"
    with static.open("w") as handle:
        for example in read_examples(adapted["full"]):
            handle.write(json.dumps(_conversation(example.question, example.expert_solution, example.gold)) + "\n")
    files["static"] = static
    for arm in ADAPTED_ARMS:
        source = adapted.get("dail" if arm == "dail-sft" else arm)
        if source is None:
            continue
        path = work / f"{arm}.jsonl"
        with path.open("w") as handle:
            if Path(source).is_file():  # a baseline's rows
                for line in Path(source).read_text().splitlines():
                    if line.strip():
                        row = json.loads(line)
                        handle.write(json.dumps(_conversation(row["question"], row["solution"], row["answer"])) + "\n")
                files[arm] = path
                continue
            for example in read_examples(source):
                for trajectory in example.trajectories:
                    row = _conversation(example.question, trajectory, example.gold)
                    if arm == "dail":  # the contexts of DAIL's contrastive objective, same response
                        contexts = example.method_data["contexts"]
                        answer = {"role": "assistant", "content": trajectory}
                        row |= {"privileged_messages": [*contexts["privileged"], answer], "negative_messages": [*contexts["negative"], answer]}
                    handle.write(json.dumps(row) + "\n")
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


def validation_problems(count: int = 150, seed: int = 7):
    """The toy validation split: the first `count` problems of the domain's `expert` split
    (seed 7) that are not among the shipped expert problems. The held-out set is the `heldout`
    split, so the two never share a problem (hash split, dart_hub.toy.domain)."""
    from dart_hub.toy import expert_dataset_path
    from dart_hub.toy.datasets import read_jsonl
    from dart_hub.toy.domain import generate_problems

    shipped = {row["question"] for row in read_jsonl(expert_dataset_path())}
    problems = [p for p in generate_problems(count + 200, seed, "expert") if p.question not in shipped]
    return problems[:count]


def validation_items(count: int = 150):
    """`validation_problems` as graded items (id: the problem id), the solve prompt as held-out."""
    from dart_hub.evaluation.benchmarks import EvalItem
    from dart_hub.prompts import default_prompts

    prompts = default_prompts()
    return [EvalItem(benchmark="toy-validation", id=p.id, question=prompts.render("solve", p.question), gold=str(p.answer), choices=None)
            for p in validation_problems(count)]  # fmt: skip


def train_arm(data: Path, output: Path, seed: int, objective: str = "sft", settings: dict[str, Any] | None = None,
              student: str | None = None) -> tuple[str, dict[str, Any]]:  # fmt: skip
    """Fine-tune the toy student on `data` with `objective` (sft or dail); returns the model
    path and the training summary's objective record. A model this function already trained on
    the same rows with the same settings is reused (a rerun of `demo --train` retrains
    nothing), and anything else left in `output` (an interrupted run, other rows) is replaced.
    `student`: the toy student to fine-tune (default: the default world's)."""
    import hashlib
    import shutil

    from dart_hub.specs import TrainSpec
    from dart_hub.toy import toy_student_path
    from dart_hub.training.stage import run as train  # api.train's stage (api imports the demo)

    settings = settings or TOY_TRAIN
    student = student or str(toy_student_path())
    marker = output / "demo-train.json"
    key = {"data_sha256": hashlib.sha256(data.read_bytes()).hexdigest(), "seed": seed, "settings": settings, "objective": objective}
    if student != str(toy_student_path()):  # the default world's key stays as it was (its models are reused)
        key["student"] = student
    if marker.exists():
        done = json.loads(marker.read_text())
        if done.get("key") == key and Path(done["model_path"]).exists():
            return done["model_path"], done.get("objective") or {}
    if output.exists():
        shutil.rmtree(output)
    spec = TrainSpec(
        student=student, data=str(data), output=output, seed=seed, objective=objective,
        validation_size=0.0, select_best=False, quiet=True, **settings,
    )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):  # the trainer's own logs
        summary = train(**spec.options()) or {}
    record = summary.get("objective") or {"name": objective}
    marker.write_text(json.dumps({"key": key, "model_path": summary["model_path"], "objective": record}, indent=2) + "\n")
    return summary["model_path"], record


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


def summarize_arm(arm: str, grid: Sequence[Sequence[int]], rows: int | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    low, high = bootstrap_interval(grid)
    total = sum(sum(row) for row in grid)
    return {
        "arm": arm,
        "kind": KINDS.get(arm, "method"),
        "objective": OBJECTIVES.get(arm, "sft"),
        "mean": round(total / (len(grid) * len(grid[0])), 4),
        "ci_low": round(low, 4),
        "ci_high": round(high, 4),
        "seeds": len(grid),
        "problems": len(grid[0]),
        "per_seed": [round(sum(row) / len(row), 4) for row in grid],
        "train_rows": rows,
        **(extra or {}),
    }


def sampled_metrics(models: list[str], items, questions: list[str], checker, sampled: int,
                    folders: Sequence[Path | None] | None = None) -> dict[str, Any]:  # fmt: skip
    """The deciding token's probability (every model, every twisted held-out problem) and
    pass@1 at temperature 0.7 over 8 samples (the first model, the first `sampled` problems).
    `folders`: where each model's figures are kept for a rerun (None: not kept)."""
    import statistics

    from dart_hub.toy.sampled import SAMPLED_SAMPLES, SAMPLED_TEMPERATURE, deciding_token, pass_at_1

    folders = list(folders) if folders is not None else [None] * len(models)
    per_model = [statistics.fmean(_kept(folder, {"model": m, "deciding_token": questions}, lambda m=m: deciding_token(m, questions)))
                 for m, folder in zip(models, folders, strict=True)]  # fmt: skip
    out: dict[str, Any] = {"deciding_token": {"mean": round(statistics.fmean(per_model), 4), "per_seed": [round(p, 4) for p in per_model],
                                              "problems": sum(1 for _ in _twisted(questions))}}  # fmt: skip
    if sampled:
        key = {"model": models[0], "pass1_t07": [[item.benchmark, item.id] for item in items[:sampled]]}
        shares = _kept(folders[0], key, lambda: pass_at_1(models[0], items[:sampled], checker, max_tokens=EVAL_MAX_TOKENS, batch_size=EVAL_BATCH))
        out["pass1_t07"] = {"mean": round(statistics.fmean(shares), 4), "problems": len(shares), "samples": SAMPLED_SAMPLES,
                            "temperature": SAMPLED_TEMPERATURE, "model": "first seed"}  # fmt: skip
    return out


def rows_key(path: Path, arm: str) -> tuple[str, str]:
    """What decides an arm's models besides the seed and the settings: its training rows'
    bytes and its objective. Arms with the same key (DART's First, Gap and Full when every cut
    falls at the same step) train the same models, so they are trained and graded once."""
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest(), OBJECTIVES.get(arm, "sft")


def _kept(folder: Path | None, key: dict[str, Any], compute: Callable[[], Any]) -> Any:
    """`compute()`, kept in `folder/demo-graded.json` under `key` (one entry per graded set or
    metric), so a rerun of `demo --train` / `--tune` over the same work dir grades nothing
    again. A model retrained by train_arm wipes its folder, and its grades with it."""
    if folder is None:
        return compute()
    cache = folder / "demo-graded.json"
    name = json.dumps(key)  # the keys in the order they are built (the grades of earlier runs stay valid)
    done = json.loads(cache.read_text()) if cache.exists() else {}
    if name in done:
        return done[name]
    value = compute()
    if folder.exists():
        cache.write_text(json.dumps({**done, name: value}) + "\n")
    return value


def _graded(model: str, items, checker, folder: Path | None) -> list[int]:
    """`correctness`, kept in `folder` (the model's training folder)."""
    key = {"model": model, "items": [[item.benchmark, item.id] for item in items]}
    return _kept(folder, key, lambda: correctness(model, items, checker))


def tune_arms(arms, files, counts, work, items, checker, seeds, base_seed, fixed_grids, log, student: str | None = None, *,
              fixed_extras: dict[str, dict[str, Any]] | None = None, questions: Sequence[str] = (), sampled: int = 0) -> dict[str, Any]:  # fmt: skip
    """Every arm's grid on the validation split (first seed), its best setting (ties: the
    earlier in the grid), and the held-out table with each arm's own best for every seed (the
    fixed-setting models are reused where the best is the toy setting; an arm whose rows and
    objective equal an earlier arm's reuses that arm's grid and table, `same_rows_as`). With
    `questions` every tuned arm also gets the sampled metrics (`sampled_metrics`) of its best
    setting's models, as the fixed-setting table has them."""
    validation = validation_items(VALIDATION_ITEMS)
    grid = [{**TOY_TRAIN, "learning_rate": lr, "epochs": epochs} for lr in TUNE_LEARNING_RATES for epochs in TUNE_EPOCHS]
    chosen: dict[str, Any] = {}
    table = []
    done_by_rows: dict[tuple[str, str], str] = {}
    for arm in arms:
        twin = done_by_rows.setdefault(rows_key(files[arm], arm), arm)
        if twin != arm:
            chosen[arm] = {**chosen[twin], "same_rows_as": twin}
            table.append({**next(t for t in table if t["arm"] == twin), "arm": arm, "kind": KINDS.get(arm, "method"), "same_rows_as": twin})
            log(f"tuned {arm}: the same rows as {twin}, its grid and models reused")
            continue
        scores = []
        for setting in grid:
            name = f"{arm}-lr{setting['learning_rate']:g}-ep{setting['epochs']:g}-seed{base_seed}"
            model, _ = train_arm(files[arm], work / "tune" / name, base_seed, OBJECTIVES[arm], setting, student)
            marks = _graded(model, validation, checker, work / "tune" / name)
            scores.append(round(sum(marks) / len(marks), 4))
            log(f"tune {name}: validation {scores[-1]:.3f}")
        best = grid[max(range(len(grid)), key=lambda i: (scores[i], -i))]
        chosen[arm] = {"grid": [{"learning_rate": g["learning_rate"], "epochs": g["epochs"], "validation": v} for g, v in zip(grid, scores, strict=True)],
                       "best": {"learning_rate": best["learning_rate"], "epochs": best["epochs"]}}  # fmt: skip
        extra: dict[str, Any] = {"settings": chosen[arm]["best"]}
        if best == TOY_TRAIN:
            heldout = fixed_grids[arm]
            extra |= {k: v for k, v in (fixed_extras or {}).get(arm, {}).items() if k in ("deciding_token", "pass1_t07")}
        else:
            heldout, models, folders = [], [], []
            for index in range(seeds):
                seed = base_seed + index
                name = f"{arm}-lr{best['learning_rate']:g}-ep{best['epochs']:g}-seed{seed}"
                model, _ = train_arm(files[arm], work / "tune" / name, seed, OBJECTIVES[arm], best, student)
                heldout.append(_graded(model, items, checker, work / "tune" / name))
                models.append(model)
                folders.append(work / "tune" / name)
            if questions:
                extra |= sampled_metrics(models, items, list(questions), checker, sampled, folders)
        table.append(summarize_arm(arm, heldout, counts.get(arm), extra))
        log(f"tuned {arm}: best {chosen[arm]['best']}, held-out {table[-1]['mean']:.3f}")
    return {"validation_problems": VALIDATION_ITEMS, "grid": [{"learning_rate": g["learning_rate"], "epochs": g["epochs"]} for g in grid],
            "seed": base_seed, "arms": chosen, "heldout": table}  # fmt: skip


def _twisted(questions: list[str]):
    from dart_hub.toy.domain import parse_question

    return (q for q in questions if parse_question(q).twisted)


def compare_training(
    adapted: dict[str, Path],
    work: Path,
    *,
    seeds: int = SEEDS,
    heldout: int = HELDOUT_ITEMS,
    base_seed: int = 0,
    sampled: int = SAMPLED_PROBLEMS,
    tune: bool = False,
    log: Callable[[str], None] = lambda _message: None,
    student: str | None = None,
) -> dict[str, Any]:
    """Train every arm `seeds` times and grade each model on `heldout` toy problems (greedy),
    with the sampled metrics beside (`sampled` problems for pass@1; 0 leaves pass@1 out).
    `student`: the toy student every arm starts from (default: the default world's)."""
    from dart_hub.answers import AnswerChecker
    from dart_hub.toy import heldout_dataset_path, toy_student_path
    from dart_hub.toy.datasets import read_jsonl

    started = time.monotonic()
    files = write_training_files(adapted, work)
    counts = {arm: sum(1 for line in path.read_text().splitlines() if line.strip()) for arm, path in files.items()}
    items = heldout_items(heldout)
    questions = [r["question"] for r in read_jsonl(heldout_dataset_path())[:heldout]]
    sampled = min(sampled, heldout)
    grids: dict[str, list[list[int]]] = {}
    extras: dict[str, dict[str, Any]] = {}
    skipped: list[dict[str, Any]] = []  # arms with no training rows: in the table, not trained
    trained_by_rows: dict[tuple[str, str], str] = {}
    with AnswerChecker() as checker:
        student = student or str(toy_student_path())
        grids["no-tuning"] = [correctness(student, items, checker)]  # greedy: no seed to vary
        extras["no-tuning"] = sampled_metrics([student], items, questions, checker, sampled)
        log(f"no-tuning: {sum(grids['no-tuning'][0]) / len(items):.3f} {extras['no-tuning']}")
        for arm in ARMS[1:]:
            if arm not in files:
                continue
            if counts[arm] == 0:
                log(f"{arm}: adapt kept no example; arm skipped")
                skipped.append({"arm": arm, "kind": KINDS[arm], "objective": OBJECTIVES[arm], "train_rows": 0, "reason": "adapt kept no example"})
                continue
            twin = trained_by_rows.setdefault(rows_key(files[arm], arm), arm)
            if twin != arm:  # the same rows and objective as an earlier arm: the same models
                grids[arm], extras[arm] = grids[twin], {**extras[twin], "same_rows_as": twin}
                log(f"{arm}: the same rows as {twin}, its models and grades reused")
                continue
            grids[arm], models, objective = [], [], {}
            for index in range(seeds):
                seed = base_seed + index
                model, objective = train_arm(files[arm], work / f"{arm}-seed{seed}", seed, OBJECTIVES[arm], student=student)
                models.append(model)
                grids[arm].append(_graded(model, items, checker, work / f"{arm}-seed{seed}"))
                log(f"{arm} seed {seed}: {sum(grids[arm][-1]) / len(items):.3f} ({time.monotonic() - started:.0f} s)")
            folders = [work / f"{arm}-seed{base_seed + index}" for index in range(seeds)]
            extras[arm] = {"training_objective": objective, **sampled_metrics(models, items, questions, checker, sampled, folders)}
            log(f"{arm}: {extras[arm]}")
        tuned = (tune_arms([a for a in grids if a != "no-tuning"], files, counts, work, items, checker, seeds, base_seed, grids, log, student,
                           fixed_extras=extras, questions=questions, sampled=sampled) if tune else None)  # fmt: skip
    arms = [summarize_arm(arm, grid, counts.get(arm), extras.get(arm)) for arm, grid in grids.items()]
    return {
        "arms": arms,
        **({"tuned": tuned} if tuned is not None else {}),
        "skipped_arms": skipped,
        "settings": TOY_TRAIN | {"eval_max_tokens": EVAL_MAX_TOKENS, "prompt": "solve", "decoding": "greedy", "sampled_problems": sampled},
        "student": student,
        "seconds": round(time.monotonic() - started, 1),
    }


def table_lines(results: dict[str, Any]) -> list[str]:
    arms = results["arms"]
    base = next((a["mean"] for a in arms if a["arm"] == "no-tuning"), None)
    first = arms[0]
    lines = [
        f"held-out toy problems: {first['problems']}, greedy, same prompt for every arm; "
        f"trained arms: {max(a['seeds'] for a in arms)} seeds; 95% bootstrap interval over problems and seeds",
        "kind: paper = the DART paper's arms, baseline = the skeptic's (ours), method = other methods; "
        "P(x): probability of working the product out after `Start: b`; pass@1: temperature 0.7, 8 samples",
        f"  {'arm':<22} {'kind':<8} {'obj':<5} {'rows':>5} {'accuracy':>9}   {'95% interval':<15} {'vs No-Tuning':>12} {'P(x)':>6} {'pass@1':>7}",
    ]
    for arm in arms:
        delta = "" if base is None or arm["arm"] == "no-tuning" else f"{(arm['mean'] - base) * 100:+.1f}"
        rows = "" if arm["train_rows"] is None else str(arm["train_rows"])
        interval = f"{arm['ci_low'] * 100:.1f} - {arm['ci_high'] * 100:.1f}"
        decide = f"{arm['deciding_token']['mean']:.2f}" if arm.get("deciding_token") else ""
        sampled = f"{arm['pass1_t07']['mean'] * 100:.1f}%" if arm.get("pass1_t07") else ""
        lines.append(f"  {LABELS[arm['arm']]:<22} {arm.get('kind', ''):<8} {arm.get('objective', ''):<5} {rows:>5} "
                     f"{arm['mean'] * 100:8.1f}%   {interval:<15} {delta:>12} {decide:>6} {sampled:>7}")  # fmt: skip
    for arm in results.get("skipped_arms", []):
        lines.append(f"  {LABELS[arm['arm']]:<22} {arm.get('kind', ''):<8} {arm.get('objective', ''):<5} {arm['train_rows']:>5}         -   not trained: {arm['reason']}")
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
    figure, axes = plt.subplots(figsize=(8.0, 4.2), dpi=120)
    palette = {"no-tuning": "#9e9e9e", "static": "#d98c5f", "dail": "#59a14f", "dail-sft": "#8cd17d", "mapper": "#b07aa1"}
    # DART's arms blue, the skeptic's baselines (ours, not the paper's) hatched grey-green
    colors = [palette.get(a["arm"], "#a0b89a" if a["arm"] in BASELINES else "#4c78a8") for a in arms]
    axes.bar([LABELS[a["arm"]] for a in arms], means, yerr=errors, capsize=4, color=colors)
    axes.set_ylabel("held-out accuracy (%)")
    axes.set_ylim(0, 100)
    axes.set_title(f"toy world: {arms[0]['problems']} held-out problems, 95% intervals", fontsize=10)
    axes.tick_params(axis="x", labelsize=7, labelrotation=30)
    for bar, arm in zip(axes.patches, arms, strict=False):
        if arm["arm"] in BASELINES:
            bar.set_hatch("//")
    figure.tight_layout()
    figure.savefig(figure_path)
    plt.close(figure)
    return json_path, figure_path
