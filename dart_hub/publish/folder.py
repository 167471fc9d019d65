"""Write an adapted run as a Hub-ready dataset folder that `load_dataset(DIR)` reads as the Hub would.

    DIR/README.md                              card (YAML `configs` tell datasets what is what)
    DIR/data/train-00000-of-00001.parquet      default config: one row per adapted trajectory
    DIR/steps/train-00000-of-00001.parquet     `steps` config: every example, scores, reasons
    DIR/figures/adaptability.png               the card's figure (when some example was probed)
    DIR/dart_config.json                       the run's full configuration

`read_examples(DIR)` rebuilds the AdaptedExample records from the steps parquet (used by
`merge` and by `dart-hub card`, which re-renders README.md and the figure from the folder).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from dart_hub.errors import DartHubError
from dart_hub.records import AdaptedExample
from dart_hub.store import write_atomic

DATA_FILE = "data/train-00000-of-00001.parquet"
STEPS_FILE = "steps/train-00000-of-00001.parquet"
CONFIG_FILE = "dart_config.json"
RESERVED = {
    "id", "messages", "privileged_messages", "negative_messages", "expert_solution", "strategy",
    "keep_steps", "num_expert_steps", "trajectory_index",
}  # fmt: skip


def messages_for(question: str, solution: str, system: str) -> list[dict[str, str]]:
    """SFT-ready chat: optional system prompt, the question, the adapted solution."""
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, {"role": "user", "content": question}, {"role": "assistant", "content": solution}]


def train_rows(examples: Sequence[AdaptedExample], columns: dict[str, str | None], system: str) -> list[dict[str, Any]]:
    """One row per kept trajectory, with the source's own column names (a drop-in replacement:
    the solution column holds the adapted solution) plus `messages` for TRL."""
    rows = []
    for example in examples:
        for index, trajectory in enumerate(example.trajectories):
            row: dict[str, Any] = {"id": example.id}
            row.update({k: v for k, v in example.extra.items() if k not in RESERVED})
            row[columns["question"] or "question"] = example.question
            row[columns["solution"] or "solution"] = trajectory
            row[columns.get("answer") or "answer"] = example.gold
            row["messages"] = messages_for(example.question, trajectory, system)
            row["expert_solution"] = example.expert_solution
            row["strategy"] = example.strategy
            row["keep_steps"] = example.keep_steps
            row["num_expert_steps"] = len(example.expert_steps)
            row["trajectory_index"] = index
            # method-specific contexts (DAIL's privileged / negative prompts) with the same answer
            for name, context in (example.method_data.get("contexts") or {}).items():
                row[f"{name}_messages"] = [*context, {"role": "assistant", "content": trajectory}]
            rows.append(row)
    return rows


def steps_rows(examples: Sequence[AdaptedExample]) -> list[dict[str, Any]]:
    rows = []
    for example in examples:
        row = example.to_dict()
        row["num_steps"] = len(example.expert_steps)
        row["provenance"] = json.dumps(row["provenance"], sort_keys=True)
        row["extra"] = json.dumps(row["extra"], sort_keys=True, ensure_ascii=False, default=str)
        row["method_data"] = json.dumps(row["method_data"], sort_keys=True, ensure_ascii=False, default=str)
        rows.append(row)
    return rows


_TRAIN_FALLBACK = datasets.Features(
    {
        "id": datasets.Value("string"),
        "messages": [{"role": datasets.Value("string"), "content": datasets.Value("string")}],
    }
)


def _write_parquet(rows: list[dict[str, Any]], path: Path, fallback: datasets.Features | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if rows:
        dataset = datasets.Dataset.from_list(rows)
    else:
        dataset = datasets.Dataset.from_dict({k: [] for k in fallback or {}}, features=fallback)
    tmp = path.with_name(f".{path.name}.tmp")
    dataset.to_parquet(str(tmp))
    tmp.replace(path)


def configs_yaml(has_train_rows: bool = True) -> str:
    """The card's `configs` metadata as YAML (see cards.configs_metadata)."""
    import yaml

    from dart_hub.publish.cards import configs_metadata

    return yaml.safe_dump({"configs": configs_metadata(has_train_rows)}, sort_keys=False)


def write_folder(
    out_dir: str | Path,
    examples: Sequence[AdaptedExample],
    run_config: dict[str, Any],
    columns: dict[str, str | None],
    system: str,
    card: str | None = None,
) -> Path:
    """Write the folder. `card` is the README text; None renders the full dataset card (and the
    figure) from `run_config` and `examples`.

    Library versions are recorded in dart_config.json (key "versions", unless run_config has
    one) so that re-rendering the card later, elsewhere, gives the same card."""
    from dart_hub.publish.cards import check_no_token, library_versions

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    config = {**run_config}
    config.setdefault("versions", library_versions())
    config_text = json.dumps(config, indent=2, sort_keys=True, default=str) + "\n"
    check_no_token(config_text, "the run configuration (dart_config.json)")
    _write_parquet(train_rows(examples, columns, system), out / DATA_FILE, _TRAIN_FALLBACK)
    _write_parquet(steps_rows(examples), out / STEPS_FILE, _TRAIN_FALLBACK)
    write_atomic(out / CONFIG_FILE, config_text)
    if card is None:
        card = render_folder_card(out, examples=examples, config=json.loads(config_text))
    else:
        check_no_token(card)
    write_atomic(out / "README.md", card)
    return out


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


def figure_title(config: dict[str, Any]) -> str:
    from dart_hub.publish.cards import model_label, source_name

    return f"{source_name(config.get('source') or {})} / {model_label(config.get('student'))}"


def render_folder_card(
    folder: str | Path,
    *,
    examples: Sequence[AdaptedExample] | None = None,
    config: dict[str, Any] | None = None,
    write_figure: bool = True,
) -> str:
    """Render the card of a folder (and, by default, (re)write its figure); return the text.
    Examples and config are read from the folder when not given."""
    from dart_hub.publish.cards import render_card
    from dart_hub.publish.figures import FIGURE_FILE, has_figure
    from dart_hub.publish.figures import write_figure as save_figure

    folder = Path(folder)
    config = read_config(folder) if config is None else config
    examples = read_examples(folder) if examples is None else examples
    title = figure_title(config)
    if write_figure:
        figure = save_figure(folder, examples, title)
    else:
        figure = FIGURE_FILE if has_figure(examples) else None
    return render_card(config, examples, figure, dataset_infos(folder))


def dataset_infos(folder: str | Path):
    """datasets' DatasetInfosDict of the folder's configs (features, rows, sizes), for the card's
    `dataset_info` metadata; the default config is left out when it has no row."""
    import pyarrow.parquet as pq
    from datasets.info import DatasetInfo, DatasetInfosDict
    from datasets.splits import SplitDict, SplitInfo

    infos = {}
    for name, relative in (("default", DATA_FILE), ("steps", STEPS_FILE)):
        path = Path(folder) / relative
        if not path.is_file():
            continue
        table = pq.read_table(path)
        if name == "default" and table.num_rows == 0:
            continue
        splits = SplitDict()
        splits.add(SplitInfo(name="train", num_bytes=table.nbytes, num_examples=table.num_rows))
        infos[name] = DatasetInfo(
            features=datasets.Features.from_arrow_schema(table.schema),
            splits=splits,
            download_size=path.stat().st_size,
            dataset_size=table.nbytes,
        )
    return DatasetInfosDict(infos)
