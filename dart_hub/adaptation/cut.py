"""Where to stop imitating the expert, given the adaptability scores f_0..f_T.

The functions' keyword defaults are the robust rules (`dart_hub.adaptation.rules`); `AdaptConfig`
passes every setting explicitly, and its defaults are the paper's (`--rules paper`).

Definitions (documented in `dart-hub adapt --help` and the dataset card):

* f_t: share of the student's simulation rollouts, conditioned on expert steps s_0..s_t
  (step t included), whose final answer is equivalent to the gold answer.
* Answer-revealing prefixes: a prefix that already contains the gold answer in final form (a
  ``\\boxed{}`` / ``\\fbox{}`` whose content is equivalent to the gold) is not probed: a student
  shown the answer restates it, so its f measures copying, not feasibility. Its score is None.
  Once a step reveals the answer every longer prefix does too, so the probed scores are the
  leading run of non-None values; peak, gap and the reliability check only look at those.
  With ``--answer-steps probe`` (the paper's) they are probed like every other step.
* peak (``--peak local``, robust): the first local maximum that is followed by a significant
  drop, i.e. the best step seen before the first t with f_t < max(f_0..f_{t-1}) - epsilon (our
  reading of Algorithm 1's "local maximum"; a curve that collapses mid-way is cut at the
  collapse even when it "recovers" later). ``--peak global`` (the paper's): the first index of
  the maximum of f.
* gap: t_gap = min{t > t_peak : f_t < f_peak - epsilon}; the kept expert prefix is
  s_0..s_{t_gap-1}, so at least s_0..s_peak is always kept and the gap can never remove the
  first step. epsilon defaults to 0.3: with 4 rollouts per step a drop must lose at least two
  of them, one unlucky rollout is not a gap.
* No significant drop after the peak: the expert trace is kept unchanged ("no_drop") only when
  the student reliably follows the whole trace, i.e. f at the last probed prefix is at least
  ``min_follow`` (robust 0.5: at least 2 of 4 rollouts; the paper's 0 always keeps it). Otherwise ("weak_follow", typical of
  weak students whose f never rises above epsilon) the cut is placed right after the peak: the
  student continues from its best prefix s_0..s_peak and outcome consistency decides, so a weak
  student never falls back to the Static expert trace without a check.
* f all zero: the student never reaches the answer from any expert prefix. ``all_zero="question"``
  (robust): `full` lets the student solve from the question alone (kept prefix is empty;
  outcome consistency decides); `gap` and `first` have no successful rollout to use and discard
  the example. ``all_zero="trace"`` (Algorithm 1 read literally): the peak is t = 0, nothing
  falls below 0 - epsilon, so there is no gap and the rules above apply (the whole trace is
  kept when ``min_follow`` is 0).
* The first step already reveals the answer ("answer_first"): nothing can be probed; handled
  like all zero.
* `first`: keep s_0..s_t for the first probed t with f_t > 0 and continue with a successful
  rollout of that prefix (Adaptation-First, no extra search).
* `static`: the expert trace unchanged (baseline), no probing needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STRATEGIES = ("full", "gap", "first", "static")
PEAK_RULES = ("local", "global")
PEAK_ALIASES = {"first": "local"}  # the name used before 0.2 for the local rule
DEFAULT_EPSILON = 0.3
DEFAULT_PEAK = "local"
DEFAULT_MIN_FOLLOW = 0.5

# Cut reasons after which the student writes (part of) the trajectory itself.
STUDENT_CONTINUES = ("gap", "weak_follow", "all_zero", "answer_first", "first_feasible")
# Cut reasons after which exploration starts from the question alone.
NOTHING_FEASIBLE = ("all_zero", "answer_first")


@dataclass(frozen=True)
class Cut:
    """Result of the cut rule for one example.

    keep_steps: number of expert steps kept (s_0..s_{keep_steps-1}).
    peak / gap: step indices (None when undefined). reason: which branch of the rules applied:
    "gap", "no_drop", "weak_follow", "all_zero", "answer_first", "first_feasible", "static".
    """

    keep_steps: int
    peak: int | None
    gap: int | None
    reason: str


def canonical_peak_rule(rule: str) -> str:
    rule = PEAK_ALIASES.get(rule, rule)
    if rule not in PEAK_RULES:
        raise ValueError(f"unknown peak rule {rule!r}; choose one of {PEAK_RULES}")
    return rule


def probed_scores(scores: Sequence[float | None]) -> list[float]:
    """The probed scores in step order (None: answer-revealing, or skipped by adaptive probing)."""
    return [score for score in scores if score is not None]


def probed_steps(scores: Sequence[float | None]) -> list[int]:
    """The step index of each entry of `probed_scores(scores)`."""
    return [t for t, score in enumerate(scores) if score is not None]


def find_peak(scores: Sequence[float], epsilon: float, rule: str = DEFAULT_PEAK) -> int:
    if not scores:
        raise ValueError("no scores")
    rule = canonical_peak_rule(rule)
    if rule == "global":
        best = max(scores)
        return next(t for t, f in enumerate(scores) if f == best)
    best_t = 0
    for t in range(1, len(scores)):
        if scores[t] < scores[best_t] - epsilon:
            return best_t
        if scores[t] > scores[best_t]:
            best_t = t
    return best_t


def find_gap(scores: Sequence[float], peak: int, epsilon: float) -> int | None:
    threshold = scores[peak] - epsilon
    return next((t for t in range(peak + 1, len(scores)) if scores[t] < threshold), None)


ALL_ZERO_RULES = ("question", "trace")


def cut_for_gap(
    scores: Sequence[float | None],
    epsilon: float = DEFAULT_EPSILON,
    peak_rule: str = DEFAULT_PEAK,
    min_follow: float = DEFAULT_MIN_FOLLOW,
    all_zero: str = "question",
) -> Cut:
    """The imitation-gap cut shared by `full` and `gap`."""
    if not scores:
        return Cut(keep_steps=0, peak=None, gap=None, reason="no_drop")
    probed, where = probed_scores(scores), probed_steps(scores)
    if not probed:
        return Cut(keep_steps=0, peak=None, gap=None, reason="answer_first")
    if max(probed) <= 0 and all_zero == "question":
        return Cut(keep_steps=0, peak=None, gap=None, reason="all_zero")
    # the rules run over the probed prefixes in order; indices map back to expert steps
    peak_at = find_peak(probed, epsilon, peak_rule)
    gap_at = find_gap(probed, peak_at, epsilon)
    peak = where[peak_at]
    if gap_at is not None:
        return Cut(keep_steps=where[gap_at], peak=peak, gap=where[gap_at], reason="gap")
    return no_gap_cut(len(scores), peak, probed[-1], min_follow)


def no_gap_cut(n_steps: int, peak: int, last: float, min_follow: float) -> Cut:
    """No significant drop after the peak: the whole trace when the student follows it to the
    end (f at the last probed prefix >= min_follow), else from the peak (weak_follow)."""
    if last >= min_follow:
        return Cut(keep_steps=n_steps, peak=peak, gap=None, reason="no_drop")
    return Cut(keep_steps=peak + 1, peak=peak, gap=None, reason="weak_follow")


def cut_first_feasible(scores: Sequence[float | None]) -> Cut:
    """Adaptation-First: stop at the first step from which some rollout succeeds."""
    probed = probed_scores(scores)
    if scores and not probed:
        return Cut(keep_steps=0, peak=None, gap=None, reason="answer_first")
    first = next((t for t, f in enumerate(scores) if f is not None and f > 0), None)
    if first is None:
        return Cut(keep_steps=0, peak=None, gap=None, reason="all_zero")
    return Cut(keep_steps=first + 1, peak=first, gap=None, reason="first_feasible")


def static_cut(n_steps: int) -> Cut:
    """Static baseline: the whole expert trace, nothing probed."""
    return Cut(keep_steps=n_steps, peak=None, gap=None, reason="static")


def decide_cut(
    strategy: str,
    scores: Sequence[float | None],
    epsilon: float = DEFAULT_EPSILON,
    peak_rule: str = DEFAULT_PEAK,
    min_follow: float = DEFAULT_MIN_FOLLOW,
    all_zero: str = "question",
) -> Cut:
    if strategy in ("full", "gap"):
        return cut_for_gap(scores, epsilon, peak_rule, min_follow, all_zero)
    if strategy == "first":
        return cut_first_feasible(scores)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
