"""`dart-hub compare` on `dart-hub run` folders: the paper's table layout, from run summaries and
eval results written by the real writers (RunState, evaluate, and `dart-hub run` itself)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.answers import AnswerChecker
from dart_hub.cli import cli
from dart_hub.commands.run import RunState, stage_key
from dart_hub.evaluation import evaluate
from dart_hub.recipes import load_recipe
from tests.scripted_engine import ScriptedEngine, user_text

RECIPES = Path(__file__).parent.parent / "recipes"
QUESTIONS = 10


def write_benchmarks(tmp_path: Path) -> dict[str, str]:
    """Ten questions per benchmark, in GSM8K's and MATH-500's column layouts; gold of item k is k."""
    gsm8k = tmp_path / "gsm8k.jsonl"
    gsm8k.write_text("".join(json.dumps({"question": f"Q{k}: what is {k} plus 0?", "answer": f"{k} + 0 = {k}\n#### {k}"}) + "\n" for k in range(QUESTIONS)))
    math500 = tmp_path / "math500.jsonl"
    math500.write_text("".join(json.dumps({"problem": f"Q{k}: find $x$ with $x = {k}$.", "solution": f"$\\boxed{{{k}}}$", "answer": str(k),
                                           "subject": "Algebra", "level": 1, "unique_id": f"test/algebra/{k}.json"}) + "\n" for k in range(QUESTIONS)))
    return {"gsm8k": str(gsm8k), "math500": str(math500)}


def student(right: dict[str, int]):
    """A scripted model that answers the first right[benchmark] questions correctly."""
    def respond(request, index):
        text = user_text(request)
        k = int(text[1 : text.index(":")])
        bench = "math500" if "find $x$" in text else "gsm8k"
        return f"\\boxed{{{k if k < right[bench] else k + 100}}}"
    return respond


# recipe -> correct answers out of 10 per benchmark (None: the eval stage has not run yet)
RUNS = {
    "qwen2.5-0.5b-instruct/no-tuning": {"gsm8k": 5, "math500": 2},
    "qwen2.5-0.5b-instruct/math-qwq-32b-static": {"gsm8k": 4, "math500": 2},
    "qwen2.5-0.5b-instruct/math-qwq-32b": {"gsm8k": 6, "math500": 3},
    "qwen2.5-0.5b-instruct/math-qwq-32b-raw": {"gsm8k": 5, "math500": 1},
    "qwen2.5-0.5b-instruct/limo": {"gsm8k": 7, "math500": 4},
    "qwen2.5-3b-instruct/no-tuning": {"gsm8k": 8, "math500": 5},
    "qwen2.5-3b-instruct/math-qwq-32b-gap": None,
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run folders as `dart-hub run` leaves them: run-summary.json (RunState.record) and, once
    the eval stage is done, eval/results.json (dart_hub.evaluation.evaluate)."""
    root = tmp_path_factory.mktemp("grid")
    sources = write_benchmarks(root)
    with AnswerChecker(timeout=10) as checker:
        for name, right in RUNS.items():
            recipe = load_recipe(RECIPES / f"{name}.yaml", [f"output={root / 'runs' / name}"])
            state = RunState(recipe)
            if recipe.adapts:
                state.record("adapt", stage_key(recipe, "adapt"), {"output": str(recipe.output / "dataset"), "summary": {"kept": 1, "problems": 1}})
            if right is None:
                continue
            engine = ScriptedEngine(student(right), model_id=recipe.section("student")["model"])
            report = evaluate(engine, "gsm8k,math500", recipe.output / "eval", max_tokens=16, checker=checker, sources=sources)
            state.record("eval", stage_key(recipe, "eval"), {"output": str(recipe.output / "eval"), "model": engine.model_id, "average": report.average})
    return root / "runs"


def test_grid_in_table_1_layout_with_deltas_against_no_tuning(runs):
    result = CliRunner().invoke(cli, ["compare", str(runs)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "| Dataset | Method | GSM8K | MATH-500 | Avg. |"
    assert lines[1] == "|---|---|---:|---:|---:|"
    assert lines[2:12] == [
        "| **Qwen2.5-0.5B-Instruct** |  |  |  |  |",
        "| - | No-Tuning | 50.0 | 20.0 | 35.0 |",
        "| Math-QwQ-32B | Static | 40.0 (-10.0) | 20.0 (+0.0) | 30.0 (-5.0) |",
        "| Math-QwQ-32B | Adaptation-Raw | 50.0 (+0.0) | 10.0 (-10.0) | 30.0 (-5.0) |",
        "| Math-QwQ-32B | Adaptation-Full | 60.0 (+10.0) | 30.0 (+10.0) | 45.0 (+10.0) |",
        "| LIMO | Adaptation-Full | 70.0 (+20.0) | 40.0 (+20.0) | 55.0 (+20.0) |",
        "| **Qwen2.5-3B-Instruct** |  |  |  |  |",
        "| - | No-Tuning | 80.0 | 50.0 | 65.0 |",
        "| Math-QwQ-32B | Adaptation-Gap | - | - | not evaluated yet |",
        "",
    ]
    assert "not evaluated yet: the run's eval stage has not finished" in result.output


def test_grid_keeps_one_table_and_names_its_arms(runs):
    table5 = CliRunner().invoke(cli, ["compare", str(runs), "--table", "5", "--format", "text"])
    assert table5.exit_code == 0, table5.output
    rows = [line.split() for line in table5.output.splitlines()[2:5]]
    assert rows == [["Qwen2.5-0.5B-Instruct"], ["Math-QwQ-32B", "Adaptation-Raw", "50.0", "10.0", "30.0"],
                    ["Math-QwQ-32B", "Adaptation-Cleaned", "60.0", "30.0", "45.0"]]
    data = json.loads(CliRunner().invoke(cli, ["compare", str(runs / "qwen2.5-3b-instruct"), "--format", "json"]).output)
    assert [g["student"] for g in data["groups"]] == ["Qwen2.5-3B-Instruct"]
    assert [r["arm"] for r in data["groups"][0]["rows"]] == ["No-Tuning", "Adaptation-Gap"]
    none = CliRunner().invoke(cli, ["compare", str(runs / "qwen2.5-3b-instruct"), "--table", "5"])
    assert none.exit_code == 1 and "no run belongs to Table 5" in none.stderr
    mixed = CliRunner().invoke(cli, ["compare", str(runs), "--label", "a=b"])
    assert mixed.exit_code == 1 and "--baseline / --label are for eval folders" in mixed.stderr


def test_run_takes_a_folder_and_compare_reads_what_it_wrote(tmp_path, monkeypatch):
    """`dart-hub run FOLDER` runs every recipe in it (here two No-Tuning recipes, eval only)."""
    from dart_hub.evaluation import stage as eval_stage

    sources = write_benchmarks(tmp_path)
    models = {"org/weak": {"gsm8k": 3, "math500": 1}, "org/strong": {"gsm8k": 9, "math500": 6}}
    monkeypatch.setattr(eval_stage, "engine_for", lambda options, model, revision: ScriptedEngine(student(models[model]), model))
    folder = tmp_path / "grid"
    folder.mkdir()
    for name in models:
        short = name.split("/")[1]
        (folder / f"{short}.yaml").write_text(
            f"output: {tmp_path / 'runs' / short}\nstudent:\n  model: {name}\nengine:\n  name: transformers\n"
            f"eval:\n  benchmarks: gsm8k,math500\n  max_tokens: 16\n  benchmark_sources: [gsm8k={sources['gsm8k']}, math500={sources['math500']}]\n"
        )
    result = CliRunner().invoke(cli, ["run", str(folder), "--quiet"])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("eval: running") == 2
    for short in ("weak", "strong"):
        summary = json.loads((tmp_path / "runs" / short / "run-summary.json").read_text())
        assert summary["paper"]["arm"] == "No-Tuning" and summary["stages"]["eval"]["status"] == "done"
    grid = CliRunner().invoke(cli, ["compare", str(tmp_path / "runs"), "--format", "text"]).output.splitlines()
    assert [line.split() for line in grid[2:6]] == [["strong"], ["-", "No-Tuning", "90.0", "60.0", "75.0"],
                                                    ["weak"], ["-", "No-Tuning", "30.0", "10.0", "20.0"]]
    again = CliRunner().invoke(cli, ["run", str(folder), "--quiet"])
    assert again.exit_code == 0 and again.stderr.count("eval: done, skipped") == 2
