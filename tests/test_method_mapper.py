"""The mapper adaptation (`adapt --method mapper`): rewrites scored, best verified kept, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

from dart_hub.adaptation.pipeline import SilentReporter
from dart_hub.answers import AnswerChecker
from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.methods.mapper import Mapper, MapperConfig, RewardConfig, load_mapper_prompts
from dart_hub.methods.mapper.scorer import TransformersScorer
from dart_hub.prompts import default_prompts
from dart_hub.records import Problem, Provenance
from dart_hub.toy import expert_dataset_path, method_prompts_path, toy_student_path
from tests.scripted_engine import ScriptedEngine, user_text
from tests.test_mapper_rewards import CHEATS, IN_STYLE, ORIGINAL, QUESTION

DATA = Path(__file__).parent / "data"
# correct, not a copy, not in the toy student's one-operation-per-step style
OTHER_STYLE = (
    "Adding four to eighteen we obtain twenty-two, i.e. 22.\n\n"
    "Quadrupling that number produces 88, and removing six leaves 82.\n\n"
    "Hence the final value equals \\boxed{82}."
)


def problem(pid: str = "p") -> Problem:
    return Problem(
        id=pid, question=QUESTION, solution=ORIGINAL, answer="82",
        provenance=Provenance(source="t", repo_id=None, revision=None, config=None, split="train", row_index=0),
    )  # fmt: skip


@pytest.fixture(scope="module")
def checker():
    with AnswerChecker(timeout=5.0) as c:
        yield c


@pytest.fixture(scope="module")
def scorer():
    return TransformersScorer(str(toy_student_path()), device="cpu", dtype="float32", batch_size=8)


def mapper(scorer, **kwargs) -> Mapper:
    return Mapper(MapperConfig(**kwargs), default_prompts(), load_mapper_prompts(), lambda: scorer)


def run(method, texts, checker):
    def respond(request, i):
        assert QUESTION in user_text(request) and ORIGINAL in user_text(request)
        return texts[i % len(texts)]

    engine = ScriptedEngine(respond)
    [example] = method.adapt_chunk(engine, [problem()], checker, SilentReporter())
    return engine, example


def test_the_best_rewarded_verified_rewrite_is_kept_and_cheats_never_are(scorer, checker):
    texts = [CHEATS["wrong_answer"], CHEATS["answer_first"], OTHER_STYLE, CHEATS["copy"], IN_STYLE, CHEATS["answer_only"]]
    engine, example = run(mapper(scorer, samples=len(texts), max_tokens=64), texts, checker)
    request = engine.calls[0][0]
    assert (request.n, request.temperature, request.top_p, request.max_tokens) == (6, 0.7, 0.95, 64)
    assert "\\boxed{}" in user_text(request)  # the prompt asks to keep the answer boxed
    assert example.outcome == "kept" and example.method == "mapper" and example.cut_reason == "mapper_rewrite"
    assert example.trajectories == [IN_STYLE]  # the student's own style beats another correct style
    assert [c.kept for c in example.candidates] == [False, False, False, False, True, False]
    rewards = example.method_data["rewards"]
    assert example.method_data["chosen"] == 4 and rewards[4]["alignment"] > rewards[2]["alignment"]
    assert rewards[0]["correctness"] == -1 and rewards[1]["answer_first"] == -1 and rewards[3]["copy"] == -1


@pytest.mark.parametrize(
    ("texts", "reason"),
    [
        ([CHEATS["wrong_answer"], CHEATS["no_answer"]], "no_correct_rewrite"),
        ([CHEATS["answer_first"]], "cheating_answer_first"),
        ([CHEATS["copy"]], "cheating_copy"),
        ([CHEATS["answer_only"]], "cheating_too_short"),
        ([CHEATS["pasted_gold"]], "cheating_unsupported_answer"),
        ([(IN_STYLE, "length")], "truncated"),
    ],
)
def test_no_qualifying_rewrite_drops_or_keeps_the_original_with_the_reason(scorer, checker, texts, reason):
    _, dropped = run(mapper(scorer, samples=2, max_tokens=64), texts, checker)
    assert dropped.outcome == "discarded" and dropped.discard_reason == reason and dropped.trajectories == []
    _, kept = run(mapper(scorer, samples=2, max_tokens=64, fallback="original"), texts, checker)
    assert kept.outcome == "kept" and kept.trajectories == [ORIGINAL] and kept.cut_reason == "mapper_original"
    assert kept.method_data["fallback_reason"] == reason and kept.discard_reason is None


def test_alignment_and_too_short_off_need_no_scorer_and_bad_options_are_one_line_errors(checker, tmp_path):
    def no_scorer():
        raise AssertionError("the scorer must not be loaded when alignment is off")

    config = MapperConfig(samples=1, rewards=RewardConfig().with_weights("alignment=0,too_short=0"))
    method = Mapper(config, default_prompts(), load_mapper_prompts(), no_scorer)
    _, example = run(method, [IN_STYLE], checker)
    assert example.outcome == "kept" and "alignment" not in example.method_data["rewards"][0]
    with pytest.raises(DartHubError, match="--mapper-fallback"):
        MapperConfig(fallback="keep")
    with pytest.raises(DartHubError, match="unknown mapper reward setting"):
        RewardConfig().with_settings("style=1")
    assert RewardConfig().with_settings("relative=true,max_copy=0.5").relative is True
    bad = tmp_path / "p.yaml"
    bad.write_text("rewrite: x\nsolve: y\n")
    with pytest.raises(DartHubError, match="unknown mapper prompt keys"):
        load_mapper_prompts(bad)
    good = tmp_path / "good.yaml"
    good.write_text("rewrite: 'Q={{ question }} S={{ solution }}'\n")
    assert load_mapper_prompts(good).messages("q", "s") == [{"role": "user", "content": "Q=q S=s"}]


@pytest.mark.slow
def test_cli_adapt_method_mapper_on_the_toy_student(tmp_path):
    """The toy student as its own mapper (the no-RL baseline) on the toy expert data, with the
    toy world's mapper prompt (the toy student cannot read the long default one)."""
    out = tmp_path / "out"
    args = [
        "adapt", "--method", "mapper", "--student", str(toy_student_path()), "--dataset", str(expert_dataset_path()),
        "--limit", "6", "--engine", "transformers", "--device", "cpu", "--dtype", "float32", "--scorer-device", "cpu",
        "--mapper-samples", "3", "--mapper-max-tokens", "256", "--mapper-fallback", "original",
        "--method-prompts", str(method_prompts_path("mapper")),
        "--output", str(out), "--work-dir", str(tmp_path / "w"), "--quiet", "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["method"] == "mapper" and summary["rollouts"] == 18 and summary["kept"] == 6
    cut = summary["cut_reasons"]
    assert sum(cut.values()) == 6 and set(cut) <= {"mapper_rewrite", "mapper_original"}
    config = json.loads((out / "dart_config.json").read_text())
    assert config["method"] == "mapper" and config["objective"] == "sft" and config["mapper"]["samples"] == 3
    assert config["mapper"]["rewards"]["weights"]["alignment"] == 1.0 and "adapt" not in config
    # the redesigned toy world's student (0.32 held-out accuracy) rarely produces a verified
    # rewrite untrained; every problem falls back to the original with its reason recorded
    steps = datasets.load_dataset(str(out), "steps", split="train")
    for row in steps:
        data = json.loads(row["method_data"])
        assert len(data["rewards"]) == 3 and all("alignment" in r for r in data["rewards"])
        if row["cut_reason"] == "mapper_rewrite":
            chosen = data["chosen"]
            kept = row["candidates"][chosen]
            assert kept["kept"] and kept["correct"] and row["trajectories"] == [kept["text"].strip()]
            assert row["trajectories"][0] != row["expert_solution"]
            qualifying = [r["total"] for c, r in zip(row["candidates"], data["rewards"], strict=True) if c["correct"] and r["too_short"] == r["answer_first"] == r["unsupported_answer"] == r["copy"] == r["repetition"] == 0]
            assert data["rewards"][chosen]["total"] == max(qualifying)
        else:
            assert row["trajectories"] == [row["expert_solution"]] and data["fallback_reason"]
    train = datasets.load_dataset(str(out), split="train")
    assert len(train) == 6 and all(r["messages"][-1]["content"] for r in train)
    card = (out / "README.md").read_text()
    assert "Own design, not a reproduction" in card and "the student itself, without RL" in card
    assert "Imitation gap" not in card and "--mapper-samples 3" in card
    # same command again: resumed from the work dir, same result
    again = CliRunner().invoke(cli, args)
    assert json.loads(again.stdout.strip().splitlines()[-1])["kept"] == 6


@pytest.mark.slow
def test_cli_adapt_method_mapper_with_a_separate_mapper_model(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    args = [
        "adapt", "--method", "mapper", "--student", str(toy_student_path()), "--mapper", str(tiny_model_dir),
        "--dataset", str(DATA / "limo_sample.jsonl"), "--engine", "transformers", "--device", "cpu",
        "--mapper-samples", "2", "--mapper-max-tokens", "12", "--mapper-rewards", "copy=0.5",
        "--output", str(out), "--work-dir", str(tmp_path / "w"), "--quiet", "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rollouts"] == summary["problems"] * 2
    config = json.loads((out / "dart_config.json").read_text())
    # the local mapper is published as ./FOLDER, like a local student (no local path in the folder)
    assert config["mapper"]["mapper"] == config["engine"]["model"] == f"./{tiny_model_dir.name}"
    assert str(tiny_model_dir.parent) not in (out / "README.md").read_text() + (out / "dart_config.json").read_text()
    assert config["mapper"]["rewards"]["weights"]["copy"] == 0.5
    # a random tiny mapper almost never reaches the gold: discarded with the reason
    assert set(summary["discard_reasons"]) <= {"no_correct_rewrite", "truncated"}
    card = (out / "README.md").read_text()
    assert "rewriting mapper" in card and "without RL" not in card


def test_a_recipe_can_choose_mapper_and_dry_run(tmp_path):
    recipe = tmp_path / "mapper.yaml"
    recipe.write_text(
        f"name: t\noutput: {tmp_path / 'run'}\nsource: {{dataset: {DATA / 'limo_sample.jsonl'}}}\n"
        "student: {model: Qwen/Qwen2.5-1.5B-Instruct}\nadapt: {method: mapper, mapper_samples: 3, mapper: runs/mapper/final}\n"
    )
    result = CliRunner().invoke(cli, ["run", str(recipe), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "(method mapper, mapper runs/mapper/final, 3 rewrites per problem)" in result.output and "rollouts 12," in result.output


@pytest.mark.parametrize(("name", "arm", "mapper"), [("limo-mapper", "Mapper", "runs/qwen2.5-1.5b-instruct/limo-mapper-grpo/final"), ("limo-mapper-prompt", "Mapper-Prompt", None)])
def test_shipped_mapper_recipes_are_marked_own_design_and_valid(name, arm, mapper):
    from dart_hub.recipes import load_recipe

    path = Path(__file__).parent.parent / "recipes" / "qwen2.5-1.5b-instruct" / f"{name}.yaml"
    assert "OWN DESIGN, NOT A REPRODUCTION" in path.read_text()
    recipe = load_recipe(path)
    assert recipe.arm() == arm and recipe.paper()["tables"] == []
    assert recipe.section("adapt")["method"] == "mapper" and recipe.section("adapt").get("mapper") == mapper
    result = CliRunner().invoke(cli, ["run", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert f"LIMO / {arm} (not a paper cell)" in result.output and "817 problems: rollouts 3,268," in result.output
