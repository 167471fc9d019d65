"""Names in an adapt output folder that both the folder writer and the card renderer use, and
the readers of a written folder (here, so that `publish.folder`, `publish.cards` and
`dart_hub.report` do not import each other)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError
from dart_hub.records import AdaptedExample

CONFIG_FILE = "dart_config.json"
DATA_FILE = "data/train-00000-of-00001.parquet"
STEPS_FILE = "steps/train-00000-of-00001.parquet"


def card_marker(config: dict[str, Any]) -> str:
    """The README line that ties a generated card to its folder's content ('' for old configs)."""
    value = config.get("content_id")
    return f"<!-- dart-hub content_id: {value} -->" if value else ""


def read_config(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / CONFIG_FILE
    if not path.is_file():
        raise DartHubError(f"{folder} is not a dart-hub adapt output (no {CONFIG_FILE}); pass the folder given to `adapt --output`")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise DartHubError(f"{path} is not valid JSON ({error}); re-run `dart-hub adapt` to rewrite it") from None


def read_examples(folder: str | Path) -> list[AdaptedExample]:
    """The AdaptedExample records of a folder, rebuilt from its steps parquet (JSON fields
    decoded, derived columns dropped): the inverse of write_folder for the steps config."""
    import dataclasses

    import pyarrow.parquet as pq

    path = Path(folder) / STEPS_FILE
    if not path.is_file():
        raise DartHubError(f"{folder} has no {STEPS_FILE}; is it a dart-hub adapt output?")
    rows = pq.read_table(path).to_pylist()
    names = [f.name for f in dataclasses.fields(AdaptedExample)]
    examples = []
    for row in rows:
        if "question" not in row:  # the placeholder schema of a run with no example
            continue
        data = {name: row.get(name) for name in names}
        data["provenance"] = json.loads(row["provenance"]) if row.get("provenance") else {}
        data["extra"] = json.loads(row["extra"]) if row.get("extra") else {}
        data["method_data"] = json.loads(row["method_data"]) if row.get("method_data") else {}
        data["method"] = row.get("method") or "dart"
        for name in ("expert_steps", "scores", "successes", "candidates", "trajectories", "samples"):
            data[name] = list(data[name] or [])
        data["scores"] = [None if f is None else float(f) for f in data["scores"]]
        examples.append(AdaptedExample.from_dict(data))
    return examples
