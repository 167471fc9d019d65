"""A cut that survives sampling noise: `--confirm K` (part of `--rules robust`).

With N_sim = 4 and epsilon = 0.3, one unlucky 2 of 4 after a 4 of 4 already looks like the gap;
on a long trace whose true f is a flat plateau such a false gap is almost certain somewhere.
Confirmation keeps the rule (a drop of more than epsilon below the peak) but asks for evidence
before accepting it:

1. The walk goes through the probed prefixes in order with the peak rule, on the first N_sim
   rollouts of each prefix (the ones every mode draws). A prefix whose f falls more than epsilon
   below the peak's is a *candidate gap*.
2. The peak is confirmed first: it gets K more rollouts, and its level from then on is their
   share alone, (k + 1/2) / (K + 1): the first N_sim were the reason it was picked as the
   maximum, so they are biased upwards. If the candidate is no longer epsilon below that
   level, the walk goes on. A confirmed peak is replaced only by a later prefix whose f is more
   than epsilon above its level (a smaller rise is within the rule's own resolution).
3. The candidate gets up to K more rollouts, N_sim per round, and a sequential probability
   ratio test (Wald) on those new rollouts only decides between H0: p = level (no drop, the
   plateau goes on) and H1: p = level - epsilon (a drop of epsilon): accept the drop when the
   log-likelihood ratio reaches log((1 - beta) / alpha), reject it at log(beta / (1 - alpha)),
   alpha = 0.01, beta = 0.1. Wald's bounds give a false-drop rate of at most
   alpha / (1 - beta) = 1.1% per tested candidate and a missed-drop rate of at most
   beta / (1 - alpha) = 10% for a drop of exactly epsilon (less for a larger drop); stopping at
   K rollouts without a decision counts as "no drop", which can only lower the first and raise
   the second. A rejected candidate is not the gap: the walk goes on (scan on).
4. With `--probe adaptive` a candidate with unprobed prefixes before it first gets the midpoint
   probed (N_sim rollouts), until it is adjacent to the last prefix the walk passed.

Rollout j of prefix t keeps its seed (run seed, problem, t) and sample index j, so the extra
rollouts are the same in every run: resume and the probe cache work as before, and the cut is a
pure function of the stored rollouts (`confirmed_walk` recomputes it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from dart_hub.adaptation.cut import Cut, no_gap_cut
from dart_hub.adaptation.search import Ask

ALPHA = 0.01  # accepted false drops (plateau taken for a cliff), per tested candidate
BETA = 0.1  # missed drops of exactly epsilon, per tested candidate

Outcomes = Mapping[int, Sequence[bool]]  # prefix t -> success of rollout 0, 1, ... in sample order


@dataclass(frozen=True)
class Walk:
    """Where the confirmation walk stands: more rollouts to draw (`asks`), or the decision."""

    asks: list[Ask] = field(default_factory=list)
    gap: int | None = None
    peak: int | None = None
    rejected: tuple[int, ...] = ()  # candidate gaps the test turned down


def sprt(fresh: Sequence[bool], level: float, epsilon: float, alpha: float = ALPHA, beta: float = BETA) -> str:
    """Wald's test on the new rollouts of a candidate, in sample order: "drop", "no_drop", or
    "undecided" when they run out first. H0: p = level; H1: p = level - epsilon."""
    p0, p1 = level, level - epsilon
    if p1 <= 0:
        return "no_drop"  # no drop of epsilon below a level under epsilon is possible
    success, failure = math.log(p1 / p0), math.log((1 - p1) / (1 - p0))
    upper, lower = math.log((1 - beta) / alpha), math.log(beta / (1 - alpha))
    llr = 0.0
    for ok in fresh:
        llr += success if ok else failure
        if llr >= upper:
            return "drop"
        if llr <= lower:
            return "no_drop"
    return "undecided"


def confirmed_level(fresh: Sequence[bool]) -> float:
    """The peak's level from its confirmation rollouts only (kept inside (0, 1))."""
    return (sum(fresh) + 0.5) / (len(fresh) + 1)


def confirmed_walk(
    outcomes: Outcomes,
    n_sim: int,
    confirm: int,
    epsilon: float,
    peak_rule: str = "local",
    refine: bool = False,
    alpha: float = ALPHA,
    beta: float = BETA,
) -> Walk:
    """The confirmation walk over the probed prefixes (see the module docstring)."""
    points = sorted(t for t, rollouts in outcomes.items() if rollouts)
    if not points:
        return Walk()
    full = n_sim + confirm
    raw = {t: sum(outcomes[t][:n_sim]) / len(outcomes[t][:n_sim]) for t in points}

    def fresh(t: int) -> Sequence[bool]:
        return outcomes[t][n_sim:]

    def draw(t: int, upto: int) -> Ask:
        have = len(outcomes[t])
        return (t, have, upto - have)

    if peak_rule == "global":  # the first index of the maximum; candidates only after it
        best = max(raw.values())
        start = next(i for i, t in enumerate(points) if raw[t] == best)
    else:
        start = 0
    peak, level, confirmed = points[start], raw[points[start]], False
    rejected: list[int] = []
    previous = peak
    for t in points[start + 1 :]:
        value = raw[t]
        if value < level - epsilon:
            if refine and t - previous > 1:
                return Walk(asks=[((previous + t) // 2, 0, n_sim)], peak=peak)
            if not confirmed:
                if len(outcomes[peak]) < full:
                    return Walk(asks=[draw(peak, full)], peak=peak)
                level, confirmed = confirmed_level(fresh(peak)), True
            if value < level - epsilon:
                decision = sprt(fresh(t), level, epsilon, alpha, beta)
                if decision == "drop":
                    return Walk(gap=t, peak=peak, rejected=tuple(rejected))
                if decision == "undecided" and len(outcomes[t]) < full:
                    return Walk(asks=[draw(t, min(full, max(len(outcomes[t]), n_sim) + n_sim))], peak=peak)
                rejected.append(t)  # not a gap: scan on
                previous = t
                continue
        if peak_rule != "global" and value > level + (epsilon if confirmed else 0.0):
            peak, level, confirmed = t, value, False
        previous = t
    return Walk(peak=peak, rejected=tuple(rejected))


def extra_rollouts(samples: Sequence[int], n_sim: int) -> int:
    """Rollouts drawn beyond N_sim per prefix (what confirmation cost)."""
    return sum(max(0, m - n_sim) for m in samples)


def confirmed_cut(
    outcomes: Sequence[Sequence[bool]],
    n_sim: int,
    confirm: int,
    epsilon: float,
    peak_rule: str = "local",
    min_follow: float = 0.5,
    all_zero: str = "question",
    refine: bool = False,
) -> Cut:
    """The cut of `full` / `gap` with confirmation, from every prefix's rollouts in sample order
    (outcomes[t]; empty: not probed). Without an accepted gap the no-gap rules of
    dart_hub.adaptation.cut apply, with each prefix's share over all its rollouts."""
    probed = {t: rollouts for t, rollouts in enumerate(outcomes) if rollouts}
    if not outcomes:
        return Cut(keep_steps=0, peak=None, gap=None, reason="no_drop")
    if not probed:
        return Cut(keep_steps=0, peak=None, gap=None, reason="answer_first")
    if not any(any(r) for r in probed.values()) and all_zero == "question":
        return Cut(keep_steps=0, peak=None, gap=None, reason="all_zero")
    walk = confirmed_walk(probed, n_sim, confirm, epsilon, peak_rule, refine=refine)
    if walk.gap is not None:
        return Cut(keep_steps=walk.gap, peak=walk.peak, gap=walk.gap, reason="gap")
    last = probed[max(probed)]
    return no_gap_cut(len(outcomes), walk.peak, sum(last) / len(last), min_follow)
