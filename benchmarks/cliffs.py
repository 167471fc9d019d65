"""Where do the cut rules put the cut on long noisy traces? Latent-cliff curves, exact replay.

    python benchmarks/cliffs.py                                    # the full grid (minutes)
    python benchmarks/cliffs.py --draws 200 --lengths 16,64        # a quick look
    python benchmarks/cliffs.py --json out.json --plot docs/figures/cliffs.png

Each synthetic problem has a *latent* adaptability curve p_t (the true probability that a
rollout from s_0..s_t reaches the answer) with a known cliff c: the right cut keeps s_0..s_{c-1}.
Rollout j of prefix t succeeds when U[t][j] < p_t, with one uniform matrix U per problem shared
by every arm (common random numbers: rollout j of prefix t is the same draw whatever the arm,
as `adapt` gives it the same seed). Each arm runs dart-hub's own code on it: the search and the
confirmation walk ask for rollouts (`dart_hub.adaptation.probe.next_asks`), the cut comes from
`dart_hub.adaptation.pipeline.cut_from_outcomes`.

Families (T = trace length, c drawn uniformly in [T/5, 4T/5]):

* cliff: p_t = P up to c, Q from c on; P in {0.97, 0.9, 0.7}, Q in {0, 0.1, 0.3};
* rise: p_t rises linearly from 0.3 at t = 0 to P at c - 1, then Q = 0.1 from c on;
* recover: a noisy plateau (p_t = P + U(-0.05, 0.05), capped at 1) then Q = 0.1, except that
  after the cliff f climbs half-way back, (P + Q) / 2, for three steps, starting two steps after
  the cliff: a partial recovery that must not move the cut.

Arms: scan(4) and scan(16) under the paper's rules (Algorithm 1: every prefix, N_sim = 4 or
16 rollouts, first index of the maximum, min-follow 0) and under robust without confirmation,
adaptive (robust without confirmation; adaptive needs the local peak), and robust with
`--confirm 16` on scan and on adaptive. Reported per cell: the share of cuts within +/- 2 steps
of the cliff, the median keep/T, and rollouts per problem relative to scan(4) (4T).

The confirmation test's parameters (K = 16, alpha = 0.01, beta = 0.1) were fixed in
dart_hub/adaptation/confirm.py before this benchmark was first run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dart_hub.adaptation.pipeline import cut_from_outcomes  # noqa: E402
from dart_hub.adaptation.probe import next_asks  # noqa: E402
from dart_hub.config import AdaptConfig  # noqa: E402

ARMS: dict[str, dict] = {
    "scan4-paper": dict(n_sim=4),
    "scan16-paper": dict(n_sim=16),
    "scan4-robust": dict(n_sim=4, rules="robust", confirm=0),
    "scan16-robust": dict(n_sim=16, rules="robust", confirm=0),
    "adaptive": dict(n_sim=4, rules="robust", confirm=0, probe="adaptive"),
    "confirm-scan": dict(n_sim=4, rules="robust"),
    "confirm-adaptive": dict(n_sim=4, rules="robust", probe="adaptive"),
}
COLUMNS = 16 + 16  # enough uniforms per prefix for scan(16) and N_sim + K = 4 + 16


def latent(family: str, length: int, high: float, low: float, rng: random.Random) -> tuple[list[float], int]:
    cliff = rng.randint(max(1, length // 5), max(1, length - length // 5))
    if family == "cliff":
        return [high if t < cliff else low for t in range(length)], cliff
    if family == "rise":
        start = 0.3
        return [start + (high - start) * t / max(1, cliff - 1) if t < cliff else low for t in range(length)], cliff
    if family == "recover":
        curve = [min(1.0, high + rng.uniform(-0.05, 0.05)) if t < cliff else low for t in range(length)]
        for t in range(cliff + 2, min(length, cliff + 5)):
            curve[t] = (high + low) / 2
        return curve, cliff
    raise ValueError(family)


def run_arm(config: AdaptConfig, p: list[float], uniforms: list[list[float]]) -> tuple[int, int]:
    """(kept steps, rollouts drawn) of one arm on one problem."""
    outcomes: dict[int, list[bool]] = {}
    while True:
        asks = next_asks(config, len(p), outcomes)
        if not asks:
            break
        for t, offset, count in asks:
            group = outcomes.setdefault(t, [])
            assert len(group) == offset, (t, offset, len(group))
            group.extend(uniforms[t][j] < p[t] for j in range(offset, offset + count))
    per_step = [outcomes.get(t, []) for t in range(len(p))]
    cut = cut_from_outcomes(per_step, config)
    return cut.keep_steps, sum(len(o) for o in per_step)


def cell(family: str, length: int, high: float, low: float, draws: int, seed: int, arms: dict[str, AdaptConfig]) -> dict:
    near = {name: 0 for name in arms}
    shares: dict[str, list[float]] = {name: [] for name in arms}
    rollouts = {name: 0 for name in arms}
    for draw in range(draws):
        rng = random.Random(f"{seed}-{family}-{length}-{high}-{low}-{draw}")
        p, cliff = latent(family, length, high, low, rng)
        uniforms = [[rng.random() for _ in range(COLUMNS)] for _ in range(length)]
        for name, config in arms.items():
            keep, drawn = run_arm(config, p, uniforms)
            near[name] += abs(keep - cliff) <= 2
            shares[name].append(keep / length)
            rollouts[name] += drawn
    base = 4 * length * draws
    return {
        name: {
            "within_2": round(near[name] / draws, 3),
            "median_keep_share": round(statistics.median(shares[name]), 3),
            "rollouts_vs_scan4": round(rollouts[name] / base, 2),
        }
        for name in arms
    }


def plot(report: dict, path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cells = report["cells"]
    highs = sorted({c["high"] for c in cells if c["family"] == "cliff"}, reverse=True)
    lengths = sorted({c["length"] for c in cells})
    figure = Figure(figsize=(12, 6.4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(2, len(highs), sharex=True)
    shown = ["scan4-paper", "scan16-paper", "scan4-robust", "adaptive", "confirm-scan", "confirm-adaptive"]
    for col, high in enumerate(highs):
        for name in shown:
            within, cost = [], []
            for length in lengths:
                rows = [c for c in cells if c["family"] == "cliff" and c["high"] == high and c["length"] == length]
                within.append(statistics.fmean(r["arms"][name]["within_2"] for r in rows))
                cost.append(statistics.fmean(r["arms"][name]["rollouts_vs_scan4"] for r in rows))
            axes[0][col].plot(lengths, within, marker="o", label=name)
            axes[1][col].plot(lengths, cost, marker="o", label=name)
        axes[0][col].set_title(f"cliff family, plateau P = {high} (mean over Q)")
        axes[0][col].axhline(0.9, color="grey", linestyle=":", linewidth=1)
        axes[1][col].axhline(1.5, color="grey", linestyle=":", linewidth=1)
        axes[0][col].set_ylim(0, 1.02)
        axes[1][col].set_xlabel("trace length T")
    axes[0][0].set_ylabel("share of cuts within +/- 2 of the cliff")
    axes[1][0].set_ylabel("rollouts / scan(4)")
    axes[0][-1].legend(fontsize=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lengths", default="16,32,64,128,192")
    parser.add_argument("--highs", default="0.97,0.9,0.7")
    parser.add_argument("--lows", default="0,0.1,0.3")
    parser.add_argument("--families", default="cliff,rise,recover")
    parser.add_argument("--draws", type=int, default=1000, help="problems per cell")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the report here")
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--merge", type=Path, nargs="+", help="combine the --json reports of partial runs (then --json / --plot)")
    args = parser.parse_args()
    if args.merge:
        parts = [json.loads(path.read_text()) for path in args.merge]
        report = {"settings": [part["settings"] for part in parts], "seconds": sum(part["seconds"] for part in parts),
                  "cells": [c for part in parts for c in part["cells"]]}  # fmt: skip
        if args.json:
            args.json.write_text(json.dumps(report, indent=1))
        if args.plot:
            plot(report, args.plot)
        return
    arms = {name: AdaptConfig(**ARMS[name]) for name in args.arms.split(",")}
    cells = []
    started = time.monotonic()
    for family in args.families.split(","):
        lows = [float(x) for x in args.lows.split(",")] if family == "cliff" else [0.1]
        for length in (int(x) for x in args.lengths.split(",")):
            for high in (float(x) for x in args.highs.split(",")):
                for low in lows:
                    t0 = time.monotonic()
                    result = cell(family, length, high, low, args.draws, args.seed, arms)
                    cells.append({"family": family, "length": length, "high": high, "low": low, "arms": result})
                    summary = "  ".join(f"{n} {r['within_2']:.3f}/{r['median_keep_share']:.2f}/{r['rollouts_vs_scan4']:.2f}x" for n, r in result.items())
                    print(f"{family:7} T={length:3} P={high} Q={low}: {summary}  ({time.monotonic() - t0:.0f} s)", file=sys.stderr, flush=True)
    report = {"settings": {k: str(v) for k, v in vars(args).items()}, "seconds": round(time.monotonic() - started), "cells": cells}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.plot:
        plot(report, args.plot)


if __name__ == "__main__":
    main()
