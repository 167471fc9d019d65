"""Running recipes: the stages of each recipe in order, skipping finished ones, with a run
summary (OUTPUT/run-summary.json and .md); plans for `--dry-run`."""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from dart_hub.errors import DartHubError
from dart_hub.recipes import STAGES, Recipe, adapt_options, load_recipe, stage_options
from dart_hub.store import write_atomic

SUMMARY_JSON = "run-summary.json"


SUMMARY_MD = "run-summary.md"


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class RunState:
    """run-summary.json: what each stage did, with a key of the inputs it ran with."""

    def __init__(self, recipe: Recipe):
        self.recipe = recipe
        self.dir = recipe.output
        self.path = self.dir / SUMMARY_JSON
        # what `dart-hub compare` needs to place the run in the paper's grid
        self.data: dict[str, Any] = {
            "recipe": str(recipe.path),
            "name": recipe.name,
            "student": recipe.section("student")["model"],
            "dataset": recipe.section("source").get("dataset"),
            "paper": recipe.paper(),
            "stages": {},
        }
        if self.path.exists():
            stored = json.loads(self.path.read_text(encoding="utf-8"))
            self.data["stages"] = stored.get("stages", {})

    def done(self, stage: str, key: str) -> dict[str, Any] | None:
        entry = self.data["stages"].get(stage)
        return entry if entry and entry.get("status") == "done" and entry.get("key") == key else None

    def retire(self, stage: str, key: str) -> None:
        """A stage rerun with other settings: keep the previous output beside, not in the way
        (train and eval refuse to mix results of different settings in one folder)."""
        entry = self.data["stages"].get(stage) or {}
        previous = Path(entry.get("output", "")) if stage in ("train", "eval") else None
        if entry.get("key") not in (None, key) and previous and previous.exists():
            previous.rename(previous.with_name(f"{previous.name}.previous-{entry['key']}"))

    def record(self, stage: str, key: str, result: dict[str, Any]) -> None:
        self.data["stages"][stage] = {"status": "done", "key": key, **result}
        self.dir.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, json.dumps(self.data, indent=2, sort_keys=True, default=str) + "\n")
        write_atomic(self.dir / SUMMARY_MD, render_markdown(self.data))


def render_markdown(data: dict[str, Any]) -> str:
    lines = [f"# dart-hub run: {data['name']}", "", f"Recipe: `{data['recipe']}`", ""]
    paper = data.get("paper") or {}
    if paper:
        tables = ", ".join(map(str, paper.get("tables") or [])) or "none"
        lines += [f"Paper: {paper.get('student')} / {paper.get('dataset') or '-'} / {paper.get('arm')} (tables: {tables})", ""]
    lines += ["| stage | result |", "|---|---|"]
    for stage in STAGES:
        entry = data["stages"].get(stage)
        if not entry:
            continue
        if stage == "adapt":
            s = entry.get("summary", {})
            text = f"{s.get('kept')} kept / {s.get('problems')} problems, output `{entry.get('output')}`"
        elif stage == "push":
            text = f"[{entry.get('repo_id')}]({entry.get('commit_url')})"
        else:
            text = f"`{entry.get('output')}`"
            if entry.get("url"):
                text += f" [{entry['url']}]({entry['url']})"
        lines.append(f"| {stage} | {text} |")
    return "\n".join(lines) + "\n"


def stage_key(recipe: Recipe, stage: str, upstream: str | None = None) -> str:
    sections = {
        "adapt": ("source", "student", "engine", "adapt"),
        "push": ("publish",),
        "train": ("student", "train"),
        "eval": ("eval",),
    }[stage]
    return _digest({"sections": {s: recipe.section(s) for s in sections}, "upstream": upstream})


def dataset_dir(recipe: Recipe) -> Path:
    return recipe.output / "dataset"


def run_adapt_stage(recipe: Recipe, quiet: bool, shard: str | None) -> dict[str, Any]:
    options = adapt_options(recipe, dataset_dir(recipe) if not shard else recipe.output / "shards", quiet=quiet)
    options["shard"] = shard
    summary = _adapt(options)
    return {"output": str(options["output"]), "summary": summary}


def run_push_stage(recipe: Recipe) -> dict[str, Any]:
    from dart_hub.publish.hub import push_folder

    publish = recipe.section("publish")
    result = push_folder(
        dataset_dir(recipe),
        publish["push_to_hub"],
        private=bool(publish.get("private")),
        branch=publish.get("hub_branch"),
        create_pr=bool(publish.get("create_pr")),
        commit_message=publish.get("commit_message"),
    )
    return {"repo_id": result.repo_id, "commit_url": result.commit_url, "commit_oid": result.commit_oid, "pr_url": result.pr_url}


def dataset_fingerprint(recipe: Recipe) -> str | None:
    config = dataset_dir(recipe) / "dart_config.json"
    if not config.exists():
        return None
    return json.loads(config.read_text(encoding="utf-8")).get("fingerprint")


def plan_recipe(recipe: Recipe, stages: list[str]) -> tuple[list[str], dict[str, Any]]:
    """What the run will do, without touching the network or loading a model: the lines to
    print, and the generation it needs as upper bounds: {"generations", "new_tokens"} besides
    adapt's simulation, which is keyed (`simulation_key`) so that a grid counts it once per
    student x dataset; its size is known only when the data is local."""
    state = RunState(recipe)
    paper = recipe.paper()
    where = f"Table {', '.join(map(str, paper['tables']))}" if paper["tables"] else "not a paper cell"
    lines = [f"recipe {recipe.path} -> {recipe.output}", f"  {paper['student']} / {paper['dataset'] or '-'} / {paper['arm']} ({where})"]
    totals: dict[str, Any] = {"generations": 0, "new_tokens": 0}
    for stage in stages:
        key = stage_key(recipe, stage, dataset_fingerprint(recipe) if stage != "adapt" else None)
        status = "done, skipped" if state.done(stage, key) else "to run"
        lines.append(f"- {stage}: {status}")
        if stage == "adapt":
            detail, cost = adapt_plan(recipe)
        elif stage == "push":
            detail, cost = [f"one commit to dataset repo {recipe.section('publish')['push_to_hub']}"], {}
        elif stage == "train":
            detail, cost = train_plan(recipe)
        else:
            detail, cost = eval_plan(recipe)
        lines += ["    " + line for line in detail]
        if status == "to run":
            for name, value in cost.items():
                totals[name] = totals.get(name, 0) + value if isinstance(value, int) else value
    return lines, totals


def per_problem_plan(recipe: Recipe, params: dict[str, Any], head: str, samples: int, max_tokens: int, unit: str) -> tuple[list[str], dict[str, int]]:
    """Methods that make `samples` generations per problem and nothing else (DAIL, mapper):
    adapt's own dry run when the data is local, else the preset's row count."""
    from dart_hub.sources import PRESETS

    source = recipe.section("source")
    if Path(str(source["dataset"])).expanduser().exists():
        cost = _adapt(params | {"shard": None, "admission": False})  # offline: no tokenizer
        rows, rollouts, tokens = cost["problems"], cost["rollouts"], cost["new_tokens_max"]
    else:
        preset = PRESETS.get(str(source.get("preset") or source["dataset"]))
        rows = source.get("limit") or (preset.rows if preset else None)
        if not rows:
            return [head, f"{samples} {unit} per problem (<= {max_tokens:,} new tokens each)"], {}
        rollouts, tokens = rows * samples, rows * samples * max_tokens
    return [head, f"{rows:,} problems: rollouts {rollouts:,}, new tokens <= {tokens:,}"], {"generations": rollouts, "new_tokens": tokens}


def dail_plan(recipe: Recipe, params: dict[str, Any], source: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    """DAIL: DAIL_SAMPLES privileged samples per problem, nothing else."""
    head = f"student {recipe.section('student')['model']} on {source['dataset']} (method dail, {params['dail_samples']} samples per problem)"
    return per_problem_plan(recipe, params, head, params["dail_samples"], params["dail_max_tokens"], "rollouts")


def mapper_plan(recipe: Recipe, params: dict[str, Any], source: dict[str, Any]) -> tuple[list[str], dict[str, int]]:
    """mapper: MAPPER_SAMPLES rewrites per problem by the mapper model, nothing else."""
    samples, max_tokens = params["mapper_samples"], params["mapper_max_tokens"]
    mapper = params.get("mapper_model") or "the student (no RL)"
    head = f"student {recipe.section('student')['model']} on {source['dataset']} (method mapper, mapper {mapper}, {samples} rewrites per problem)"
    return per_problem_plan(recipe, params, head, samples, max_tokens, "rewrites")


def adapt_plan(recipe: Recipe) -> tuple[list[str], dict[str, int]]:
    """adapt's own dry run (`dart-hub adapt --dry-run`) when the data is local; else the bounds
    that do not need the data: exploration from the preset's row count, simulation per step."""
    from dart_hub.sources import PRESETS

    source = recipe.section("source")
    params = adapt_options(recipe, dataset_dir(recipe), dry_run=True, quiet=True)
    simulation = {"simulation_key": simulation_key(recipe, params)}
    head = f"student {recipe.section('student')['model']} on {source['dataset']} (engine {recipe.section('engine').get('name', 'auto')}, strategy {params['strategy']})"
    if params.get("method") == "dail":
        return dail_plan(recipe, params, source)
    if params.get("method") == "mapper":
        return mapper_plan(recipe, params, source)
    if params["strategy"] == "static":
        return [head, "nothing is generated: the expert traces are kept unchanged"], {}
    if Path(str(source["dataset"])).expanduser().exists():
        cost = _adapt(params | {"shard": None, "admission": False})  # offline: no tokenizer
        lines = [head, f"{cost['problems']:,} problems, {cost['steps']:,} steps: rollouts <= {cost['rollouts_max']:,} (simulation {cost['simulation_rollouts']:,}), new tokens <= {cost['new_tokens_max']:,}"]
        explore = cost["exploration_rollouts_max"]
        return lines, {"generations": explore, "new_tokens": cost["new_tokens_max"] - cost["simulation_rollouts"] * params["sim_max_tokens"],
                       **simulation, "simulation_rollouts": cost["simulation_rollouts"],
                       "simulation_tokens": cost["simulation_rollouts"] * params["sim_max_tokens"]}
    preset = PRESETS.get(str(source.get("preset") or source["dataset"]))
    rows = source.get("limit") or (preset.rows if preset else None)
    n_sim, sim_tokens = params["n_sim"], params["sim_max_tokens"]
    lines = [head, f"simulation: {n_sim} rollouts per expert step (<= {sim_tokens:,} new tokens each); steps are counted once the data is local (`dart-hub adapt --dry-run`), this plan does not download it"]
    cost: dict[str, Any] = dict(simulation)
    if params["strategy"] == "full":
        n_explore, explore_tokens = params["n_explore"], params["explore_max_tokens"]
        if rows:
            lines.append(f"exploration: <= {rows:,} problems x {n_explore} = {rows * n_explore:,} rollouts, <= {rows * n_explore * explore_tokens:,} new tokens")
            cost.update(generations=rows * n_explore, new_tokens=rows * n_explore * explore_tokens)
        else:
            lines.append(f"exploration: <= {n_explore} rollouts per problem (<= {explore_tokens:,} new tokens each)")
    return lines, cost


def simulation_key(recipe: Recipe, params: dict[str, Any]) -> str:
    """What decides adapt's simulation results (as `dart-hub adapt` keys its probe cache): recipes
    that differ only after probing (strategy, epsilon, peak, exploration, cleaning) share them,
    so the simulation of a student x dataset is generated once for Full, Gap, First and Raw."""
    import dataclasses

    from dart_hub.config import AdaptConfig

    fields = {f.name for f in dataclasses.fields(AdaptConfig)}
    config = AdaptConfig(**{k: v for k, v in params.items() if k in fields and v is not None})
    source = recipe.section("source")
    return _digest({
        "source": {k: source.get(k) for k in ("dataset", "preset", "split", "revision", "config", "limit", "question_column", "solution_column", "answer_column")},
        "student": recipe.section("student"), "engine": params["engine"], "dtype": params["dtype"],
        "prompts": str(params.get("prompts_file")), "probe_cache": str(params.get("probe_cache")),
        "simulation": config.simulation_settings(),
    })  # fmt: skip


def _train_rows(recipe: Recipe) -> int | None:
    from dart_hub.sources import PRESETS

    source = recipe.section("source")
    preset = PRESETS.get(str(source.get("preset") or source.get("dataset")))
    return source.get("limit") or (preset.rows if preset else None)


def train_plan(recipe: Recipe) -> tuple[list[str], dict[str, int]]:
    """The train stage's settings (what `dart-hub train` receives) and its validation cost:
    every epoch's checkpoint answers the validation problems."""
    from dart_hub.training.config import PAPER_DEFAULTS
    from dart_hub.training.validation import describe_validation, validation_plan

    options = train_options(recipe)
    shown = {k: options[k] for k in recipe.section("train") if k in options}  # what the recipe sets
    settings = json.dumps(shown, sort_keys=True, default=str)
    epochs = options.get("epochs") or (recipe.section("train").get("sft") or {}).get("num_train_epochs") or PAPER_DEFAULTS["num_train_epochs"]
    validation = validation_plan(options, _train_rows(recipe), eval_max_tokens(recipe))
    lines = [f"settings: {settings}", f"validation: {describe_validation(validation)}"]
    cost: dict[str, int] = {}
    if validation["problems"] is not None:
        answers = int(validation["problems"] * epochs)
        lines.append(f"checkpoint selection: {epochs:g} epochs x {validation['problems']:,} problems = {answers:,} answers, <= {answers * validation['max_tokens']:,} new tokens")
        cost = {"generations": answers, "new_tokens": answers * validation["max_tokens"]}
    return lines, cost


def eval_plan(recipe: Recipe) -> tuple[list[str], dict[str, int]]:
    from dart_hub.evaluation.benchmarks import BENCHMARKS, parse_benchmark_list

    options = eval_options(recipe)
    names = parse_benchmark_list(options["benchmarks"])
    limit = options.get("limit")
    items = sum(min(BENCHMARKS[n].rows, limit) if limit else BENCHMARKS[n].rows for n in names)
    max_tokens = options["max_tokens"]
    return (
        [f"benchmarks: {', '.join(names)}", f"{items:,} questions, greedy, <= {max_tokens:,} new tokens each: <= {items * max_tokens:,} new tokens"],
        {"generations": items, "new_tokens": items * max_tokens},
    )


def eval_max_tokens(recipe: Recipe) -> int:
    """The evaluation budget of the recipe (its eval section's, else `dart-hub eval`'s default)."""
    from dart_hub.evaluation.run import DEFAULT_MAX_TOKENS

    return int(recipe.section("eval").get("max_tokens") or DEFAULT_MAX_TOKENS)


def expand_recipe_paths(values: tuple[str, ...] | list[str]) -> list[Path]:
    """Files, folders (every .yaml/.yml below, sorted) and glob patterns -> recipe files."""
    found: list[Path] = []
    for value in values:
        path = Path(value).expanduser()
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
            if not matches:
                raise DartHubError(f"{value}: no .yaml recipe in this folder")
        elif glob.has_magic(value):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
            if not matches:
                raise DartHubError(f"{value}: no recipe file matches this pattern")
        else:
            matches = [path]
        found += [m for m in matches if m not in found]
    return found


def print_plan(plans: list[tuple[Recipe, list[str]]]) -> None:
    """Every recipe's plan, then (several recipes) the total, with adapt's simulation counted
    once per probe-cache key: the strategies of one student x dataset share it."""
    generations = new_tokens = 0
    simulations: dict[str, tuple[int, int] | None] = {}
    users: dict[str, int] = {}
    for recipe, stages in plans:
        lines, totals = plan_recipe(recipe, stages)
        for line in lines:
            click.echo(line)
        generations += totals["generations"]
        new_tokens += totals["new_tokens"]
        key = totals.get("simulation_key")
        if key:
            users[key] = users.get(key, 0) + 1
            size = (totals["simulation_rollouts"], totals["simulation_tokens"]) if "simulation_rollouts" in totals else None
            simulations[key] = size
    if len(plans) < 2:
        return
    known = [size for size in simulations.values() if size]
    generations += sum(r for r, _ in known)
    new_tokens += sum(t for _, t in known)
    click.echo(f"total: {len(plans)} recipes, {sum(len(s) for _, s in plans)} stages; generation <= {generations:,} sequences, <= {new_tokens:,} new tokens")
    if simulations:
        shared = sum(users.values()) - len(simulations)
        click.echo(
            f"  simulation: {len(simulations)} distinct simulation set(s) for {sum(users.values())} adapt stages"
            + (f" ({shared} reused from the probe cache: strategies of one student x dataset share it)" if shared else "")
        )
        unknown = len(simulations) - len(known)
        if unknown:
            click.echo(f"  not counted above: the simulation rollouts of {unknown} set(s) whose data is not local (steps x n_sim each)")


def run_recipe(recipe: Recipe, stages: list[str], quiet: bool, shard: str | None, force: bool) -> RunState:
    state = RunState(recipe)
    for stage in stages:
        upstream = dataset_fingerprint(recipe) if stage != "adapt" else None
        key = stage_key(recipe, stage, upstream)
        if shard is None and not force and state.done(stage, key):
            click.echo(f"{stage}: done, skipped", err=True)
            continue
        click.echo(f"{stage}: running", err=True)
        state.retire(stage, key)
        if stage == "adapt":
            result = run_adapt_stage(recipe, quiet, shard)
            if shard:
                return state  # a shard is not the whole adapt stage
        elif stage == "push":
            result = run_push_stage(recipe)
        else:
            result = run_stage(stage, recipe, quiet, state)
            if result is None:  # another machine of a multi-node training: the main one records
                return state
        state.record(stage, key, result)
    return state


def command_options(spec: Any, recipe: Recipe, section: str) -> dict[str, Any]:
    """A stage's spec fields: its CLI defaults, then what the recipe gives that stage
    (`dart_hub.recipes.stage_options`: its own section plus the keys shared with it)."""
    options = spec.defaults()
    options.update(stage_options(recipe, section, set(options)))
    return options


def train_options(recipe: Recipe) -> dict[str, Any]:
    """`dart-hub train`'s keyword arguments for the recipe's train stage."""
    from dart_hub.specs import TrainSpec

    section = recipe.section("train")
    options = command_options(TrainSpec, recipe, "train")
    static = bool(section.get("static"))
    source = recipe.section("source")
    options.update(
        student=recipe.section("student")["model"],
        student_revision=recipe.section("student").get("revision"),
        # train.data (e.g. the pushed dataset's Hub id) wins; else the adapt stage's output,
        # or the source itself for the Static baseline
        data=section.get("data") or (str(source["dataset"]) if static else str(dataset_dir(recipe))),
        preset=source.get("preset") if static else None,
        output=recipe.output / "train",
    )
    if options.get("validation_max_tokens") is None:
        options["validation_max_tokens"] = eval_max_tokens(recipe)  # the recipe's own evaluation budget
    return options


def eval_options(recipe: Recipe) -> dict[str, Any]:
    from dart_hub.specs import EvalSpec

    return command_options(EvalSpec, recipe, "eval")


def trained_model(recipe: Recipe, state: RunState) -> str:
    """The model the eval stage scores: the train stage's best checkpoint, else the student."""
    train = state.data["stages"].get("train") or {}
    return train.get("best_model") or recipe.section("student")["model"]


def run_stage(stage: str, recipe: Recipe, quiet: bool, state: RunState | None = None) -> dict[str, Any] | None:
    if stage == "eval":
        from dart_hub.evaluation import stage as eval_stage
        from dart_hub.specs import EvalSpec

        options = eval_options(recipe)
        options.update(model=trained_model(recipe, state or RunState(recipe)), output=recipe.output / "eval", quiet=quiet)
        _show("eval", eval_stage.run(**EvalSpec(**options).options()), options)
        results = json.loads((recipe.output / "eval" / "results.json").read_text(encoding="utf-8"))
        return {"output": str(recipe.output / "eval"), "model": options["model"], "average": results.get("average")}
    if stage == "train":
        from dart_hub.specs import TrainSpec
        from dart_hub.training import stage as train_stage

        options = train_options(recipe)
        options.update(quiet=quiet)
        summary = train_stage.run(sft=recipe.section("train").get("sft"), **TrainSpec(**options).options())
        if summary is None:  # not the main machine of a multi-node launch
            return None
        if summary:
            _show("train", summary, options)
        return {"output": str(recipe.output / "train"), "best_model": summary.get("model_path")}
    raise DartHubError(f"unknown stage {stage}")


def _adapt(options: dict[str, Any]) -> dict[str, Any]:
    """The adapt stage (as `dart_hub.api.adapt`) on the recipe's settings, checked by its spec."""
    from dart_hub.adaptation.stage import run
    from dart_hub.specs import AdaptSpec

    summary = run(**AdaptSpec(**options).options())
    _show("adapt", summary, options)
    return summary


_PRINTERS: list[Callable[[str, Any, dict[str, Any]], None]] = []


@contextlib.contextmanager
def showing_results(printer: Callable[[str, Any, dict[str, Any]], None]):
    """While a `dart-hub run` runs: `printer(stage, result, options)` shows each stage's result
    as its own command prints it (the library itself prints no results)."""
    _PRINTERS.append(printer)
    try:
        yield
    finally:
        _PRINTERS.remove(printer)


def _show(stage: str, result: Any, options: dict[str, Any]) -> None:
    for printer in _PRINTERS:
        printer(stage, result, options)


def plan_runs(recipe_paths, only: tuple[str, ...] = (), overrides: tuple[str, ...] = (), shard: str | None = None) -> list[tuple[Recipe, list[str]]]:
    """Every recipe (files, folders, glob patterns) validated, with the stages it will run;
    all are checked before anything runs."""
    recipes = [load_recipe(path, list(overrides)) for path in expand_recipe_paths(recipe_paths)]
    outputs: dict[Path, Path] = {}
    for recipe in recipes:
        other = outputs.setdefault(recipe.output.resolve(), recipe.path)
        if other != recipe.path:
            raise DartHubError(f"{recipe.path} and {other} write to the same output {recipe.output}: give one of them another `output:`")
    plans = []
    for recipe in recipes:
        stages = [s for s in recipe.stages() if not only or s in only]
        if len(recipes) == 1:
            for stage in only:
                if stage not in recipe.stages():
                    raise DartHubError(f"--only {stage}: the recipe has no {stage} stage (add a `{'publish' if stage == 'push' else 'source' if stage == 'adapt' else stage}` section)")
        plans.append((recipe, stages))
    if shard and (len(recipes) > 1 or plans[0][1] != ["adapt"]):
        raise DartHubError("--shard runs one adapt shard of one recipe: combine it with --only adapt")
    return plans
