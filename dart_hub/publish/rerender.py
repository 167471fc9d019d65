"""(Re)render the dataset card and its figure of an adapt output folder from the folder itself
(`dart-hub card`), or tell which of them are out of date (`--check`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from dart_hub.errors import DartHubError


@dataclass
class CardResult:
    """The card's path; with `check`, the parts on disk that differ from what would be rendered
    (README.md, figures/adaptability.png; empty: up to date) and nothing was written."""

    readme: Path
    checked: bool
    stale: list[str] = field(default_factory=list)

    @property
    def up_to_date(self) -> bool:
        return not self.stale


def rerender_card(folder: Path, check: bool = False) -> CardResult:
    """Rewrite FOLDER/README.md and the figure (the same folder always gives the same bytes), or
    with `check` write nothing and compare. A folder mixing parts of two runs is refused."""
    from dart_hub.publish.figures import FIGURE_FILE, render_png
    from dart_hub.publish.folder import check_same_run, figure_title, render_folder_card
    from dart_hub.publish.layout import read_config, read_examples
    from dart_hub.store import write_atomic

    folder = Path(folder)
    if not folder.is_dir():
        raise DartHubError(f"{folder} is not a folder: pass the folder written by `dart-hub adapt --output`")
    config = read_config(folder)
    check_same_run(folder)  # a card rendered over parts of two runs would describe neither
    examples = read_examples(folder)
    readme = folder / "README.md"
    if not check:
        write_atomic(readme, render_folder_card(folder, examples=examples, config=config))
        return CardResult(readme=readme, checked=False)

    stale = []
    text = render_folder_card(folder, examples=examples, config=config, write_figure=False)
    if not readme.is_file() or readme.read_text(encoding="utf-8") != text:
        stale.append("README.md")
    png = render_png(examples, figure_title(config))
    figure = folder / FIGURE_FILE
    if (png is None and figure.exists()) or (png is not None and (not figure.is_file() or figure.read_bytes() != png)):
        stale.append(FIGURE_FILE)
    return CardResult(readme=readme, checked=True, stale=stale)
