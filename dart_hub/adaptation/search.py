"""Which prefixes to probe, and with how many rollouts: `--probe scan|adaptive`.

A search is a pure function of what has been drawn so far: given the tallies
{t: (successes, rollouts drawn)} of a problem's probed prefixes it returns the next rollouts to
draw as (t, sample_offset, count), or nothing when the cut is decided. The pipeline asks every
problem of a chunk in rounds, one engine call per round. Rollout j of prefix t always has the
seed (run seed, problem, t, j) (`GenerationRequest.sample_offset`), so whatever a search
draws is exactly what the full scan draws for those prefixes: agreement with the scan can be
measured by replaying stored scans, and a resumed run is identical.

``scan`` (the paper): every prefix s_0..s_{R-1} (R = number of probed prefixes, answer-revealing
ones excluded) gets all N_sim rollouts in one round.

``adaptive``: the cut only depends on where f first falls epsilon below its running maximum
(``--peak local``) or, for ``--strategy first``, on the first prefix with a success. So:

1. *Coarse*: probe K evenly spaced prefixes (``--probe-coarse``, default 4), always including
   the first (t = 0) and the last probed one (t = R - 1), and the first H + 1 prefixes
   t = 0..H (``--probe-head``, default 2). The head is there because the feasible start of a
   trace, and so the peak the cut is measured from, is often only one or two paragraphs long
   (a plan, a restatement): between evenly spaced points the search would never see it.
2. *Refine*: between the last probed prefix still near the running maximum and the first one
   clearly below it, probe the midpoint; repeat until the two are adjacent (binary search). The
   same for the first success under ``first``.
3. *Sequential stopping*: a prefix first gets ``--probe-round`` rollouts (default 2). It gets the
   rest of its N_sim only while they could still change which side of the threshold
   (running maximum - epsilon, the ``--min-follow`` bar at the last prefix, or zero for
   ``first``) it is on. A stopped prefix's score is its share so far (k of m drawn). When the
   curve has no drop and ends below ``--min-follow`` (weak_follow, which keeps s_0..s_peak),
   every probed prefix gets all N_sim rollouts: the peak's index depends on exact scores.

Budget (what the tests check): at most N_sim x (|coarse and head points| + ceil(log2(widest
interval between them))) rollouts per problem (`adaptive_budget`), against N_sim x R for the
scan.

Guarantee (tested by a property test over random curves of the class,
tests/test_search.py): the decision on every probed prefix (below the threshold or not,
success or not) is the one the full N_sim rollouts would give, so adaptive returns the scan's
cut exactly whenever the highest f before the scan's cut (the whole curve when there is no cut)
is first reached within the head t = 0..H, and every prefix from the cut on stays more than
epsilon below it. That covers plateau-then-cliff curves and all-zero curves. It is not true of
every unimodal curve: a peak between probed prefixes ([0, 0, 0, 0, 1, 0] of 4: the scan says
weak_follow, keep 5; adaptive sees only zeros) or a dip that recovers between two coarse
prefixes can move the cut; `benchmarks/probing.py` measures how often on random unimodal
curves and on noisy cliffs (docs/performance.md). No sublinear search can be exact on every
unimodal curve: a single non-zero prefix among zeros is only found by probing it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

SEARCHES = ("scan", "adaptive")
DEFAULT_COARSE = 4
DEFAULT_HEAD = 2
DEFAULT_FIRST_ROUND = 2

Tallies = Mapping[int, tuple[int, int]]  # prefix t -> (successes, rollouts drawn)
Ask = tuple[int, int, int]  # (prefix t, sample_offset, count)


def coarse_points(limit: int, coarse: int, head: int = DEFAULT_HEAD) -> list[int]:
    """K evenly spaced prefixes in 0..limit-1, first and last included, and the head 0..H."""
    if limit <= 0:
        return []
    if coarse <= 1 or limit == 1:
        even = {0} if limit == 1 else {0, limit - 1}
    else:
        even = {round(i * (limit - 1) / (coarse - 1)) for i in range(coarse)}
    return sorted(even | set(range(min(head + 1, limit))))


def adaptive_budget(limit: int, n_sim: int, coarse: int = DEFAULT_COARSE, head: int = DEFAULT_HEAD) -> int:
    """The most rollouts `adaptive` draws for a problem with `limit` probed prefixes."""
    points = coarse_points(limit, coarse, head)
    widest = max((b - a for a, b in zip(points, points[1:], strict=False)), default=1)
    refine = math.ceil(math.log2(widest)) if widest > 1 else 0
    return n_sim * min(limit, len(points) + refine)


def scan_requests(limit: int, n_sim: int, tallies: Tallies) -> list[Ask]:
    return [] if tallies else [(t, 0, n_sim) for t in range(limit)]


def adaptive_requests(
    limit: int,
    n_sim: int,
    tallies: Tallies,
    *,
    epsilon: float,
    min_follow: float,
    target: str = "gap",
    coarse: int = DEFAULT_COARSE,
    first_round: int = DEFAULT_FIRST_ROUND,
    head: int = DEFAULT_HEAD,
) -> list[Ask]:
    """The next rollouts to draw (empty: the cut is decided). `target`: "gap" (full / gap
    strategies, local peak rule) or "first" (first feasible prefix)."""
    if limit <= 0:
        return []
    first_round = max(1, min(first_round, n_sim))
    if not tallies:
        return [(t, 0, first_round) for t in coarse_points(limit, coarse, head)]
    view = _View(tallies, n_sim, first_round)
    if target == "first":
        return view.asks_for_first(limit)
    return view.asks_for_gap(limit, epsilon, min_follow)


class _View:
    """Bounds on f_t from partial tallies: f_t is in [k / n, (k + n - m) / n]."""

    def __init__(self, tallies: Tallies, n_sim: int, first_round: int):
        self.tallies = tallies
        self.n = n_sim
        self.first_round = first_round
        self.points = sorted(tallies)

    def lo(self, t: int) -> float:
        k, _ = self.tallies[t]
        return k / self.n

    def hi(self, t: int) -> float:
        k, m = self.tallies[t]
        return (k + self.n - m) / self.n

    def exact(self, t: int) -> bool:
        return self.tallies[t][1] >= self.n

    def more(self, t: int) -> Ask:
        _, m = self.tallies[t]
        return (t, m, self.n - m)

    def new(self, t: int) -> Ask:
        return (t, 0, self.first_round)

    def asks_for_gap(self, limit: int, epsilon: float, min_follow: float) -> list[Ask]:
        """Walk the probed prefixes in order, as the local-peak rule does: the first t with
        f_t < max(f before t) - epsilon is the gap. Undecided prefixes get more rollouts."""
        points = self.points
        max_lo = max_hi = None
        for index, t in enumerate(points):
            if max_lo is not None:
                below = self.hi(t) < max_lo - epsilon
                above = self.lo(t) >= max_hi - epsilon
                if not (below or above):
                    # more rollouts here, and on earlier prefixes that could still be the max
                    asks = [self.more(s) for s in points[:index] if not self.exact(s) and self.hi(s) > max_lo]
                    return asks + ([self.more(t)] if not self.exact(t) else [])
                if below:
                    previous = points[index - 1]
                    if t - previous > 1:
                        return [self.new((previous + t) // 2)]
                    return []  # gap decided: t, right after a prefix near the running maximum
            max_lo = self.lo(t) if max_lo is None else max(max_lo, self.lo(t))
            max_hi = self.hi(t) if max_hi is None else max(max_hi, self.hi(t))
        # no drop among the probed prefixes: all zero, no_drop or weak_follow
        if all(self.tallies[t][0] == 0 for t in points):
            return [self.more(t) for t in points if not self.exact(t)]  # all zero must be exact
        last = limit - 1
        undecided = not (self.lo(last) >= min_follow or self.hi(last) < min_follow)
        if last in self.tallies and not self.exact(last) and undecided:
            return [self.more(last)]
        if last in self.tallies and self.hi(last) < min_follow:
            # weak_follow keeps s_0..s_peak: the peak's index needs exact scores (a prefix
            # stopped at 0 of 2 may be the 2 of 4 that is the first maximum)
            return [self.more(t) for t in points if not self.exact(t)]
        return []

    def asks_for_first(self, limit: int) -> list[Ask]:
        """The first prefix with a success (Adaptation-First)."""
        points = self.points
        for index, t in enumerate(points):
            k, _ = self.tallies[t]
            if k > 0:
                unsure = [self.more(s) for s in points[:index] if not self.exact(s)]
                if unsure:
                    return unsure  # a zero so far may still turn out a success
                previous = points[index - 1] if index else None
                if previous is not None and t - previous > 1:
                    return [self.new((previous + t) // 2)]
                return []
        return [self.more(t) for t in points if not self.exact(t)]  # all zero must be exact


def search_requests(
    search: str,
    limit: int,
    n_sim: int,
    tallies: Tallies,
    *,
    epsilon: float,
    min_follow: float,
    target: str,
    coarse: int = DEFAULT_COARSE,
    first_round: int = DEFAULT_FIRST_ROUND,
    head: int = DEFAULT_HEAD,
) -> list[Ask]:
    if search == "scan":
        return scan_requests(limit, n_sim, tallies)
    if search == "adaptive":
        return adaptive_requests(
            limit, n_sim, tallies, epsilon=epsilon, min_follow=min_follow, target=target, coarse=coarse,
            first_round=first_round, head=head,
        )  # fmt: skip
    raise ValueError(f"unknown probe search {search!r}; choose one of {SEARCHES}")


def replay(
    outcomes: list[list[bool]],
    search: str,
    *,
    epsilon: float,
    min_follow: float,
    target: str = "gap",
    coarse: int = DEFAULT_COARSE,
    first_round: int = DEFAULT_FIRST_ROUND,
    head: int = DEFAULT_HEAD,
) -> tuple[list[float | None], list[int], int]:
    """Run a search against known rollout outcomes (outcomes[t][j]: rollout j of prefix t
    reached the answer; all prefixes probed-able, n = len(outcomes[t])) without generating.

    Because rollout j of prefix t is the same in every mode, this is exactly what `adapt`
    would do given a stored full scan. Returns (scores, rollouts drawn per prefix, rounds)."""
    limit = len(outcomes)
    n_sim = len(outcomes[0]) if outcomes else 0
    drawn = {}
    rounds = 0
    while True:
        tallies = {t: (sum(outcomes[t][:m]), m) for t, m in drawn.items()}
        asks = search_requests(
            search, limit, n_sim, tallies, epsilon=epsilon, min_follow=min_follow, target=target, coarse=coarse,
            first_round=first_round, head=head,
        )  # fmt: skip
        if not asks:
            break
        rounds += 1
        for t, offset, count in asks:
            if drawn.get(t, 0) != offset:
                raise RuntimeError(f"search asked for rollout {offset} of prefix {t} after {drawn.get(t, 0)}")
            drawn[t] = offset + count
    samples = [drawn.get(t, 0) for t in range(limit)]
    scores = [sum(outcomes[t][:m]) / m if m else None for t, m in enumerate(samples)]
    return scores, samples, rounds
