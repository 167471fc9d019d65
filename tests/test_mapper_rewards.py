"""The mapper's rewards on crafted rewrites of a toy problem, scored by the real toy student."""

from __future__ import annotations

import pytest

from dart_hub.answers import AnswerChecker
from dart_hub.errors import DartHubError
from dart_hub.methods.mapper.rewards import (
    MapperRewards,
    RewardConfig,
    answer_position,
    copy_overlap,
)
from dart_hub.methods.mapper.scorer import TransformersScorer
from dart_hub.toy import toy_student_path

QUESTION = "Start with 18. Add 4, multiply by 4, subtract 6. What is the result?"
ORIGINAL = (
    "We begin with 18 and add 4, which gives 18 + 4 = 22.\n\n"
    "Folding the next two operations together: 22*4-6 = 82.\n\n"
    "Therefore the result of the process is \\boxed{82}."
)
IN_STYLE = "Step 1: 18 + 4 = 22\n\nStep 2: 22 * 4 = 88\n\nStep 3: 88 - 6 = 82\n\nThe answer is \\boxed{82}"
CHEATS = {
    "answer_only": "The answer is \\boxed{82}",
    "answer_first": "The answer is \\boxed{82}.\n\nStep 1: 18 + 4 = 22\n\nStep 2: 22 * 4 = 88\n\nStep 3: 88 - 6 = 82",
    "copy": ORIGINAL,
    "repetition": "Step 1: 18 + 4 = 22\n\n" + "Step 2: 22 * 4 = 88 so we add the numbers again and again. " * 12 + "\n\nThe answer is \\boxed{82}",
    "wrong_answer": "Step 1: 18 + 4 = 22\n\nStep 2: 22 * 4 = 88\n\nStep 3: 88 - 6 = 80\n\nThe answer is \\boxed{80}",
    "no_answer": "Step 1: 18 + 4 = 22\n\nStep 2: 22 * 4 = 88\n\nStep 3: 88 - 6 = 82",
    # a wrong derivation (its last step reaches 80) with the gold pasted into the box
    "pasted_gold": "Step 1: 18 + 4 = 22\n\nStep 2: 22 * 4 = 88\n\nStep 3: 88 - 6 = 80\n\nThe answer is \\boxed{82}",
}
# which detector must catch each cheat (wrong/missing answers: the gate)
CAUGHT_BY = {"answer_only": "too_short", "answer_first": "answer_first", "copy": "copy", "repetition": "repetition",
             "pasted_gold": "unsupported_answer"}  # fmt: skip
DETECTOR_NAMES = ("too_short", "answer_first", "unsupported_answer", "copy", "repetition")


@pytest.fixture(scope="module")
def checker():
    with AnswerChecker(timeout=5.0) as c:
        yield c


@pytest.fixture(scope="module")
def scorer():
    return TransformersScorer(str(toy_student_path()), device="cpu", dtype="float32", batch_size=4)


def score(rewards, texts):
    n = len(texts)
    return rewards.score(texts, [QUESTION] * n, [ORIGINAL] * n, ["82"] * n)


def test_alignment_prefers_the_students_own_style_to_the_expert_original(scorer):
    in_style, original = scorer.mean_logprobs([QUESTION, QUESTION], [IN_STYLE, ORIGINAL])
    assert in_style > original + 0.5  # nats per token: the toy student writes one operation per step
    assert scorer.mean_logprobs([QUESTION], [IN_STYLE]) == [in_style]  # batched == single, cached
    fresh = TransformersScorer(str(toy_student_path()), device="cpu", dtype="float32", batch_size=1)
    assert fresh.mean_logprobs([QUESTION], [IN_STYLE])[0] == pytest.approx(in_style, abs=1e-4)


def test_a_correct_in_style_rewrite_scores_above_the_original_and_every_cheat(checker, scorer):
    rewards = MapperRewards(RewardConfig(), checker, scorer)
    breakdowns = dict(zip(["in_style", "original", *CHEATS], score(rewards, [IN_STYLE, ORIGINAL, *CHEATS.values()]), strict=True))
    best = breakdowns["in_style"]
    assert best.correct and all(best.components[name] == 0.0 for name in DETECTOR_NAMES)
    for name, breakdown in breakdowns.items():
        if name != "in_style":
            assert breakdown.total < best.total, name
    for cheat, detector in CAUGHT_BY.items():
        assert breakdowns[cheat].components[detector] < 0, cheat
    # the alignment reward alone (no detector, no gate) also prefers the in-style rewrite
    assert best.components["alignment"] > breakdowns["original"].components["alignment"]


@pytest.mark.parametrize("cheat", ["wrong_answer", "no_answer"])
def test_the_gate_gives_wrong_or_missing_answers_the_minimum_total(checker, scorer, cheat):
    config = RewardConfig()
    rewards = MapperRewards(config, checker, scorer)
    [breakdown] = score(rewards, [CHEATS[cheat]])
    minimum = sum(config.weights[r.name] * r.minimum for r in rewards.functions())
    assert not breakdown.correct and breakdown.total == pytest.approx(minimum)
    ungated = MapperRewards(RewardConfig(gate=False), checker, scorer)
    [open_breakdown] = score(ungated, [CHEATS[cheat]])
    assert open_breakdown.components["correctness"] == -1.0 and open_breakdown.total > breakdown.total


def test_rewards_are_trl_reward_functions_with_columns_and_weights(checker, scorer):
    rewards = MapperRewards(RewardConfig().with_weights("alignment=0.5,copy=0"), checker, scorer)
    names = [f.__name__ for f in rewards.functions()]
    assert names == ["correctness", "alignment", "too_short", "answer_first", "unsupported_answer", "repetition"]
    assert rewards.weights() == [1.0, 0.5, 1.0, 1.0, 1.0, 1.0]
    completions = [[{"role": "assistant", "content": IN_STYLE}], [{"role": "assistant", "content": CHEATS["answer_only"]}]]
    columns = {"question": [QUESTION] * 2, "solution": [ORIGINAL] * 2, "answer": ["82"] * 2, "trainer_state": None}
    prompts = [[{"role": "user", "content": "rewrite"}]] * 2
    assert rewards.functions()[0](prompts=prompts, completions=completions, **columns) == [1.0, 1.0]
    too_short = rewards.functions()[2](prompts=prompts, completions=completions, **columns)
    assert too_short[0] == 0.0 and too_short[1] < -0.5


def test_relative_alignment_is_the_improvement_over_the_original(checker, scorer):
    rewards = MapperRewards(RewardConfig(relative=True, weights={"alignment": 1.0, "correctness": 0.0}), checker, scorer)
    [in_style, original] = score(rewards, [IN_STYLE, ORIGINAL])
    assert original.components["alignment"] == pytest.approx(0.0, abs=1e-6)
    assert in_style.components["alignment"] > 0.5


def test_detector_helpers_and_bad_settings():
    # the derived value "= 82" is derivation, not a statement: the answer is stated at the end
    assert answer_position(IN_STYLE, "82", QUESTION) == len(IN_STYLE.split("The answer")[0].split())
    assert answer_position("82. Then 18 + 4 = 22", "82", QUESTION) == 0  # a bare gold value first
    assert answer_position("18 first, then more words", "18", QUESTION) is None  # gold in the question: no cue
    assert copy_overlap(ORIGINAL, ORIGINAL, 6) == 1.0 and copy_overlap(IN_STYLE, ORIGINAL, 6) == 0.0
    with pytest.raises(DartHubError, match="unknown mapper reward"):
        RewardConfig(weights={"style": 1.0})
    with pytest.raises(DartHubError, match="name=weight"):
        RewardConfig().with_weights("alignment:2")
    with pytest.raises(DartHubError, match="student's scorer"):
        MapperRewards(RewardConfig(), checker=None, scorer=None)


# The cheats the review crafted against the first version of the rewards, each scored as it should be.
# A toy problem whose answer is 1, with no 1 in its question: "Step 1:" must not read as the answer.
QUESTION_ONE = "Start with 9x2. Apply the operations in the order of their labels: (A) subtract 9, (B) subtract 8, (C) multiply by 5, (D) subtract 4. What is the result?"
SOLVED_ONE = "Start: 9x2 = 18\n\nStep 1: 18 - 9 = 9\n\nStep 2: 9 - 8 = 1\n\nStep 3: 1 * 5 = 5\n\nStep 4: 5 - 4 = 1\n\nThe answer is \\boxed{1}"


def test_answer_first_ignores_step_numbers_and_numbers_inside_equations(checker, scorer):
    from dart_hub.toy.domain import evaluate_question

    assert evaluate_question(QUESTION_ONE) == 1 and "1" not in QUESTION_ONE
    assert answer_position(SOLVED_ONE, "1", QUESTION_ONE) == len(SOLVED_ONE.split("The answer")[0].split())
    assert answer_position("1. Add the numbers: 18 - 9 = 9\n2. Then 9 - 8 = 1\n\\boxed{1}", "1", QUESTION_ONE) > 10  # a list label
    assert answer_position("(1) 18 - 9 = 9, (2) 9 - 8 = 1; so \\boxed{1}", "1", QUESTION_ONE) > 5
    # the gold stated as a bare value before the derivation is still answer-first
    stated = "The result is 1.\n\n" + SOLVED_ONE
    assert answer_position(stated, "1", QUESTION_ONE) == 3
    rewards = MapperRewards(RewardConfig(), checker, scorer)
    solved, early = rewards.score([SOLVED_ONE, stated], [QUESTION_ONE] * 2, ["expert"] * 2, ["1"] * 2)
    assert solved.correct and solved.components["answer_first"] == 0.0  # was -1: "Step 1:" read as the answer
    assert early.components["answer_first"] == -1.0 and early.total < solved.total


def test_a_derivation_that_does_not_reach_the_boxed_gold_scores_below_one_that_does(checker, scorer):
    from dart_hub.methods.mapper.rewards import derived_value

    assert derived_value(IN_STYLE) == "82" and derived_value(CHEATS["pasted_gold"]) == "80"
    assert derived_value("So we get 41 twice, that is 82 in all, \\boxed{82}") == "82"  # no equation: the value stated
    assert derived_value(CHEATS["answer_only"]) is None
    rewards = MapperRewards(RewardConfig(), checker, scorer)
    honest, pasted = score(rewards, [IN_STYLE, CHEATS["pasted_gold"]])
    assert pasted.correct  # the gate alone cannot see it: the boxed answer is the gold
    assert pasted.components["unsupported_answer"] == -1.0 and honest.components["unsupported_answer"] == 0.0
    assert pasted.total < honest.total - 0.9
    others = {name: pasted.components[name] for name in DETECTOR_NAMES if name != "unsupported_answer"}
    assert all(value == 0.0 for value in others.values()), others  # only the new detector sees it


def test_too_short_measures_a_concise_rewrite_against_the_students_own_solution(checker, scorer):
    from dart_hub.steps import split_steps
    from dart_hub.toy import expert_dataset_path
    from dart_hub.toy.datasets import read_jsonl
    from dart_hub.toy.domain import parse_question
    from dart_hub.toy.styles import student_solution

    # an expert trace with the early reveal and the check paragraphs (16 steps)
    row = max(read_jsonl(expert_dataset_path()), key=lambda r: len(split_steps(r["solution"], min_chars=5)))
    concise = student_solution(parse_question(row["question"]))  # correct, in the student's own format
    assert len(split_steps(concise)) / len(split_steps(row["solution"])) < 0.5  # far shorter than the expert
    own = scorer.own_solutions([row["question"]], 256)[0]
    assert len(split_steps(own)) >= len(split_steps(concise)) - 1  # the student writes about as much itself
    rewards = MapperRewards(RewardConfig(), checker, scorer)
    kept, answer_only = rewards.score([concise, f"The answer is \\boxed{{{row['answer']}}}"], [row["question"]] * 2,
                                      [row["solution"]] * 2, [row["answer"]] * 2)  # fmt: skip
    assert kept.correct and kept.components["too_short"] == 0.0  # the expert-length rule gave it about -0.3
    assert answer_only.components["too_short"] < -0.5
    from dart_hub.methods.mapper.rewards import too_short_penalty

    assert too_short_penalty(concise, row["solution"], RewardConfig()) < -0.2  # what the old rule measured
