"""Recipes: validation with line numbers, dry runs without network, and `dart-hub run` end to end."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.recipes import adapt_options, load_recipe

ROOT = Path(__file__).parent.parent
RECIPES = sorted((ROOT / "recipes").glob("*/*.yaml"))
DATA = Path(__file__).parent / "data"


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a dry run must not touch the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


# The cells the DART paper reports (seed 001): Table 1 has 0.5B, 3B and Llama-3B (no 1.5B) with
# No-Tuning, and Static / Adaptation-Full on both datasets; Table 3 has Math-QwQ-32B for 1.5B and
# 3B with First / Gap / Full; Table 5 has Math-QwQ-32B for 0.5B and 1.5B with Raw / Cleaned (Full).
T1_STUDENTS = ("Qwen2.5-0.5B-Instruct", "Qwen2.5-3B-Instruct", "Llama-3.2-3B-Instruct")
PAPER_CELLS = {
    1: {(s, None, "No-Tuning") for s in T1_STUDENTS}
    | {(s, d, a) for s in T1_STUDENTS for d in ("LIMO", "Math-QwQ-32B") for a in ("Static", "Adaptation-Full")},
    3: {(s, "Math-QwQ-32B", a) for s in ("Qwen2.5-1.5B-Instruct", "Qwen2.5-3B-Instruct")
        for a in ("Adaptation-First", "Adaptation-Gap", "Adaptation-Full")},
    5: {(s, "Math-QwQ-32B", a) for s in ("Qwen2.5-0.5B-Instruct", "Qwen2.5-1.5B-Instruct") for a in ("Adaptation-Raw", "Adaptation-Full")},
}


def test_exactly_the_papers_cells_are_shipped():
    recipes = [load_recipe(p) for p in RECIPES]
    cells = [(r.paper()["student"], r.paper()["dataset"], r.paper()["arm"]) for r in recipes]
    assert len(cells) == len(set(cells)), "two recipes for one cell"
    for table, expected in PAPER_CELLS.items():
        assert {c for c, r in zip(cells, recipes, strict=True) if table in r.paper()["tables"]} == expected, table
    # no DART recipe outside the paper's tables; other methods' recipes say they are not cells
    assert all(r.paper()["tables"] or r.paper()["arm"] in ("DAIL", "Mapper", "Mapper-Prompt") for r in recipes)
    assert len({r.output for r in recipes}) == len(recipes)


def test_shipped_arms_have_the_settings_they_claim():
    from dart_hub.config import AdaptConfig

    for path in RECIPES:
        recipe = load_recipe(path)
        arm, adapt = recipe.paper()["arm"], recipe.section("adapt")
        if arm == "No-Tuning":
            assert recipe.stages() == ["eval"] and not recipe.adapts
            continue
        if arm == "DAIL":  # the DAIL authors' settings (METHOD-DAIL.md section 3)
            train = recipe.section("train")
            assert adapt["method"] == "dail" and adapt["dail_samples"] == 32 and adapt["dail_tau"] == 1.0
            assert (train["objective"], train["lora"], train["lora_rank"], train["lora_alpha"], train["lora_dropout"]) == ("dail", True, 32, 32, 0.0)
            assert (train["learning_rate"], train["epochs"], train["dail_lambda"]) == (2e-4, 5, 0.1)
            continue
        if arm in ("Mapper", "Mapper-Prompt"):  # own design (docs/mapper.md): SFT on the rewrites
            assert adapt["method"] == "mapper" and bool(adapt.get("mapper")) == (arm == "Mapper")
            assert recipe.section("train").get("objective", "sft") == "sft" and recipe.stages() == ["adapt", "train", "eval"]
            continue
        assert recipe.stages() == ["adapt", "train", "eval"]
        options = adapt_options(recipe, Path("out"))
        config = AdaptConfig(**{k: options[k] for k in ("strategy", "rules", "peak", "cleaning", "min_follow", "epsilon", "n_sim")})
        strategy = {"Static": "static", "Adaptation-First": "first", "Adaptation-Gap": "gap"}.get(arm, "full")
        assert config.strategy == strategy, path
        assert config.cleaning == ("raw" if arm == "Adaptation-Raw" else "cleaned"), path
        # a cell of the paper's tables runs Algorithm 1 as written, and says so
        assert adapt["rules"] == "paper" and config.rules == "paper", path
        if strategy != "static":
            assert (config.n_sim, config.epsilon, config.peak, adapt["sim_max_tokens"]) == (4, 0.3, "global", 4000), path
            assert (config.min_follow, config.answer_steps, config.confirm) == (0.0, "probe", 0), path
        assert recipe.section("train")["validation_source"] == "heldout"
        assert recipe.section("eval")["max_tokens"] == 16384


def test_a_wrong_paper_label_is_refused(tmp_path):
    with pytest.raises(DartHubError, match="paper.arm: says Adaptation-Gap, but the recipe's settings make it Adaptation-Full"):
        load_recipe(write(tmp_path, BASE + "paper:\n  arm: Adaptation-Gap\ntrain:\n  epochs: 1\n"))
    with pytest.raises(DartHubError, match="r.yaml:6: paper.tables"):
        load_recipe(write(tmp_path, BASE + "paper:\n  tables: [2]\n"))
    with pytest.raises(DartHubError, match="eval: is required"):
        load_recipe(write(tmp_path, "student:\n  model: m\n"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_shipped_recipe_validates_and_dry_runs_offline(path, no_network, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = load_recipe(path)
    assert recipe.section("student")["model"]
    result = CliRunner().invoke(cli, ["run", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    if recipe.adapts:
        assert "adapt: to run" in result.output and "train: to run" in result.output
        expected = {"Static": "nothing is generated", "DAIL": "(method dail, 32 samples per problem)",
                    "Mapper": "(method mapper, mapper runs/", "Mapper-Prompt": "(method mapper, mapper the student (no RL)"}
        assert expected.get(recipe.arm(), "simulation: 4 rollouts per expert step") in result.output
    else:
        assert "adapt" not in result.output and "train" not in result.output
    assert "eval: to run" in result.output and "8,215 questions" in result.output
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing


def test_the_whole_grid_dry_runs_from_the_folder(no_network, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", str(ROOT / "recipes"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.output.count("recipe ") == len(RECIPES) == 26  # 22 paper cells + 2 DAIL + 2 mapper (own design)
    # Full on Math-QwQ-32B explores at most 5,383 problems x 8; eval asks 8,215 questions
    assert "exploration: <= 5,383 problems x 8 = 43,064 rollouts, <= 86,128,000 new tokens" in result.output
    assert "validation: 41 held-out training problems (5% of the training problems, never trained on), at most 16,384 new tokens" in result.output
    total = result.output.strip().splitlines()[-3]
    assert total.startswith("total: 26 recipes, 72 stages; generation <= ")
    # Full / Gap / First / Raw of one student x dataset share one simulation (the probe cache)
    assert "simulation: 7 distinct simulation set(s) for 13 adapt stages (6 reused from the probe cache" in result.output
    assert "not counted above: the simulation rollouts of 7 set(s) whose data is not local" in result.output
    assert not (tmp_path / "runs").exists()


def test_a_glob_selects_recipes_and_nothing_matching_is_an_error(no_network, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(cli, ["run", str(ROOT / "recipes" / "*" / "math-qwq-32b-gap.yaml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert [line.split()[1] for line in result.output.splitlines() if line.startswith("recipe ")] == [
        str(ROOT / "recipes/qwen2.5-1.5b-instruct/math-qwq-32b-gap.yaml"),
        str(ROOT / "recipes/qwen2.5-3b-instruct/math-qwq-32b-gap.yaml"),
    ]
    missing = CliRunner().invoke(cli, ["run", str(tmp_path / "*.yaml"), "--dry-run"])
    assert missing.exit_code == 1 and "no recipe file matches this pattern" in missing.stderr


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


LEAK = BASE + "engine:\n  name: transformers\n  batch_size: 8\ntrain:\n  epochs: 1\neval:\n  benchmarks: gsm8k\n"


def test_engine_settings_do_not_leak_into_train(tmp_path, monkeypatch):
    """engine.batch_size is the generation batch (adapt, eval), never train's per-device batch."""
    from dart_hub.commands import run as run_command
    from dart_hub.training import stage as train_stage

    seen: list[dict] = []
    monkeypatch.setattr(train_stage, "run", lambda sft=None, **options: seen.append(options) or {})
    recipe = write(tmp_path, LEAK + f"output: {tmp_path / 'run'}\n")
    for extra in ([], ["--set", "engine.batch_size=32"]):
        result = CliRunner().invoke(cli, ["run", str(recipe), "--only", "train", "--force", *extra])
        assert result.exit_code == 0, result.output
        assert seen[-1]["batch_size"] is None  # train's own default (1 per device), not 8 or 32
        assert seen[-1]["epochs"] == 1 and seen[-1]["validation_max_tokens"] == 16384
    CliRunner().invoke(cli, ["run", str(recipe), "--only", "train", "--force", "--set", "train.batch_size=2"])
    assert seen[-1]["batch_size"] == 2
    # the eval stage shares the engine section: same engine, same generation batch
    options = run_command.eval_options(load_recipe(recipe, ["engine.batch_size=32"]))
    assert (options["engine"], options["batch_size"]) == ("transformers", 32)
    # and adapt never sees train's keys
    assert adapt_options(load_recipe(recipe, ["train.batch_size=2", "train.seed=5"]), tmp_path)["batch_size"] == 8
    assert adapt_options(load_recipe(recipe, ["train.seed=5"]), tmp_path)["seed"] == 0


def test_validation_budget_defaults_to_the_recipes_evaluation_budget(tmp_path):
    from dart_hub.commands.run import train_options

    recipe = write(tmp_path, BASE + "train:\n  epochs: 1\neval:\n  max_tokens: 8000\n")
    assert train_options(load_recipe(recipe))["validation_max_tokens"] == 8000
    assert train_options(load_recipe(recipe, ["train.validation_max_tokens=4096"]))["validation_max_tokens"] == 4096
    assert train_options(load_recipe(recipe, ["eval.max_tokens=null"]))["validation_max_tokens"] == 16384


def test_local_data_is_counted_exactly_and_shared_simulation_once(no_network, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    body = f"source:\n  dataset: {DATA / 'limo_sample.jsonl'}\nstudent:\n  model: m\n"
    for strategy in ("full", "gap"):
        (tmp_path / f"{strategy}.yaml").write_text(body + f"output: {tmp_path / strategy}\nadapt:\n  strategy: {strategy}\n")
    alone = CliRunner().invoke(cli, ["adapt", "--student", "m", "--dataset", str(DATA / "limo_sample.jsonl"), "--dry-run", "--json", "--no-admission"])
    cost = json.loads(alone.stdout)
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "full.yaml"), str(tmp_path / "gap.yaml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"rollouts <= {cost['rollouts_max']:,} (simulation {cost['simulation_rollouts']:,})" in result.output
    sequences = cost["simulation_rollouts"] + cost["exploration_rollouts_max"]  # gap adds nothing: it reuses full's simulation
    assert f"total: 2 recipes, 2 stages; generation <= {sequences:,} sequences, <= {cost['new_tokens_max']:,} new tokens" in result.output
    assert "1 distinct simulation set(s) for 2 adapt stages (1 reused" in result.output
