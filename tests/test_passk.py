"""pass@k (unbiased estimator) and `dart-hub eval --samples N`: the estimator against a brute-force
enumeration, sampled evaluation with a scripted engine (pass@1/pass@4, mean tokens), and the
figures in `compare` and the model card."""

from __future__ import annotations

import itertools
import json
from math import comb

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.evaluation.passk import default_pass_k, parse_pass_k, pass_at_k
from tests.scripted_engine import ScriptedEngine, user_text
from tests.test_evaluation import write_local


def brute_force(n: int, c: int, k: int) -> float:
    """Share of the k-subsets of n samples (c of them correct) that hold a correct one."""
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    return sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_estimator_equals_the_enumeration_of_k_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(brute_force(n, c, k), abs=1e-12), (n, c, k)


def test_estimator_is_stable_for_large_n():
    # 1 - C(n-c, k) / C(n, k) with exact integers, against the product form at n = 128
    for c, k in [(1, 1), (3, 64), (10, 32), (0, 128), (127, 2)]:
        exact = 1 - comb(128 - c, k) / comb(128, k)
        assert pass_at_k(128, c, k) == pytest.approx(exact, rel=1e-9, abs=1e-12)
    assert pass_at_k(128, 5, 1) == pytest.approx(5 / 128)  # pass@1 = c / n


def test_pass_k_parsing():
    assert default_pass_k(16) == [1, 2, 4, 8, 16] and default_pass_k(6) == [1, 2, 4, 6] and default_pass_k(1) == [1]
    assert parse_pass_k("16, 1,4,4", 16) == [1, 4, 16]
    with pytest.raises(DartHubError, match="--samples"):
        parse_pass_k("1,8", 4)
    with pytest.raises(DartHubError, match="integers"):
        parse_pass_k("1,x", 4)


# Per gsm8k question (tests.test_evaluation ROWS: golds 1250, 12, 5): which of 4 samples are right.
RIGHT = {"A farm": {0, 2}, "Tom has": {0, 1, 2, 3}, "A bus": set()}
GOLD = {"A farm": "1250", "Tom has": "12", "A bus": "5"}


def sampled(request, index):
    text = user_text(request)
    key = next(k for k in RIGHT if text.startswith(k))
    words = " ".join(["step"] * (index + 1))  # sample i has i + 1 + 2 words: token counts differ
    return f"{words} so \\boxed{{{GOLD[key] if index in RIGHT[key] else '0'}}}"


def test_eval_with_four_samples_writes_pass_at_k_and_mean_tokens(tmp_path, monkeypatch):
    from dart_hub.evaluation import load_benchmark
    from dart_hub.evaluation import stage as eval_stage
    from dart_hub.evaluation.run import Sampling, build_request

    engine = ScriptedEngine(sampled, "test/sampler")
    monkeypatch.setattr(eval_stage, "engine_for", lambda o, model, revision: engine)
    source = write_local(tmp_path)["gsm8k"]
    out = tmp_path / "eval"
    args = ["eval", "--model", "test/sampler", "--benchmarks", "gsm8k", "--benchmark-source", f"gsm8k={source}",
            "--samples", "4", "--pass-k", "1,4", "--output", str(out)]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    requests = engine.calls[0]
    assert all((r.n, r.temperature, r.top_p) == (4, 0.6, 0.95) for r in requests)  # DAIL's sampling
    # every problem samples from its own seed (benchmark and id), not one stream shared by all
    seeds = [r.seed for r in requests]
    assert len(set(seeds)) == len(requests) == 3
    assert seeds == [build_request(item, 64, sampling=Sampling.make(4)).seed for item in load_benchmark("gsm8k", str(source))]
    results = json.loads((out / "results.json").read_text())
    entry = results["benchmarks"]["gsm8k"]
    # c = 2, 4, 0 of n = 4: pass@1 = mean(c/n), pass@4 = share of questions with any correct
    assert entry["pass_at_k"] == {"1": pytest.approx((2 / 4 + 4 / 4 + 0) / 3), "4": pytest.approx(2 / 3)}
    assert entry["accuracy"] == pytest.approx(entry["pass_at_k"]["1"])
    assert (entry["correct"], entry["total"], entry["samples"]) == (6, 3, 4)
    # sample i writes i + 3 words (the scripted engine counts words as tokens): mean of 3..6
    assert entry["mean_completion_tokens"] == pytest.approx(4.5)
    assert results["settings"]["n"] == 4 and results["settings"]["pass_k"] == [1, 4]
    assert "pass@1  50.0" in result.stdout and "pass@4  66.7" in result.stdout and "4.5 tokens" in result.stdout
    rows = [json.loads(line) for line in (out / "gsm8k.jsonl").read_text().splitlines()]
    assert [r["num_correct"] for r in rows] == [2, 4, 0] and all(len(r["samples"]) == 4 for r in rows)

    # Same command: resumes. A greedy run in the same folder is another run and is refused.
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 0 and "(resumed)" in again.stdout and len(engine.calls) == 1
    greedy = CliRunner().invoke(cli, args[:-6] + ["--output", str(out)])
    assert greedy.exit_code == 1 and "another run" in greedy.stderr

    # compare shows pass@k and the mean tokens next to the accuracy table
    base = tmp_path / "base"
    monkeypatch.setattr(eval_stage, "engine_for", lambda o, model, revision: ScriptedEngine(sampled, "test/base"))
    assert CliRunner().invoke(cli, ["eval", "--model", "test/base", "--benchmarks", "gsm8k", "--benchmark-source", f"gsm8k={source}", "--output", str(base)]).exit_code == 0
    table = CliRunner().invoke(cli, ["compare", str(base), str(out), "--format", "text"])
    assert table.exit_code == 0, table.output
    text = table.stdout
    assert "pass@4 (%, unbiased estimator):" in text and "Mean response tokens per answer:" in text
    pass4 = text.split("pass@4")[1].split("Mean response")[0]
    assert "test/sampler" in pass4 and "66.7" in pass4 and "test/base" not in pass4  # greedy runs have no pass@4
    tokens = text.split("Mean response tokens per answer:")[1]
    assert "test/base" in tokens and "test/sampler" in tokens  # the greedy run writes 3 words: mean 3


def test_sampling_options_are_checked():
    from dart_hub.evaluation.run import Sampling

    assert Sampling.make() == Sampling(1, 0.0, 1.0, (1,))
    assert Sampling.make(8).pass_k == (1, 2, 4, 8) and Sampling.make(8).temperature == 0.6
    assert Sampling.make(1, temperature=0.7).top_p == 0.95
    with pytest.raises(DartHubError, match="temperature"):
        Sampling.make(4, temperature=0.0)
    result = CliRunner().invoke(cli, ["eval", "--model", "m/x", "--output", "o", "--samples", "2", "--pass-k", "4"])
    assert result.exit_code == 1 and "raise --samples" in result.stderr and "Traceback" not in result.output


def test_model_card_shows_pass_at_k_tokens_and_the_dail_objective(tmp_path):
    from dart_hub.publish.model_card import render_model_card

    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    (eval_dir / "results.json").write_text(json.dumps({
        "model": "me/x", "settings": {"max_tokens": 4096, "n": 16, "temperature": 0.6, "top_p": 0.95},
        "benchmarks": {"gsm8k": {"title": "GSM8K", "accuracy": 0.5, "correct": 8, "total": 1, "samples": 16,
                                 "pass_at_k": {"1": 0.5, "16": 1.0}, "mean_completion_tokens": 321.0}},
    }))  # fmt: skip
    summary = {
        "student": "Qwen/Qwen2.5-0.5B-Instruct", "request": {"student": "Qwen/Qwen2.5-0.5B-Instruct", "data": "me/d", "lora": True, "lora_rank": 32},
        "objective": {"name": "dail", "lambda": 0.1, "kl": "reverse", "reference": "the initial weights: LoRA adapter disabled",
                      "formula": "mean over response tokens of KL(p_t || P_t) - lambda * KL(p_t || N_t)"},
        "loss": {"mode": "dail"},
    }  # fmt: skip
    card = str(render_model_card(summary, "me/x-dail", eval_dirs=[eval_dir], license="apache-2.0"))
    assert "DAIL's contrastive distillation" in card and "lambda = 0.1" in card and "adapter disabled" in card
    assert "16 samples per question (temperature 0.6, top-p 0.95)" in card
    assert "**pass@16**" in card and "| 100.0 |" in card
    assert "**Mean response tokens per answer**" in card and "| 321 |" in card
    assert "pass@1 (16 samples, %)" in card  # the model-index metric
    assert "--objective dail --dail-lambda 0.1 --dail-kl reverse --lora --lora-rank 32" in card  # reproduce
