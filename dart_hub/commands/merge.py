"""`dart-hub merge`: combine `adapt --shard I/N` outputs into one dataset folder."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command()
@click.argument("shards_dir", type=click.Path(path_type=Path))
@click.option("--output", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for the merged, Hub-ready dataset.")
@click.option("--allow-missing", is_flag=True, help="Merge even when some shards are missing (they are listed in the summary).")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def command(shards_dir: Path, output: Path, allow_missing: bool, as_json: bool) -> None:
    """Combine the shard outputs of `dart-hub adapt --shard I/N --output SHARDS_DIR` into one
    dataset folder, ready for `dart-hub push`.

    \b
    Refuses shards made with different students, data, settings or seeds; reports missing
    shards (an error unless --allow-missing) and examples found in more than one shard (the
    first copy is kept).

    \b
    Example:
      for i in $(seq 0 15); do dart-hub adapt ... --shard $i/16 --output out/shards; done
      dart-hub merge out/shards --output out/limo-3b
    """
    from dart_hub.api import merge

    result = merge(shards_dir, output, allow_missing=allow_missing)
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    summary = result.summary
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
    else:
        click.echo(f"merged {len(result.shards)} of {summary['shards']} shards into {output}")
        for key, value in summary.items():
            click.echo(f"  {key}: {value}")
