"""Every branch of the imitation-gap rules (dart_hub.adaptation.cut)."""

import pytest

from dart_hub.adaptation.cut import (
    canonical_peak_rule,
    cut_first_feasible,
    decide_cut,
    find_peak,
    probed_scores,
    static_cut,
)

N = None  # an answer-revealing prefix: not probed


@pytest.mark.parametrize(
    ("scores", "keep", "peak", "gap", "reason"),
    [
        # rise then collapse: keep up to the step before the drop
        ([0.5, 0.75, 1.0, 1.0, 0.25, 0.0], 4, 2, 4, "gap"),
        # ties at the maximum: the earliest is the peak
        ([1.0, 1.0, 0.5, 0.0], 2, 0, 2, "gap"),
        # a drop of less than epsilon (0.25 < 0.3) is not significant; the student follows
        ([1.0, 0.75, 0.75, 0.75], 4, 0, None, "no_drop"),
        # gap right after the first step: only s_0 is kept, never zero steps
        ([1.0, 0.0, 0.0], 1, 0, 1, "gap"),
        # a weak student: the peak is below epsilon, so nothing drops significantly, but it
        # does not follow the trace to the end -> continue from the best prefix, not Static
        ([0.25, 0.0, 0.0], 1, 0, None, "weak_follow"),
        ([0.0, 0.25, 0.0, 0.0], 2, 1, None, "weak_follow"),
        # all zero: nothing feasible, keep no expert step
        ([0.0, 0.0, 0.0], 0, None, None, "all_zero"),
        # a single step
        ([1.0], 1, 0, None, "no_drop"),
        ([0.25], 1, 0, None, "weak_follow"),
        # plateau at the reliability bar: follows (2 of 4 rollouts at the end)
        ([0.5, 0.5, 0.5], 3, 0, None, "no_drop"),
        # empty (no steps) is harmless
        ([], 0, None, None, "no_drop"),
        # answer-revealing tail: excluded from peak and gap
        ([1.0, 1.0, 0.0, 0.0, N, N], 2, 0, 2, "gap"),
        # ... and kept as part of a prefix that is kept anyway
        ([1.0, 0.75, N], 3, 0, None, "no_drop"),
        # the first step already states the answer: nothing to probe
        ([N, N], 0, None, None, "answer_first"),
        ([0.0, 0.0, N], 0, None, None, "all_zero"),
    ],
)
@pytest.mark.parametrize("rule", ["local", "global"])
def test_gap_rule_shared_cases(scores, keep, peak, gap, reason, rule):
    cut = decide_cut("full", scores, epsilon=0.3, peak_rule=rule)
    assert (cut.keep_steps, cut.peak, cut.gap, cut.reason) == (keep, peak, gap, reason)
    assert decide_cut("gap", scores, epsilon=0.3, peak_rule=rule) == cut  # same rule for gap and full


def test_local_peak_cuts_at_the_collapse_even_if_f_recovers():
    # the example: hard problem, f collapses mid-way; the last step would be 1.0 only
    # because it states the answer (and is not even probed any more)
    scores = [0.5, 0.25, 0.0, 0.0, 0.0, 1.0]
    cut = decide_cut("full", scores)  # default rule: local
    assert (cut.keep_steps, cut.peak, cut.gap, cut.reason) == (2, 0, 2, "gap")
    # the global rule picks the late maximum and would keep the whole trace
    assert decide_cut("full", scores, peak_rule="global").reason == "no_drop"
    # a dip that recovers before the true peak: local cuts at the dip, global at the end
    dip = [0.75, 0.0, 1.0, 1.0, 0.0]
    assert find_peak(dip, 0.3, "local") == 0
    assert (decide_cut("full", dip).keep_steps, decide_cut("full", dip).gap) == (1, 1)
    assert (decide_cut("full", dip, peak_rule="global").keep_steps, decide_cut("full", dip, peak_rule="global").peak) == (4, 2)
    # without any drop the local rule is the running maximum
    assert find_peak([0.25, 0.5, 1.0], 0.3, "local") == 2


def test_min_follow_decides_between_no_drop_and_weak_follow():
    scores = [0.5, 0.75, 0.5, 0.5]
    assert decide_cut("full", scores, min_follow=0.5).reason == "no_drop"
    cut = decide_cut("full", scores, min_follow=0.75)
    assert (cut.reason, cut.keep_steps, cut.peak) == ("weak_follow", 2, 1)


def test_epsilon_changes_what_counts_as_a_drop():
    scores = [1.0, 0.75, 0.5]
    assert decide_cut("full", scores, epsilon=0.2).gap == 1
    assert decide_cut("full", scores, epsilon=0.6).reason == "no_drop"


def test_first_feasible():
    assert cut_first_feasible([0.0, 0.0, 0.25, 1.0]).keep_steps == 3
    assert cut_first_feasible([0.0, 0.0]).reason == "all_zero"
    assert decide_cut("first", [1.0, 0.0]).keep_steps == 1
    # an answer-revealing prefix is never the first feasible one
    assert cut_first_feasible([0.0, 0.0, N]).reason == "all_zero"
    assert cut_first_feasible([N]).reason == "answer_first"


def test_probed_scores_skip_unprobed_prefixes():
    assert probed_scores([0.5, 0.0, N, N]) == [0.5, 0.0]
    assert probed_scores([N, 0.5]) == [0.5]


def test_sparse_scores_from_adaptive_probing_map_back_to_steps():
    # probed: 0, 3, 5, 6 (the search refined between 3 and 6); the drop is at 6
    scores = [1.0, N, N, 1.0, N, 0.75, 0.0, N, 0.0]
    cut = decide_cut("full", scores)
    assert (cut.keep_steps, cut.peak, cut.gap, cut.reason) == (6, 0, 6, "gap")
    assert decide_cut("full", [0.25, N, N, 0.0]).reason == "weak_follow"
    assert decide_cut("first", [0.0, N, 0.0, 0.5, N, 1.0]).keep_steps == 4


def test_static_unknown_and_alias():
    assert static_cut(7).keep_steps == 7
    with pytest.raises(ValueError):
        decide_cut("nope", [1.0])
    with pytest.raises(ValueError):
        find_peak([1.0], 0.3, "nope")
    assert canonical_peak_rule("first") == "local"  # the pre-0.2 name still works
