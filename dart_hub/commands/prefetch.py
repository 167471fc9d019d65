"""`dart-hub prefetch`: download what recipes need into the Hugging Face cache once (the logic,
and why: dart_hub/prefetch.py)."""

from __future__ import annotations

import click


@click.command()
@click.argument("recipe_path", nargs=-1, required=True, metavar="RECIPE...")
@click.option("--set", "overrides", multiple=True, metavar="SECTION.KEY=VALUE", help="Override a recipe value, as `dart-hub run --set`.")
@click.option("--eval/--no-eval", "with_eval", default=True, help="Also fetch the eval stage's benchmarks. [default: yes]")
@click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
def command(recipe_path: tuple[str, ...], overrides: tuple[str, ...], with_eval: bool, quiet: bool) -> None:
    """Download the student model, the source dataset and the benchmarks of RECIPE(s) into the
    Hugging Face cache, once, e.g. on a login node before `sbatch --array=...`.

    \b
    Examples:
      dart-hub prefetch recipes/qwen2.5-3b-instruct/limo.yaml
      dart-hub prefetch recipes/qwen2.5-3b-instruct/ --no-eval
    """
    from dart_hub.api import prefetch

    def show(item) -> None:
        click.echo(f"{item.recipe.name}: {item.kind} {item.name}: {item.where}")

    prefetch(recipe_path, overrides=overrides, with_eval=with_eval, on_fetch=None if quiet else show)
