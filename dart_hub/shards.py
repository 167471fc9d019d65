"""Deterministic sharding of problems across independent jobs (job arrays, matrix builds), and
merging the shard outputs back into one dataset folder."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from dart_hub.errors import DartHubError
from dart_hub.records import Problem

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based, like SLURM_ARRAY_TASK_ID and matrix indices)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SHARD.match(text)
        if not match:
            raise DartHubError(f"--shard must look like I/N (e.g. 3/16, 0-based), got {text!r}")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or index >= count:
            raise DartHubError(f"--shard {text}: the index must be in 0..N-1 and N at least 1")
        return cls(index, count)

    @property
    def name(self) -> str:
        return f"shard-{self.index:05d}-of-{self.count:05d}"

    def owns(self, problem_id: str) -> bool:
        # problem ids are hex digests of the question: uniform, stable across runs and machines
        return int(problem_id, 16) % self.count == self.index

    def select(self, problems: Sequence[Problem]) -> list[Problem]:
        return [p for p in problems if self.owns(p.id)]


# --- merging the outputs of `adapt --shard I/N` (`dart-hub merge`, `dart_hub.api.merge`) ---

# Settings that must agree between shards for their union to be one run.
SAME_RUN_KEYS = ("fingerprint", "student", "student_revision", "adapt", "prompts")
# Engine fields that describe a run's state, not the engine: they differ between shards anyway.
ENGINE_STATE_KEYS = ("prefix_cache_hit_rate",)


@dataclass
class MergeResult:
    """What `merge_shards` wrote: the summary `dart-hub merge --json` prints, the merged
    folder, the shard folders it read, and each shard's engine when the shards ran on
    different engines (else empty; the command warns about it)."""

    summary: dict
    output: Path
    shards: list[str]
    engine_by_shard: dict[str, dict]

    @property
    def warnings(self) -> list[str]:
        if not self.engine_by_shard:
            return []
        return [
            f"the shards ran on different engines ({', '.join(sorted(self.engine_by_shard))}); the card names the first "
            f"one's, dart_config.json lists each shard's under engine_by_shard"
        ]


def load_shard_configs(shards_dir: Path) -> list[tuple[Path, dict]]:
    """Each shard folder of `shards_dir` (shard-IIIII-of-NNNNN) with its dart_config.json."""
    from dart_hub.publish.layout import CONFIG_FILE

    if not shards_dir.is_dir():
        raise DartHubError(f"{shards_dir} is not a folder; pass the --output folder of your `adapt --shard` jobs")
    found = []
    for folder in sorted(shards_dir.glob("shard-*-of-*")):
        path = folder / CONFIG_FILE
        if path.is_file():
            found.append((folder, json.loads(path.read_text(encoding="utf-8"))))
    if not found:
        raise DartHubError(f"no shard folders (shard-IIIII-of-NNNNN with {CONFIG_FILE}) in {shards_dir}; run `dart-hub adapt --shard I/N --output {shards_dir}` first")
    return found


def check_shards(configs: list[tuple[Path, dict]]) -> tuple[int, list[int]]:
    """Refuse shards of different runs; return the shard count and the missing indices."""
    first_folder, first = configs[0]
    for folder, config in configs[1:]:
        for key in SAME_RUN_KEYS:
            if config.get(key) != first.get(key):
                raise DartHubError(f"{folder.name} was made with a different {key} than {first_folder.name}; merge only shards of one run (same student, dataset, settings and seed)")
        if config.get("source", {}).get("fingerprint") != first.get("source", {}).get("fingerprint"):
            raise DartHubError(f"{folder.name} was made from different source data than {first_folder.name}")
    shards = [c.get("shard") for _, c in configs]
    if any(s is None for s in shards):
        raise DartHubError("a folder in the shard dir was not written with --shard; merge only `adapt --shard I/N` outputs")
    counts = {s["count"] for s in shards}
    if len(counts) != 1:
        raise DartHubError(f"shards disagree on the shard count N: {sorted(counts)}")
    count = counts.pop()
    indices = [s["index"] for s in shards]
    if len(set(indices)) != len(indices):
        raise DartHubError("the same shard index appears twice in the shard dir")
    return count, sorted(set(range(count)) - set(indices))


def _described(engine: dict | None) -> bool:
    """A shard that generated nothing (empty, or everything resumed) only knows the engine's
    name and model: its description says nothing about the engine."""
    return isinstance(engine, dict) and bool(set(engine) - {"engine", "model"})


def merged_engine(configs: list[tuple[Path, dict]]) -> tuple[dict | None, dict[str, dict]]:
    """The engine description of the first shard that has one, and each shard's when the
    shards' descriptions disagree (else an empty dict)."""
    described = [(folder.name, c["engine"]) for folder, c in configs if _described(c.get("engine"))]
    if not described:
        return configs[0][1].get("engine"), {}
    strip = lambda e: {k: v for k, v in e.items() if k not in ENGINE_STATE_KEYS}  # noqa: E731
    first = strip(described[0][1])
    if all(strip(engine) == first for _, engine in described[1:]):
        return described[0][1], {}
    return described[0][1], dict(described)


def merge_shards(shards_dir: Path, output: Path, allow_missing: bool = False) -> MergeResult:
    """Combine the shard folders of one run into one Hub-ready folder, in the order an
    unsharded run would have written (source row order); an example found in more than one
    shard is kept once (the first copy)."""
    from dart_hub.adaptation.pipeline import summarize
    from dart_hub.config import AdaptConfig
    from dart_hub.publish.folder import read_examples, write_folder

    shards_dir, output = Path(shards_dir), Path(output)
    configs = load_shard_configs(shards_dir)
    count, missing = check_shards(configs)
    if missing and not allow_missing:
        raise DartHubError(f"missing shards {missing} of {count}; run them, or pass --allow-missing to merge what is there")

    seen: set[str] = set()
    examples, duplicates = [], []
    for folder, _ in configs:
        for example in read_examples(folder):
            if example.id in seen:
                duplicates.append(example.id)
                continue
            seen.add(example.id)
            examples.append(example)
    # the order an unsharded run would have: source row order
    examples.sort(key=lambda e: (e.provenance.get("row_index", 0), e.id))

    base = configs[0][1]
    method = base.get("method") or "dart"
    if method == "dart":
        config = AdaptConfig.from_dict(base["adapt"])
    else:  # other methods keep their settings under their own name; summarize needs one of them
        settings = base.get(method) or {}
        config = SimpleNamespace(max_repetition=settings.get("max_repetition", 1.0))
    summary = {"method": method, **summarize(examples, config)}
    summary["skipped_rows"] = base.get("summary", {}).get("skipped_rows")
    summary["seconds"] = round(sum(c.get("summary", {}).get("seconds", 0) for _, c in configs), 1)
    summary["shards"] = count
    summary["missing_shards"] = missing
    summary["duplicate_examples"] = len(duplicates)
    run_config = {k: v for k, v in base.items() if k != "shard"}
    engine, disagree = merged_engine(configs)
    if engine is not None:
        run_config["engine"] = engine
    if disagree:
        run_config["engine_by_shard"] = disagree
    run_config["summary"] = summary
    run_config["merged_from"] = [folder.name for folder, _ in configs]
    write_folder(output, examples, run_config, base["source"]["columns"], base["prompts"]["sft_system"])
    summary["output"] = str(output)
    return MergeResult(summary=summary, output=output, shards=run_config["merged_from"], engine_by_shard=disagree)
