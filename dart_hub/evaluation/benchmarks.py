"""The evaluation benchmarks of the DART paper (Qwen2.5-Math evaluation suite layout): the five of
its Table 1 (the default set) and MATH-500 and Minerva Math, the other two of its seven.

Each `Benchmark` says where the public copy lives on the Hub (repo id, config, split, an
optional pinned revision), how its columns map onto an `EvalItem` and how the gold answer is
read from a row. `load_benchmark` reads one through `datasets`, from the Hub or from a local
.jsonl / .json / .parquet file or folder given with `--benchmark-source NAME=PATH_OR_REPO`.

Which ids and counts could be checked (offline, from public Hub pages) is written in
docs/evaluation.md; every entry's `note` says the same in one line.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError

LOCAL_FORMATS = {".jsonl": "json", ".json": "json", ".parquet": "parquet"}
CHOICE_LETTERS = "ABCD"
_TOKEN = re.compile(r"hf_[A-Za-z0-9]{8,}")


@dataclass(frozen=True)
class EvalItem:
    """One benchmark question. `gold` is the gold answer as text (a letter for multiple choice);
    `choices` holds the option texts of a multiple-choice question (shown as A-D), else None."""

    benchmark: str
    id: str
    question: str
    gold: str
    choices: list[str] | None = None


# ---------------------------------------------------------------------------------------------
# Gold answers
# ---------------------------------------------------------------------------------------------


def gsm8k_gold(answer: Any) -> str | None:
    """GSM8K: the text after the last `####` of the answer column, thousands commas removed
    ("#### 1,234" -> "1234")."""
    if not isinstance(answer, str) or "####" not in answer:
        return None
    gold = answer.rsplit("####", 1)[1].strip().replace(",", "")
    return gold or None


def plain_gold(answer: Any) -> str | None:
    """GaoKao 2023 En / College Math: the answer column with `$` removed, stripped."""
    if isinstance(answer, bool) or answer is None:
        return None
    if isinstance(answer, int | float):
        answer = str(answer)
    if not isinstance(answer, str):
        return None
    return answer.replace("$", "").strip() or None


def olympiad_gold(final_answer: Any) -> str | None:
    """OlympiadBench: the first entry of `final_answer` (a list of LaTeX strings), `$` removed.
    A plain string (mirrors that flattened the list) is accepted as is."""
    if isinstance(final_answer, list | tuple):
        if not final_answer:
            return None
        final_answer = final_answer[0]
    return plain_gold(final_answer)


def choice_gold(answer: Any) -> str | None:
    """MMLU-STEM: the choice index 0-3 as a letter A-D (a letter, or a digit string, is
    accepted too)."""
    if isinstance(answer, bool):
        return None
    if isinstance(answer, str):
        text = answer.strip()
        if len(text) == 1 and text.upper() in CHOICE_LETTERS:
            return text.upper()
        if text.isdigit():
            answer = int(text)
        else:
            return None
    if isinstance(answer, int) and 0 <= answer < len(CHOICE_LETTERS):
        return CHOICE_LETTERS[answer]
    return None


def boxed_or_plain_gold(answer: Any) -> str | None:
    """MATH-500 / Minerva Math: the answer column as is (`$` removed); a full worked solution
    (the suite's own files carry `solution` only) gives its last `\\boxed{}`."""
    from dart_hub.boxed import last_boxed

    if isinstance(answer, str) and ("\\boxed" in answer or "\\fbox" in answer):
        answer = last_boxed(answer)
    return plain_gold(answer)


# ---------------------------------------------------------------------------------------------
# Registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Benchmark:
    """A benchmark: Hub source, column mapping, gold extraction, expected size.

    `question_columns` / `gold_columns`: the first column present in the data is used (the
    first is the registry source's; the others let mirrors with other names load unchanged).
    `exclude_subjects`: rows whose `subject` column is one of these are left out.
    `rows`: rows of the full benchmark after exclusions (a mismatch is reported, not fatal).
    """

    name: str
    title: str
    repo_id: str
    config: str | None
    split: str
    revision: str | None
    rows: int
    question_columns: tuple[str, ...]
    gold_columns: tuple[str, ...]
    gold: Callable[[Any], str | None]
    choices_column: str | None = None
    exclude_subjects: tuple[str, ...] = ()
    note: str = ""

    @property
    def multiple_choice(self) -> bool:
        return self.choices_column is not None


BENCHMARKS: dict[str, Benchmark] = {
    "gsm8k": Benchmark(
        name="gsm8k",
        title="GSM8K",
        repo_id="openai/gsm8k",
        config="main",
        split="test",
        revision=None,
        rows=1319,
        question_columns=("question",),
        gold_columns=("answer",),
        gold=gsm8k_gold,
        note="id, config, split and columns from the dataset's public card; revision not pinned",
    ),
    "gaokao2023en": Benchmark(
        name="gaokao2023en",
        title="GaoKao 2023 En",
        repo_id="MARIO-Math-Reasoning/Gaokao2023-Math-En",
        config=None,
        split="train",  # one file, Gaokao2023-Math-En.jsonl: `datasets` calls it train
        revision="6c7bdecd205ed623b5e6c92335deb4f13a7cdd9b",
        rows=385,
        question_columns=("question", "problem"),
        gold_columns=("answer",),
        gold=plain_gold,
        note="id and revision (latest commit seen on its public file list) not downloaded here",
    ),
    "olympiadbench": Benchmark(
        name="olympiadbench",
        title="OlympiadBench",
        repo_id="math-ai/olympiadbench",
        config=None,
        split="test",
        revision=None,
        rows=675,
        question_columns=("question", "problem"),
        gold_columns=("final_answer", "answer"),
        gold=olympiad_gold,
        note="675-row English text-only maths subset (test.jsonl); columns not checked here",
    ),
    "college_math": Benchmark(
        name="college_math",
        title="College Math",
        repo_id="di-zhang-fdu/College_Math_Test",
        config=None,
        split="test",
        revision=None,
        rows=2818,
        question_columns=("question", "problem"),
        gold_columns=("answer",),
        gold=plain_gold,
        note="2.82k-row test split seen on its public viewer; columns not checked here",
    ),
    "mmlu_stem": Benchmark(
        name="mmlu_stem",
        title="MMLU-STEM",
        repo_id="TIGER-Lab/MMLU-STEM",
        config=None,
        split="test",
        revision=None,
        rows=3018,
        question_columns=("question",),
        gold_columns=("answer",),
        gold=choice_gold,
        choices_column="choices",
        exclude_subjects=("anatomy",),
        note="3153 rows on the Hub; the suite's 3018 = 3153 minus the 135 anatomy rows (inferred)",
    ),
    # The paper's other two benchmarks (not in Table 1's average, so not in the default set).
    "math500": Benchmark(
        name="math500",
        title="MATH-500",
        repo_id="HuggingFaceH4/MATH-500",
        config=None,
        split="test",  # one file, test.jsonl
        revision=None,
        rows=500,
        question_columns=("problem", "question"),
        gold_columns=("answer", "solution"),
        gold=boxed_or_plain_gold,
        note="the suite's 'math500' (PRM800K test split); columns problem/solution/answer/subject/level/unique_id from mirrors' cards; not downloaded here",
    ),
    "minerva_math": Benchmark(
        name="minerva_math",
        title="Minerva Math",
        repo_id="math-ai/minervamath",
        config=None,
        split="test",
        revision=None,
        rows=272,
        question_columns=("question", "problem"),
        gold_columns=("answer", "solution"),
        gold=boxed_or_plain_gold,
        note="272-row test split with columns question/answer from its public card; not downloaded here",
    ),
}

# Table 1's five: the default set, and the columns of the paper's average.
BENCHMARK_NAMES: tuple[str, ...] = ("gsm8k", "gaokao2023en", "olympiadbench", "college_math", "mmlu_stem")
# Every registered benchmark, in column order (`--benchmarks all`).
ALL_BENCHMARKS: tuple[str, ...] = tuple(BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise DartHubError(
            f"unknown benchmark {name!r}; known benchmarks: {', '.join(ALL_BENCHMARKS)}"
        ) from None


def parse_benchmark_list(text: str | Sequence[str] | None) -> list[str]:
    """'gsm8k,mmlu_stem' (or a list; None or 'default' for Table 1's five; 'all' for every
    registered benchmark) -> validated names, in order, without duplicates."""
    if text is None:
        return list(BENCHMARK_NAMES)
    parts = text.split(",") if isinstance(text, str) else list(text)
    names = [p.strip() for p in parts if p and p.strip()]
    if not names or names == ["default"]:
        return list(BENCHMARK_NAMES)
    if names == ["all"]:
        return list(ALL_BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise DartHubError(
            f"unknown benchmark {', '.join(repr(n) for n in unknown)}; known benchmarks: "
            f"{', '.join(ALL_BENCHMARKS)} (or 'default' for the first five, 'all' for every one)"
        )
    return list(dict.fromkeys(names))


# ---------------------------------------------------------------------------------------------
# Sources (registry default or a user override)
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BenchmarkSource:
    """Where to read a benchmark: a local path, or a Hub repo (+ config, split, revision)."""

    path: str | None = None
    repo_id: str | None = None
    config: str | None = None
    split: str | None = None
    revision: str | None = None

    @staticmethod
    def of(benchmark: Benchmark) -> BenchmarkSource:
        return BenchmarkSource(
            repo_id=benchmark.repo_id,
            config=benchmark.config,
            split=benchmark.split,
            revision=benchmark.revision,
        )

    @staticmethod
    def parse(spec: str, benchmark: Benchmark | None = None) -> BenchmarkSource:
        """`PATH` (an existing .jsonl/.json/.parquet file or folder) or
        `OWNER/NAME[@REVISION][,config=C][,split=S]` (a path takes `,split=S` too). A Hub override of the registry repo itself
        keeps the registry's config and split unless given; another repo gets the default config
        and the registry split (or the repo's only split)."""
        text = spec.strip()
        if not text:
            raise DartHubError("empty benchmark source; use NAME=PATH or NAME=OWNER/REPO[@REVISION]")
        if Path(text).expanduser().exists():
            return BenchmarkSource(path=str(Path(text).expanduser()), split=benchmark.split if benchmark else None)
        head, *options = [part.strip() for part in text.split(",")]
        extra: dict[str, str] = {}
        for option in options:
            key, sep, value = option.partition("=")
            if not sep or key not in ("config", "split", "revision") or not value:
                raise DartHubError(
                    f"benchmark source {spec!r}: unknown option {option!r}; allowed: config=C, "
                    f"split=S, revision=R"
                )
            extra[key] = value
        if Path(head).expanduser().exists():
            if set(extra) - {"split"}:
                raise DartHubError(f"benchmark source {spec!r}: a local path takes only split=S")
            return BenchmarkSource(
                path=str(Path(head).expanduser()),
                split=extra.get("split", benchmark.split if benchmark else None),
            )
        repo_id, _, revision = head.partition("@")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*", repo_id):
            raise DartHubError(
                f"benchmark source {spec!r} is neither an existing local path nor a Hub dataset "
                f"id (OWNER/NAME[@REVISION])"
            )
        same = benchmark is not None and repo_id == benchmark.repo_id
        return BenchmarkSource(
            repo_id=repo_id,
            config=extra.get("config", benchmark.config if same and benchmark else None),
            split=extra.get("split", benchmark.split if benchmark else None),
            revision=extra.get("revision", revision or (benchmark.revision if same and benchmark else None)),
        )

    def describe(self) -> str:
        if self.path is not None:
            return self.path
        where = f"{self.repo_id}@{self.revision}" if self.revision else str(self.repo_id)
        return where + (f" config {self.config}" if self.config else "")


def parse_source_overrides(values: Iterable[str]) -> dict[str, BenchmarkSource]:
    """['gsm8k=./gsm8k.jsonl', 'mmlu_stem=me/mmlu@abc'] -> {name: BenchmarkSource}."""
    overrides: dict[str, BenchmarkSource] = {}
    for value in values:
        name, sep, spec = value.partition("=")
        name = name.strip()
        if not sep or not name:
            raise DartHubError(
                f"--benchmark-source {value!r}: expected NAME=PATH_OR_REPO, e.g. gsm8k=./gsm8k.jsonl"
            )
        overrides[name] = BenchmarkSource.parse(spec, get_benchmark(name))
    return overrides


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


@dataclass
class LoadedBenchmark:
    """The items of one benchmark and where exactly they came from."""

    benchmark: Benchmark
    items: list[EvalItem]
    source: dict[str, Any]  # kind, repo_id, resolved revision / files + sha256, split, columns
    rows_in_source: int  # rows of the split, before exclusions and the limit
    excluded: int = 0  # rows left out by `exclude_subjects`
    skipped: dict[str, int] = field(default_factory=dict)  # reason -> rows
    limited: bool = False

    @property
    def complete_rows(self) -> int:
        """Rows the full benchmark has in this source (after exclusions)."""
        return self.rows_in_source - self.excluded

    def warnings(self) -> list[str]:
        out = []
        if self.complete_rows != self.benchmark.rows:
            out.append(
                f"{self.benchmark.name}: the source has {self.complete_rows} rows, the "
                f"benchmark {self.benchmark.rows}; check --benchmark-source"
            )
        if self.skipped:
            reasons = ", ".join(f"{count} {reason}" for reason, count in self.skipped.items())
            out.append(f"{self.benchmark.name}: rows skipped ({reasons})")
        return out


def load_benchmark(
    name: str, source_override: str | BenchmarkSource | None = None, limit: int | None = None
) -> list[EvalItem]:
    """The first `limit` items (all when None) of benchmark `name`, from the registry's Hub
    source or from `source_override` (a BenchmarkSource, or a string as for
    --benchmark-source: a local path or OWNER/NAME[@REVISION])."""
    return load_benchmark_data(name, source_override, limit).items


def load_benchmark_data(
    name: str, source_override: str | BenchmarkSource | None = None, limit: int | None = None
) -> LoadedBenchmark:
    """`load_benchmark` plus provenance, skipped rows and exclusions."""
    benchmark = get_benchmark(name)
    if isinstance(source_override, str):
        source = BenchmarkSource.parse(source_override, benchmark)
    else:
        source = source_override or BenchmarkSource.of(benchmark)
    if source.path is not None:
        dataset, provenance = _load_local(benchmark, source)
    else:
        dataset, provenance = _load_hub(benchmark, source)
    return _items(benchmark, dataset, provenance, limit)


def _load_local(benchmark: Benchmark, source: BenchmarkSource) -> tuple[Any, dict[str, Any]]:
    import datasets

    path = Path(source.path or "")
    files, split = _local_files(benchmark, path, source.split)
    builders = {LOCAL_FORMATS[Path(f).suffix.lower()] for f in files}
    if len(builders) > 1:
        raise DartHubError(
            f"{benchmark.name} source {path} mixes file formats; point at one file or a folder "
            f"of one format"
        )
    try:
        dataset = datasets.load_dataset(builders.pop(), data_files={split: files}, split=split)
    except Exception as error:  # datasets raises many types for unreadable files
        cause = error.__cause__ or error
        raise DartHubError(
            f"could not read {benchmark.name} source {path}: {_redact(str(cause))}. Check the "
            f"file format (JSON lines, JSON array of objects, or parquet)"
        ) from error
    provenance = {
        "kind": "local",
        "path": str(path),
        "split": split,
        "files": [{"name": Path(f).name, "sha256": _sha256(f)} for f in files],
    }
    return dataset, provenance


def _local_files(benchmark: Benchmark, path: Path, split: str | None) -> tuple[list[str], str]:
    if path.is_file():
        if path.suffix.lower() not in LOCAL_FORMATS:
            raise DartHubError(
                f"{benchmark.name} source {path} is not a .jsonl, .json or .parquet file"
            )
        return [str(path.resolve())], split or benchmark.split
    from datasets.data_files import DataFilesDict, EmptyDatasetError, get_data_patterns

    try:
        found = DataFilesDict.from_patterns(get_data_patterns(str(path)), base_path=str(path))
    except (EmptyDatasetError, FileNotFoundError):
        found = {}
    splits = {
        str(name): sorted(str(f) for f in files if Path(str(f)).suffix.lower() in LOCAL_FORMATS)
        for name, files in found.items()
    }
    splits = {name: files for name, files in splits.items() if files}
    if not splits:
        raise DartHubError(
            f"{benchmark.name} source folder {path} holds no .jsonl, .json or .parquet files"
        )
    chosen = _choose_split(benchmark, str(path), split, list(splits))
    return splits[chosen], chosen


def _choose_split(benchmark: Benchmark, where: str, wanted: str | None, available: list[str]) -> str:
    if wanted in available:
        return wanted
    if len(available) == 1:
        return available[0]
    raise DartHubError(
        f"{benchmark.name} source {where} has no split '{wanted}'; available splits: "
        f"{', '.join(available)}. Add ,split=NAME to --benchmark-source"
    )


def _load_hub(benchmark: Benchmark, source: BenchmarkSource) -> tuple[Any, dict[str, Any]]:
    import datasets
    import huggingface_hub
    from huggingface_hub import constants

    repo_id = source.repo_id or benchmark.repo_id
    revision = source.revision
    try:
        if not constants.HF_HUB_OFFLINE:
            # Resolve the commit first so results.json names exactly what was evaluated.
            info = huggingface_hub.HfApi().dataset_info(repo_id, revision=source.revision)
            revision = info.sha or source.revision
        loaded = datasets.load_dataset(repo_id, name=source.config, revision=revision)
    except Exception as error:
        raise _hub_error(benchmark, repo_id, source, error) from error
    split = _choose_split(benchmark, repo_id, source.split, list(loaded))
    provenance = {
        "kind": "hub",
        "repo_id": repo_id,
        "revision": revision,
        "config": source.config,
        "split": split,
    }
    return loaded[split], provenance


def _hub_error(
    benchmark: Benchmark, repo_id: str, source: BenchmarkSource, error: Exception
) -> DartHubError:
    import datasets.exceptions as dx
    from huggingface_hub import constants
    from huggingface_hub import errors as hx

    hint = f"pass a local copy with --benchmark-source {benchmark.name}=PATH"
    if isinstance(error, DartHubError):
        return error
    if isinstance(error, hx.RevisionNotFoundError):
        return DartHubError(
            f"{benchmark.name}: revision '{source.revision}' not found in dataset {repo_id}; "
            f"use --benchmark-source {benchmark.name}={repo_id}@REVISION with an existing one"
        )
    if isinstance(error, hx.GatedRepoError):
        return DartHubError(
            f"{benchmark.name}: dataset {repo_id} is gated: accept its terms on the Hub, then run "
            f"`hf auth login` or set HF_TOKEN"
        )
    if isinstance(error, hx.RepositoryNotFoundError | dx.DatasetNotFoundError):
        return DartHubError(
            f"{benchmark.name}: dataset {repo_id} not found on the Hub ({constants.ENDPOINT}); {hint}"
        )
    message = _redact(" ".join(str(error).split()))
    return DartHubError(
        f"{benchmark.name}: could not load dataset {repo_id} from the Hub ({constants.ENDPOINT}): "
        f"{message}. Check the network and HF_ENDPOINT, or {hint}"
    )


def _pick(columns: Sequence[str], candidates: Sequence[str]) -> str | None:
    return next((c for c in candidates if c in columns), None)


def _items(
    benchmark: Benchmark, dataset: Any, provenance: dict[str, Any], limit: int | None
) -> LoadedBenchmark:
    columns = list(dataset.column_names)
    where = provenance.get("repo_id") or provenance.get("path")
    question_col = _pick(columns, benchmark.question_columns)
    gold_col = _pick(columns, benchmark.gold_columns)
    missing = [
        f"a question column ({' or '.join(benchmark.question_columns)})" if question_col is None else "",
        f"a gold column ({' or '.join(benchmark.gold_columns)})" if gold_col is None else "",
        f"a '{benchmark.choices_column}' column"
        if benchmark.choices_column and benchmark.choices_column not in columns
        else "",
    ]
    missing = [m for m in missing if m]
    if missing:
        raise DartHubError(
            f"{benchmark.name} source {where} lacks {' and '.join(missing)}; its columns: "
            f"{', '.join(columns)}"
        )
    id_col = _pick(columns, ("id", "idx", "unique_id"))
    subject_col = "subject" if benchmark.exclude_subjects and "subject" in columns else None
    provenance = {**provenance, "columns": {"question": question_col, "gold": gold_col}}
    if benchmark.choices_column:
        provenance["columns"]["choices"] = benchmark.choices_column

    items: list[EvalItem] = []
    seen_ids: set[str] = set()
    skipped: dict[str, int] = {}
    excluded = 0
    limited = False
    for index, row in enumerate(dataset):
        if subject_col and row.get(subject_col) in benchmark.exclude_subjects:
            excluded += 1
            continue
        if limit is not None and len(items) >= limit:
            limited = True
            continue  # keep counting exclusions so the full size stays known
        question = row.get(question_col)
        if not isinstance(question, str) or not question.strip():
            skipped["empty_question"] = skipped.get("empty_question", 0) + 1
            continue
        gold = benchmark.gold(row.get(gold_col))
        if gold is None:
            skipped["no_gold_answer"] = skipped.get("no_gold_answer", 0) + 1
            continue
        choices = None
        if benchmark.choices_column:
            raw = row.get(benchmark.choices_column)
            if not isinstance(raw, list | tuple) or len(raw) != len(CHOICE_LETTERS):
                skipped["bad_choices"] = skipped.get("bad_choices", 0) + 1
                continue
            choices = [str(choice).strip() for choice in raw]
        raw_id = row.get(id_col) if id_col else None
        item_id = f"{benchmark.name}-{raw_id if raw_id not in (None, '') else index}"
        if item_id in seen_ids:  # ids key the stored results: keep them unique
            item_id = f"{item_id}-row{index}"
        seen_ids.add(item_id)
        items.append(EvalItem(benchmark.name, item_id, question.strip(), gold, choices))
    if excluded:
        provenance["excluded_subjects"] = list(benchmark.exclude_subjects)
    return LoadedBenchmark(
        benchmark=benchmark,
        items=items,
        source=provenance,
        rows_in_source=len(dataset),
        excluded=excluded,
        skipped=dict(sorted(skipped.items())),
        limited=limited,
    )


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _redact(message: str) -> str:
    return _TOKEN.sub("hf_***", message)
