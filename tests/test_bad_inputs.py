"""Inputs that are not what their names claim: each gets a message naming what is wrong, from
`dart-hub inspect` and from the API (`adapt(AdaptSpec(..., dry_run=True, admission=False))`) alike."""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.api import AdaptSpec, adapt
from dart_hub.cli import cli
from dart_hub.errors import DartHubError

SAMPLE = Path(__file__).parent / "data" / "limo_sample.jsonl"


def cli_error(dataset: Path) -> str:
    result = CliRunner().invoke(cli, ["inspect", str(dataset), "--limit", "1"])
    assert result.exit_code == 1, result.output
    return result.stderr.strip()


def api_error(dataset: Path) -> str:
    with pytest.raises(DartHubError) as error:
        adapt(AdaptSpec(student="any/model", dataset=str(dataset), dry_run=True, admission=False))
    return str(error.value)


def both(dataset: Path, expected: str) -> None:
    shown = cli_error(dataset)
    assert shown.startswith("Error: ") and expected in shown and "\n" not in shown
    assert expected in api_error(dataset)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes on this system")
def test_a_fifo_named_like_a_data_file(tmp_path):
    os.mkfifo(tmp_path / "data.jsonl")
    both(tmp_path / "data.jsonl", "data.jsonl is not a regular file (a named pipe (FIFO))")
    folder = tmp_path / "folder"
    folder.mkdir()
    os.mkfifo(folder / "train.jsonl")  # inside a folder: named, not "holds no .jsonl files"
    both(folder, "train.jsonl is not a regular file (a named pipe (FIFO))")


def test_a_folder_the_user_cannot_read(tmp_path, monkeypatch):
    """The tests run as root, who may read any folder: os.access is made to say no for this one
    (as it does for a user without r/x permission on it)."""
    folder = tmp_path / "locked"
    folder.mkdir()
    shutil.copy(SAMPLE, folder / "train.jsonl")
    real_access = os.access
    monkeypatch.setattr("dart_hub.sources.os.access", lambda path, mode: False if Path(path) == folder else real_access(path, mode))
    both(folder, f"permission denied: cannot list folder {folder}")


def test_a_jsonl_file_of_empty_objects(tmp_path):
    (tmp_path / "empty.jsonl").write_text("{}\n{}\n\n{}\n")
    both(tmp_path / "empty.jsonl", "has no columns: its rows are empty JSON objects")


def test_gzip_bytes_in_a_jsonl_file_and_a_jsonl_gz_file_read_as_it_is(tmp_path):
    (tmp_path / "data.jsonl").write_bytes(gzip.compress(SAMPLE.read_bytes()))
    both(tmp_path / "data.jsonl", "data.jsonl is gzip-compressed: decompress it (gunzip) or name it data.jsonl.gz")
    (tmp_path / "data.jsonl").rename(tmp_path / "data.jsonl.gz")
    compressed = CliRunner().invoke(cli, ["inspect", str(tmp_path / "data.jsonl.gz"), "--json"])
    plain = CliRunner().invoke(cli, ["inspect", str(SAMPLE), "--json"])
    assert compressed.exit_code == 0 == plain.exit_code, compressed.output + plain.output
    # same problems and skipped rows; only the file's name and fingerprint differ
    def records(text: str) -> list[dict]:
        keep = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [{k: v for k, v in r.items() if k not in ("fingerprint", "source", "provenance")} for r in keep]

    assert records(compressed.stdout) == records(plain.stdout) and len(records(plain.stdout)) > 3
    planned = adapt(AdaptSpec(student="any/model", dataset=str(tmp_path / "data.jsonl.gz"), dry_run=True, admission=False)).summary
    assert planned == adapt(AdaptSpec(student="any/model", dataset=str(SAMPLE), dry_run=True, admission=False)).summary
