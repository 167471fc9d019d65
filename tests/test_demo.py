"""`dart-hub demo`: the toy world end to end through the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.commands.demo import curve_lines, gap_lines


def test_curve_and_gap_views():
    rows = [
        {"scores": [1.0, 0.5, 0.0], "gap": 2, "cut_reason": "gap"},
        {"scores": [0.5, 0.5], "gap": None, "cut_reason": "no_drop"},
    ]
    lines = curve_lines(rows, width=10)
    assert lines[1].startswith("  step  0 | ########") and "0.75  (2 problems)" in lines[1]
    assert "0.50  (2 problems)" in lines[2] and "0.00  (1 problems)" in lines[3]
    assert gap_lines(rows) == ["cut reasons: {'gap': 1, 'no_drop': 1}", "imitation gap at expert step: 2: 1"]


@pytest.mark.slow
def test_demo_adapts_the_toy_expert_set(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--output", str(out), "--work-dir", str(tmp_path / "w"), "--limit", "6", "--quiet", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["adapt"]["problems"] == 6
    assert report["adapt"]["kept"] + report["adapt"]["discarded"] == 6
    assert (out / "README.md").exists() and (out / "steps" / "train-00000-of-00001.parquet").exists()
    # the toy student follows the expert's first step far better than its folded later steps
    from dart_hub.publish.folder import read_examples

    examples = read_examples(out)
    first = sum(e.scores[0] for e in examples) / len(examples)
    later = sum([f for f in e.scores if f is not None][-1] for e in examples) / len(examples)  # last probed
    assert all(e.scores[-1] is None for e in examples)  # the boxed final step is not probed
    assert first > later

    text = CliRunner().invoke(cli, args[:-1])  # resumes from the work dir, human-readable report
    assert text.exit_code == 0, text.output
    assert "mean adaptability f_t by expert step" in text.output and "step  0 |" in text.output


@pytest.mark.slow
def test_demo_train_prints_the_three_arm_table(tmp_path):
    args = ["demo", "--output", str(tmp_path / "demo"), "--work-dir", str(tmp_path / "w"), "--limit", "6", "--n-sim", "2", "--train", "--quiet", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    comparison = json.loads(result.stdout)["comparison"]
    assert set(comparison["accuracy"]) == {"No-Tuning", "Static", "DART (Adaptation-Full)"}
    assert all(0.0 <= v <= 1.0 for v in comparison["accuracy"].values())
    assert comparison["heldout"] == 60
