"""Adaptive probing (dart_hub.adaptation.search) on scripted score curves, replayed exactly."""

from __future__ import annotations

import random

import pytest

from dart_hub.adaptation.cut import decide_cut
from dart_hub.adaptation.search import adaptive_budget, coarse_points, replay

EPS, FOLLOW, N = 0.3, 0.5, 4


def outcomes_for(successes: list[int], n: int = N) -> list[list[bool]]:
    """Prefix t's rollouts: the first successes[t] of n succeed (order matters for stopping)."""
    return [[j < k for j in range(n)] for k in successes]


def cuts(successes: list[int], strategy: str = "full", **kw):
    outcomes = outcomes_for(successes)
    target = "first" if strategy == "first" else "gap"
    full_scores, full_samples, _ = replay(outcomes, "scan", epsilon=EPS, min_follow=FOLLOW, target=target)
    scores, samples, rounds = replay(outcomes, "adaptive", epsilon=EPS, min_follow=FOLLOW, target=target, **kw)
    return decide_cut(strategy, full_scores), decide_cut(strategy, scores), samples, rounds


def same(a, b) -> bool:
    return (a.keep_steps, a.gap, a.reason) == (b.keep_steps, b.gap, b.reason)


@pytest.mark.parametrize(
    "successes",
    [
        [4] * 10 + [0] * 30,  # monotone drop deep in a long trace
        [4, 4, 4, 3, 3, 2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0],  # gradual decline
        [2, 3, 4, 4, 4, 4, 4, 0, 0, 0, 0, 0],  # rise, plateau, cliff
        [4] * 16,  # all one: no drop, follows
        [0] * 16,  # all zero
        [1, 0, 0, 0, 0, 0, 0, 0],  # weak student: no drop, does not follow
        [4],  # a single step
        [4, 0],
        [4] * 63 + [0],  # collapse at the very last prefix
        [4, 0] + [0] * 62,  # collapse right after the first step
    ],
)
def test_adaptive_finds_the_scans_cut_on_monotone_curves(successes):
    scan, adaptive, samples, _ = cuts(successes)
    assert same(scan, adaptive), (scan, adaptive)
    assert sum(samples) <= adaptive_budget(len(successes), N)


def test_dips_that_recover_between_coarse_points_can_be_missed_and_that_is_documented():
    # a dip at step 3 recovers by step 5: the scan cuts at 3; the coarse points 0, 5, 10, 15 never see it
    successes = [4, 4, 4, 0, 4, 4] + [4] * 10
    scan, adaptive, _, _ = cuts(successes)
    assert scan.gap == 3 and adaptive.reason == "no_drop"


def test_plateau_at_the_threshold_is_sampled_until_decided():
    successes = [4, 3, 3, 3, 3, 3, 3, 3]  # 0.75 is not below 1.0 - 0.3: no drop
    scan, adaptive, samples, _ = cuts(successes)
    assert same(scan, adaptive) and adaptive.reason == "no_drop"


def test_sequential_stopping_saves_rollouts_on_clear_prefixes():
    successes = [4] * 8 + [0] * 8
    _, adaptive, samples, _ = cuts(successes)
    assert adaptive.gap == 8
    # a prefix far above the threshold is decided after its first 2 rollouts (2 of 2 succeed,
    # the running max can be at most 1.0): it never gets the other 2
    assert 2 in samples and sum(samples) < len(successes) * N / 2


def test_first_strategy_binary_searches_the_first_success():
    successes = [0] * 20 + [1] + [4] * 11
    scan, adaptive, _, _ = cuts(successes, strategy="first")
    assert (scan.keep_steps, scan.reason) == (21, "first_feasible") and same(scan, adaptive)
    scan0, adaptive0, samples0, _ = cuts([0] * 12, strategy="first")
    assert adaptive0.reason == scan0.reason == "all_zero" and max(samples0) == N  # zeros are exact


def test_budget_on_a_64_step_trace_counts_requests():
    assert coarse_points(64, 4, head=0) == [0, 21, 42, 63]
    assert coarse_points(64, 4) == [0, 1, 2, 21, 42, 63]  # the head t = 0..2 (--probe-head 2)
    assert coarse_points(2, 4) == [0, 1] and coarse_points(1, 4) == [0]
    assert adaptive_budget(64, 4, head=0) == 4 * (4 + 5)  # widest interval 21 -> 5 midpoints at most
    assert adaptive_budget(64, 4) == 4 * (6 + 5)
    rng = random.Random(0)
    for _ in range(200):
        gap = rng.randrange(1, 64)
        successes = [rng.choice([3, 4])] * gap + [rng.choice([0, 1])] * (64 - gap)
        scan, adaptive, samples, _ = cuts(successes)
        assert sum(samples) <= adaptive_budget(64, 4) < 64 * 4 / 5
        assert same(scan, adaptive)


def test_on_noisy_cliffs_adaptive_is_nearer_the_true_cliff_than_the_scan():
    """Student succeeds with p = 0.9 before a cliff and 0.1 after it. The scan cuts at the first
    unlucky prefix (2 of 4 rollouts fail somewhere long before the cliff); adaptive, which looks
    at fewer prefixes, lands on the cliff more often. Measured 0.51 vs 0.84 (seed 1; 0.88 with
    --probe-head 0: the head sees the same early unlucky prefixes the scan sees)."""
    rng = random.Random(1)
    scan_near = adaptive_near = drawn_scan = drawn_adaptive = 0
    trials = 300
    for _ in range(trials):
        length = rng.randrange(8, 65)
        cliff = rng.randrange(1, length)
        outcomes = [[rng.random() < (0.9 if t < cliff else 0.1) for _ in range(N)] for t in range(length)]
        full, full_samples, _ = replay(outcomes, "scan", epsilon=EPS, min_follow=FOLLOW)
        fast, fast_samples, _ = replay(outcomes, "adaptive", epsilon=EPS, min_follow=FOLLOW)
        scan_near += abs(decide_cut("full", full).keep_steps - cliff) <= 1
        adaptive_near += abs(decide_cut("full", fast).keep_steps - cliff) <= 1
        drawn_scan += sum(full_samples)
        drawn_adaptive += sum(fast_samples)
    assert adaptive_near / trials >= 0.8 and scan_near < adaptive_near
    assert drawn_scan / drawn_adaptive > 4  # measured 4.7x on these 8-64-step traces (over 5x with --probe-head 0)


# --- the class of curves on which adaptive provably returns the scan's cut (docs/method.md) ---

from hypothesis import HealthCheck, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

HEAD = 2


def in_guaranteed_class(successes: list[int], n: int = N, head: int = HEAD) -> bool:
    """The scan's cut is g (None: no gap); M = max f before g (the whole curve without a gap):
    M is first reached at t <= head, and every f_t, t >= g, is more than EPS below M."""
    scores = [k / n for k in successes]
    cut = decide_cut("full", scores)
    before = scores[: cut.gap] if cut.gap is not None else scores
    top = max(before)
    first = before.index(top)
    after = scores[cut.gap :] if cut.gap is not None else []
    return first <= head and all(f < top - EPS for f in after)


@st.composite
def guaranteed_curves(draw):
    """Curves of the class, built directly: a maximum in the head, values within EPS of it up
    to the cliff, everything below the threshold after it (random success order per prefix)."""
    length = draw(st.integers(1, 96))
    top = draw(st.integers(0, N))
    peak = draw(st.integers(0, min(HEAD, length - 1)))
    cliff = draw(st.integers(peak + 1, length))  # == length: no cliff
    low = [k for k in range(N + 1) if k / N < top / N - EPS]
    near = [k for k in range(top + 1) if k / N >= top / N - EPS]
    successes = []
    for t in range(length):
        if t < peak:
            successes.append(draw(st.sampled_from([k for k in near if k < top] or [top])))
        elif t == peak:
            successes.append(top)
        elif t < cliff:
            successes.append(draw(st.sampled_from(near)))
        else:
            successes.append(draw(st.sampled_from(low or near)))
    orders = [draw(st.permutations([j < k for j in range(N)])) for k in successes]
    return successes, orders


def _ordered(successes, orders):
    return successes, [[c == "1" for c in o] for o in orders]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(guaranteed_curves())
# a weak student whose first maximum (2 of 4 at t = 0) starts with two failures: stopped after
# two rollouts at 0 of 2 it would move the peak, and weak_follow keeps s_0..s_peak
@example(_ordered([2, 2, 1], ["0011", "1100", "0001"]))
@example(_ordered([1, 1], ["0010", "1000"]))
def test_adaptive_returns_the_scans_cut_on_every_curve_of_the_documented_class(curve):
    successes, outcomes = curve
    if not in_guaranteed_class(successes):
        return  # the builder's rare miss (e.g. no value below the threshold exists)
    full_scores, _, _ = replay(outcomes, "scan", epsilon=EPS, min_follow=FOLLOW)
    scores, samples, _ = replay(outcomes, "adaptive", epsilon=EPS, min_follow=FOLLOW)
    scan, adaptive = decide_cut("full", full_scores), decide_cut("full", scores)
    assert same(scan, adaptive), (successes, scan, adaptive)
    assert sum(samples) <= adaptive_budget(len(successes), N)


def test_outside_the_class_adaptive_can_differ_the_reviewed_example():
    # unimodal, but the peak (1 of 4 at t = 4) lies between probed prefixes: not in the class
    successes = [0, 0, 0, 0, 1, 0]
    assert not in_guaranteed_class(successes)
    scan, adaptive, _, _ = cuts(successes)
    assert (scan.reason, scan.keep_steps) == ("weak_follow", 5)
    assert (adaptive.reason, adaptive.keep_steps) == ("all_zero", 0)
