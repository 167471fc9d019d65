"""Issue 17 item 3: an output folder is never a mix of two runs; disk full is one line.

The runs are `adapt --strategy static` (no model, nothing generated), driven as a user types it,
in subprocesses where a kill or a file-size limit has to hit a real process."""

from __future__ import annotations

import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.publish.folder import CONFIG_FILE, DATA_FILE, STEPS_FILE, check_same_run, part_ids

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]


def static_args(out: Path, work: Path, *extra: str) -> list[str]:
    return ["adapt", "--student", "nobody/none", "--dataset", str(DATA / "limo_sample.jsonl"), "--strategy", "static",
            "--output", str(out), "--work-dir", str(work), "--quiet", *extra]  # fmt: skip


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "dart_hub.cli", *args], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two finished folders of different runs (different --limit)."""
    root = tmp_path_factory.mktemp("runs")
    for name, limit in (("a", "2"), ("b", "3")):
        result = CliRunner().invoke(cli, static_args(root / name, root / f"w{name}", "--limit", limit))
        assert result.exit_code == 0, result.output
    return root


def test_every_part_carries_the_same_content_id(two_runs):
    ids = part_ids(two_runs / "a")
    assert set(ids) == {CONFIG_FILE, DATA_FILE, STEPS_FILE, "README.md"} and len(set(ids.values())) == 1
    assert part_ids(two_runs / "b")[CONFIG_FILE] != ids[CONFIG_FILE]
    check_same_run(two_runs / "a")


@pytest.mark.parametrize("part", [DATA_FILE, STEPS_FILE, "README.md"])
def test_push_and_card_refuse_a_folder_mixing_two_runs(two_runs, tmp_path, hub, part):
    mixed = tmp_path / "mixed"
    shutil.copytree(two_runs / "a", mixed)
    shutil.copy(two_runs / "b" / part, mixed / part)
    for args in (["card", str(mixed), "--check"], ["card", str(mixed)], ["push", str(mixed), f"{hub.user}/mixed"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1, (args, result.output)
        assert "mixes parts of different runs" in result.stderr and part in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not hub.repo_exists(f"{hub.user}/mixed")


def test_a_hand_edited_card_without_the_mark_is_still_accepted(two_runs, tmp_path):
    folder = tmp_path / "edited"
    shutil.copytree(two_runs / "a", folder)
    (folder / "README.md").write_text("# My own card\n")
    check_same_run(folder)


def test_rewriting_keeps_foreign_files_and_leaves_no_temporary_folder(tmp_path):
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, static_args(out, tmp_path / "w", "--limit", "2")).exit_code == 0
    (out / "notes.txt").write_text("mine")
    (out / "shard-00000-of-00002").mkdir()
    result = CliRunner().invoke(cli, static_args(out, tmp_path / "w2", "--limit", "3"))
    assert result.exit_code == 0, result.output
    assert (out / "notes.txt").read_text() == "mine" and (out / "shard-00000-of-00002").is_dir()
    assert json.loads((out / CONFIG_FILE).read_text())["summary"]["problems"] == 3
    check_same_run(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "w", "w2"]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # minutes of tiny-model work: the suite's 300 s is a guard for quick tests
def test_kill_during_the_final_write_never_leaves_a_mixed_folder(tmp_path):
    """kill -9 at random moments of a run that rewrites a folder holding an earlier run: the
    folder is the old run, the new run, or absent; never a mix (and push would refuse a mix)."""
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, static_args(out, tmp_path / "w", "--limit", "2")).exit_code == 0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    rng = random.Random(17)
    outcomes = set()
    started = time.monotonic()
    for attempt in range(8):
        limit = "3" if attempt % 2 == 0 else "2"
        process = subprocess.Popen([sys.executable, "-m", "dart_hub.cli", *static_args(out, tmp_path / f"k{attempt}", "--limit", limit)],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        # the import takes most of the run: aim the kill at the write that ends it
        time.sleep(rng.uniform(2.0, 6.0))
        process.send_signal(signal.SIGKILL)
        process.wait()
        if out.exists():
            check_same_run(out)
            outcomes.add(json.loads((out / CONFIG_FILE).read_text())["summary"]["problems"])
        else:
            outcomes.add(None)
    assert time.monotonic() - started < 240
    # a later run cleans up what the killed ones left beside the folder
    assert CliRunner().invoke(cli, static_args(out, tmp_path / "final", "--limit", "2")).exit_code == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    check_same_run(out)


def _limit_file_size(limit: int):
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_full_disk_is_one_line_keeps_chunks_and_the_old_folder_and_leaves_no_temporary_file(tmp_path):
    out, work = tmp_path / "out", tmp_path / "w"
    assert CliRunner().invoke(cli, static_args(out, tmp_path / "w0", "--limit", "2")).exit_code == 0
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    # a first run finishes its chunks but cannot write its output (file size limit = a full disk)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "dart_hub.cli", *static_args(out, work, "--limit", "3", "--chunk-size", "1")]
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, preexec_fn=_limit_file_size(3000))
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "no space left" in lines[0] and "Traceback" not in result.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # old run untouched
    leftovers = [p for p in tmp_path.rglob("*") if ".tmp-" in p.name or ".partial-" in p.name]
    assert leftovers == []
    chunks = sorted((work / "chunks").glob("chunk-*.jsonl"))
    assert len(chunks) == 3  # every finished chunk is kept
    # with space again, the same command resumes from them and writes the folder
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert json.loads((out / CONFIG_FILE).read_text())["summary"]["problems"] == 3
    check_same_run(out)


def test_a_damaged_chunk_names_the_file_and_the_fix(tmp_path):
    work = tmp_path / "w"
    assert CliRunner().invoke(cli, static_args(tmp_path / "o", work, "--limit", "2", "--chunk-size", "1")).exit_code == 0
    chunk = sorted((work / "chunks").glob("chunk-*.jsonl"))[1]
    chunk.write_text(chunk.read_text()[:40] + "\n")
    result = CliRunner().invoke(cli, static_args(tmp_path / "o", work, "--limit", "2", "--chunk-size", "1"))
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert chunk.name in result.stderr and "delete that file" in result.stderr
    chunk.unlink()
    assert CliRunner().invoke(cli, static_args(tmp_path / "o", work, "--limit", "2", "--chunk-size", "1")).exit_code == 0
