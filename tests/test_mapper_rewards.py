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
}
# which detector must catch each cheat (wrong/missing answers: the gate)
CAUGHT_BY = {"answer_only": "too_short", "answer_first": "answer_first", "copy": "copy", "repetition": "repetition"}


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
    assert best.correct and all(best.components[name] == 0.0 for name in ("too_short", "answer_first", "copy", "repetition"))
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
    assert names == ["correctness", "alignment", "too_short", "answer_first", "repetition"]
    assert rewards.weights() == [1.0, 0.5, 1.0, 1.0, 1.0]
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
    # the derived value "= 82" (word 20) comes before the box: the answer is stated at the end
    assert answer_position(IN_STYLE, "82", QUESTION) == len(IN_STYLE.split("82\n")[0].split())
    assert answer_position("82. Then 18 + 4 = 22", "82", QUESTION) == 0  # a bare gold value first
    assert answer_position("18 first, then more words", "18", QUESTION) is None  # gold in the question: no cue
    assert copy_overlap(ORIGINAL, ORIGINAL, 6) == 1.0 and copy_overlap(IN_STYLE, ORIGINAL, 6) == 0.0
    with pytest.raises(DartHubError, match="unknown mapper reward"):
        RewardConfig(weights={"style": 1.0})
    with pytest.raises(DartHubError, match="name=weight"):
        RewardConfig().with_weights("alignment:2")
    with pytest.raises(DartHubError, match="likelihood scorer"):
        MapperRewards(RewardConfig(), checker=None, scorer=None)
