"""`dart-hub run RECIPE`: the stages of a recipe in order, skipping finished ones."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import click

from dart_hub.errors import DartHubError
from dart_hub.recipes import STAGES, Recipe, adapt_options, load_recipe
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
        self.data: dict[str, Any] = {"recipe": str(recipe.path), "name": recipe.name, "stages": {}}
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
    lines = [f"# dart-hub run: {data['name']}", "", f"Recipe: `{data['recipe']}`", "", "| stage | result |", "|---|---|"]
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
    from dart_hub.commands import adapt

    options = adapt_options(recipe, dataset_dir(recipe) if not shard else recipe.output / "shards", quiet=quiet)
    options["shard"] = shard
    summary = adapt.run(**options)
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


def plan_lines(recipe: Recipe, stages: list[str]) -> list[str]:
    """What the run will do, without touching the network or loading a model."""
    from dart_hub.commands import adapt

    state = RunState(recipe)
    lines = [f"recipe {recipe.path} -> {recipe.output}"]
    for stage in stages:
        key = stage_key(recipe, stage, dataset_fingerprint(recipe) if stage != "adapt" else None)
        status = "done, skipped" if state.done(stage, key) else "to run"
        lines.append(f"- {stage}: {status}")
        if stage == "adapt":
            source = recipe.section("source")
            lines.append(f"    student {recipe.section('student')['model']} on {source['dataset']} (engine {recipe.section('engine').get('name', 'auto')})")
            if Path(str(source["dataset"])).expanduser().exists():
                cost = adapt.run(**adapt_options(recipe, dataset_dir(recipe), dry_run=True, quiet=True) | {"as_json": False, "shard": None})
                lines.append(f"    rollouts <= {cost['rollouts_max']:,} (simulation {cost['simulation_rollouts']:,}), new tokens <= {cost['new_tokens_max']:,}")
            else:
                lines.append("    " + adapt_cost_formula(recipe))
        elif stage == "push":
            lines.append(f"    one commit to dataset repo {recipe.section('publish')['push_to_hub']}")
        else:
            lines.append(f"    settings: {json.dumps(recipe.section(stage), sort_keys=True, default=str)}")
    return lines


def adapt_cost_formula(recipe: Recipe) -> str:
    from dart_hub.sources import PRESETS

    params = adapt_options(recipe, dataset_dir(recipe))
    n_sim, n_explore = params["n_sim"], params["n_explore"]
    sim_tokens, explore_tokens = params["sim_max_tokens"], params["explore_max_tokens"]
    dataset = recipe.section("source")["dataset"]
    preset = PRESETS.get(recipe.section("source").get("preset") or dataset)
    rows = f"{preset.rows:,} problems" if preset and preset.rows else "the problems"
    return (
        f"for {rows}: rollouts = steps x {n_sim} (simulation, <= {sim_tokens} new tokens each)"
        f" + {n_explore} per cut example (exploration, <= {explore_tokens} each); steps are counted"
        " once the data is local (`dart-hub adapt --dry-run`), this plan does not download it"
    )


@click.command()
@click.argument("recipe_path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--only", "only", multiple=True, type=click.Choice(STAGES), help="Run only this stage (repeatable).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a recipe value, e.g. --set adapt.n_sim=8 (repeatable; values parsed as YAML).")
@click.option("--shard", default=None, metavar="I/N", help="adapt stage only: process shard I of N into OUTPUT/shards (merge with `dart-hub merge`).")
@click.option("--force", is_flag=True, help="Rerun stages even when the run summary says they are done.")
@click.option("--dry-run", is_flag=True, help="Print what would run, with rollout and token counts, and exit (no network, no model).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def command(recipe_path: Path, only: tuple[str, ...], overrides: tuple[str, ...], shard: str | None, force: bool, dry_run: bool, quiet: bool) -> None:
    """Run a YAML recipe: adapt, then push / train / eval as the recipe says.

    \b
    Stages run in order (adapt, push, train, eval); a stage already done with the same
    settings is skipped, so the same command resumes a run. A summary is written to
    OUTPUT/run-summary.json and OUTPUT/run-summary.md.

    \b
    Examples:
      dart-hub run recipes/qwen2.5-1.5b-instruct/limo.yaml
      dart-hub run recipes/qwen2.5-1.5b-instruct/limo.yaml --only adapt --set adapt.n_sim=8
      dart-hub run recipes/qwen2.5-1.5b-instruct/limo.yaml --dry-run
    """
    recipe = load_recipe(recipe_path, list(overrides))
    stages = [s for s in recipe.stages() if not only or s in only]
    for stage in only:
        if stage not in recipe.stages():
            raise DartHubError(f"--only {stage}: the recipe has no {stage} stage (add a `{'publish' if stage == 'push' else stage}` section)")
    if shard and stages != ["adapt"]:
        raise DartHubError("--shard runs one adapt shard: combine it with --only adapt")
    if dry_run:
        for line in plan_lines(recipe, stages):
            click.echo(line)
        return

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
                return  # a shard is not the whole adapt stage
        elif stage == "push":
            result = run_push_stage(recipe)
        else:
            result = run_stage(stage, recipe, quiet, state)
        state.record(stage, key, result)
    click.echo(f"summary: {state.path}")


def command_options(module: Any, recipe: Recipe, section: str) -> dict[str, Any]:
    """A command's keyword arguments: its CLI defaults, then the recipe's engine section (for
    the options the command shares with adapt), then the stage's own section."""
    from dart_hub.commands.options import cli_defaults

    options = cli_defaults(module.command)
    params = set(options)
    for key, value in recipe.section("engine").items():
        name = "engine" if key == "name" else key
        if name in params:
            options[name] = value
    options.update({k: v for k, v in recipe.section(section).items() if k in params})
    return options


def trained_model(recipe: Recipe, state: RunState) -> str:
    """The model the eval stage scores: the train stage's best checkpoint, else the student."""
    train = state.data["stages"].get("train") or {}
    return train.get("best_model") or recipe.section("student")["model"]


def run_stage(stage: str, recipe: Recipe, quiet: bool, state: RunState | None = None) -> dict[str, Any]:
    if stage == "eval":
        from dart_hub.commands import eval as eval_command

        options = command_options(eval_command, recipe, "eval")
        options.update(model=trained_model(recipe, state or RunState(recipe)), output=recipe.output / "eval", quiet=quiet, as_json=False)
        eval_command.run(**options)
        results = json.loads((recipe.output / "eval" / "results.json").read_text(encoding="utf-8"))
        return {"output": str(recipe.output / "eval"), "model": options["model"], "average": results.get("average")}
    if stage == "train":
        from dart_hub.commands import train as train_command

        section = recipe.section("train")
        options = command_options(train_command, recipe, "train")
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
            quiet=quiet,
            as_json=False,
        )
        summary = train_command.run(sft=section.get("sft"), **options) or {}
        return {"output": str(recipe.output / "train"), "best_model": summary.get("model_path")}
    raise DartHubError(f"unknown stage {stage}")
