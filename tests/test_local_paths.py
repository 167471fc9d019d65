"""Issue 17 item 8: a local student or dataset path never reaches a published card or commit title."""

from __future__ import annotations

from dart_hub.publish.folder import write_folder
from dart_hub.publish.hub import default_commit_message
from tests.test_publish_folder import COLUMNS, adapted_examples, run_config

PRIVATE = "/home/someone/private-models"


def test_local_student_and_dataset_are_named_by_folder_and_said_local(tmp_path):
    examples, config = adapted_examples("ab")
    source = {"dataset": "/home/someone/data/problems.jsonl", "kind": "local", "repo_id": None, "preset": None}
    rc = run_config(examples, config, student=f"{PRIVATE}/qwen-small/", source=source)
    rc["engine"] = {"engine": "transformers", "model": f"{PRIVATE}/qwen-small/"}
    rc["summary"] = {**rc.get("summary", {}), "work_dir": "/home/someone/.cache/w", "output": "/home/someone/out"}
    out = write_folder(tmp_path / "out", examples, rc, dict(COLUMNS), "")
    card = (out / "README.md").read_text()
    assert "/home/someone" not in card
    assert "/home/someone" not in (out / "dart_config.json").read_text()
    assert "qwen-small (local)" in card
    assert "--student ./qwen-small" in card and "--dataset ./problems.jsonl" in card
    title = default_commit_message(rc)
    assert "/home/someone" not in title and "qwen-small (local)" in title


def test_hub_student_keeps_its_id(tmp_path):
    examples, config = adapted_examples("a")
    rc = run_config(examples, config, student="Qwen/Qwen2.5-1.5B-Instruct")
    assert "for Qwen/Qwen2.5-1.5B-Instruct (dart-hub" in default_commit_message(rc)
    card = (write_folder(tmp_path / "o", examples, rc, dict(COLUMNS), "") / "README.md").read_text()
    assert "(local)" not in card
