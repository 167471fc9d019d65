"""Names in an adapt output folder that both the folder writer and the card renderer use
(here, so that `publish.folder` and `publish.cards` do not import each other)."""

from __future__ import annotations

from typing import Any

DATA_FILE = "data/train-00000-of-00001.parquet"
STEPS_FILE = "steps/train-00000-of-00001.parquet"


def card_marker(config: dict[str, Any]) -> str:
    """The README line that ties a generated card to its folder's content ('' for old configs)."""
    value = config.get("content_id")
    return f"<!-- dart-hub content_id: {value} -->" if value else ""
