"""The probe cache's index: a lookup by problem id reads only the chunk files that hold the
problems asked for, parses only those problems, and its memory does not grow with the cache."""

from __future__ import annotations

import tracemalloc

from dart_hub.store import ProbeStore


def probe(problem_id: str, size: int = 200) -> dict:
    return {"scores": [1.0, 0.5], "rollouts": [[{"text": f"{problem_id} " + "x" * size}]], "prompt_tokens": 1}


def fill(store: ProbeStore, chunks: int, per_chunk: int, size: int = 200) -> list[list[str]]:
    groups = []
    for c in range(chunks):
        ids = [f"p{c:03d}-{k}" for k in range(per_chunk)]
        store.save(ids, [probe(i, size) for i in ids])
        groups.append(ids)
    return groups


def test_a_lookup_reads_only_the_chunk_files_it_needs(tmp_path, monkeypatch):
    store = ProbeStore(tmp_path, "key", {})
    groups = fill(store, chunks=10, per_chunk=4)
    reads: list[str] = []
    original = ProbeStore._read

    def spy(path, wanted=None):
        reads.append(path.name)
        return original(path, wanted)

    monkeypatch.setattr(ProbeStore, "_read", staticmethod(spy))
    fresh = ProbeStore(tmp_path, "key", {})
    ask = [groups[2][1], groups[7][0], groups[7][3], "never-probed"]
    found = fresh.lookup(ask)
    assert found == {i: probe(i) for i in ask[:3]}
    assert fresh.reused == 0 and fresh.reused_problems == 3
    opened = [name for name in reads if (tmp_path / "key" / name).exists()]
    assert sorted(opened) == sorted({store.chunk_path(groups[2]).name, store.chunk_path(groups[7]).name})
    # the exact chunk is one read
    reads.clear()
    assert fresh.load(groups[4]) == [probe(i) for i in groups[4]]
    assert reads == [store.chunk_path(groups[4]).name]


def test_a_cache_written_without_indexes_gets_them_on_first_use(tmp_path):
    store = ProbeStore(tmp_path, "key", {})
    groups = fill(store, chunks=3, per_chunk=2)
    for index in (tmp_path / "key").glob("*.ids"):
        index.unlink()
    found = ProbeStore(tmp_path, "key", {}).lookup([groups[0][0], groups[2][1]])
    assert set(found) == {groups[0][0], groups[2][1]}
    assert len(list((tmp_path / "key").glob("*.ids"))) == 3


def test_a_damaged_chunk_file_is_never_trusted(tmp_path):
    store = ProbeStore(tmp_path, "key", {})
    groups = fill(store, chunks=2, per_chunk=2)
    store.chunk_path(groups[1]).write_bytes(b"not gzip")
    found = ProbeStore(tmp_path, "key", {}).lookup([groups[0][0], groups[1][0]])
    assert set(found) == {groups[0][0]}


def test_lookup_memory_is_flat_in_the_cache_size(tmp_path):
    """A miss on a 32 MB cache holds about one problem's results, not the cache."""
    store = ProbeStore(tmp_path, "key", {})
    groups = fill(store, chunks=32, per_chunk=8, size=125_000)  # 1 MB of rollouts per chunk file

    def peak_of_lookup(ids):
        fresh = ProbeStore(tmp_path, "key", {})
        tracemalloc.start()
        found = fresh.lookup(ids)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(found) == len(ids)
        return peak

    one = peak_of_lookup([groups[30][5]])
    assert one < 2_000_000, one  # < 2 MB while the cache holds 32 MB
