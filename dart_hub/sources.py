"""Expert datasets -> `Problem` records: presets, column mapping, Hub ids and local files.

A source is named by one string (`SourceSpec.dataset`):

- a preset name: `limo` (GAIR/LIMO) or `math-qwq-32b` (UWNSL/MATH_training_split_long_cot);
- an existing local path: a .jsonl / .json / .parquet file, or a folder of such files (one
  format per folder; split names come from file names as in `datasets`, e.g. train.jsonl /
  test.jsonl, and everything else is the `train` split);
- otherwise a Hub dataset id (`owner/name`), loaded with `datasets.load_dataset` at the commit
  that `HfApi().dataset_info` resolves, so the provenance names an exact commit.

Columns default to the preset's (`SourceSpec.preset` applies a preset's layout to any other
dataset, e.g. a mirror or a local copy), and to LIMO's names (question / solution / answer)
without a preset. The gold answer comes from the answer column when there is one; when there
is none (math-qwq-32b, or `answer_column=""`, or no preset and no `answer` column in the data)
it is the solution's last `\\boxed{}`. A row whose answer cell is empty also falls back to the
solution's last box. Rows that cannot become problems are skipped with a reason, never silently.

Hub access goes through `datasets` and `huggingface_hub` only (no URL is built here), so
HF_ENDPOINT, HF_TOKEN and HF_HUB_OFFLINE behave as in those libraries. Both are imported when a
source is loaded, not when this module is imported, to keep the CLI start fast.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dart_hub.boxed import last_boxed
from dart_hub.errors import DartHubError
from dart_hub.records import Problem, Provenance, SkippedRow

# Bumped when the way rows become problems changes, so fingerprints of old work dirs differ.
FINGERPRINT_VERSION = "sources/1"

# Local file suffix -> `datasets` packaged builder.
LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
GZIP_MAGIC = b"\x1f\x8b"


def data_suffix(name: str | Path) -> str:
    """The data format's suffix of a file name: ".jsonl" for x.jsonl and x.jsonl.gz (gzip-
    compressed JSON is read as it is, as `datasets` does), else the last suffix, lower-cased."""
    lower = str(name).lower()
    for suffix in (".jsonl", ".json"):
        if lower.endswith(suffix + ".gz"):
            return suffix
    return Path(lower).suffix


def _open_data(name: str):
    """A data file's bytes, decompressed when it is named .gz."""
    import gzip

    return gzip.open(name, "rb") if str(name).lower().endswith(".gz") else open(name, "rb")

DEFAULT_QUESTION_COLUMN = "question"
DEFAULT_SOLUTION_COLUMN = "solution"
DEFAULT_ANSWER_COLUMN = "answer"

# Skip reasons (SkippedRow.reason).
EMPTY_QUESTION = "empty_question"
EMPTY_SOLUTION = "empty_solution"
NON_TEXT_QUESTION = "non_text_question"
NON_TEXT_SOLUTION = "non_text_solution"
NO_GOLD_ANSWER = "no_gold_answer"
DUPLICATE_QUESTION = "duplicate_question"
INVALID_JSON = "invalid_json"  # a JSON-lines line that is not JSON (detail: its 1-based line number)
NOT_UTF8 = "not_utf8"  # a line whose bytes are not UTF-8
NOT_AN_OBJECT = "not_an_object"  # valid JSON, but not a {"column": value} object
TOO_DEEPLY_NESTED = "too_deeply_nested"  # a value nested deeper than MAX_NESTING

# Deeper values are skipped before `datasets`/pyarrow see them (very deep ones crash the JSON
# reader or Python's parser); real datasets nest a few levels.
MAX_NESTING = 32

_HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")
_TOKEN = re.compile(r"hf_[A-Za-z0-9]{8,}")


@dataclass(frozen=True)
class Preset:
    """A known expert dataset: where it lives on the Hub and how its columns are named.

    `answer_column=None` means the dataset has no answer column: the gold answer is the last
    `\\boxed{}` of the solution.
    """

    name: str
    repo_id: str
    question_column: str
    solution_column: str
    answer_column: str | None
    license: str | None = None
    description: str = ""
    rows: int | None = None  # rows of the train split as published (for plans before download)


PRESETS: dict[str, Preset] = {
    "limo": Preset(
        name="limo",
        repo_id="GAIR/LIMO",
        question_column="question",
        solution_column="solution",
        answer_column="answer",
        license="apache-2.0",
        description="LIMO: 817 curated competition problems with long expert solutions.",
        rows=817,
    ),
    "math-qwq-32b": Preset(
        name="math-qwq-32b",
        repo_id="UWNSL/MATH_training_split_long_cot",
        question_column="problem",
        solution_column="solution",
        answer_column=None,
        license=None,  # taken from the Hub card when it has one
        description="QwQ-32B long chain-of-thought solutions for the MATH training problems.",
        rows=5383,
    ),
}


@dataclass(frozen=True)
class SourceSpec:
    """What to read. Everything a user can say about a source, nothing resolved yet.

    dataset: a preset name, a local file or folder, or a Hub dataset id.
    preset: apply this preset's columns to `dataset` (a Hub mirror or a local copy);
        implied when `dataset` is itself a preset name.
    split / revision / config: as in `datasets.load_dataset`; revision and config only apply
        to Hub datasets.
    question_column / solution_column / answer_column: None = the preset's, else LIMO's names.
        answer_column="" means "no answer column: the gold answer is the solution's last box".
    limit: keep the first `limit` valid problems (None = all); later rows are not read.
    solution_optional: problems may come without a solution (the prompts of `train --objective
        grpo`): the solution column may be absent or empty; the gold answer then has to come
        from the answer column.
    """

    dataset: str
    split: str = "train"
    revision: str | None = None
    config: str | None = None
    question_column: str | None = None
    solution_column: str | None = None
    answer_column: str | None = None
    limit: int | None = None
    preset: str | None = None
    solution_optional: bool = False


@dataclass
class LoadedSource:
    """The problems of one source, the rows skipped, and where exactly they came from."""

    spec: SourceSpec
    kind: str  # "hub" or "local"
    repo_id: str | None  # Hub id, None for local data
    revision: str | None  # resolved commit sha for Hub data, None for local data
    config: str | None
    split: str
    license: str | None
    columns: list[str]  # all columns of the source
    question_column: str
    solution_column: str
    answer_column: str | None  # None: gold answer = the solution's last \boxed{}
    num_rows: int  # rows in the split
    rows_read: int  # rows looked at (fewer than num_rows when `limit` stopped early)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[SkippedRow] = field(default_factory=list)
    data_files: list[str] = field(default_factory=list)  # local files read, in order
    file_hashes: list[str] = field(default_factory=list)  # sha256 of each local file

    @property
    def preset(self) -> str | None:
        return _preset_name(self.spec)

    def skipped_by_reason(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.skipped:
            counts[row.reason] = counts.get(row.reason, 0) + 1
        return dict(sorted(counts.items()))

    def fingerprint(self) -> str:
        """Stable hash of the source's identity (64 hex chars).

        Hub data: repo id + resolved commit sha; local data: the files' content hashes (not
        their paths, so a copied file keeps its fingerprint). Plus split, config and the column
        mapping. `limit` is not part of it: problem ids are stable, so a larger run over the
        same source can reuse a smaller one's results.
        """
        identity = {
            "version": FINGERPRINT_VERSION,
            "kind": self.kind,
            "repo_id": self.repo_id,
            "revision": self.revision,
            "config": self.config,
            "split": self.split,
            "files": self.file_hashes,
            "question_column": self.question_column,
            "solution_column": self.solution_column,
            "answer_column": self.answer_column,
        }
        payload = json.dumps(identity, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()

    def describe(self) -> str:
        """One line naming the source: 'GAIR/LIMO@<sha> (split train)' or the local path."""
        if self.kind == "hub":
            where = f"{self.repo_id}@{self.revision}" if self.revision else str(self.repo_id)
            if self.config:
                where += f" config {self.config}"
        else:
            where = self.spec.dataset
        return f"{where} (split {self.split})"


def normalize_question(question: str) -> str:
    """Unicode NFKC, whitespace runs collapsed to one space, ends stripped."""
    return " ".join(unicodedata.normalize("NFKC", question).split())


def problem_id(question: str) -> str:
    """Stable problem id: first 16 hex chars of sha256 of the normalized question."""
    return hashlib.sha256(normalize_question(question).encode("utf-8")).hexdigest()[:16]


def load_source(spec: SourceSpec) -> LoadedSource:
    """Read a source into problems (and skipped rows). Raises DartHubError on user errors."""
    if spec.limit is not None and spec.limit < 1:
        raise DartHubError(f"limit must be a positive number of problems, got {spec.limit}")
    preset = _preset(spec)
    local = _local_path(spec.dataset)
    if local is not None:
        return _load_local(spec, preset, local)
    repo_id = PRESETS[spec.dataset].repo_id if spec.dataset in PRESETS else spec.dataset
    if not _HUB_ID.match(repo_id):
        raise DartHubError(
            f"no such file or folder: {spec.dataset}; give an existing .jsonl/.json/.parquet "
            f"file or folder, a Hub dataset id (owner/name) or a preset ({', '.join(PRESETS)})"
        )
    return _load_hub(spec, preset, repo_id)


# -- resolution -------------------------------------------------------------------------------


def _preset_name(spec: SourceSpec) -> str | None:
    if spec.preset is not None:
        return spec.preset
    return spec.dataset if spec.dataset in PRESETS else None


def _preset(spec: SourceSpec) -> Preset | None:
    name = _preset_name(spec)
    if name is None:
        return None
    if name not in PRESETS:
        raise DartHubError(f"unknown preset '{name}'; presets are: {', '.join(PRESETS)}")
    return PRESETS[name]


def _local_path(dataset: str) -> Path | None:
    """The local path `dataset` names, None when it should be a preset or a Hub id."""
    if dataset in PRESETS:
        return None
    path = Path(dataset).expanduser()
    if path.exists():
        return path
    looks_local = (
        data_suffix(path) in LOCAL_FORMATS
        or dataset.startswith((".", "/", "~"))
        or dataset.endswith("/")
        or "\\" in dataset
    )
    if looks_local:
        raise DartHubError(
            f"no such file or folder: {dataset}; check the path (local data must be "
            f".jsonl, .json or .parquet files, or a folder of them)"
        )
    return None


def _resolve_columns(
    spec: SourceSpec, preset: Preset | None, present: list[str], where: str
) -> tuple[str, str, str | None]:
    """(question, solution, answer or None) column names, checked against the data."""
    question = spec.question_column or (
        preset.question_column if preset else DEFAULT_QUESTION_COLUMN
    )
    solution = spec.solution_column or (
        preset.solution_column if preset else DEFAULT_SOLUTION_COLUMN
    )
    _require_column(question, present, where, "--question-column", "question")
    if spec.solution_optional and solution not in present:
        solution = ""  # no solutions: prompts and gold answers only
    else:
        _require_column(solution, present, where, "--solution-column", "solution")
    if spec.answer_column == "":
        answer = None
    elif spec.answer_column is not None:
        answer = spec.answer_column
        _require_column(answer, present, where, "--answer-column", "answer")
    elif preset is not None:
        answer = preset.answer_column
        if answer is not None:
            _require_column(answer, present, where, "--answer-column", "answer")
    else:
        # LIMO's name when the data has it; otherwise gold answers come from the boxes.
        answer = DEFAULT_ANSWER_COLUMN if DEFAULT_ANSWER_COLUMN in present else None
    return question, solution, answer


def _require_column(column: str, present: list[str], where: str, flag: str, role: str) -> None:
    if column in present:
        return
    hint = f"Use {flag} to name the {role} column"
    if role == "answer":
        hint += ', or --answer-column "" to take the gold answer from the last \\boxed{}'
    layouts = [
        p.name
        for p in PRESETS.values()
        if p.question_column in present and p.solution_column in present
    ]
    if layouts:
        hint += f" (or --preset {layouts[0]})"
    raise DartHubError(
        f"column '{column}' not found in {where}; columns are: {', '.join(present)}. {hint}"
    )


# -- local files ------------------------------------------------------------------------------


def _load_local(spec: SourceSpec, preset: Preset | None, path: Path) -> LoadedSource:
    if spec.revision is not None:
        raise DartHubError(
            f"--revision only applies to Hub datasets, and {spec.dataset} is a local path"
        )
    if spec.config is not None:
        raise DartHubError(
            f"--config only applies to Hub datasets, and {spec.dataset} is a local path"
        )
    splits = _local_splits(path, spec.dataset)
    if spec.split not in splits:
        raise DartHubError(
            f"split '{spec.split}' not found in {spec.dataset}; available splits: "
            f"{', '.join(splits)}. Use --split"
        )
    files = splits[spec.split]
    suffixes = sorted({data_suffix(f) for f in files})
    builders = {LOCAL_FORMATS[s] for s in suffixes}
    if len(builders) > 1:
        raise DartHubError(
            f"{spec.dataset} mixes {' and '.join(suffixes)} files; point at a single file or at "
            f"a folder holding one format"
        )
    builder = builders.pop()
    try:
        if builder == "json":
            _refuse_compressed(files)
        nonempty = [f for f in files if not _is_empty_file(f, builder)]
        file_hashes = [_file_sha256(f) for f in nonempty]
    except OSError as error:
        raise _unreadable(error) from None
    if not nonempty:
        raise DartHubError(f"split '{spec.split}' of {spec.dataset} is empty: it has no rows")

    import tempfile

    import datasets

    with tempfile.TemporaryDirectory(prefix="dart-hub-rows-") as clean_dir:
        screened = _screen_json_lines(nonempty, Path(clean_dir)) if builder == "json" else None
        if screened and not screened.row_index:
            first = screened.skipped[0]
            raise DartHubError(
                f"no readable row in {spec.dataset}: all {len(screened.skipped)} lines were skipped "
                f"({first.reason}, {first.detail}); check that it is JSON lines (one object per line)"
            )
        to_load = screened.files if screened else nonempty
        try:
            with _quiet_library_logs():
                dataset = datasets.load_dataset(
                    builder, data_files={spec.split: to_load}, split=spec.split
                )
        except (datasets.exceptions.DatasetGenerationError, ValueError, OSError, StopIteration) as error:
            cause = error.__cause__ or error
            if isinstance(cause, OSError) and cause.filename:
                raise _unreadable(cause) from None
            if builder == "json" and _only_empty_objects(to_load):
                raise DartHubError(
                    f"{spec.dataset} has no columns: its rows are empty JSON objects ({{}}); each row "
                    f"needs the question and solution columns (see `dart-hub inspect --help`)"
                ) from None
            raise DartHubError(
                f"could not read {spec.dataset} as {builder}: {_redact(_first_line(str(cause)))}. "
                f"Check the file's format (JSON lines, a JSON array of objects, or parquet)"
            ) from None
        except RecursionError:
            raise DartHubError(
                f"could not read {spec.dataset}: a value is nested too deeply; flatten it, or "
                f"write the data as JSON lines (such rows are then skipped)"
            ) from None
    return _build(
        spec,
        preset,
        dataset,
        kind="local",
        repo_id=None,
        revision=None,
        config=None,
        license=None,
        where=spec.dataset,
        data_files=nonempty,
        file_hashes=file_hashes,
        screened=screened,
    )


def _refuse_compressed(files: list[str]) -> None:
    """gzip bytes under a plain .jsonl / .json name would read as "not UTF-8" line by line."""
    for name in files:
        if str(name).lower().endswith(".gz"):
            continue
        with open(name, "rb") as handle:
            if handle.read(2) == GZIP_MAGIC:
                raise DartHubError(
                    f"{name} is gzip-compressed: decompress it (gunzip) or name it "
                    f"{Path(name).name}.gz (dart-hub reads .jsonl.gz and .json.gz as they are)"
                )


def _only_empty_objects(files: list[str]) -> bool:
    """Whether every non-blank line of these JSON-lines files is an empty object `{}`."""
    seen = False
    for name in files:
        with _open_data(name) as handle:
            for raw in handle:
                if not raw.strip():
                    continue
                try:
                    if json.loads(raw) != {}:
                        return False
                except (ValueError, RecursionError):
                    return False
                seen = True
    return seen


def _unreadable(error: OSError) -> DartHubError:
    return DartHubError(
        f"cannot read {error.filename or 'the data file'}: {error.strerror or error}; check that it "
        f"exists and that you may read it"
    )


def _first_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[0] if lines else text


@contextlib.contextmanager
def _quiet_library_logs():
    """`datasets` logs its own error ("Failed to load JSON from file ...") before raising; the
    user gets dart-hub's one-line error instead, so its logger is muted meanwhile."""
    import logging

    logger = logging.getLogger("datasets")
    level = logger.level
    logger.setLevel(logging.CRITICAL + 1)
    try:
        yield
    finally:
        logger.setLevel(level)


@dataclass
class _Screened:
    """JSON-lines files with their bad lines removed (what `datasets` then reads), the bad lines
    as skipped rows, and for each kept row its row index in the original files."""

    files: list[str]
    skipped: list[SkippedRow]
    row_index: list[int]


def _nesting(value: Any, limit: int) -> int:
    """Depth of `value` (containers), stopping past `limit`, without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return depth
            deepest = max(deepest, depth)
            stack.extend((v, depth + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _screen_json_lines(files: list[str], clean_dir: Path) -> _Screened | None:
    """Check JSON-lines files line by line, so that one bad line costs that line: lines that are
    not UTF-8, not JSON, not an object, or nested too deeply become skipped rows (with their
    1-based line number) and the others are copied to `clean_dir`. None when every line is fine
    (the files are then read as they are). A .json file holding one JSON document (an array of
    objects) is left to `datasets`."""
    skipped: list[SkippedRow] = []
    kept_index: list[int] = []
    cleaned: list[str] = []
    if any(data_suffix(name) == ".json" and _is_json_document(name) for name in files):
        return None
    row = 0
    for number, name in enumerate(files):
        target = clean_dir / f"{number:05d}.jsonl"
        with _open_data(name) as source, open(target, "wb") as out:
            for line_number, raw in enumerate(source, start=1):
                if not raw.strip():
                    continue
                reason, detail = _check_line(raw, line_number == 1)
                where = f"line {line_number}" + (f" of {Path(name).name}" if len(files) > 1 else "")
                if reason:
                    skipped.append(SkippedRow(row, reason, f"{where}: {detail}"))
                else:
                    out.write(raw if raw.endswith(b"\n") else raw + b"\n")
                    kept_index.append(row)
                row += 1
        cleaned.append(str(target))
    if not skipped:
        return None
    return _Screened(cleaned, skipped, kept_index)


def _check_line(raw: bytes, first: bool) -> tuple[str | None, str]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        return NOT_UTF8, f"byte {error.start + 1} is not UTF-8 (save the file as UTF-8)"
    if first:
        text = text.lstrip("\ufeff")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        return INVALID_JSON, f"{error.msg} at column {error.colno}"
    except RecursionError:
        return TOO_DEEPLY_NESTED, f"nested deeper than {MAX_NESTING} levels"
    if not isinstance(value, dict):
        return NOT_AN_OBJECT, f"a JSON {type(value).__name__}, not an object of columns"
    if _nesting(value, MAX_NESTING) > MAX_NESTING:
        return TOO_DEEPLY_NESTED, f"nested deeper than {MAX_NESTING} levels"
    return None, ""


def _is_json_document(name: str) -> bool:
    """Whether a .json file is one JSON document (array / object) rather than JSON lines."""
    with _open_data(name) as handle:
        head = handle.read(1 << 16).lstrip(b"\xef\xbb\xbf \t\r\n")
    if head[:1] == b"[":
        return True
    if head[:1] != b"{":
        return False
    first_line_end = head.find(b"\n")
    first = head if first_line_end < 0 else head[:first_line_end]
    try:
        json.loads(first)
        return False  # the first line is a whole object: JSON lines
    except (ValueError, RecursionError):
        return True


def _local_splits(path: Path, name: str) -> dict[str, list[str]]:
    """Split name -> files. A single file is the train split; folders follow `datasets`."""
    if not path.is_file() and not path.is_dir():
        raise DartHubError(f"{name} is not a regular file ({_file_kind(path)}); copy the data into a .jsonl, .json or .parquet file")
    if path.is_dir() and not os.access(path, os.R_OK | os.X_OK):
        raise DartHubError(f"permission denied: cannot list folder {name}; check its permissions (chmod) or run as a user who may read it")
    if path.is_file():
        if data_suffix(path) not in LOCAL_FORMATS:
            raise DartHubError(
                f"{name} is not a .jsonl, .json or .parquet file; convert it to one of those"
            )
        return {"train": [str(path.resolve())]}
    from datasets.data_files import DataFilesDict, EmptyDatasetError, get_data_patterns

    try:
        patterns = get_data_patterns(str(path))
        found = DataFilesDict.from_patterns(patterns, base_path=str(path))
    except (EmptyDatasetError, FileNotFoundError):
        found = {}
    splits = {}
    for split, files in found.items():
        kept = sorted(str(f) for f in files if data_suffix(str(f)) in LOCAL_FORMATS)
        for file in kept:
            if not Path(file).is_file():
                raise DartHubError(f"{file} is not a regular file ({_file_kind(Path(file))}); move it out of {name} or replace it with the data file")
        if kept:
            splits[str(split)] = kept
    if not splits:
        for entry in sorted(path.rglob("*")):
            if data_suffix(entry) in LOCAL_FORMATS and not entry.is_file() and not entry.is_dir():
                raise DartHubError(f"{entry} is not a regular file ({_file_kind(entry)}); move it out of {name} or replace it with the data file")
        raise DartHubError(
            f"folder {name} holds no .jsonl, .json or .parquet files; point at a folder of them"
        )
    return splits


def _file_kind(path: Path) -> str:
    """What a path that is neither a regular file nor a folder is, for the error message."""
    import stat

    mode = path.stat().st_mode
    for test, kind in ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):  # fmt: skip
        if test(mode):
            return kind
    return "not a file or folder"


def _is_empty_file(path: str, builder: str) -> bool:
    # `datasets` fails on empty files (StopIteration for JSON, ArrowInvalid for parquet):
    # find them first, so an empty split gets a clear error and empty shards are left out.
    if builder == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.ParquetFile(path).metadata.num_rows == 0
        except Exception:
            return False  # let `datasets` report what is wrong with the file
    with _open_data(path) as handle:
        for chunk in iter(lambda: handle.read(1 << 16), b""):
            if chunk.strip():
                return False
    return True


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


# -- Hub --------------------------------------------------------------------------------------


def _load_hub(spec: SourceSpec, preset: Preset | None, repo_id: str) -> LoadedSource:
    import datasets
    import huggingface_hub
    from huggingface_hub import constants

    from dart_hub import hubnet

    hubnet.install()  # every Hub request bounded; retries counted on one line
    revision = spec.revision
    card_license = None
    if not constants.HF_HUB_OFFLINE:
        # Resolve the commit first: the data is then loaded at exactly that commit, and
        # not-found / gated / bad-revision errors come from one clear place. This first
        # contact has a short timeout and no retry: a silent Hub is reported in seconds.
        try:
            info = huggingface_hub.HfApi().dataset_info(
                repo_id, revision=spec.revision, timeout=hubnet.first_contact_timeout()
            )
        except Exception as error:
            raise _hub_error(error, spec, repo_id) from error
        revision = info.sha or spec.revision
        card_license = _card_license(getattr(info, "card_data", None))
    try:
        dataset = datasets.load_dataset(
            repo_id, name=spec.config, split=spec.split, revision=revision
        )
    except Exception as error:
        raise _hub_error(error, spec, repo_id) from error
    license = card_license
    if license is None and preset is not None and preset.repo_id == repo_id:
        license = preset.license
    return _build(
        spec,
        preset,
        dataset,
        kind="hub",
        repo_id=repo_id,
        revision=revision,
        config=spec.config,
        license=license,
        where=repo_id,
        data_files=[],
        file_hashes=[],
    )


def _card_license(card_data: Any) -> str | None:
    if card_data is None:
        return None
    value = card_data.get("license") if hasattr(card_data, "get") else None
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value) or None
    return str(value) if value else None


def _hub_error(error: Exception, spec: SourceSpec, repo_id: str) -> Exception:
    """Rewrap a `datasets` / `huggingface_hub` exception as a one-line DartHubError."""
    import datasets.exceptions as dx
    from huggingface_hub import constants
    from huggingface_hub import errors as hx

    login = "run `hf auth login` or set HF_TOKEN"
    presets = ", ".join(PRESETS)
    if isinstance(error, DartHubError):
        return error
    if isinstance(error, hx.GatedRepoError):
        return DartHubError(
            f"dataset {repo_id} is gated: accept its terms on its Hub page, then {login}"
        )
    if isinstance(error, hx.RevisionNotFoundError):
        return DartHubError(
            f"revision '{spec.revision}' not found in dataset {repo_id}; use --revision with an "
            f"existing branch, tag or commit sha"
        )
    if constants.HF_HUB_OFFLINE:
        return DartHubError(
            f"could not load dataset {repo_id} from the local cache in offline mode "
            f"(HF_HUB_OFFLINE): {_redact(str(error))}. Unset HF_HUB_OFFLINE, or download it first"
        )
    if isinstance(error, hx.RepositoryNotFoundError | dx.DatasetNotFoundError):
        return DartHubError(
            f"dataset '{spec.dataset}' not found on the Hub ({constants.ENDPOINT}) nor as a "
            f"local path; check the id (presets are: {presets}), or if it is private {login}"
        )
    from dart_hub import hubnet

    if hubnet.is_network_error(error):
        return DartHubError(hubnet.unreachable_message(f"could not look up dataset {repo_id}", error))
    if isinstance(error, hx.DisabledRepoError):
        return DartHubError(f"dataset {repo_id} is disabled on the Hub; use another source")
    status = getattr(getattr(error, "response", None), "status_code", None)
    if status in (401, 403):
        return DartHubError(f"not allowed to read dataset {repo_id}: {login}")
    message = _redact(str(error))
    if isinstance(error, ValueError):
        unknown_split = re.search(
            r"Unknown split \"?([^\".]*)\"?\.? Should be one of \[(.*)\]", message
        )
        if unknown_split:
            available = _names(unknown_split.group(2))
            return DartHubError(
                f"split '{spec.split}' not found in {repo_id}; available splits: {available}. "
                f"Use --split"
            )
        missing = re.search(r"Config name is missing.*available configs: \[(.*?)\]", message, re.S)
        if missing:
            return DartHubError(
                f"dataset {repo_id} has several configs: {_names(missing.group(1))}. "
                f"Pick one with --config"
            )
        unknown = re.search(r"BuilderConfig '(.*?)' not found\. Available: \[(.*?)\]", message)
        if unknown:
            return DartHubError(
                f"config '{unknown.group(1)}' not found in {repo_id}; available configs: "
                f"{_names(unknown.group(2))}. Use --config"
            )
    if isinstance(error, hx.LocalEntryNotFoundError):
        return DartHubError(
            f"could not load dataset {repo_id} from the local cache in offline mode "
            f"(HF_HUB_OFFLINE): {message}. Unset HF_HUB_OFFLINE, or download it first"
        )
    # Anything else (connection refused, timeouts, server errors, bad data on the Hub).
    return DartHubError(
        f"could not load dataset {repo_id} from the Hub ({constants.ENDPOINT}): {message}. "
        f"Check your network, HF_ENDPOINT and the dataset id, or use a local copy"
    )


def _names(python_list: str) -> str:
    """ "'a', 'b'" (the inside of a printed Python list) -> "a, b"."""
    return ", ".join(name.strip(" '\"") for name in python_list.split(","))


def _redact(message: str) -> str:
    """Hide anything shaped like a Hugging Face token."""
    return _TOKEN.sub("hf_***", message)


# -- rows -> problems -------------------------------------------------------------------------


def _build(
    spec: SourceSpec,
    preset: Preset | None,
    dataset: Any,
    *,
    kind: str,
    repo_id: str | None,
    revision: str | None,
    config: str | None,
    license: str | None,
    where: str,
    data_files: list[str],
    file_hashes: list[str],
    screened: _Screened | None = None,
) -> LoadedSource:
    columns = list(dataset.column_names)
    bad_lines = screened.skipped if screened else []
    num_rows = len(dataset) + len(bad_lines)
    if len(dataset) == 0:
        raise DartHubError(f"split '{spec.split}' of {where} is empty: it has no rows")
    question_col, solution_col, answer_col = _resolve_columns(spec, preset, columns, where)
    loaded = LoadedSource(
        spec=spec,
        kind=kind,
        repo_id=repo_id,
        revision=revision,
        config=config,
        split=spec.split,
        license=license,
        columns=columns,
        question_column=question_col,
        solution_column=solution_col,
        answer_column=answer_col,
        num_rows=num_rows,
        rows_read=0,
        data_files=data_files,
        file_hashes=file_hashes,
    )
    seen: dict[str, int] = {}
    original = screened.row_index if screened and screened.row_index else None
    pending_bad = list(bad_lines)
    for position, row in enumerate(_rows(dataset)):
        if spec.limit is not None and len(loaded.problems) >= spec.limit:
            break
        index = original[position] if original else position
        while pending_bad and pending_bad[0].row_index < index:  # bad lines read before this row
            loaded.skipped.append(pending_bad.pop(0))
        loaded.rows_read = index + 1
        provenance = Provenance(
            source=spec.dataset,
            repo_id=repo_id,
            revision=revision,
            config=config,
            split=spec.split,
            row_index=index,
        )
        result = _row_to_problem(row, index, provenance, question_col, solution_col, answer_col, spec.solution_optional)
        if isinstance(result, SkippedRow):
            loaded.skipped.append(result)
            continue
        if result.id in seen:
            loaded.skipped.append(
                SkippedRow(index, DUPLICATE_QUESTION, f"same question as row {seen[result.id]}")
            )
            continue
        seen[result.id] = index
        loaded.problems.append(result)
    if spec.limit is None or len(loaded.problems) < spec.limit:
        loaded.skipped.extend(pending_bad)  # bad lines after the last row
        loaded.rows_read = max(loaded.rows_read, max((r.row_index + 1 for r in bad_lines), default=0))
    return loaded


def _rows(dataset: Any) -> Iterable[dict[str, Any]]:
    # Iterating a datasets.Dataset decodes rows lazily in batches: stopping at `limit` stops
    # the decoding (the Arrow data itself is memory-mapped).
    return iter(dataset)


def _text(value: Any) -> str | None:
    """Cell -> text: None and strings as is (None -> ""), numbers as strings, else None."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


def _row_to_problem(
    row: dict[str, Any],
    index: int,
    provenance: Provenance,
    question_col: str,
    solution_col: str,
    answer_col: str | None,
    solution_optional: bool = False,
) -> Problem | SkippedRow:
    question = _text(row.get(question_col))
    if question is None:
        kind = type(row.get(question_col)).__name__
        return SkippedRow(index, NON_TEXT_QUESTION, f"column '{question_col}' holds a {kind}")
    if not question.strip():
        return SkippedRow(index, EMPTY_QUESTION)
    solution = _text(row.get(solution_col)) if solution_col else ""
    if solution is None:
        kind = type(row.get(solution_col)).__name__
        return SkippedRow(index, NON_TEXT_SOLUTION, f"column '{solution_col}' holds a {kind}")
    if not solution.strip() and not solution_optional:
        return SkippedRow(index, EMPTY_SOLUTION)
    answer = ""
    if answer_col is not None:
        answer = (_text(row.get(answer_col)) or "").strip()
    if not answer:
        answer = (last_boxed(solution) or "").strip()
    if not answer:
        detail = "no \\boxed{} in the solution"
        if answer_col is not None:
            detail = f"empty '{answer_col}' and " + detail
        return SkippedRow(index, NO_GOLD_ANSWER, detail)
    used = {question_col, solution_col, answer_col}
    extra = {key: value for key, value in row.items() if key not in used}
    return Problem(
        id=problem_id(question),
        question=question,
        solution=solution,
        answer=answer,
        provenance=provenance,
        extra=extra,
    )


def source_record(source) -> dict:
    """Where the data came from, for the run config and the card."""
    return {
        "dataset": source.spec.dataset,
        "preset": source.preset,
        "kind": source.kind,
        "repo_id": source.repo_id,
        "revision": source.revision,
        "config": source.config,
        "split": source.split,
        "license": source.license,
        "columns": {"question": source.question_column, "solution": source.solution_column, "answer": source.answer_column},
        "rows": source.num_rows,
        "skipped": source.skipped_by_reason(),
        "fingerprint": source.fingerprint(),
    }


def source_spec(dataset: str, options: dict[str, Any], limit: int | None) -> SourceSpec:
    return SourceSpec(
        dataset=dataset,
        split=options["split"],
        revision=options["revision"],
        config=options["dataset_config"],
        question_column=options["question_column"],
        solution_column=options["solution_column"],
        answer_column=options["answer_column"],
        limit=limit,
        preset=options["preset"],
    )
