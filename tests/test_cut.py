"""Every branch of the imitation-gap rules (dart_hub.adapt.cut)."""

import pytest

from dart_hub.adapt.cut import cut_first_feasible, decide_cut, find_peak, static_cut


@pytest.mark.parametrize(
    ("scores", "keep", "peak", "gap", "reason"),
    [
        # rise then collapse: keep up to the step before the drop
        ([0.5, 0.75, 1.0, 1.0, 0.25, 0.0], 4, 2, 4, "gap"),
        # ties at the maximum: the earliest is the peak
        ([1.0, 1.0, 0.5, 0.0], 2, 0, 2, "gap"),
        # a drop of exactly epsilon-ish (0.25 < 0.3) is not significant
        ([1.0, 0.75, 0.75, 0.75], 4, 0, None, "no_drop"),
        # gap right after the first step: only s_0 is kept, never zero steps
        ([1.0, 0.0, 0.0], 1, 0, 1, "gap"),
        # a peak below epsilon can never drop significantly: nothing is cut
        ([0.25, 0.0, 0.0], 3, 0, None, "no_drop"),
        # all zero: nothing feasible, keep no expert step
        ([0.0, 0.0, 0.0], 0, None, None, "all_zero"),
        # a single step
        ([1.0], 1, 0, None, "no_drop"),
        # dip before the global peak is ignored by the global rule
        ([0.75, 0.0, 1.0, 1.0, 0.0], 4, 2, 4, "gap"),
        # empty (no steps) is harmless
        ([], 0, None, None, "no_drop"),
    ],
)
def test_gap_rule_global(scores, keep, peak, gap, reason):
    cut = decide_cut("full", scores, epsilon=0.3, peak_rule="global")
    assert (cut.keep_steps, cut.peak, cut.gap, cut.reason) == (keep, peak, gap, reason)
    assert decide_cut("gap", scores, epsilon=0.3) == cut  # same rule for gap and full


def test_first_local_peak_cuts_at_first_significant_drop():
    scores = [0.75, 0.0, 1.0, 1.0, 0.0]
    assert find_peak(scores, 0.3, "first") == 0
    cut = decide_cut("full", scores, epsilon=0.3, peak_rule="first")
    assert (cut.keep_steps, cut.peak, cut.gap) == (1, 0, 1)
    # without any drop the first rule falls back to the running maximum
    assert find_peak([0.25, 0.5, 1.0], 0.3, "first") == 2


def test_epsilon_changes_what_counts_as_a_drop():
    scores = [1.0, 0.75, 0.5]
    assert decide_cut("full", scores, epsilon=0.2).gap == 1
    assert decide_cut("full", scores, epsilon=0.6).reason == "no_drop"


def test_first_feasible():
    assert cut_first_feasible([0.0, 0.0, 0.25, 1.0]).keep_steps == 3
    assert cut_first_feasible([0.0, 0.0]).reason == "all_zero"
    assert decide_cut("first", [1.0, 0.0]).keep_steps == 1


def test_static_and_unknown():
    assert static_cut(7).keep_steps == 7
    with pytest.raises(ValueError):
        decide_cut("nope", [1.0])
    with pytest.raises(ValueError):
        find_peak([1.0], 0.3, "nope")
