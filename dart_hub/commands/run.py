"""`dart-hub run RECIPE...`: the stages of each recipe in order, skipping finished ones."""

from __future__ import annotations

import click

from dart_hub.recipe_runner import (  # noqa: F401  (tests and tools import these from here)
    RunState,
    eval_options,
    plan_runs,
    print_plan,
    run_recipe,
    showing_results,
    stage_key,
    train_options,
)
from dart_hub.recipes import STAGES


@click.command()
@click.argument("recipe_path", nargs=-1, required=True, metavar="RECIPE...")
@click.option("--only", "only", multiple=True, type=click.Choice(STAGES), help="Run only this stage (repeatable).")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a recipe value, e.g. --set adapt.n_sim=8 (repeatable; values parsed as YAML; applies to every recipe).")
@click.option("--shard", default=None, metavar="I/N", help="adapt stage only: process shard I of N into OUTPUT/shards (merge with `dart-hub merge`). One recipe only.")
@click.option("--force", is_flag=True, help="Rerun stages even when the run summary says they are done.")
@click.option("--dry-run", is_flag=True, help="Print the whole plan (stages, rollouts, tokens) and exit (no network, no model).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def command(recipe_path: tuple[str, ...], only: tuple[str, ...], overrides: tuple[str, ...], shard: str | None, force: bool, dry_run: bool, quiet: bool) -> None:
    """Run YAML recipes: adapt, then push / train / eval as each recipe says.

    \b
    RECIPE is a recipe file, a folder (every .yaml below it) or a glob pattern (quote it:
    'recipes/*/math-qwq-32b*.yaml'); several may be given. All recipes are validated before
    anything runs; they run one after the other (in the order given, folders and globs sorted),
    and the first failure stops (rerun: finished stages are skipped).

    \b
    Stages run in order (adapt, push, train, eval); a stage already done with the same
    settings is skipped, so the same command resumes a run. A summary is written to
    OUTPUT/run-summary.json and OUTPUT/run-summary.md; `dart-hub compare runs/` prints the
    finished runs as the paper's tables.

    \b
    Examples:
      dart-hub run recipes/qwen2.5-1.5b-instruct/math-qwq-32b.yaml
      dart-hub run recipes/qwen2.5-1.5b-instruct/math-qwq-32b.yaml --only adapt --set adapt.n_sim=8
      dart-hub run recipes/ --dry-run                     # the whole paper grid, offline
      dart-hub run 'recipes/*/math-qwq-32b-*.yaml'        # Tables 3 and 5 variants
    """
    plans = plan_runs(recipe_path, only, overrides, shard)
    with showing_results(show_result):
        _run_plans(plans, only, shard, force, dry_run, quiet)


def _run_plans(plans, only, shard, force, dry_run, quiet) -> None:
    if dry_run:
        print_plan(plans)
        return
    for recipe, stages in plans:
        if len(plans) > 1:
            click.echo(f"== {recipe.path}", err=True)
        if not stages:
            click.echo(f"nothing to run: the recipe has no {' / '.join(only)} stage", err=True)
            continue
        state = run_recipe(recipe, stages, quiet, shard, force)
        if not shard:  # a shard is not the whole adapt stage
            click.echo(f"summary: {state.path}")


def show_result(stage: str, result, options: dict) -> None:
    """A stage's result as `dart-hub adapt` / `train` / `eval` print it."""
    if stage == "adapt":
        from dart_hub.commands.adapt import _print

        title = "dry run: what this run needs" if options.get("dry_run") else f"adapted {options['dataset']} for {options['student']}"
        _print(result, False, title=title)
    elif stage == "train":
        from dart_hub.commands.train import _print

        _print(result, False, bool(options.get("quiet")))
    elif stage == "eval":
        from dart_hub.commands.eval import print_report
        from dart_hub.evaluation.benchmarks import parse_benchmark_list

        print_report(result, parse_benchmark_list(options["benchmarks"]), False)
