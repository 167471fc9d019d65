"""Issue 17 item 4: one bad row costs one row; odd files are one line, never a traceback."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.sources import SourceSpec, load_source


def good(n: int) -> bytes:
    row = {"question": f"What is {n} + {n}?", "solution": f"Add them: \\boxed{{{2 * n}}}", "answer": str(2 * n)}
    return json.dumps(row).encode() + b"\n"


def deep(levels: int) -> bytes:
    row = {"question": "Deep?", "solution": "\\boxed{1}", "answer": "1", "meta": json.loads("[" * levels + "]" * levels)}
    return json.dumps(row).encode() + b"\n"


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    lines = [
        good(1),
        b'{"question": "broken", \n',  # line 2: not JSON
        good(2),
        b'\xff\xfe{"question": "latin-1?"}\n',  # line 4: not UTF-8
        deep(40),  # line 5: nested deeper than the limit
        b"[1, 2, 3]\n",  # line 6: JSON, not an object
        b"\n",  # a blank line is no row
        b"[" * 100_000 + b"\n",  # line 8: would blow Python's parser
        good(3),  # line 9
    ]
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"".join(lines))
    return path


def test_bad_lines_are_skipped_with_their_line_numbers_and_good_rows_kept(bad_file):
    source = load_source(SourceSpec(str(bad_file)))
    assert [p.answer for p in source.problems] == ["2", "4", "6"]
    skipped = [(s.reason, s.detail.split(":")[0]) for s in source.skipped]
    assert skipped == [
        ("invalid_json", "line 2"),
        ("not_utf8", "line 4"),
        ("too_deeply_nested", "line 5"),
        ("not_an_object", "line 6"),
        ("too_deeply_nested", "line 8"),
    ]
    # a kept row keeps its place in the file (rows are the non-blank lines, 0-based)
    assert [p.provenance.row_index for p in source.problems] == [0, 2, 7]
    assert source.num_rows == 8 and source.rows_read == 8
    assert "meta" not in source.columns  # the deep row never reached datasets


def test_limit_stops_before_later_bad_lines(bad_file):
    source = load_source(SourceSpec(str(bad_file), limit=1))
    assert [p.answer for p in source.problems] == ["2"] and source.skipped == []


def test_inspect_counts_them_and_shows_no_library_log_or_traceback(bad_file):
    result = CliRunner().invoke(cli, ["inspect", str(bad_file)])
    assert result.exit_code == 0, result.output
    assert "skipped rows:  5 (invalid_json: 1, not_an_object: 1, not_utf8: 1, too_deeply_nested: 2)" in result.output
    assert "skipped invalid_json: line 2:" in result.output
    assert "Traceback" not in result.output and "Failed to load" not in result.output
    lines = [json.loads(line) for line in CliRunner().invoke(cli, ["inspect", str(bad_file), "--json", "--limit", "0"]).stdout.splitlines()]
    assert [row["detail"][:6] for row in lines if row["type"] == "skipped"] == ["line 2", "line 4", "line 5", "line 6", "line 8"]


def test_the_card_counts_skipped_lines(bad_file, tmp_path):
    out = tmp_path / "out"
    args = ["adapt", "--student", "nobody/none", "--dataset", str(bad_file), "--strategy", "static", "--output", str(out), "--quiet"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    card = (out / "README.md").read_text()
    assert "| invalid\\_json | 1 |" in card and "| too\\_deeply\\_nested | 2 |" in card and "| not\\_utf8 | 1 |" in card
    assert json.loads((out / "dart_config.json").read_text())["source"]["skipped"]["too_deeply_nested"] == 2


@pytest.mark.parametrize(
    "name,content,message",
    [
        ("utf16.jsonl", "\ufeff{}".encode("utf-16"), "no readable row"),
        ("all-bad.jsonl", b"not json\n{also not\n", "no readable row"),
        ("broken.json", b'[{"question": "a", "solution": "b"},\n{"question": ', "could not read"),
        ("deep.json", b"[" * 100_000, "could not read"),
        ("bad.parquet", b"PAR1 this is no parquet", "could not read"),
    ],
)
def test_unreadable_content_is_one_line(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    result = CliRunner().invoke(cli, ["inspect", str(path)])
    assert result.exit_code == 1, result.output
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output and "Failed to load" not in result.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_a_file_without_read_permission_is_one_line(tmp_path):
    path = tmp_path / "secret.jsonl"
    path.write_bytes(good(1))
    path.chmod(0)
    with pytest.raises(DartHubError, match="cannot read .*secret.jsonl"):
        load_source(SourceSpec(str(path)))
