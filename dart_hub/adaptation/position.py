"""Where the cuts fall: keep/T (kept expert steps over trace steps) across a run's problems,
next to the DART paper's Table 6, so a user sees at once whether their cuts look like the
paper's.

Table 6 of the paper (Appendix C, "Comparison of truncation positions between Adaptation-First
and Adaptation-Gap") reports the relative truncation position of each method per dataset and
student size. We quote its numbers as printed; the paper does not say whether they are means or
medians, nor how problems without a cut count.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from dart_hub.records import AdaptedExample

# dataset -> student size -> (First position, Gap position), DART paper Table 6.
PAPER_TABLE6: dict[str, dict[str, tuple[float, float]]] = {
    "LIMO": {"0.5B": (0.7901, 0.7707), "1.5B": (0.6785, 0.6985), "3B": (0.5718, 0.5983)},
    "Math-QwQ-32B": {"0.5B": (0.5055, 0.5244), "1.5B": (0.2113, 0.3664), "3B": (0.0840, 0.3239)},
}
TABLE6_SOURCE = "DART paper, Appendix C, Table 6 (relative truncation positions)"


def relative_cut_position(examples: Sequence[AdaptedExample]) -> dict[str, Any] | None:
    """Mean and quartiles of keep/T over the probed problems (every cut reason counts: a kept
    whole trace is 1, a solve from the question 0); None when nothing was probed."""
    shares = sorted(e.keep_steps / len(e.expert_steps) for e in examples if e.scores and e.expert_steps)
    if not shares:
        return None
    if len(shares) == 1:
        q1 = median = q3 = shares[0]
    else:
        q1, median, q3 = statistics.quantiles(shares, n=4, method="inclusive")
    return {
        "problems": len(shares),
        "mean": round(statistics.fmean(shares), 4),
        "q1": round(q1, 4),
        "median": round(median, 4),
        "q3": round(q3, 4),
    }


def paper_gap_positions() -> dict[str, dict[str, float]]:
    """Table 6's Gap positions: {dataset: {student size: position}}."""
    return {dataset: {size: gap for size, (_, gap) in sizes.items()} for dataset, sizes in PAPER_TABLE6.items()}
