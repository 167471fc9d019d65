"""The harder toy world (`dart-hub demo --world hard`): its student exists, was built by the
documented command, and meets the world's criteria (dart_hub.toy.world_checks), recorded on 300
held-out problems before any arm ran and re-measured here on a few."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.toy import WORLDS, toy_student_path
from dart_hub.toy.world_checks import HARD_WORLD_CRITERIA, unmet, writes_product

# The hard student's training: the default student continued with this share of worked-out
# solve examples (docs/toy-world.md, "The harder world").
HARD_TRAINING = {"init": "dart_hub/resources/toy_student", "share_work_out": 0.05, "steps": 400, "lr": 3e-4, "warmup_steps": 20}
SMALL = 40  # held-out problems re-measured here (20 twisted, 160 samples at temperature 0.7)


def test_worlds_name_their_students_and_an_unknown_world_is_refused():
    assert set(WORLDS) == {"default", "hard"}
    assert toy_student_path() == toy_student_path("default") != toy_student_path("hard")
    with pytest.raises(ValueError, match="unknown toy world 'harder'"):
        toy_student_path("harder")


def test_writes_product_reads_the_first_paragraph_only():
    assert writes_product("Start: 4x3 = 12\n\nStep 1: 12 + 5 = 17")
    assert writes_product("Start: 4 x 3 = 12")
    assert not writes_product("Start: 4\n\nStep 1: 4 + 5 = 9\n\nnot 4x3 = 12")
    assert not writes_product("Start: 12\n\nStep 1: 12 + 5 = 17")


def test_unmet_names_each_failed_criterion():
    good = {"writes_product_t07": 0.01, "greedy_accuracy_twisted": 0.0, "copies_multiplier": 1.0,
            "carries_out_greedy": 1.0, "follows_shown_start": 1.0}  # fmt: skip
    assert unmet(good) == []
    assert unmet(good | {"writes_product_t07": 0.05, "follows_shown_start": 0.9}) == [
        "writes_product_t07 = 0.05 (wanted < 0.05)", "follows_shown_start = 0.9 (wanted >= 0.95)"]


def test_hard_student_was_built_by_the_documented_command_on_the_current_prompts():
    """`python -m dart_hub.toy.train_student --output dart_hub/resources/toy_student_hard --init
    dart_hub/resources/toy_student --share-work-out 0.05 --steps 400 --lr 3e-4 --warmup-steps 20`:
    the trainer's defaults otherwise, from the shipped default student."""
    from dart_hub.prompts import default_prompts
    from dart_hub.toy.train_student import TrainConfig

    folder = toy_student_path("hard")
    assert (folder / "model.safetensors").is_file() and (folder / "tokenizer.json").is_file()
    info = json.loads((folder / "training.json").read_text(encoding="utf-8"))
    assert info["config"] == asdict(TrainConfig()) | HARD_TRAINING
    assert info["prompts_fingerprint"] == default_prompts().fingerprint()


def test_hard_world_checks_were_recorded_and_met_before_the_arms():
    recorded = json.loads((toy_student_path("hard") / "world_checks.json").read_text(encoding="utf-8"))
    assert recorded["heldout_problems"] == 300 and recorded["samples_per_problem"] == 8
    assert unmet(recorded) == [] and recorded["hard_world_unmet"] == []
    assert recorded["hard_world_criteria"] == {k: f"{op} {bound}" for k, (op, bound) in HARD_WORLD_CRITERIA.items()}
    default = json.loads((toy_student_path() / "world_checks.json").read_text(encoding="utf-8"))
    assert default["writes_product_t07"] > 0.3  # the default world's samples find the idea often


@pytest.mark.slow
def test_hard_student_meets_the_criteria_on_a_few_problems():
    """Re-measured on the first 40 held-out problems. The share of samples writing the product is
    a rate of a few percent, so here it may only be below twice the bound (160 samples)."""
    torch = pytest.importorskip("torch")
    from dart_hub.toy.world_checks import check_student

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # see tests/test_toy.py's student fixture
    try:
        checks = check_student(toy_student_path("hard"), problems=SMALL)
    finally:
        torch.set_num_threads(threads)
    loose = HARD_WORLD_CRITERIA | {"writes_product_t07": ("<", 0.10)}
    assert unmet(checks, loose) == [], checks
    assert checks["deciding_token"] < 0.15  # default student: about 0.40


def test_demo_help_names_the_worlds_with_their_recorded_numbers():
    result = CliRunner().invoke(cli, ["demo", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--world [default|hard]" in text and "Use a separate --work-dir per world." in text
    default, hard = (json.loads((toy_student_path(w) / "world_checks.json").read_text()) for w in ("default", "hard"))
    assert f"{default['writes_product_t07'] * 100:.0f}% of its samples at temperature 0.7" in text
    share = json.loads((toy_student_path("hard") / "training.json").read_text())["config"]["share_work_out"]
    assert f"continued from it with {share * 100:.0f}%" in text
    assert f"{hard['writes_product_t07'] * 100:.1f}% of its samples do" in text
    bad = CliRunner().invoke(cli, ["demo", "--world", "harder"])
    assert bad.exit_code == 2 and "'harder' is not one of" in bad.output


@pytest.mark.parametrize("world", ["default", "hard"])
def test_demo_world_adapts_for_that_worlds_student(monkeypatch, tmp_path, world):
    """The demo hands `adapt` the chosen world's student (stopped at the first adapt call; the
    whole `demo --world hard --train` run is in docs/toy-world.md)."""
    import dart_hub.adaptation.stage
    from dart_hub.errors import DartHubError

    seen = []

    def fake_adapt(**options):
        seen.append(options["student"])
        raise DartHubError("stopped by the test")

    monkeypatch.setattr(dart_hub.adaptation.stage, "run", fake_adapt)
    args = ["demo", "--world", world, "--output", str(tmp_path / "demo"), "--work-dir", str(tmp_path / "w")]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code != 0 and "stopped by the test" in result.output
    assert seen == [str(toy_student_path(world))]
