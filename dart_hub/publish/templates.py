"""The card templates (dataset card, model card) from the top-level `cards/` folder.

A wheel carries them inside the package (`dart_hub/cards/`, copied there by setup.py's
build_py); a source checkout, an editable install or PYTHONPATH reads `cards/` beside
`dart_hub/`. Either way the templates are edited in one place: `cards/`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from dart_hub.errors import DartHubError

SOURCE_DIR = Path(__file__).resolve().parents[2] / "cards"


def read_template(name: str) -> str:
    """The text of card template `name` (e.g. "dataset_card.md.j2")."""
    packaged = resources.files("dart_hub").joinpath("cards", name)
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    source = SOURCE_DIR / name
    if source.is_file():
        return source.read_text(encoding="utf-8")
    raise DartHubError(f"card template {name} not found in the installed package nor in {SOURCE_DIR}; reinstall dart-hub")
