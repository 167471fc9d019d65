"""The whole publishing path under HF_ENDPOINT = the local Hub emulator, with a student that
really solves problems (the bundled toy student): pull the `limo` preset's repo, adapt, push,
load both configurations back, and find no token anywhere."""

from __future__ import annotations

import json

import datasets
import pytest
from click.testing import CliRunner
from huggingface_hub import DatasetCard

from dart_hub.cli import cli
from dart_hub.toy import expert_dataset_path, toy_student_path

REPO = "test-user/limo-dart-toy"


@pytest.mark.slow
def test_limo_preset_from_the_hub_adapted_pushed_and_loaded(hub, tmp_path):
    # GAIR/LIMO on the emulator, in LIMO's layout (our own toy problems, not LIMO's text)
    rows = [json.loads(line) for line in expert_dataset_path().read_text().splitlines()[:6]]
    card = "---\nlicense: apache-2.0\n---\n# toy stand-in for LIMO\n"
    hub.create_dataset("GAIR/LIMO", {"limo.jsonl": "".join(json.dumps(r) + "\n" for r in rows), "README.md": card})

    out = tmp_path / "out"
    args = [
        "adapt", "--student", str(toy_student_path()), "--dataset", "limo", "--engine", "transformers",
        "--dtype", "float32", "--sim-max-tokens", "96", "--explore-max-tokens", "128",
        "--output", str(out), "--work-dir", str(tmp_path / "w"), "--push-to-hub", REPO, "--quiet", "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["problems"] == 6 and summary["kept"] >= 1

    train = datasets.load_dataset(REPO, split="train")
    steps = datasets.load_dataset(REPO, "steps", split="train")
    assert len(steps) == 6 and len(train) == summary["trajectories"]
    assert {"question", "solution", "answer", "messages", "expert_solution"} <= set(train.column_names)
    assert {"scores", "peak", "gap", "cut_reason", "discard_reason", "candidates"} <= set(steps.column_names)

    meta = DatasetCard(hub.read_file(REPO, "README.md").decode()).data.to_dict()
    assert meta["license"] == "apache-2.0" and "GAIR/LIMO" in meta["source_datasets"]
    assert {c["config_name"] for c in meta["configs"]} == {"default", "steps"}

    # no token in anything written: output folder, work dir, the CLI's output
    written = [p for p in (*out.rglob("*"), *(tmp_path / "w").rglob("*")) if p.is_file()]
    assert written
    for path in written:
        assert hub.token.encode() not in path.read_bytes(), path
    assert hub.token not in result.output
