"""Figures of the DART paper that the report draws for comparison (never as our results).

Table 6 of the paper ("Comparison of truncation positions between Adaptation-First and
Adaptation-Gap methods across datasets and model sizes"): the relative truncation position,
i.e. the share of the expert trace kept, per dataset and student size.
"""

from __future__ import annotations

TABLE6_CAPTION = "DART paper, Table 6: relative truncation positions (share of the expert trace kept)"

# (dataset, student size) -> (Adaptation-First position, Adaptation-Gap position)
TABLE6: dict[tuple[str, str], tuple[float, float]] = {
    ("LIMO", "0.5B"): (0.7901, 0.7707),
    ("LIMO", "1.5B"): (0.6785, 0.6985),
    ("LIMO", "3B"): (0.5718, 0.5983),
    ("Math-QwQ-32B", "0.5B"): (0.5055, 0.5244),
    ("Math-QwQ-32B", "1.5B"): (0.2113, 0.3664),
    ("Math-QwQ-32B", "3B"): (0.0840, 0.3239),
}


def table6_marks(strategy: str) -> list[dict]:
    """The Table 6 positions of the strategy's kind of cut (First for `first`, Gap otherwise),
    one per dataset and size: {"dataset", "size", "value", "column"}."""
    column = "First" if strategy == "first" else "Gap"
    index = 0 if column == "First" else 1
    return [
        {"dataset": dataset, "size": size, "value": values[index], "column": column}
        for (dataset, size), values in TABLE6.items()
    ]


def table6_rows() -> list[dict]:
    return [
        {"dataset": dataset, "size": size, "first": first, "gap": gap, "difference": round(abs(first - gap), 4)}
        for (dataset, size), (first, gap) in TABLE6.items()
    ]
