"""`--confirm K`: a candidate gap is accepted only when more rollouts at it and at its peak
confirm the drop (dart_hub.adaptation.confirm)."""

from __future__ import annotations

import pytest

from dart_hub.adaptation.confirm import confirmed_cut, confirmed_walk, sprt
from dart_hub.adaptation.pipeline import adapt_chunk, cut_for, summarize
from dart_hub.config import AdaptConfig
from dart_hub.store import ProbeStore
from tests.scripted_engine import ScriptedEngine, kind_of, steps_in_prompt
from tests.test_pipeline import PROMPTS, EqualityChecker, make_problem

OK = "so it is \\boxed{42}"


def scripted(success):
    """success(t, i): does rollout i (sample index) from s_0..s_t reach the answer."""

    def respond(request, i):
        if kind_of(request) == "simulation":
            t = steps_in_prompt(request) - 1
            return f"step {t} sample {i} " + ("\\boxed{42}" if success(t, i) else "\\boxed{7}")
        return OK

    return respond


def robust(**kw) -> AdaptConfig:
    return AdaptConfig(**{"n_sim": 4, "n_explore": 2, "min_step_chars": 1, "rules": "robust", **kw})


def run(success, n_steps: int, config: AdaptConfig):
    engine = ScriptedEngine(scripted(success))
    [example] = adapt_chunk(engine, [make_problem("a", n_steps)], config, PROMPTS, EqualityChecker())
    return example, engine


def test_sprt_decides_both_ways_and_waits_when_unsure():
    assert sprt([True] * 8, level=0.97, epsilon=0.3) == "no_drop"
    assert sprt([False, False], level=0.97, epsilon=0.3) == "drop"
    assert sprt([True, False], level=0.9, epsilon=0.3) == "undecided"
    assert sprt([False] * 10, level=0.25, epsilon=0.3) == "no_drop"  # no drop of 0.3 below 0.25


def test_a_single_unlucky_two_of_four_on_a_plateau_is_rejected_after_reprobing():
    # a plateau the student follows; at step 5 two of the first four rollouts fail by bad luck
    def success(t, i):
        return not (t == 5 and i in (1, 3))

    unconfirmed, _ = run(success, 10, robust(confirm=0))
    assert (unconfirmed.cut_reason, unconfirmed.gap, unconfirmed.keep_steps) == ("gap", 5, 5)  # the false gap
    confirmed, engine = run(success, 10, robust())
    assert (confirmed.cut_reason, confirmed.gap, confirmed.keep_steps) == ("no_drop", None, 10)
    # the peak (t = 0) got its 16 extra rollouts, the candidate 8 (the test said "no drop" after 8)
    assert confirmed.samples == [20, 4, 4, 4, 4, 12, 4, 4, 4, 4]
    assert summarize([confirmed], robust())["confirm_rollouts"] == 24
    assert confirmed.rollouts == unconfirmed.rollouts + 24 - 2  # (exploration: none after no_drop; 2 before)
    # the extra rollouts continue each prefix's sample indices: nothing drawn twice
    offsets = [(steps_in_prompt(r) - 1, r.sample_offset, r.n) for call in engine.calls[1:] for r in call]
    assert offsets == [(0, 4, 16), (5, 4, 4), (5, 8, 4)]


def test_a_real_cliff_is_accepted():
    def success(t, i):
        return t < 6  # f = 1 up to step 5, then 0 whatever the number of rollouts

    example, _ = run(success, 10, robust())
    assert (example.cut_reason, example.peak, example.gap, example.keep_steps) == ("gap", 0, 6, 6)
    assert example.samples[0] == 20 and example.samples[6] == 8  # two failures were enough
    assert summarize([example], robust())["confirm_rollouts"] == 20


def test_a_cliff_after_a_noisy_plateau_is_found_where_it_is():
    # plateau at about 0.8 with scattered failures, true cliff at step 30 of 40
    def success(t, i):
        return t < 30 and (t * 7 + i * 3) % 10 not in (0, 1)  # 2 of 4 fail at steps 3, 13, 23

    unconfirmed, _ = run(success, 40, robust(confirm=0))
    confirmed, _ = run(success, 40, robust())
    assert confirmed.gap == 30 and confirmed.keep_steps == 30
    assert unconfirmed.gap is not None and unconfirmed.gap < 30  # without confirmation: a false gap earlier


def test_confirmation_works_with_adaptive_probing():
    def success(t, i):
        return t < 40 and not (t == 21 and i < 3)  # a dip in the first rollouts at 21, cliff at 40

    scan, _ = run(success, 64, robust())
    adaptive, _ = run(success, 64, robust(probe="adaptive"))
    assert scan.gap == adaptive.gap == 40
    assert sum(adaptive.samples) < sum(scan.samples)
    # without confirmation adaptive takes the dip for the gap when it probes it
    plain, _ = run(success, 64, robust(probe="adaptive", confirm=0))
    assert plain.gap != 40


def test_the_cut_is_a_pure_function_of_the_stored_rollouts(tmp_path):
    def success(t, i):
        return t < 7 and not (t == 3 and i in (0, 2))

    config = robust()
    store = ProbeStore(tmp_path / "probes", "key", {})
    engine = ScriptedEngine(scripted(success))
    [first] = adapt_chunk(engine, [make_problem("a", 12)], config, PROMPTS, EqualityChecker(), probe_store=store)
    # a second run served from the probe cache draws no simulation rollout and cuts the same
    engine2 = ScriptedEngine(scripted(lambda t, i: False))
    [again] = adapt_chunk(engine2, [make_problem("a", 12)], config, PROMPTS, EqualityChecker(), probe_store=ProbeStore(tmp_path / "probes", "key", {}))
    assert all(kind_of(r) != "simulation" for call in engine2.calls for r in call)
    assert (again.gap, again.keep_steps, again.samples, again.scores) == (first.gap, first.keep_steps, first.samples, first.scores)
    assert first.gap == 7


def test_walk_and_cut_on_outcomes():
    outcomes = [[True] * 4, [True] * 4, [False] * 4]
    walk = confirmed_walk(dict(enumerate(outcomes)), n_sim=4, confirm=8, epsilon=0.3)
    assert walk.asks == [(0, 4, 8)] and walk.gap is None  # the peak first
    outcomes[0] += [True] * 8
    walk = confirmed_walk(dict(enumerate(outcomes)), n_sim=4, confirm=8, epsilon=0.3)
    assert walk.asks == [(2, 4, 4)]
    outcomes[2] += [False] * 4
    assert confirmed_cut(outcomes, 4, 8, 0.3).gap == 2
    # the global peak rule with confirmation: candidates only after the first maximum
    late = [[True, False, False, False], [False] * 4, [True] * 4 + [True] * 8, [False] * 8]
    assert confirmed_cut(late, 4, 8, 0.3, peak_rule="global").gap == 3
    assert confirmed_cut([[], []], 4, 8, 0.3).reason == "answer_first"
    assert confirmed_cut([[False] * 4] * 3, 4, 8, 0.3).reason == "all_zero"
    assert confirmed_cut([[False] * 4] * 3, 4, 8, 0.3, min_follow=0.0, all_zero="trace").reason == "no_drop"


@pytest.mark.parametrize("strategy", ["first", "static"])
def test_confirmation_leaves_first_and_static_alone(strategy):
    example, engine = run(lambda t, i: t < 2, 6, robust(strategy=strategy))
    assert all(m <= 4 for m in example.samples)
    assert cut_for is not None
