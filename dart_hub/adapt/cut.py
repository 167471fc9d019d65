"""Where to stop imitating the expert, given the adaptability scores f_0..f_T.

Definitions (documented in `dart-hub adapt --help` and the dataset card):

* f_t: share of the student's simulation rollouts, conditioned on expert steps s_0..s_t
  (step t included), whose final answer is equivalent to the gold answer.
* peak (``--peak global``, default): the highest f; among ties the earliest step. This is the
  literal reading of Algorithm 1 with the global maximum. ``--peak first``: the first local
  maximum that is followed by a significant drop, i.e. the best step seen before the first t
  with f_t < max(f_0..f_{t-1}) - epsilon (cuts earlier on traces that dip and recover).
* gap: t_gap = min{t > t_peak : f_t < f_peak - epsilon}; the kept expert prefix is
  s_0..s_{t_gap-1}, so at least s_0..s_peak is always kept and the gap can never remove the
  first step. epsilon defaults to 0.3: with 4 rollouts per step a drop must lose at least two
  of them, one unlucky rollout is not a gap.
* No significant drop after the peak (including a peak below epsilon): nothing is cut, the
  whole expert trace is kept as the adapted trajectory.
* f all zero: the student never reaches the answer from any expert prefix. `full` lets the
  student solve from the question alone (kept prefix is empty; outcome consistency decides);
  `gap` and `first` have no successful rollout to use and discard the example.
* `first`: keep s_0..s_t for the first t with f_t > 0 and continue with a successful rollout
  of that prefix (Adaptation-First, no extra search).
* `static`: the expert trace unchanged (baseline), no probing needed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

STRATEGIES = ("full", "gap", "first", "static")
PEAK_RULES = ("global", "first")
DEFAULT_EPSILON = 0.3


@dataclass(frozen=True)
class Cut:
    """Result of the cut rule for one example.

    keep_steps: number of expert steps kept (s_0..s_{keep_steps-1}).
    peak / gap: step indices (None when undefined). reason: which branch of the rules applied:
    "gap", "no_drop", "all_zero", "first_feasible", "static".
    """

    keep_steps: int
    peak: int | None
    gap: int | None
    reason: str


def find_peak(scores: Sequence[float], epsilon: float, rule: str = "global") -> int:
    if not scores:
        raise ValueError("no scores")
    if rule == "global":
        best = max(scores)
        return next(t for t, f in enumerate(scores) if f == best)
    if rule == "first":
        best_t = 0
        for t in range(1, len(scores)):
            if scores[t] < scores[best_t] - epsilon:
                return best_t
            if scores[t] > scores[best_t]:
                best_t = t
        return best_t
    raise ValueError(f"unknown peak rule {rule!r}; choose one of {PEAK_RULES}")


def find_gap(scores: Sequence[float], peak: int, epsilon: float) -> int | None:
    threshold = scores[peak] - epsilon
    return next((t for t in range(peak + 1, len(scores)) if scores[t] < threshold), None)


def cut_for_gap(scores: Sequence[float], epsilon: float = DEFAULT_EPSILON, peak_rule: str = "global") -> Cut:
    """The imitation-gap cut shared by `full` and `gap`."""
    if not scores:
        return Cut(keep_steps=0, peak=None, gap=None, reason="no_drop")
    if max(scores) <= 0:
        return Cut(keep_steps=0, peak=None, gap=None, reason="all_zero")
    peak = find_peak(scores, epsilon, peak_rule)
    gap = find_gap(scores, peak, epsilon)
    if gap is None:
        return Cut(keep_steps=len(scores), peak=peak, gap=None, reason="no_drop")
    return Cut(keep_steps=gap, peak=peak, gap=gap, reason="gap")


def cut_first_feasible(scores: Sequence[float]) -> Cut:
    """Adaptation-First: stop at the first step from which some rollout succeeds."""
    first = next((t for t, f in enumerate(scores) if f > 0), None)
    if first is None:
        return Cut(keep_steps=0, peak=None, gap=None, reason="all_zero")
    return Cut(keep_steps=first + 1, peak=first, gap=None, reason="first_feasible")


def static_cut(n_steps: int) -> Cut:
    """Static baseline: the whole expert trace, nothing probed."""
    return Cut(keep_steps=n_steps, peak=None, gap=None, reason="static")


def decide_cut(
    strategy: str, scores: Sequence[float], epsilon: float = DEFAULT_EPSILON, peak_rule: str = "global"
) -> Cut:
    if strategy in ("full", "gap"):
        return cut_for_gap(scores, epsilon, peak_rule)
    if strategy == "first":
        return cut_first_feasible(scores)
    raise ValueError(f"unknown strategy {strategy!r}; choose one of {STRATEGIES}")
