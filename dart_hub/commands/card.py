"""`dart-hub card`: (re)render the dataset card and its figure from an adapt output folder."""

from __future__ import annotations

from pathlib import Path

import click

HELP = """(Re)render the dataset card (README.md) and figures/adaptability.png of an adapt output folder.

\b
Everything comes from the folder itself: dart_config.json (source, student, engine, parameters,
prompts) and the steps parquet (statistics, adaptability curves). The same folder always gives
the same bytes, so the card can be checked in CI. Prints the card's path.

\b
Examples:
  dart-hub card out/limo-1.5b            rewrite README.md and the figure
  dart-hub card out/limo-1.5b --check    exit 1 when README.md or the figure is out of date

\b
Both refuse a folder whose parts come from different runs (an interrupted write): every part
carries the folder's content id (dart_config.json "content_id", the parquet schema metadata
"dart_hub_content_id", a comment at the end of README.md) and they must all agree.
"""


@click.command(name="card", help=HELP, context_settings={"max_content_width": 100})
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Write nothing; exit with status 1 when README.md or the figure on disk differs from what would be rendered.")
def command(folder: Path, check: bool) -> None:
    from dart_hub.api import card

    result = card(folder, check=check)
    if not check:
        click.echo(str(result.readme))
        return
    if result.stale:
        click.echo(f"out of date in {folder}: {', '.join(result.stale)}; run `dart-hub card {folder}` to re-render", err=True)
        click.get_current_context().exit(1)
    click.echo(f"{result.readme} is up to date")
