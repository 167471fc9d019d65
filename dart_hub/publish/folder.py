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

import hashlib
import json
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import datasets

from dart_hub.errors import DartHubError
from dart_hub.publish.layout import CONFIG_FILE, DATA_FILE, STEPS_FILE, read_config, read_examples  # noqa: F401 (re-exported)
from dart_hub.records import AdaptedExample
from dart_hub.store import OUT_OF_SPACE, _fsync_dir, write_atomic

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


def _write_parquet(
    rows: list[dict[str, Any]], path: Path, fallback: datasets.Features | None = None, content_id: str | None = None
) -> None:
    """Rows -> parquet, through datasets (its features metadata included) and pyarrow, with the
    folder's content id in the schema metadata (see check_same_run)."""
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    if rows:
        dataset = datasets.Dataset.from_list(rows)
    else:
        dataset = datasets.Dataset.from_dict({k: [] for k in fallback or {}}, features=fallback)
    table = dataset.data.table
    if content_id:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), CONTENT_ID_KEY: content_id.encode()})
    pq.write_table(table, str(path))


def configs_yaml(has_train_rows: bool = True) -> str:
    """The card's `configs` metadata as YAML (see cards.configs_metadata)."""
    import yaml

    from dart_hub.publish.cards import configs_metadata

    return yaml.safe_dump({"configs": configs_metadata(has_train_rows)}, sort_keys=False)


def content_id(examples_rows: list[dict[str, Any]], config_text: str, columns: dict[str, str | None], system: str) -> str:
    """What identifies a folder's content: a hash of every example, the run configuration and
    the output layout. Identical runs get identical ids (and bytes); anything else differs."""
    digest = hashlib.sha256()
    for part in (examples_rows, config_text, columns, system):
        digest.update(json.dumps(part, sort_keys=True, ensure_ascii=False, default=str).encode())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def write_folder(
    out_dir: str | Path,
    examples: Sequence[AdaptedExample],
    run_config: dict[str, Any],
    columns: dict[str, str | None],
    system: str,
    card: str | None = None,
    with_report: bool = False,
) -> Path:
    """Write the folder as a whole. `card` is the README text; None renders the full dataset card
    (and the figure) from `run_config` and `examples`. with_report: the HTML report too
    (report/, `dart-hub report`), inside the same swap, so it always describes the folder; a
    rewrite without it removes an earlier report.

    Every file is first written into a hidden sibling folder (.NAME.partial-PID), which then
    takes the folder's place by renames, so a kill leaves the previous folder, or the new one,
    or (killed between two renames) no folder: never parts of two runs side by side. Files of
    the folder that dart-hub does not write (e.g. shard outputs kept beside a merge) stay.
    Each part carries the folder's content id (dart_config.json "content_id", the parquet
    schema metadata, a comment in README.md), which `push` and `card` check.

    Library versions are recorded in dart_config.json (key "versions", unless run_config has
    one) so that re-rendering the card later, elsewhere, gives the same card."""
    from dart_hub.publish.cards import check_no_token, library_versions

    out = Path(out_dir)
    config = without_local_paths({k: v for k, v in run_config.items() if k != "content_id"})
    config.setdefault("versions", library_versions())
    check_no_token(json.dumps(config, default=str), "the run configuration (dart_config.json)")
    steps = steps_rows(examples)
    config["content_id"] = content_id(steps, json.dumps(config, sort_keys=True, default=str), columns, system)
    config_text = json.dumps(config, indent=2, sort_keys=True, default=str) + "\n"
    if card is not None:
        check_no_token(card)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(out)
    staged = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        staged.mkdir()
        _write_parquet(train_rows(examples, columns, system), staged / DATA_FILE, _TRAIN_FALLBACK, config["content_id"])
        _write_parquet(steps, staged / STEPS_FILE, _TRAIN_FALLBACK, config["content_id"])
        write_atomic(staged / CONFIG_FILE, config_text)
        if card is None:
            card = render_folder_card(staged, examples=examples, config=json.loads(config_text))
        write_atomic(staged / "README.md", card)
        if with_report:
            from dart_hub.report.render import REPORT_DIR, write_dataset_report

            write_dataset_report(staged, staged / REPORT_DIR)
        _swap_in(staged, out)
    except (DartHubError, OSError) as error:
        shutil.rmtree(staged, ignore_errors=True)
        text = str(error)  # pyarrow's OSErrors carry the errno in their text only
        full = getattr(error, "errno", None) in OUT_OF_SPACE or any(m in text for m in ("no space left", "No space left", "File too large", "Disk quota"))
        if full:
            raise DartHubError(
                f"no space left on the device while writing {out}; nothing was changed there and finished chunks are "
                f"kept in the work dir: free some space and run the same command again"
            ) from None
        if isinstance(error, DartHubError):
            raise
        raise DartHubError(f"could not write {out}: {error.strerror or error}; check the path and its permissions") from None
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return out


def without_local_paths(config: dict[str, Any]) -> dict[str, Any]:
    """The run configuration as published: a local student, engine model or source file is named
    ./FOLDER (its last component), and the local work dir / output paths are left out, so that
    nothing in the folder shows the user's file system (the card says the model is local)."""
    from dart_hub.publish.cards import is_local_model, model_argument

    config = json.loads(json.dumps(config, default=str))
    if is_local_model(config.get("student")):
        config["student"] = model_argument(config["student"])
    engine = config.get("engine")
    if isinstance(engine, dict) and is_local_model(engine.get("model")):
        engine["model"] = model_argument(engine["model"])
    source = config.get("source")
    if isinstance(source, dict) and source.get("kind") == "local" and source.get("dataset"):
        source["dataset"] = "./" + Path(str(source["dataset"]).rstrip("/")).name
    summary = config.get("summary")
    if isinstance(summary, dict):
        for key in ("work_dir", "output"):
            summary.pop(key, None)
    return config


MANAGED = (CONFIG_FILE, "data", "steps", "figures", "README.md", "report")  # what write_folder writes


def _remove_leftovers(out: Path) -> None:
    """Hidden siblings left by a write that was killed (they are never the published folder)."""
    for pattern in (f".{out.name}.partial-*", f".{out.name}.old-*"):
        for leftover in out.parent.glob(pattern):
            shutil.rmtree(leftover, ignore_errors=True)


def _swap_in(staged: Path, out: Path) -> None:
    """Put the staged folder in `out`'s place. One rename when `out` holds only what dart-hub
    writes; otherwise the managed entries are swapped one by one (and a kill in between is
    caught later by check_same_run)."""
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if not out.exists():
        staged.rename(out)
    elif all(entry.name in MANAGED or entry.name.startswith(".") for entry in out.iterdir()):
        out.rename(old)
        staged.rename(out)
    else:
        old.mkdir()
        for name in MANAGED:
            if (out / name).exists():
                (out / name).rename(old / name)
            if (staged / name).exists():
                (staged / name).rename(out / name)
        staged.rmdir()
    shutil.rmtree(old, ignore_errors=True)
    _fsync_dir(out.parent)


CONTENT_ID_KEY = b"dart_hub_content_id"
_CARD_MARK = re.compile(r"<!-- dart-hub content_id: ([0-9a-f]+) -->")


def part_ids(folder: str | Path) -> dict[str, str | None]:
    """The content id each part of a folder carries (None: the part has none)."""
    import pyarrow.parquet as pq

    folder = Path(folder)
    ids: dict[str, str | None] = {CONFIG_FILE: read_config(folder).get("content_id")}
    for relative in (DATA_FILE, STEPS_FILE):
        path = folder / relative
        if path.is_file():
            try:
                metadata = pq.read_schema(path).metadata or {}
            except Exception as error:  # noqa: BLE001 - a damaged parquet is the user's to fix
                raise DartHubError(f"{path} is not a readable parquet file ({type(error).__name__}); re-run `dart-hub adapt` to rewrite the folder") from None
            value = metadata.get(CONTENT_ID_KEY)
            ids[relative] = value.decode() if value else None
    readme = folder / "README.md"
    if readme.is_file():
        found = _CARD_MARK.search(readme.read_text(encoding="utf-8", errors="replace"))
        ids["README.md"] = found.group(1) if found else None
    return ids


def check_same_run(folder: str | Path) -> None:
    """Refuse a folder whose parts were written by different runs (an interrupted write, or files
    copied in by hand). How it tells: every part written by dart-hub carries the folder's content
    id; all present ids must be the one in dart_config.json. A README.md without the mark (edited
    by hand) is not compared; a parquet without one is, as it is never edited by hand."""
    ids = part_ids(folder)
    expected = ids.pop(CONFIG_FILE)
    if expected is None:
        return  # written before content ids existed: nothing to compare
    mixed = {part: value for part, value in ids.items() if value != expected and not (part == "README.md" and value is None)}
    if mixed:
        parts = ", ".join(f"{part} ({value or 'no id'})" for part, value in sorted(mixed.items()))
        raise DartHubError(
            f"{folder} mixes parts of different runs: {parts} do not match {CONFIG_FILE} ({expected}); "
            f"a write was interrupted or files were copied in: run the same `dart-hub adapt` command again to rewrite the folder"
        )


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
