"""Checkpoint selection's validation: the source (held-out training problems or a benchmark), the
token budget (the evaluation budget by default), and what the summary and the model card say."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.evaluation.run import DEFAULT_MAX_TOKENS, EVAL_SYSTEM_PROMPT
from dart_hub.training.run import TrainRequest
from dart_hub.training.validation import ValidationSource, describe_validation, select_validation
from tests.scripted_engine import ScriptedEngine, user_text
from tests.test_train import message_rows, trained_folder, write_adapt_folder

SYSTEM = message_rows()[0]["messages"][0]["content"]
MATH500 = [  # HuggingFaceH4/MATH-500's columns
    {"problem": f"Find $x$ if $x - {k} = 0$.", "solution": f"So $x = \\boxed{{{k}}}$.", "answer": str(k),
     "subject": "Algebra", "level": 1, "unique_id": f"test/algebra/{k}.json"}
    for k in range(1, 9)
]


def rows(problems: int) -> list[dict]:
    return [{"id": f"q{i}", "gold": str(i), "messages": [{"role": "system", "content": SYSTEM},
             {"role": "user", "content": f"What is {i} + 0?"}, {"role": "assistant", "content": f"\\boxed{{{i}}}"}]}
            for i in range(problems)]


@pytest.fixture
def math500(tmp_path: Path) -> Path:
    path = tmp_path / "math500.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in MATH500))
    return path


def request(**kwargs) -> TrainRequest:
    return TrainRequest(student="s", data="d", output=Path("o"), **kwargs)


def test_the_default_is_five_percent_held_out_scored_with_the_evaluation_budget():
    assert request().validation_max_tokens == DEFAULT_MAX_TOKENS == 16384
    train, held, items, record = select_validation(request(), rows(40), seed=3)
    assert len(held) == 2 and len(train) == 38 and not {r["id"] for r in held} & {r["id"] for r in train}
    assert list(items) == [SYSTEM] and [i.id for i in items[SYSTEM]] == [r["id"] for r in held]  # the training prompt
    assert record == {"source": "heldout", "problems": 2, "size": 0.05, "max_tokens": 16384}
    assert describe_validation(record) == "2 held-out training problems (5% of the training problems, never trained on), at most 16,384 new tokens"
    _, _, none, off = select_validation(request(select_best=False), rows(40), seed=3)
    assert none == {} and off["source"] == "none"


def test_a_benchmark_split_as_validation_trains_on_every_problem(math500):
    source = f"math500={math500}"
    train, held, items, record = select_validation(request(validation_source=source, validation_max_tokens=4096), rows(40), seed=3)
    assert len(train) == 40 and held == []
    assert list(items) == [EVAL_SYSTEM_PROMPT] and [i.gold for i in items[EVAL_SYSTEM_PROMPT]] == [str(k) for k in range(1, 9)]
    assert record["benchmark"] == "math500" and record["problems"] == 8 and record["max_tokens"] == 4096
    assert describe_validation(record) == f"8 problems of MATH-500 ({math500}, split test), at most 4,096 new tokens"
    _, _, some, part = select_validation(request(validation_source=source, validation_size=3), rows(40), seed=3)
    assert part["problems"] == 3 and part["of"] == 8
    assert [i.id for i in some[EVAL_SYSTEM_PROMPT]] == [i.id for i in select_validation(request(validation_source=source, validation_size=3), rows(5), seed=3)[2][EVAL_SYSTEM_PROMPT]]
    hub = {"source": "benchmark", "benchmark": "math500", "problems": 500, "max_tokens": 16384}
    assert describe_validation(hub) == "500 problems of MATH-500 (HuggingFaceH4/MATH-500, split test), at most 16,384 new tokens"


def test_validation_source_names_are_checked():
    assert ValidationSource.parse(None) == ValidationSource("heldout")
    assert ValidationSource.parse("gsm8k=openai/gsm8k,config=main,split=train") == ValidationSource("benchmark", "gsm8k", "openai/gsm8k,config=main,split=train")
    with pytest.raises(DartHubError, match="--validation-source 'aime24': 'heldout' or a benchmark: unknown benchmark 'aime24'"):
        ValidationSource.parse("aime24")
    result = CliRunner().invoke(cli, ["train", "--student", "s", "--data", "d", "--output", "o", "--validation-source", "aime24"])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1 and "unknown benchmark 'aime24'" in result.stderr


def test_checkpoints_answer_a_benchmark_with_the_evaluation_prompt_and_budget(math500, monkeypatch):
    from dart_hub.answers import AnswerChecker
    from dart_hub.engines import factory
    from dart_hub.training.select import score_checkpoint

    engine = ScriptedEngine(lambda r, i: "\\boxed{3}" if "x - 3" in user_text(r) else "\\boxed{0}")
    monkeypatch.setattr(factory, "create_engine", lambda kind, model, **kw: engine)
    _, _, items, record = select_validation(request(validation_source=f"math500={math500}"), rows(10), seed=0)
    with AnswerChecker(timeout=10) as checker:
        score = score_checkpoint("ckpt", items, checker, max_tokens=record["max_tokens"])
    assert (score["correct"], score["total"]) == (1, 8)
    [call] = engine.calls
    assert {r.max_tokens for r in call} == {16384} and {r.messages[0] for r in call} == {("system", EVAL_SYSTEM_PROMPT)}


@pytest.fixture
def student(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "student"))


def test_train_dry_run_states_the_validation(student, tmp_path, math500):
    pytest.importorskip("trl")
    data = write_adapt_folder(tmp_path / "adapted")
    base = ["train", "--student", str(student), "--data", str(data), "--output", str(tmp_path / "o"), "--dry-run"]
    plan = json.loads(CliRunner().invoke(cli, [*base, "--json", "--validation-size", "2"]).stdout)
    assert plan["validation"] == {"source": "heldout", "problems": 2, "size": 2.0, "max_tokens": 16384}
    assert plan["rows"]["validation"] == 2
    text = CliRunner().invoke(cli, [*base, "--validation-source", f"math500={math500}", "--validation-max-tokens", "4096"])
    assert text.exit_code == 0, text.output
    assert "would train" in text.output and "(0 held out)" in text.output
    assert f"validation: 8 problems of MATH-500 ({math500}, split test), at most 4,096 new tokens" in text.output


def test_the_model_card_states_the_validation_source_and_budget(student, tmp_path):
    from huggingface_hub import ModelCard

    from dart_hub.publish.model_card import render_model_card

    summary = json.loads((trained_folder(tmp_path, student) / "training_summary.json").read_text())
    old = str(render_model_card(summary, "me/m"))  # a summary written before the source was recorded
    assert "2 held-out training problems" in old
    summary["selection"]["max_tokens"] = 16384
    summary["selection"]["source"] = {"source": "benchmark", "benchmark": "math500", "title": "MATH-500",
                                      "where": {"kind": "hub", "repo_id": "HuggingFaceH4/MATH-500", "split": "test"},
                                      "problems": 500, "of": 500, "size": None, "override": None, "max_tokens": 16384}
    summary["request"].update(validation_source="math500", validation_max_tokens=16384, validation_size=None)
    summary["rows"]["validation"] = 0
    text = ModelCard(str(render_model_card(summary, "me/m", base_model="Qwen/Qwen2.5-0.5B-Instruct"))).text
    assert "Validation (checkpoint selection): 500 problems of MATH-500 (HuggingFaceH4/MATH-500, split test), at most 16,384 new tokens" in text
    assert "each answered the validation problems (500 problems of MATH-500" in text
    assert "held out for checkpoint selection" not in text
    assert "--validation-source math500" in text and "--validation-max-tokens 16384" in text


def test_training_selects_the_epoch_on_a_benchmark_and_records_it(student, tmp_path, math500):
    pytest.importorskip("trl")
    data = write_adapt_folder(tmp_path / "adapted")
    out = tmp_path / "run"
    result = CliRunner().invoke(cli, [
        "train", "--student", str(student), "--data", str(data), "--output", str(out), "--epochs", "1",
        "--max-length", "96", "--batch-size", "6", "--validation-source", f"math500={math500}",
        "--validation-size", "3", "--validation-max-tokens", "4", "--json",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["rows"]["train"] == 6 and summary["rows"]["validation"] == 0  # nothing held out of training
    [epoch] = summary["epochs"]
    assert epoch["validation"]["total"] == 3 and "eval_loss" not in epoch
    assert summary["selection"]["max_tokens"] == 4 and summary["selection"]["source"]["benchmark"] == "math500"
    assert summary["selection"]["source"]["problems"] == 3 and len(summary["validation_ids"]) == 3
    assert all(i.startswith("math500-test/algebra/") for i in summary["validation_ids"])
