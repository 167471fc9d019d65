"""`--rules paper` is Algorithm 1 as written; `--rules robust` is dart-hub's additions, each a
named deviation (dart_hub.adaptation.rules)."""

from __future__ import annotations

import pytest

from dart_hub.adaptation.pipeline import adapt_chunk, cut_for, summarize
from dart_hub.adaptation.probe import ProbeResult
from dart_hub.adaptation.rules import DEVIATIONS, LEGACY, PRESETS, deviations, rules_label
from dart_hub.config import AdaptConfig
from dart_hub.errors import DartHubError
from tests.scripted_engine import ScriptedEngine, kind_of, steps_in_prompt
from tests.test_pipeline import PROMPTS, EqualityChecker, make_problem, student


def probed(scores: list[float], n: int = 4) -> ProbeResult:
    """A probe result whose prefix t had round(f_t * n) successes out of n."""
    from dart_hub.records import Candidate

    rollouts = [
        [Candidate(text="", answer=None, correct=j < round(f * n), repetition=0.0, completion_tokens=1, finish_reason="stop", origin="simulation") for j in range(n)]
        for f in scores
    ]
    return ProbeResult(
        scores=list(scores), successes=[round(f * n) for f in scores], rollouts=rollouts,
        prompt_tokens=0, completion_tokens=0, samples=[n] * len(scores),
    )  # fmt: skip


def paper_cut(scores: list[float]):
    cut = cut_for(probed(scores), AdaptConfig())  # the default is the paper's
    return cut.keep_steps, cut.peak, cut.gap, cut.reason


@pytest.mark.parametrize(
    ("scores", "expected"),
    [
        # the last step states the answer and is probed: f = 1 there is the first index of the
        # maximum, nothing after it can drop: no gap, the whole trace is kept (Algorithm 1)
        ([0.5, 0.25, 0.0, 0.0, 0.0, 1.0], (6, 5, None, "no_drop")),
        # an answer stated in the first step: probed like any other, f = 1 from the start
        ([1.0, 1.0, 1.0], (3, 0, None, "no_drop")),
        ([1.0, 0.75, 0.25, 1.0], (2, 0, 2, "gap")),
        # all zero: the peak is t = 0 and nothing is below 0 - epsilon: no gap, trace kept
        ([0.0, 0.0, 0.0], (3, 0, None, "no_drop")),
        # all one
        ([1.0, 1.0, 1.0, 1.0], (4, 0, None, "no_drop")),
        # a single step
        ([0.25], (1, 0, None, "no_drop")),
        ([0.0], (1, 0, None, "no_drop")),
        # a late global maximum after a collapse: the peak is the late one, the collapse before
        # it does not count (t_gap > t_peak)
        ([0.75, 0.0, 0.0, 1.0, 0.25], (4, 3, 4, "gap")),
        ([0.75, 0.0, 0.0, 1.0, 1.0], (5, 3, None, "no_drop")),
        # ties: the first index of the maximum is the peak
        ([1.0, 0.5, 1.0, 0.0], (1, 0, 1, "gap")),
        ([0.5, 1.0, 1.0, 0.75, 0.5], (4, 1, 4, "gap")),
        # a weak student: no drop of more than epsilon, no min-follow bar: the trace is kept
        ([0.25, 0.0, 0.0], (3, 0, None, "no_drop")),
    ],
)
def test_paper_rules_are_algorithm_1_on_hand_made_curves(scores, expected):
    assert paper_cut(scores) == expected


def test_paper_is_the_default_and_its_switches_are_the_papers():
    config = AdaptConfig()
    assert config.rules == "paper"
    assert (config.answer_steps, config.peak, config.min_follow, config.all_zero, config.unfinished, config.confirm) == (
        "probe", "global", 0.0, "trace", "keep", 0,
    )  # fmt: skip
    assert deviations(config.to_dict()) == []
    robust = AdaptConfig(rules="robust")
    assert (robust.answer_steps, robust.peak, robust.min_follow, robust.all_zero, robust.unfinished, robust.confirm) == (
        "skip", "local", 0.5, "question", "drop", 16,
    )  # fmt: skip
    # each switch on its own, on top of either set
    assert AdaptConfig(peak="local").peak == "local" and AdaptConfig(peak="local").answer_steps == "probe"
    assert AdaptConfig(rules="robust", answer_steps="probe").answer_steps == "probe"
    with pytest.raises(DartHubError, match="--rules"):
        AdaptConfig(rules="nope")
    with pytest.raises(DartHubError, match="--peak local"):
        AdaptConfig(probe="adaptive")  # the paper's global peak cannot be searched adaptively


def test_robust_names_every_deviation_and_paper_none():
    names = [d["name"] for d in deviations(AdaptConfig(rules="robust").to_dict())]
    assert names == ["answer-steps-skipped", "local-peak", "confirmation", "min-follow", "all-zero-from-question", "unfinished-dropped"]
    adaptive = deviations(AdaptConfig(rules="robust", probe="adaptive").to_dict())
    assert [d["name"] for d in adaptive][0] == "adaptive-probing"
    # one switch away from the paper: exactly that deviation
    assert [d["name"] for d in deviations(AdaptConfig(unfinished="drop").to_dict())] == ["unfinished-dropped"]
    assert [d["name"] for d in deviations(AdaptConfig(min_follow=0.5).to_dict())] == ["min-follow"]
    # static probes nothing; first has no peak, gap or min-follow bar
    assert deviations(AdaptConfig(rules="robust", strategy="static").to_dict()) == []
    first = [d["name"] for d in deviations(AdaptConfig(rules="robust", strategy="first").to_dict())]
    assert first == ["answer-steps-skipped", "all-zero-from-question", "unfinished-dropped"]
    assert set(DEVIATIONS) >= {d["name"] for d in adaptive}
    # a run config written before --rules: the robust additions without confirmation
    old = {k: v for k, v in AdaptConfig(rules="robust", confirm=0).to_dict().items() if k not in ("rules", "answer_steps", "all_zero", "unfinished", "confirm")}
    assert [d["name"] for d in deviations(old)] == ["answer-steps-skipped", "local-peak", "min-follow", "all-zero-from-question", "unfinished-dropped"]
    assert rules_label(AdaptConfig().to_dict()) == "paper" and rules_label(AdaptConfig(rules="robust").to_dict()) == "robust"
    assert rules_label(AdaptConfig(confirm=4).to_dict()) == "paper (modified)"
    assert rules_label(old) == "robust without confirmation (written before --rules existed)"


def test_old_work_dirs_keep_their_fingerprint_under_robust_without_confirmation():
    # the dict runs made before --rules existed hashed: no rules key, no new switch
    legacy = AdaptConfig(rules="robust", confirm=0).fingerprint_dict()
    assert not {"rules", "answer_steps", "all_zero", "unfinished", "confirm"} & set(legacy)
    assert (legacy["peak"], legacy["min_follow"]) == ("local", 0.5)
    assert AdaptConfig(rules="robust").fingerprint_dict()["confirm"] == 16
    assert AdaptConfig().fingerprint_dict() != legacy
    # Static does the same under both sets: same fingerprint
    assert AdaptConfig(strategy="static").fingerprint_dict() == AdaptConfig(strategy="static", rules="robust").fingerprint_dict()
    # a published config from before --rules reads back as what ran then
    old = {k: v for k, v in AdaptConfig(rules="robust", confirm=0).to_dict().items() if k not in ("rules", "answer_steps", "all_zero", "unfinished", "confirm")}
    back = AdaptConfig.from_dict(old)
    assert (back.rules, back.answer_steps, back.confirm, back.unfinished) == ("robust", "skip", 0, "drop")
    assert {**PRESETS["robust"], "confirm": 0} == LEGACY


def test_probe_cache_keys_separate_what_is_probed():
    paper, robust = AdaptConfig().simulation_settings(), AdaptConfig(rules="robust", confirm=0).simulation_settings()
    # paper probes the answer-stating prefixes too: never served a robust entry that lacks them
    assert paper["answer_steps"] == "probe" and "answer_steps" not in robust
    assert paper != robust
    confirmed = AdaptConfig(rules="robust").simulation_settings()
    assert (confirmed["confirm"], confirmed["epsilon"], confirmed["peak"]) == (16, 0.3, "local")
    # exploration-only settings still share the cache
    assert AdaptConfig(unfinished="drop", all_zero="question", min_follow=0.5).simulation_settings() == paper


def test_paper_probes_answer_stating_steps_and_keeps_the_whole_trace():
    problem = make_problem("a", 4, boxed=True)  # the last step states \\boxed{42}
    successes = {"a": [2, 0, 0, 4]}
    ok = ["Then x \\boxed{42}"]
    paper_engine = ScriptedEngine(student(successes, {"a": ok}))
    [paper] = adapt_chunk(paper_engine, [problem], AdaptConfig(n_sim=4, min_step_chars=1), PROMPTS, EqualityChecker())
    probed_steps = sorted(steps_in_prompt(r) for r in paper_engine.calls[0])
    assert probed_steps == [1, 2, 3, 4]  # the answer-stating prefix was probed
    assert paper.reveal_step == 3 and paper.scores == [0.5, 0.0, 0.0, 1.0]
    assert (paper.peak, paper.gap, paper.cut_reason, paper.keep_steps) == (3, None, "no_drop", 4)
    assert paper.trajectories == [problem.solution]
    robust_engine = ScriptedEngine(student(successes, {"a": ok}))
    [robust] = adapt_chunk(robust_engine, [problem], AdaptConfig(n_sim=4, min_step_chars=1, rules="robust", confirm=0), PROMPTS, EqualityChecker())
    assert sorted(steps_in_prompt(r) for r in robust_engine.calls[0]) == [1, 2, 3]
    assert (robust.cut_reason, robust.keep_steps, robust.scores[3]) == ("gap", 1, None)


def test_paper_keeps_a_truncated_continuation_with_the_right_answer_robust_does_not():
    problem = make_problem("a", 3)

    def respond(request, i):
        if kind_of(request) == "simulation":
            t = steps_in_prompt(request) - 1
            return "go \\boxed{42}" if (t == 0 or i == 0) else "go \\boxed{7}"
        return ("so \\boxed{42} and then we", "length")  # right answer, cut off by the budget

    paper = adapt_chunk(ScriptedEngine(respond), [problem], AdaptConfig(n_sim=4, n_explore=2, min_step_chars=1), PROMPTS, EqualityChecker())[0]
    assert paper.cut_reason == "gap" and paper.outcome == "kept"
    robust_config = AdaptConfig(n_sim=4, n_explore=2, min_step_chars=1, rules="robust", confirm=0)
    robust = adapt_chunk(ScriptedEngine(respond), [problem], robust_config, PROMPTS, EqualityChecker())[0]
    assert robust.cut_reason == "gap" and (robust.outcome, robust.discard_reason) == ("discarded", "truncated")
    summary = summarize([robust], robust_config)
    assert summary["rules"] == "robust" and "unfinished-dropped" in summary["deviations"]
    assert summarize([paper], AdaptConfig())["deviations"] == []


def test_summary_gives_the_relative_cut_position_next_to_table_6():
    problems = [make_problem(pid, 4) for pid in "abcd"]
    successes = {"a": [4, 4, 0, 0], "b": [4, 0, 0, 0], "c": [4, 4, 4, 4], "d": [4, 4, 4, 0]}
    ok = ["x \\boxed{42}"]
    config = AdaptConfig(n_sim=4, min_step_chars=1)
    examples = adapt_chunk(ScriptedEngine(student(successes, dict.fromkeys("abcd", ok))), problems, config, PROMPTS, EqualityChecker())
    assert [e.keep_steps for e in examples] == [2, 1, 4, 3]
    relative = summarize(examples, config)["relative_cut"]
    assert relative == {"problems": 4, "mean": 0.625, "q1": 0.4375, "median": 0.625, "q3": 0.8125}
    table6 = summarize(examples, config)["paper_table6_gap_position"]
    assert table6["LIMO"]["3B"] == 0.5983 and table6["Math-QwQ-32B"]["0.5B"] == 0.5244
