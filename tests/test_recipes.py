"""Recipes: validation with line numbers, dry runs without network, and `dart-hub run` end to end."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.recipes import load_recipe

ROOT = Path(__file__).parent.parent
RECIPES = sorted((ROOT / "recipes").glob("*/*.yaml"))
DATA = Path(__file__).parent / "data"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a dry run must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_the_paper_grid_is_shipped():
    names = {f"{p.parent.name}/{p.stem}" for p in RECIPES}
    for student in ("qwen2.5-0.5b-instruct", "qwen2.5-1.5b-instruct", "qwen2.5-3b-instruct", "llama-3.2-3b-instruct"):
        assert {f"{student}/limo", f"{student}/math-qwq-32b"} <= names
    assert any(load_recipe(p).section("adapt").get("strategy") == "static" for p in RECIPES)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_recipe_validates_and_dry_runs_offline(path, no_network, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(path)
    assert recipe.section("student")["model"] and recipe.section("source")["dataset"]
    result = CliRunner().invoke(cli, ["run", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "adapt: to run" in result.output and "rollouts" in result.output
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


BASE = "source:\n  dataset: limo\nstudent:\n  model: m\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "adapt:\n  n_sim: many\n", "r.yaml:6: adapt.n_sim: 'many' is not a valid integer range"),
        (BASE + "adapt:\n  nsim: 4\n", "r.yaml:6: adapt.nsim: unknown key"),
        (BASE + "adapt:\n  strategy: best\n", "r.yaml:6: adapt.strategy:"),
        (BASE + "extras:\n  a: 1\n", "r.yaml:5: extras: unknown section"),
        (BASE + "eval:\n  benchmark: gsm8k\n", "r.yaml:6: eval.benchmark: unknown key"),
        (BASE + "train:\n  epochs: -1\n", "r.yaml:6: train.epochs:"),
        ("source:\n  split: train\nstudent:\n  model: m\n", "source.dataset: is required"),
        (BASE + "adapt: [1, 2]\n", "adapt: must be a mapping"),
        ("source: {dataset: limo\n", "not valid YAML"),
    ],
)
def test_recipe_errors_name_the_line_and_key(tmp_path, text, message):
    with pytest.raises(DartHubError) as error:
        load_recipe(write(tmp_path, text))
    assert message in str(error.value)


def test_set_overrides_with_types(tmp_path):
    recipe = load_recipe(write(tmp_path, BASE + "adapt:\n  n_sim: 4\n"), ["adapt.n_sim=8", "adapt.epsilon=0.2", "engine.name=transformers"])
    assert recipe.section("adapt")["n_sim"] == 8 and recipe.section("adapt")["epsilon"] == 0.2
    assert recipe.section("engine")["name"] == "transformers"
    with pytest.raises(DartHubError, match="section.key=value"):
        load_recipe(write(tmp_path, BASE), ["n_sim=8"])
    with pytest.raises(DartHubError, match="adapt.n_sim"):
        load_recipe(write(tmp_path, BASE), ["adapt.n_sim=lots"])


def test_bad_recipe_is_a_one_line_cli_error(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(write(tmp_path, BASE + "adapt:\n  nsim: 4\n"))])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_recipe_runs_every_stage_offline_then_skips_them(tmp_path, tiny_model_dir, hub):
    pytest.importorskip("trl")
    gsm8k = tmp_path / "gsm8k.jsonl"
    gsm8k.write_text(json.dumps({"question": "What is 2 plus 2?", "answer": "Two and two make four.\n#### 4"}) + "\n")
    recipe = write(
        tmp_path,
        f"""
name: tiny
output: {tmp_path / "run"}
source:
  dataset: {DATA / "limo_sample.jsonl"}
student:
  model: {tiny_model_dir}
engine:
  name: transformers
adapt:
  strategy: static
  work_dir: {tmp_path / "work"}
publish:
  push_to_hub: test-user/tiny-dart
train:
  epochs: 1
  max_length: 1024
  validation_size: 0
eval:
  benchmarks: gsm8k
  benchmark_sources: ["gsm8k={gsm8k}"]
  limit: 1
  max_tokens: 4
""",
    )
    first = CliRunner().invoke(cli, ["run", str(recipe), "--quiet"])
    assert first.exit_code == 0, first.output
    summary = json.loads((tmp_path / "run" / "run-summary.json").read_text())
    assert set(summary["stages"]) == {"adapt", "push", "train", "eval"}
    assert summary["stages"]["adapt"]["summary"]["kept"] >= 3
    assert len(hub.commits("test-user/tiny-dart")) >= 1
    assert (tmp_path / "run" / "eval" / "results.json").exists()
    assert "test-user/tiny-dart" in (tmp_path / "run" / "run-summary.md").read_text()

    again = CliRunner().invoke(cli, ["run", str(recipe), "--quiet"])
    assert again.exit_code == 0, again.output
    assert again.stderr.count("done, skipped") == 4
    # a changed setting reruns its stage only
    third = CliRunner().invoke(cli, ["run", str(recipe), "--quiet", "--only", "eval", "--set", "eval.max_tokens=5"])
    assert third.exit_code == 0, third.output
    assert "eval: running" in third.stderr
