"""The dataset card's figure: adaptability curves f_t over the (relative) position in the expert trace.

Like Figure 2 of the DART paper: every trace is length-normalised, positions are binned, and
each bin shows the median f over examples with the interquartile band (Q1-Q3) shaded.

* left panel: x = (t + 1) / T, the share of the expert trace the student was given
  (prefix s_0..s_t of T steps), in 10 bins (0, 0.1], ..., (0.9, 1];
* right panel (examples whose trace was cut at an imitation gap): x = (t - t_gap) / T, the
  position relative to the detected gap, so the cliff sits at x = 0 (as in the paper), in 20
  bins [-1, -0.9), ..., [0, 0.1), ... .

Within a bin each example contributes one value (the mean of its steps falling in that bin),
so long traces do not outweigh short ones. Examples without scores (strategy `static`) are
left out; when no example has scores no figure is written.

The PNG is deterministic: matplotlib's object-oriented API with the Agg canvas (no pyplot
global state, no backend switch), fixed size and dpi, and no "Software" metadata, so the same
examples give the same bytes.
"""

from __future__ import annotations

import importlib.util
import io
import math
import warnings
from collections.abc import Sequence
from pathlib import Path

from dart_hub.records import AdaptedExample

FIGURE_FILE = "figures/adaptability.png"
BINS = 10
GAP_BINS = 20  # over [-1, 1]


def _quartiles(values: Sequence[float]) -> tuple[float, float, float]:
    """Q1, median, Q3 with linear interpolation (numpy's default method), written out so the
    numbers do not depend on the numpy version."""
    ordered = sorted(values)

    def quantile(q: float) -> float:
        position = q * (len(ordered) - 1)
        low = math.floor(position)
        high = min(low + 1, len(ordered) - 1)
        return ordered[low] + (ordered[high] - ordered[low]) * (position - low)

    return quantile(0.25), quantile(0.5), quantile(0.75)


def _binned(points_per_example, edges: Sequence[float], right_closed: bool):
    """For each bin: centre, Q1, median, Q3, examples (bins with no example are skipped).
    Bins are (edges[i], edges[i+1]] when right_closed, else [edges[i], edges[i+1]); points
    outside the edges go to the nearest end bin."""
    bins = len(edges) - 1
    per_bin: list[list[float]] = [[] for _ in range(bins)]
    for points in points_per_example:
        sums = [0.0] * bins
        counts = [0] * bins
        for x, f in points:
            if right_closed:
                index = next((i for i in range(bins) if x <= edges[i + 1]), bins - 1)
            else:
                index = next((i for i in range(bins) if x < edges[i + 1]), bins - 1)
            sums[index] += f
            counts[index] += 1
        for i in range(bins):
            if counts[i]:
                per_bin[i].append(sums[i] / counts[i])
    rows = []
    for i, values in enumerate(per_bin):
        if values:
            q1, median, q3 = _quartiles(values)
            rows.append(((edges[i] + edges[i + 1]) / 2, q1, median, q3, len(values)))
    return rows


def curves(examples: Sequence[AdaptedExample]) -> dict:
    """The binned statistics behind the figure (also used by tests and the card):
    {"relative": [(centre, q1, median, q3, n), ...], "gap": [...], "examples": n, "gap_examples": n}."""
    relative, aligned = [], []
    for example in examples:
        scores = example.scores
        if not scores:
            continue
        total = len(scores)
        # unprobed prefixes (answer-revealing, or skipped by adaptive probing) have no point
        relative.append([((t + 1) / total, f) for t, f in enumerate(scores) if f is not None])
        if example.cut_reason == "gap" and example.gap is not None:
            aligned.append([((t - example.gap) / total, f) for t, f in enumerate(scores) if f is not None])
    # (t+1)/T is in (0, 1]: right-closed bins (the full trace falls in the last one); the
    # gap-aligned position is in (-1, 1): left-closed, so the gap step itself is in [0, 0.1).
    edges = [i / BINS for i in range(BINS + 1)]
    gap_edges = [-1 + 2 * i / GAP_BINS for i in range(GAP_BINS + 1)]
    return {
        "relative": _binned(relative, edges, right_closed=True),
        "gap": _binned(aligned, gap_edges, right_closed=False),
        "examples": len(relative),
        "gap_examples": len(aligned),
    }


def matplotlib_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def has_figure(examples: Sequence[AdaptedExample]) -> bool:
    """Whether the folder of these examples gets a figure: some example has scores and
    matplotlib is installed (without it the card simply has no figure, with a warning)."""
    return any(example.scores for example in examples) and matplotlib_available()


def render_png(examples: Sequence[AdaptedExample], title: str = "") -> bytes | None:
    """The figure as PNG bytes, or None when no example has adaptability scores."""
    data = curves(examples)
    if not data["relative"]:
        return None
    if not matplotlib_available():
        warnings.warn("matplotlib is not installed: the dataset card gets no adaptability figure (pip install matplotlib)", stacklevel=2)
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(10, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    left, right = figure.subplots(1, 2, sharey=True)
    _panel(left, data["relative"], "share of the expert trace imitated, (t+1)/T", f"all probed examples (n={data['examples']})")
    left.set_xlim(0, 1)
    left.set_ylabel(r"adaptability $f_t$")
    if data["gap"]:
        _panel(right, data["gap"], "position relative to the imitation gap, (t - t_gap)/T", f"examples cut at a gap (n={data['gap_examples']})")
        right.axvline(0, color="#b22222", linestyle="--", linewidth=1)
        right.set_xlim(-1, 1)
    else:
        right.set_axis_off()
        right.text(0.5, 0.5, "no example was cut at an imitation gap", ha="center", va="center", transform=right.transAxes)
    left.set_ylim(-0.02, 1.02)
    if title:
        # plain text: `$` would otherwise start matplotlib's mathtext
        figure.suptitle(title.replace("$", r"\$"), fontsize=10)
    buffer = io.BytesIO()
    # No "Software" (matplotlib version) and no timestamp: identical runs give identical bytes.
    figure.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _panel(axes, rows, xlabel: str, title: str) -> None:
    xs = [r[0] for r in rows]
    axes.fill_between(xs, [r[1] for r in rows], [r[3] for r in rows], color="#4c72b0", alpha=0.25, linewidth=0, label="Q1-Q3")
    axes.plot(xs, [r[2] for r in rows], color="#4c72b0", marker="o", markersize=3, linewidth=1.5, label="median")
    axes.set_xlabel(xlabel, fontsize=9)
    axes.set_title(title, fontsize=9)
    axes.grid(True, alpha=0.3)
    axes.legend(fontsize=8, loc="best")


def write_figure(out_dir: str | Path, examples: Sequence[AdaptedExample], title: str = "") -> str | None:
    """Write FIGURE_FILE under out_dir; return its relative path, or None (and remove a stale
    figure) when there is nothing to plot."""
    path = Path(out_dir) / FIGURE_FILE
    png = render_png(examples, title)
    if png is None:
        path.unlink(missing_ok=True)
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_bytes() != png:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(png)
        tmp.replace(path)
    return FIGURE_FILE
