"""The work dir: durable per-chunk results, so a killed run resumes where it stopped.

Layout::

    <work_dir>/run.json                          what this run is (fingerprint and its inputs)
    <work_dir>/chunks/chunk-00003-<ids>.jsonl    one JSON record per example of chunk 3

    <probe_cache>/<probe key>/probes-<ids>.jsonl.gz   simulation results of one chunk

The probe cache holds the simulation phase's results (scores and judged rollouts) under a key
made only of what decides them (source, student, engine, prompts, simulation settings, seed,
segmentation), so runs that differ only after probing - another strategy (full, gap, first),
epsilon, peak rule, exploration or cleaning settings - reuse them instead of generating the
most expensive phase again (paper Table 3's First and Gap arms cost no new simulation).

A chunk file is written to a temporary name, fsync'd and renamed into place (then the folder
is fsync'd), so it is either absent or complete: `kill -9` at any moment loses at most the
chunk in flight. The file name carries a hash of the chunk's problem ids, so a rerun with a
different --limit or --shard never mistakes one chunk for another.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError

SCHEMA_VERSION = 1


def fingerprint(inputs: dict[str, Any]) -> str:
    """Stable hash of everything that decides a run's result."""
    canonical = json.dumps({"schema": SCHEMA_VERSION, **inputs}, sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def default_work_root() -> Path:
    root = os.environ.get("DART_HUB_CACHE")
    if root:
        return Path(root) / "work"
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "dart-hub" / "work"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def default_probe_cache() -> Path:
    return default_work_root().parent / "probes"


# errno values that mean "the disk (or the quota, or the file size limit) is full".
OUT_OF_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


def write_atomic(path: Path, text: str | bytes) -> None:
    """Write `text` to a temporary sibling, fsync, rename over `path`. On failure the temporary
    file is removed and `path` is untouched; a full disk is a one-line DartHubError."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    data = text.encode("utf-8") if isinstance(text, str) else text
    try:
        with open(tmp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(error, OSError) and error.errno in OUT_OF_SPACE:
            raise DartHubError(
                f"no space left on the device while writing {path} ({os.strerror(error.errno)}); what was "
                f"finished before is kept: free some space and run the same command again to resume"
            ) from None
        raise
    _fsync_dir(path.parent)


def _ids_hash(ids: Sequence[str]) -> str:
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12]


_ID_PREFIX = '{"id": '  # how `ProbeStore.save` starts every line
_DECODER = json.JSONDecoder()


class ProbeStore:
    """Simulation results of finished chunks, shared by every run with the same probe key.

    Each chunk file `probes-<ids>.jsonl.gz` has an index beside it, `probes-<ids>.ids` (its
    problem ids, one a line). A lookup of problems that are not in the chunk file of the same
    ids reads the indexes (ids only), then only the chunk files that hold the problems asked
    for, one at a time, keeping only those problems: memory stays flat in the cache's size
    (an earlier version loaded every cached chunk into memory on the first miss). A cache
    written before indexes existed gets them on first use, one chunk file at a time.
    """

    def __init__(self, root: str | Path, probe_key: str, inputs: dict[str, Any]):
        self.path = Path(root) / probe_key
        self.path.mkdir(parents=True, exist_ok=True)
        self.reused = 0  # chunks whose simulation results all came from the cache
        self.reused_problems = 0  # problems whose simulation results came from the cache
        self._where: dict[str, str] | None = None  # problem id -> chunk file name
        meta = self.path / "probe.json"
        if not meta.exists():
            write_atomic(meta, json.dumps({"probe_key": probe_key, **inputs}, indent=2, sort_keys=True, default=str))

    def chunk_path(self, ids: Sequence[str]) -> Path:
        return self.path / f"probes-{_ids_hash(ids)}.jsonl.gz"

    def load(self, ids: Sequence[str]) -> list[dict[str, Any]] | None:
        """Every problem's simulation results, or None when any is missing (see `lookup`)."""
        found = self.lookup(ids)
        return [found[i] for i in ids] if len(found) == len(ids) else None

    def lookup(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The stored simulation results of those of `ids` that have them. Results are per problem
        (rollout seeds depend on the problem, not on its chunk), so a run whose chunks differ from
        the one that filled the cache (another strategy admitting other problems, another
        --chunk-size or --limit) still reuses them; then only the missing problems are probed."""
        wanted = set(ids)
        found = self._read(self.chunk_path(ids), wanted) or {}
        missing = wanted - set(found)
        if missing:
            where = self._index()
            files: dict[str, set[str]] = {}
            for problem_id in missing:
                if problem_id in where:
                    files.setdefault(where[problem_id], set()).add(problem_id)
            for name, wanted_here in sorted(files.items()):
                for problem_id, probe in (self._read(self.path / name, wanted_here) or {}).items():
                    found.setdefault(problem_id, probe)
        found = {i: found[i] for i in ids if i in found}
        if len(found) == len(ids):
            self.reused += 1
        self.reused_problems += len(found)
        return found

    def _index(self) -> dict[str, str]:
        """Problem id -> chunk file, from the `.ids` indexes (made where missing); once per run."""
        if self._where is None:
            self._where = {}
            for path in sorted(self.path.glob("probes-*.jsonl.gz")):
                index = path.with_name(path.name.removesuffix(".jsonl.gz") + ".ids")
                try:
                    problem_ids = index.read_text(encoding="utf-8").splitlines()
                except OSError:
                    records = self._read(path)
                    if records is None:
                        continue  # damaged: never trusted
                    problem_ids = list(records)
                    del records
                    with contextlib.suppress(OSError):
                        write_atomic(index, "".join(f"{i}\n" for i in problem_ids))
                for problem_id in problem_ids:
                    self._where.setdefault(problem_id, path.name)
        return self._where

    @staticmethod
    def _read(path: Path, wanted: set[str] | None = None) -> dict[str, dict[str, Any]] | None:
        """Problem id -> simulation results of one chunk file (only `wanted` ids, when given),
        read line by line; None when the file is absent or damaged (probe again, never trust)."""
        if not path.exists():
            return None
        found: dict[str, dict[str, Any]] = {}
        try:
            with gzip.open(path, "rt", encoding="utf-8") as handle:
                for line in handle:
                    if not line.strip():
                        continue
                    if wanted is not None and line.startswith(_ID_PREFIX):
                        problem_id, _ = _DECODER.raw_decode(line, len(_ID_PREFIX))
                        if problem_id not in wanted:
                            continue  # not asked for: its rollouts are never parsed
                    record = json.loads(line)
                    if "id" in record and "probe" in record and (wanted is None or record["id"] in wanted):
                        found.setdefault(record["id"], record["probe"])
        except (OSError, EOFError, ValueError):
            return None  # damaged cache entry: probe again rather than trust it
        return found

    def save(self, ids: Sequence[str], probes: Sequence[dict[str, Any]]) -> Path:
        path = self.chunk_path(ids)
        text = "".join(json.dumps({"id": i, "probe": p}, ensure_ascii=False) + "\n" for i, p in zip(ids, probes, strict=True))
        # level 1: this runs on the scheduler's thread, and a LIMO chunk is ~100 MB of rollouts
        # (on benchmarks/cluster.py's synthetic rollouts level 1 is 7x faster than the default
        # 9, for files 1.6x larger)
        write_atomic(path, gzip.compress(text.encode("utf-8"), compresslevel=1, mtime=0))
        write_atomic(path.with_name(path.name.removesuffix(".jsonl.gz") + ".ids"), "".join(f"{i}\n" for i in ids))
        if self._where is not None:
            for problem_id in ids:
                self._where.setdefault(problem_id, path.name)
        return path


class WorkDir:
    def __init__(self, path: str | Path, run_key: str, inputs: dict[str, Any]):
        self.path = Path(path)
        self.run_key = run_key
        self.chunks = self.path / "chunks"
        self.chunks.mkdir(parents=True, exist_ok=True)
        meta_path = self.path / "run.json"
        if meta_path.exists():
            try:
                existing = json.loads(meta_path.read_text(encoding="utf-8"))
            except (ValueError, OSError) as error:
                raise DartHubError(
                    f"{meta_path} is damaged ({type(error).__name__}); delete it (the chunks are checked again on resume) "
                    f"or pass another --work-dir"
                ) from None
            if existing.get("fingerprint") != run_key:
                raise DartHubError(
                    f"work dir {self.path} holds a run with other settings (fingerprint "
                    f"{existing.get('fingerprint')}, this run {run_key}); pass another --work-dir or delete it"
                )
        else:
            write_atomic(meta_path, json.dumps({"fingerprint": run_key, **inputs}, indent=2, sort_keys=True, default=str))

    def chunk_path(self, index: int, ids: Sequence[str]) -> Path:
        return self.chunks / f"chunk-{index:05d}-{_ids_hash(ids)}.jsonl"

    def load_chunk(self, index: int, ids: Sequence[str]) -> list[dict[str, Any]] | None:
        path = self.chunk_path(index, ids)
        if not path.exists():
            return None
        records = self._read_chunk(path)
        if [r.get("id") for r in records] != list(ids):
            return None  # not this chunk's content: recompute rather than trust it
        return records

    @staticmethod
    def _read_chunk(path: Path) -> list[dict[str, Any]]:
        """The records of a chunk file; a damaged file (edited by hand, or a disk error) is a
        one-line error naming it and the fix, never a JSON traceback."""
        try:
            records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
        except (ValueError, RecursionError, OSError) as error:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            where = f" at line {error.lineno}" if isinstance(error, json.JSONDecodeError) else ""
            raise DartHubError(
                f"work-dir chunk {path} is damaged ({type(error).__name__}{where}); delete that file and run the same "
                f"command again to recompute that chunk only (the other chunks are kept)"
            ) from None
        if not all(isinstance(record, dict) for record in records):
            raise DartHubError(
                f"work-dir chunk {path} is damaged (a line is not a JSON object); delete that file and run the same "
                f"command again to recompute that chunk only (the other chunks are kept)"
            )
        return records

    def save_chunk(self, index: int, ids: Sequence[str], records: Sequence[dict[str, Any]]) -> Path:
        path = self.chunk_path(index, ids)
        write_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        return path

    def iter_records(self) -> Iterator[dict[str, Any]]:
        for path in sorted(self.chunks.glob("chunk-*.jsonl")):
            yield from self._read_chunk(path)
