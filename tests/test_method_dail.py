"""DAIL adaptation (`adapt --method dail`): privileged rewrite, filter, contexts, CLI."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import datasets
import pytest
import torch
from click.testing import CliRunner

from dart_hub.adaptation.pipeline import SilentReporter
from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.methods.dail import Dail, DailConfig, load_dail_prompts, negative_hint
from dart_hub.prompts import default_prompts
from dart_hub.records import Problem, Provenance
from tests.scripted_engine import ScriptedEngine, user_text

DATA = Path(__file__).parent / "data"
SOLUTION = "Let x = 3/4 of 20, so x = 15.\n\nThen 15^2 = 225 and 225 + 17 = 242.\n\nSo the answer is \\boxed{242}."


def problem(pid: str = "p", gold: str = "242") -> Problem:
    return Problem(
        id=pid, question=f"Problem {pid}: what is (3/4 of 20) squared plus 17?", solution=SOLUTION, answer=gold,
        provenance=Provenance(source="t", repo_id=None, revision=None, config=None, split="train", row_index=0),
    )  # fmt: skip


class Equal:
    def equivalent_many(self, pairs):
        return [pred is not None and gold == pred for gold, pred in pairs]


def test_negative_hint_gives_answer_and_quantities_but_no_argument():
    hint = negative_hint(SOLUTION, "242")
    assert hint.startswith("the final answer is 242.")
    assert "3/4, 20, 15, 15^2, 225, 17" in hint and "242," not in hint.split(".", 1)[1]
    assert "Then" not in hint and "so x" not in hint  # no sentence of the argument
    assert negative_hint(SOLUTION, "242", max_hints=2).endswith("3/4, 20.")


def test_privileged_samples_are_filtered_and_one_is_kept_with_its_contexts():
    def respond(request, i):
        assert "Reference solution (for you only)" in user_text(request) and SOLUTION in user_text(request)
        return [
            "I think it is \\boxed{241}",  # wrong
            ("First 3/4 of 20 is 15, and 15 squared is 225, plus 17 gives \\boxed{242}. But wait", "length"),  # cut off
            "Three quarters of 20 is 15. Squaring gives 225. Adding 17: \\boxed{242}",
            "Also right \\boxed{242}",
        ][i]

    engine = ScriptedEngine(respond)
    method = Dail(DailConfig(samples=4, max_tokens=64), default_prompts(), load_dail_prompts())
    [example] = method.adapt_chunk(engine, [problem()], Equal(), SilentReporter())
    request = engine.calls[0][0]
    assert (request.n, request.temperature, request.top_p) == (4, 0.6, 0.95)
    assert example.outcome == "kept" and example.method == "dail" and example.strategy == "dail"
    assert example.trajectories == ["Three quarters of 20 is 15. Squaring gives 225. Adding 17: \\boxed{242}"]
    assert [c.kept for c in example.candidates] == [False, False, True, False]
    contexts = example.method_data["contexts"]
    assert SOLUTION in contexts["privileged"][-1]["content"]
    assert "the final answer is 242" in contexts["negative"][-1]["content"] and SOLUTION not in contexts["negative"][-1]["content"]


@pytest.mark.parametrize(
    ("texts", "reason"),
    [(["no \\boxed{1}"], "no_consistent_continuation"), ([("cut \\boxed{242} and", "length")], "truncated")],
)
def test_problems_without_a_qualifying_rewrite_are_discarded_with_a_reason(texts, reason):
    engine = ScriptedEngine(lambda request, i: texts[i % len(texts)])
    method = Dail(DailConfig(samples=2, max_tokens=64), default_prompts(), load_dail_prompts())
    [example] = method.adapt_chunk(engine, [problem()], Equal(), SilentReporter())
    assert example.outcome == "discarded" and example.discard_reason == reason


def test_bad_settings_and_prompt_files_are_one_line_errors(tmp_path):
    with pytest.raises(DartHubError, match="--dail-tau must be between 0 and 1"):
        DailConfig(tau=1.5)
    method = Dail(DailConfig(samples=1, tau=0.5), default_prompts(), load_dail_prompts())
    with pytest.raises(DartHubError, match="needs --engine transformers"):
        method.adapt_chunk(ScriptedEngine(lambda r, i: "x"), [problem()], Equal(), SilentReporter())
    bad = tmp_path / "p.yaml"
    bad.write_text("privileged: x\nplain: y\n")
    with pytest.raises(DartHubError, match="unknown DAIL prompt keys"):
        load_dail_prompts(bad)


@pytest.mark.slow
def test_cli_adapt_method_dail_writes_the_three_contexts(tiny_model_dir, tmp_path):
    out = tmp_path / "out"
    args = [
        "adapt", "--method", "dail", "--student", str(tiny_model_dir), "--dataset", str(DATA / "limo_sample.jsonl"),
        "--engine", "transformers", "--dail-samples", "2", "--dail-max-tokens", "12", "--output", str(out),
        "--work-dir", str(tmp_path / "w"), "--quiet", "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["method"] == "dail" and summary["rollouts"] == summary["problems"] * 2
    config = json.loads((out / "dart_config.json").read_text())
    assert config["method"] == "dail" and config["objective"] == "dail" and config["dail"]["samples"] == 2
    assert "adapt" not in config
    steps = datasets.load_dataset(str(out), "steps", split="train")
    assert all(json.loads(row["method_data"])["contexts"]["negative"] for row in steps)
    card = (out / "README.md").read_text()
    assert "**DAIL** (Distribution Aligned Imitation Learning)" in card and "mendes2026dail" in card and "Imitation gap" not in card
    # the answer-only guard is on by default and the card says it is ours, not the paper's
    assert config["dail"]["filter"] == "guarded" and config["dail"]["min_steps"] == 2
    assert "**Project addition, not in the DAIL paper:** an\n   answer-only guard" in card and "`--dail-filter paper`" in card
    # a random tiny model rarely reaches the gold: the rows that exist carry the three views
    from dart_hub.publish.folder import train_rows

    rows = train_rows([_with_trajectory(e) for e in _examples(out)], {"question": "question", "solution": "solution"}, "")
    assert {"messages", "privileged_messages", "negative_messages"} <= set(rows[0])
    assert rows[0]["privileged_messages"][-1] == rows[0]["messages"][-1] == rows[0]["negative_messages"][-1]


def _examples(out):
    from dart_hub.publish.folder import read_examples

    return read_examples(out)


def _with_trajectory(example):
    import dataclasses

    return dataclasses.replace(example, trajectories=["a solution \\boxed{1}"], outcome="kept")


def test_a_recipe_can_choose_dail_and_dry_run(tmp_path):
    recipe = tmp_path / "dail.yaml"
    recipe.write_text(
        f"name: t\noutput: {tmp_path / 'run'}\nsource: {{dataset: {DATA / 'limo_sample.jsonl'}}}\n"
        "student: {model: Qwen/Qwen2.5-1.5B-Instruct}\nadapt: {method: dail, dail_samples: 4}\n"
    )
    result = CliRunner().invoke(cli, ["run", str(recipe), "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "(method dail, 4 samples per problem)" in result.output and "rollouts 16," in result.output


# -- the mixed-policy decoder ---------------------------------------------------------------


class FixedLogits(torch.nn.Module):
    """A 'model' whose next-token logits depend only on which context it reads: prompts that
    start with token 1 are the proposer (token 5 is almost certain), those starting with 2 the
    validator (token 5 has probability ~0.3, token 6 ~0.7). Token 9 ends the sequence."""

    def __init__(self):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, attention_mask, position_ids, past_key_values=None, use_cache=True):
        first = past_key_values if past_key_values is not None else input_ids[:, :1].clone()
        for i, row in enumerate(attention_mask):
            if past_key_values is None:
                first[i, 0] = input_ids[i, int((row == 0).sum())]
        logits = torch.full((input_ids.shape[0], input_ids.shape[1], 10), -30.0)
        for i in range(input_ids.shape[0]):
            if int(first[i, 0]) == 1:
                logits[i, -1, 5] = 10.0
            else:
                logits[i, -1, 5] = 0.0
                logits[i, -1, 6] = 0.8473  # softmax([0, 0.8473]) = [0.3, 0.7]
            if attention_mask.shape[1] >= 6:
                logits[i, -1, 9] = 50.0  # stop after a few tokens
        return SimpleNamespace(logits=logits, past_key_values=first)


@pytest.mark.parametrize(("tau", "token", "accepted"), [(0.0, 5, True), (0.2, 5, True), (0.5, None, False), (1.0, None, False)])
def test_mixed_policy_accepts_a_proposal_only_above_tau(tau, token, accepted):
    from dart_hub.methods.dail_decoder import mixed_policy_generate

    samples = mixed_policy_generate(
        FixedLogits(), [[1, 3, 3]] * 8, [[2, 3]] * 8, list(range(8)), tau=tau, temperature=1.0,
        top_k=2, max_draws=5, max_tokens=4, eos_ids=[9], pad_id=0,
    )  # fmt: skip
    for sample in samples:
        first = sample.tokens[0]
        assert (sample.proposals_accepted > 0) == accepted
        if token is not None:
            assert first == token
        else:
            assert first in (5, 6)  # drawn from the validator's own top-k
    if token is None:  # the validator samples: both of its tokens occur over 8 seeds
        assert {s.tokens[0] for s in samples} == {5, 6}
    again = mixed_policy_generate(
        FixedLogits(), [[1, 3, 3]] * 8, [[2, 3]] * 8, list(range(8)), tau=tau, temperature=1.0,
        top_k=2, max_draws=5, max_tokens=4, eos_ids=[9], pad_id=0,
    )  # fmt: skip
    assert [s.tokens for s in again] == [s.tokens for s in samples]  # seeded per sequence


@pytest.mark.slow
def test_mixed_policy_runs_on_a_real_model_through_the_cli(tiny_model_dir, tmp_path):
    args = [
        "adapt", "--method", "dail", "--dail-tau", "0.3", "--student", str(tiny_model_dir),
        "--dataset", str(DATA / "limo_sample.jsonl"), "--engine", "transformers", "--dail-samples", "2",
        "--dail-max-tokens", "8", "--output", str(tmp_path / "out"), "--work-dir", str(tmp_path / "w"), "--quiet", "--json",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["rollouts"] == summary["problems"] * 2 and summary["completion_tokens"] > 0
    assert "mixed-policy" in (tmp_path / "out" / "README.md").read_text()


@pytest.mark.slow
def test_dail_shards_merge_like_dart_shards(tiny_model_dir, tmp_path):
    base = [
        "adapt", "--method", "dail", "--student", str(tiny_model_dir), "--dataset", str(DATA / "limo_sample.jsonl"),
        "--engine", "transformers", "--dail-samples", "1", "--dail-max-tokens", "4", "--quiet",
    ]  # fmt: skip
    for i in range(2):
        shard = CliRunner().invoke(cli, [*base, "--shard", f"{i}/2", "--output", str(tmp_path / "shards"), "--work-dir", str(tmp_path / f"w{i}")])
        assert shard.exit_code == 0, shard.output
    merged = CliRunner().invoke(cli, ["merge", str(tmp_path / "shards"), "--output", str(tmp_path / "merged"), "--json"])
    assert merged.exit_code == 0, merged.output
    summary = json.loads(merged.stdout)
    assert summary["method"] == "dail" and summary["shards"] == 2 and summary["problems"] == 4
    config = json.loads((tmp_path / "merged" / "dart_config.json").read_text())
    assert config["method"] == "dail" and "mendes2026dail" in (tmp_path / "merged" / "README.md").read_text()


def test_the_answer_only_guard_drops_restated_answers_and_the_papers_filter_keeps_them():
    """The guarded filter (a project addition, the default) never keeps a sample that only
    restates the answer the privileged context shows; --dail-filter paper is the paper's filter."""
    from dart_hub.methods.mapper.rewards import answer_only, reasoning_units

    only = "The answer is \\boxed{242}"
    worked = "Three quarters of 20 is 15. Squaring gives 225. Adding 17: \\boxed{242}"
    assert reasoning_units(only) == 0 and answer_only(only) and not answer_only(worked)
    assert reasoning_units("Start: 4x3 = 12\n\nStep 1: 12 + 5 = 17\n\nThe answer is \\boxed{17}") == 2

    def run(config, texts):
        engine = ScriptedEngine(lambda request, i: texts[i % len(texts)])
        [example] = Dail(config, default_prompts(), load_dail_prompts()).adapt_chunk(engine, [problem()], Equal(), SilentReporter())
        return example

    guarded = run(DailConfig(samples=2, max_tokens=64), [only, worked])
    assert guarded.outcome == "kept" and guarded.trajectories == [worked]  # the first sample was answer-only
    dropped = run(DailConfig(samples=2, max_tokens=64), [only])
    assert dropped.outcome == "discarded" and dropped.discard_reason == "answer_only_rewrite"
    paper = run(DailConfig(samples=2, max_tokens=64, filter="paper"), [only, worked])
    assert paper.outcome == "kept" and paper.trajectories == [only]  # the paper's filter admits it
    strict = run(DailConfig(samples=2, max_tokens=64, min_steps=3), [worked])
    assert strict.discard_reason == "answer_only_rewrite"
    with pytest.raises(DartHubError, match="--dail-filter must be one of guarded, paper"):
        DailConfig(filter="strict")
