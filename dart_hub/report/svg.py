"""Inline SVG charts of the report: plain strings, every label escaped, no script, no external
reference. Elements the browser tests look for carry `data-role` (and `data-step`) attributes.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

BLUE, RED, GREEN, GREY, ORANGE = "#3b6fb6", "#c0392b", "#2e8b57", "#8a8f98", "#d68a2e"
DATASET_COLOURS = {"LIMO": "#7b3fa0", "Math-QwQ-32B": "#d68a2e"}


def _num(value: float) -> str:
    return f"{value:.1f}"


class Frame:
    """A plot area inside an SVG: maps data coordinates to pixels."""

    def __init__(self, width: int, height: int, left: int = 48, right: int = 16, top: int = 14, bottom: int = 40,
                 x_range: tuple[float, float] = (0.0, 1.0), y_range: tuple[float, float] = (0.0, 1.0)):  # fmt: skip
        self.width, self.height = width, height
        self.left, self.right, self.top, self.bottom = left, right, top, bottom
        self.x0, self.x1 = x_range
        self.y0, self.y1 = y_range

    def x(self, value: float) -> float:
        span = (self.x1 - self.x0) or 1.0
        return self.left + (value - self.x0) / span * (self.width - self.left - self.right)

    def y(self, value: float) -> float:
        span = (self.y1 - self.y0) or 1.0
        return self.height - self.bottom - (value - self.y0) / span * (self.height - self.top - self.bottom)

    def open(self, label: str, role: str) -> str:
        return (
            f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {self.width} {self.height}" width="{self.width}" '
            f'height="{self.height}" role="img" aria-label="{escape(label)}" data-role="{escape(role)}" class="chart">'
        )

    def axes(self, x_ticks: Sequence[tuple[float, str]], y_ticks: Sequence[tuple[float, str]], x_label: str, y_label: str) -> str:
        parts = []
        bottom, top = self.y(self.y0), self.y(self.y1)
        for value, text in y_ticks:
            y = self.y(value)
            parts.append(f'<line x1="{_num(self.x(self.x0))}" x2="{_num(self.x(self.x1))}" y1="{_num(y)}" y2="{_num(y)}" class="grid"/>')
            parts.append(f'<text x="{_num(self.left - 6)}" y="{_num(y + 4)}" text-anchor="end" class="tick">{escape(text)}</text>')
        for value, text in x_ticks:
            x = self.x(value)
            parts.append(f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(bottom)}" y2="{_num(bottom + 4)}" class="axis"/>')
            parts.append(f'<text x="{_num(x)}" y="{_num(bottom + 16)}" text-anchor="middle" class="tick">{escape(text)}</text>')
        parts.append(f'<line x1="{_num(self.x(self.x0))}" x2="{_num(self.x(self.x1))}" y1="{_num(bottom)}" y2="{_num(bottom)}" class="axis"/>')
        parts.append(f'<line x1="{_num(self.x(self.x0))}" x2="{_num(self.x(self.x0))}" y1="{_num(bottom)}" y2="{_num(top)}" class="axis"/>')
        middle = (self.width + self.left - self.right) / 2
        parts.append(f'<text x="{_num(middle)}" y="{self.height - 6}" text-anchor="middle" class="label">{escape(x_label)}</text>')
        mid_y = (self.top + self.height - self.bottom) / 2
        parts.append(f'<text transform="translate(12 {_num(mid_y)}) rotate(-90)" text-anchor="middle" class="label">{escape(y_label)}</text>')
        return "".join(parts)


def fraction_ticks(step: float = 0.25) -> list[tuple[float, str]]:
    count = round(1 / step)
    return [(i * step, f"{i * step:g}") for i in range(count + 1)]


def mean_curve(bins: Sequence[dict[str, float]], width: int = 540, height: int = 260) -> str:
    """Mean adaptability by relative position: each bin's Q1-Q3 as a box across the bin (a band
    that stays readable when quartiles jump between bins), its median as a tick, the mean as a
    line through the bin centres."""
    frame = Frame(width, height, top=30)
    parts = [frame.open("mean adaptability by relative position, with quartiles", "mean-curve")]
    parts.append(frame.axes(fraction_ticks(0.1), fraction_ticks(0.25), "share of the expert trace given, (t+1)/T", "adaptability f_t"))
    for row in bins:
        x0, x1 = frame.x(row["lo"]) + 1, frame.x(row["hi"]) - 1
        y_top, y_bottom = frame.y(row["q3"]), frame.y(row["q1"])
        tip = f"({row['lo']:g}, {row['hi']:g}]: mean {row['mean']:.2f}, median {row['median']:.2f}, Q1 {row['q1']:.2f}, Q3 {row['q3']:.2f}, {row['n']} problems"
        parts.append(
            f'<rect x="{_num(x0)}" y="{_num(y_top)}" width="{_num(x1 - x0)}" height="{_num(max(y_bottom - y_top, 1.5))}" '
            f'class="band" data-role="quartile-band"><title>{escape(tip)}</title></rect>'
        )
        parts.append(f'<line x1="{_num(x0)}" x2="{_num(x1)}" y1="{_num(frame.y(row["median"]))}" y2="{_num(frame.y(row["median"]))}" class="median"/>')
    points = [(frame.x((r["lo"] + r["hi"]) / 2), frame.y(r["mean"])) for r in bins]
    if points:
        parts.append(f'<polyline points="{" ".join(f"{_num(x)},{_num(y)}" for x, y in points)}" class="mean-line"/>')
        for (x, y), row in zip(points, bins, strict=True):
            parts.append(f'<circle cx="{_num(x)}" cy="{_num(y)}" r="3.5" class="mean-dot" data-role="mean-point"><title>mean {row["mean"]:.3f} ({row["n"]} problems)</title></circle>')
    parts.append(_legend(frame, [("band", "Q1-Q3 of problems"), ("median", "median"), ("mean-line", "mean")]))
    parts.append("</svg>")
    return "".join(parts)


def _legend(frame: Frame, items: Sequence[tuple[str, str]]) -> str:
    """A one-line key above the plot area (never over the data)."""
    parts = [f'<g class="legend" transform="translate({_num(frame.left)} 4)">']
    x = 0.0
    for cls, text in items:
        if cls in ("band", "kept-zone", "reveal-zone"):
            parts.append(f'<rect x="{_num(x)}" y="2" width="18" height="10" class="{cls}"/>')
        elif cls == "peak-key":
            parts.append(f'<circle cx="{_num(x + 9)}" cy="7" r="5" class="peak"/>')
        else:
            parts.append(f'<line x1="{_num(x)}" x2="{_num(x + 18)}" y1="7" y2="7" class="{cls}"/>')
        parts.append(f'<text x="{_num(x + 24)}" y="11" class="tick">{escape(text)}</text>')
        x += 24 + 6.2 * len(text) + 16
    parts.append("</g>")
    return "".join(parts)


def cut_histogram(bins: Sequence[dict[str, float]], marks: Sequence[dict[str, Any]], width: int = 540, height: int = 280) -> str:
    """Histogram of keep/T with the paper's Table 6 positions as labelled vertical lines."""
    top = max([b["count"] for b in bins] + [1])
    frame = Frame(width, height, top=56, y_range=(0, top))
    step = max(1, round(top / 4))
    y_ticks = [(v, str(v)) for v in range(0, top + 1, step)]
    parts = [frame.open("histogram of the kept share of the expert trace, keep/T", "cut-histogram")]
    parts.append(frame.axes(fraction_ticks(0.1), y_ticks, "kept share of the expert trace, keep/T", "problems"))
    for b in bins:
        if not b["count"]:
            continue
        x0, x1 = frame.x(b["lo"]) + 1, frame.x(b["hi"]) - 1
        y = frame.y(b["count"])
        parts.append(
            f'<rect x="{_num(x0)}" y="{_num(y)}" width="{_num(x1 - x0)}" height="{_num(frame.y(0) - y)}" class="bar" '
            f'data-role="cut-bar" data-count="{b["count"]}"><title>[{b["lo"]:g}, {b["hi"]:g}): {b["count"]} problems</title></rect>'
        )
    for index, mark in enumerate(sorted(marks, key=lambda m: m["value"])):
        x = frame.x(mark["value"])
        colour = DATASET_COLOURS.get(mark["dataset"], GREY)
        label = f"{mark['dataset']} {mark['size']}: {mark['value']:.2f}"
        row = index % 3
        parts.append(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(frame.y(0))}" y2="{_num(frame.top - 8 - 14 * row + 12)}" stroke="{colour}" '
            f'class="paper-mark" data-role="table6-mark" data-value="{mark["value"]}"><title>{escape(label)} (paper, Table 6, {escape(mark["column"])} position)</title></line>'
        )
        parts.append(f'<text x="{_num(x + 2)}" y="{_num(frame.top - 10 - 14 * row + 12)}" fill="{colour}" class="tick mark-label">{escape(mark["size"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def problem_curve(problem: dict[str, Any], width: int = 640, height: int = 240) -> str:
    """f_t of one problem by expert step: a point per probed step, the kept steps shaded green,
    the peak ringed, the gap as a red dashed line, the answer-revealing tail shaded grey."""
    steps = max(problem["steps"], 1)
    frame = Frame(width, height, right=20, top=30, x_range=(0, steps), y_range=(0.0, 1.0))

    def centre(t: int) -> float:
        return frame.x(t + 0.5)

    parts = [frame.open(f"adaptability f_t over the {steps} expert steps", "problem-curve")]
    keep = problem["keep_steps"]
    if keep:
        parts.append(
            f'<rect x="{_num(frame.x(0))}" y="{_num(frame.y(1))}" width="{_num(frame.x(keep) - frame.x(0))}" '
            f'height="{_num(frame.y(0) - frame.y(1))}" class="kept-zone" data-role="kept-zone" data-steps="{keep}"/>'
        )
    reveal = problem["reveal_step"]
    if reveal is not None:
        parts.append(
            f'<rect x="{_num(frame.x(reveal))}" y="{_num(frame.y(1))}" width="{_num(frame.x(steps) - frame.x(reveal))}" '
            f'height="{_num(frame.y(0) - frame.y(1))}" class="reveal-zone" data-role="reveal-zone" data-step="{reveal}">'
            f"<title>from step {reveal} the expert trace states the answer: not probed</title></rect>"
        )
    tick_every = max(1, round(steps / 12))
    x_ticks = [(t + 0.5, str(t)) for t in range(0, steps, tick_every)]
    parts.append(frame.axes(x_ticks, fraction_ticks(0.25), "expert step t (prefix s_0..s_t)", "f_t"))
    points = [(t, f) for t, f in enumerate(problem["scores"]) if f is not None]
    if points:
        parts.append(f'<polyline points="{" ".join(f"{_num(centre(t))},{_num(frame.y(f))}" for t, f in points)}" class="curve-line"/>')
    successes, samples = problem["successes"], problem["samples"]
    for t, f in points:
        count = ""
        if t < len(successes) and successes[t] is not None:
            drawn = samples[t] if t < len(samples) and samples[t] else None
            count = f" ({successes[t]}/{drawn})" if drawn else f" ({successes[t]} correct)"
        parts.append(
            f'<circle cx="{_num(centre(t))}" cy="{_num(frame.y(f))}" r="4" class="point" data-role="score-point" '
            f'data-step="{t}" data-score="{f}"><title>step {t}: f = {f:.2f}{escape(count)}</title></circle>'
        )
    peak = problem["peak"]
    if peak is not None and peak < len(problem["scores"]) and problem["scores"][peak] is not None:
        parts.append(
            f'<circle cx="{_num(centre(peak))}" cy="{_num(frame.y(problem["scores"][peak]))}" r="9" class="peak" '
            f'data-role="peak-marker" data-step="{peak}"><title>peak at step {peak}</title></circle>'
        )
    gap = problem["gap"]
    if gap is not None:
        x = centre(gap)
        parts.append(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(frame.y(0))}" y2="{_num(frame.y(1.0) - 4)}" class="gap-line" '
            f'data-role="gap-marker" data-step="{gap}"><title>imitation gap at step {gap}</title></line>'
        )
        parts.append(f'<text x="{_num(x + 4)}" y="{_num(frame.y(1.0) + 8)}" class="tick gap-label">gap</text>')
    legend = [("kept-zone", "expert steps kept"), ("peak-key", "peak"), ("gap-line", "gap")]
    if reveal is not None:
        legend.append(("reveal-zone", "states the answer (not probed)"))
    parts.append(_legend(frame, legend))
    parts.append("</svg>")
    return "".join(parts)


def interval_bars(items: Sequence[dict[str, Any]], width: int = 560, height: int = 240, title: str = "") -> str:
    """Bars in percent with optional 95% intervals: items {"label", "value", "low", "high"}."""
    count = max(len(items), 1)
    frame = Frame(width, height + 12, bottom=60, x_range=(0, count), y_range=(0, 100))
    parts = [frame.open(title or "scores with intervals", "score-bars")]
    parts.append(frame.axes([], [(v, str(v)) for v in range(0, 101, 25)], "", "accuracy (%)"))
    for index, item in enumerate(items):
        x0, x1 = frame.x(index + 0.15), frame.x(index + 0.85)
        y = frame.y(item["value"])
        parts.append(
            f'<rect x="{_num(x0)}" y="{_num(y)}" width="{_num(x1 - x0)}" height="{_num(frame.y(0) - y)}" class="bar" '
            f'data-role="score-bar"><title>{escape(item["label"])}: {item["value"]:.1f}%</title></rect>'
        )
        if item.get("low") is not None and item.get("high") is not None:
            xc = frame.x(index + 0.5)
            lo, hi = frame.y(item["low"]), frame.y(item["high"])
            parts.append(
                f'<path d="M{_num(xc)} {_num(lo)}V{_num(hi)}M{_num(xc - 6)} {_num(lo)}H{_num(xc + 6)}M{_num(xc - 6)} {_num(hi)}H{_num(xc + 6)}" '
                f'class="whisker" data-role="interval"><title>95% interval {item["low"]:.1f} - {item["high"]:.1f}</title></path>'
            )
        parts.append(f'<text x="{_num(frame.x(index + 0.5) + 9)}" y="{_num(y - 4)}" class="tick">{item["value"]:.1f}</text>')  # beside the whisker
        # run labels ("student / dataset / arm") go on up to 3 lines under their bar
        xc = frame.x(index + 0.5)
        for row, line in enumerate(item["label"].split(" / ")[-3:]):
            line = line if len(line) <= 18 else line[:17] + "…"
            parts.append(f'<text x="{_num(xc)}" y="{_num(frame.y(0) + 14 + 12 * row)}" text-anchor="middle" class="tick">{escape(line)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def epoch_chart(points: Sequence[tuple[float, float]], chosen: float | None, y_label: str, role: str,
                width: int = 360, height: int = 220, percent: bool = False) -> str:  # fmt: skip
    """One series per epoch (training loss or validation score) with the chosen epoch marked."""
    xs = [x for x, _ in points] or [1.0]
    ys = [y for _, y in points] or [0.0]
    if percent:
        y_range = (0.0, 100.0)
    else:
        low, high = min(ys), max(ys)
        pad = (high - low) * 0.1 or abs(high) * 0.1 or 1.0
        y_range = (max(0.0, low - pad), high + pad)
    frame = Frame(width, height, x_range=(min(xs) - 0.5, max(xs) + 0.5), y_range=y_range)
    parts = [frame.open(y_label + " per epoch", role)]
    y_ticks = [(y_range[0] + i * (y_range[1] - y_range[0]) / 4, f"{y_range[0] + i * (y_range[1] - y_range[0]) / 4:.3g}") for i in range(5)]
    x_ticks = [(x, f"{x:g}") for x in xs] if len(xs) <= 16 else [(x, f"{x:g}") for x in xs[:: max(1, len(xs) // 8)]]
    parts.append(frame.axes(x_ticks, y_ticks, "epoch", y_label))
    if chosen is not None:
        x = frame.x(chosen)
        parts.append(
            f'<line x1="{_num(x)}" x2="{_num(x)}" y1="{_num(frame.y(y_range[0]))}" y2="{_num(frame.y(y_range[1]))}" class="chosen-line" '
            f'data-role="chosen-epoch" data-epoch="{chosen:g}"><title>chosen epoch {chosen:g}</title></line>'
        )
    if points:
        parts.append(f'<polyline points="{" ".join(f"{_num(frame.x(x))},{_num(frame.y(y))}" for x, y in points)}" class="curve-line"/>')
        for x, y in points:
            parts.append(f'<circle cx="{_num(frame.x(x))}" cy="{_num(frame.y(y))}" r="3.5" class="point" data-role="epoch-point"><title>epoch {x:g}: {y:.4g}</title></circle>')
    parts.append("</svg>")
    return "".join(parts)
