"""Training rows: `messages` conversations with a gold answer, from an adapted dataset or (for the
Static baseline) from the expert traces of a source dataset; and the held-out validation slice.

`--data` names:

- a `dart-hub adapt` output folder (read with `load_dataset(DIR, split=...)`, as the Hub would), or
  any local .jsonl / .json / .parquet file or folder with a `messages` column;
- a Hub dataset id holding such rows (the adapted dataset as pushed by dart-hub);
- with `--static`: any source `dart-hub adapt` accepts (a preset such as `limo`, a Hub id, a local
  file), whose question / solution columns become the same [system, user, assistant] messages
  as the adapted data (`dart_hub.publish.folder.messages_for`, same system prompt).

Gold answers (for checkpoint selection): the row's answer column (`--answer-column`, default
`answer` when present), else the last `\\boxed{}` of the assistant turn. Rows without one still
train but are never drawn into the validation slice.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dart_hub.boxed import last_boxed
from dart_hub.errors import DartHubError
from dart_hub.sources import LOCAL_FORMATS, PRESETS, SourceSpec, load_source

DEFAULT_ANSWER_COLUMN = "answer"
# Conversation columns kept next to `messages` (written by `adapt --method dail`).
EXTRA_MESSAGE_COLUMNS = ("privileged_messages", "negative_messages")

# Skip reasons of rows that cannot be trained on.
NO_MESSAGES = "no_messages"
NO_ASSISTANT_TURN = "no_assistant_turn"


@dataclass
class TrainData:
    """Rows {"id", "messages", "gold"} and where they came from (for the summary and the card)."""

    rows: list[dict[str, Any]]
    source: dict[str, Any]
    skipped: dict[str, int] = field(default_factory=dict)


def load_train_data(
    data: str,
    *,
    static: bool = False,
    split: str = "train",
    revision: str | None = None,
    preset: str | None = None,
    question_column: str | None = None,
    solution_column: str | None = None,
    answer_column: str | None = None,
    system_prompt: str | None = None,
    prompts_only: bool = False,
) -> TrainData:
    """`prompts_only` (`--objective grpo`): with `static`, problems without a solution are
    kept (question + gold answer: their `messages` end with the user turn)."""
    if static:
        return _static_rows(
            data, split, revision, preset, question_column, solution_column, answer_column, system_prompt, prompts_only
        )
    if preset is not None or question_column or solution_column:
        raise DartHubError(
            "--preset / --question-column / --solution-column describe an expert dataset: add "
            "--static to train on its expert traces"
        )
    if data in PRESETS:
        raise DartHubError(
            f"'{data}' is an expert dataset preset: add --static to train on its expert traces "
            f"(the Static baseline), or pass an adapted dataset (a `dart-hub adapt` output folder "
            f"or its Hub id)"
        )
    return _messages_rows(data, split, revision, answer_column)


# -- Static: expert traces -> messages ----------------------------------------------------------


def _static_rows(
    data: str,
    split: str,
    revision: str | None,
    preset: str | None,
    question_column: str | None,
    solution_column: str | None,
    answer_column: str | None,
    system_prompt: str | None,
    prompts_only: bool = False,
) -> TrainData:
    from dart_hub.prompts import default_prompts
    from dart_hub.publish.folder import messages_for
    from dart_hub.sources import source_record

    system = default_prompts().sft_system if system_prompt is None else system_prompt
    source = load_source(
        SourceSpec(
            dataset=data,
            split=split,
            revision=revision,
            preset=preset,
            question_column=question_column,
            solution_column=solution_column,
            answer_column=answer_column,
            solution_optional=prompts_only,
        )
    )
    if not source.problems:
        raise DartHubError(
            f"no usable problems in {data} ({len(source.skipped)} rows skipped); run "
            f"`dart-hub inspect {data}` to see why"
        )
    rows = [
        {"id": p.id, "messages": messages_for(p.question, p.solution, system) if p.solution.strip() else _prompt(p.question, system), "gold": p.answer}
        for p in source.problems
    ]
    record = {**source_record(source), "method": "static", "system_prompt": system}
    return TrainData(rows=rows, source=record, skipped=source.skipped_by_reason())


def _prompt(question: str, system: str) -> list[dict[str, str]]:
    """The conversation of a problem without a solution (GRPO prompts): system?, user."""
    from dart_hub.publish.folder import messages_for

    return messages_for(question, "", system)[:-1]


# -- adapted data: `messages` rows --------------------------------------------------------------


def _messages_rows(data: str, split: str, revision: str | None, answer_column: str | None) -> TrainData:
    import datasets

    path = Path(data).expanduser()
    record: dict[str, Any] = {"method": "adapted", "dataset": data, "split": split}
    if path.exists():
        if revision is not None:
            raise DartHubError(f"--data-revision only applies to Hub datasets, and {data} is a local path")
        record.update(_local_record(path), kind="local")
        try:
            if path.is_file():
                builder = LOCAL_FORMATS.get(path.suffix.lower())
                if builder is None:
                    raise DartHubError(f"{data} is not a .jsonl, .json or .parquet file")
                dataset = datasets.load_dataset(builder, data_files={split: str(path)}, split=split)
            else:
                dataset = datasets.load_dataset(str(path), split=split)
        except DartHubError:
            raise
        except Exception as error:
            raise DartHubError(
                f"could not read {data} (split {split}): {' '.join(str(error).split())}. Pass a "
                f"`dart-hub adapt` output folder or a .jsonl/.parquet file with a `messages` column"
            ) from error
    else:
        if data.startswith((".", "/", "~")) or path.suffix.lower() in LOCAL_FORMATS:
            raise DartHubError(f"no such file or folder: {data}")
        dataset, hub = _load_hub(data, split, revision)
        record.update(hub, kind="hub")
    columns = list(dataset.column_names)
    if "messages" not in columns:
        raise DartHubError(
            f"{data} has no `messages` column (columns: {', '.join(columns)}). Pass an adapted "
            f"dataset, or add --static to build messages from its question/solution columns"
        )
    if answer_column and answer_column not in columns:
        raise DartHubError(
            f"answer column '{answer_column}' not found in {data}; columns are: {', '.join(columns)}"
        )
    gold_column = answer_column or (DEFAULT_ANSWER_COLUMN if DEFAULT_ANSWER_COLUMN in columns else None)
    rows: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    for index, row in enumerate(dataset):
        messages = _clean_messages(row.get("messages"))
        reason = None
        if not messages:
            reason = NO_MESSAGES
        elif messages[-1]["role"] != "assistant" or not messages[-1]["content"].strip():
            reason = NO_ASSISTANT_TURN
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            continue
        gold = str(row.get(gold_column) or "").strip() if gold_column else ""
        if not gold:
            gold = (last_boxed(messages[-1]["content"]) or "").strip()
        row_id = str(row.get("id") or "") or _content_id(messages, index)
        out = {"id": row_id, "messages": messages, "gold": gold}
        for column in EXTRA_MESSAGE_COLUMNS:  # the prompts of `--objective dail`, when present
            if column in columns:
                out[column] = _clean_messages(row.get(column))
        rows.append(out)
    if not rows:
        raise DartHubError(f"no trainable rows in {data}: {skipped}")
    record["rows"] = len(dataset)
    record["answer_column"] = gold_column
    return TrainData(rows=rows, source=record, skipped=dict(sorted(skipped.items())))


def _clean_messages(value: Any) -> list[dict[str, str]]:
    if not isinstance(value, list):
        return []
    out = []
    for message in value:
        if not isinstance(message, dict):
            return []
        role, content = message.get("role"), message.get("content")
        if not isinstance(role, str) or not isinstance(content, str):
            return []
        out.append({"role": role, "content": content})
    return out


def _content_id(messages: list[dict[str, str]], index: int) -> str:
    users = [m["content"] for m in messages if m["role"] == "user"]
    text = users[0] if users else f"row-{index}"
    return hashlib.sha256(" ".join(text.split()).encode("utf-8")).hexdigest()[:16]


def _local_record(path: Path) -> dict[str, Any]:
    """What a local adapt output folder says about itself (dart_config.json)."""
    import json

    record: dict[str, Any] = {"path": str(path.resolve())}
    config = path / "dart_config.json" if path.is_dir() else None
    if config is not None and config.is_file():
        try:
            run = json.loads(config.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return record
        source = run.get("source") or {}
        record["adapt"] = {
            "student": run.get("student"),
            "strategy": (run.get("adapt") or {}).get("strategy"),
            "method": run.get("method"),
            "objective": run.get("objective"),  # the training objective the method names
            "fingerprint": run.get("fingerprint"),
            "expert_dataset": source.get("repo_id") or source.get("dataset"),
            "expert_license": source.get("license"),
        }
    return record


def _load_hub(repo_id: str, split: str, revision: str | None) -> tuple[Any, dict[str, Any]]:
    import datasets
    import huggingface_hub
    from huggingface_hub import constants

    from dart_hub.sources import _card_license, _hub_error

    spec = SourceSpec(dataset=repo_id, split=split, revision=revision)
    sha, license = revision, None
    if not constants.HF_HUB_OFFLINE:
        try:
            info = huggingface_hub.HfApi().dataset_info(repo_id, revision=revision)
        except Exception as error:
            raise _hub_error(error, spec, repo_id) from error
        sha = info.sha or revision
        license = _card_license(getattr(info, "card_data", None))
    try:
        dataset = datasets.load_dataset(repo_id, split=split, revision=sha)
    except Exception as error:
        raise _hub_error(error, spec, repo_id) from error
    return dataset, {"repo_id": repo_id, "revision": sha, "license": license}


# -- validation slice ---------------------------------------------------------------------------


def validation_count(size: float, groups: int) -> int:
    """`size` < 1: a share of the problems; >= 1: a number of problems; 0: none. Always leaves
    at least one problem for training."""
    if size <= 0 or groups < 2:
        return 0
    count = round(size * groups) if size < 1 else int(size)
    return max(1, min(count, groups - 1))


def split_validation(
    rows: list[dict[str, Any]], size: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Hold out whole problems (every row of an id goes to the same side), chosen among rows
    with a gold answer by a hash of (seed, id): stable, independent of row order."""
    eligible = sorted({row["id"] for row in rows if row["gold"]})
    count = validation_count(size, len({row["id"] for row in rows}))
    count = min(count, len(eligible))
    if count == 0:
        return list(rows), []

    def key(problem_id: str) -> str:
        return hashlib.sha256(f"{seed}:{problem_id}".encode()).hexdigest()

    held = set(sorted(eligible, key=key)[:count])
    train = [row for row in rows if row["id"] not in held]
    validation, seen = [], set()
    for row in rows:  # one row per held-out problem (several trajectories share a question)
        if row["id"] in held and row["id"] not in seen:
            seen.add(row["id"])
            validation.append(row)
    return train, validation
