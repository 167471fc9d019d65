"""Adaptive probing vs the full scan: rollouts, tokens and agreement of the cut, by exact replay.

    python benchmarks/probing.py --probe-cache ~/.cache/dart-hub/probes    # stored full scans
    python benchmarks/probing.py --synthetic                               # curves of 8..128 steps
    python benchmarks/probing.py --synthetic --plot docs/figures/probing-savings.png --json

Rollout j of prefix t has the same seed in both modes (`GenerationRequest.sample_offset`), so an
adaptive run draws a subset of a full scan's rollouts. Replaying the adaptive search against a
stored scan (the probe cache of any `adapt --probe scan` run: every rollout's correctness and
token count, in sample order) is therefore exactly what `adapt --probe adaptive` would do, at
no generation cost.

--synthetic draws score curves shaped like DART's (a plateau of success probability p_hi up to
a cliff at a random relative position, p_lo after it; weak students with p_hi <= 0.3; traces
without a cliff), samples N_sim Bernoulli rollouts per prefix from them, and gives each rollout
a token count proportional to what is left of the trace (continuing from a late prefix is
shorter), capped at --sim-max-tokens. It reports, per trace length, the savings and the share of
cuts identical to the scan's and within one step of it, and also the share within one step of
the latent cliff (the scan itself misses the cliff when an unlucky prefix before it looks like
a drop).
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dart_hub.adapt.cut import DEFAULT_EPSILON, DEFAULT_MIN_FOLLOW, decide_cut  # noqa: E402
from dart_hub.adapt.search import DEFAULT_COARSE, DEFAULT_FIRST_ROUND, replay  # noqa: E402


def compare(outcomes, tokens, args, cliff=None) -> dict:
    """Replay both searches on one problem's rollouts; outcomes[t][j], tokens[t][j]."""
    common = dict(epsilon=args.epsilon, min_follow=args.min_follow, target="first" if args.strategy == "first" else "gap")
    full, full_samples, _ = replay(outcomes, "scan", **common)
    fast, fast_samples, rounds = replay(outcomes, "adaptive", coarse=args.coarse, first_round=args.first_round, **common)
    a, b = decide_cut(args.strategy, full), decide_cut(args.strategy, fast)
    same_reason = a.reason == b.reason
    row = {
        "steps": len(outcomes),
        "scan_rollouts": sum(full_samples),
        "adaptive_rollouts": sum(fast_samples),
        "scan_tokens": sum(sum(tokens[t][:m]) for t, m in enumerate(full_samples)),
        "adaptive_tokens": sum(sum(tokens[t][:m]) for t, m in enumerate(fast_samples)),
        "rounds": rounds,
        "identical": same_reason and a.keep_steps == b.keep_steps,
        "within_one": same_reason and abs(a.keep_steps - b.keep_steps) <= 1,
    }
    if cliff is not None:
        row["scan_near_cliff"] = abs(a.keep_steps - cliff) <= 1
        row["adaptive_near_cliff"] = abs(b.keep_steps - cliff) <= 1
    return row


def summarize(rows: list[dict]) -> dict:
    if not rows:
        return {"problems": 0}
    out = {
        "problems": len(rows),
        "mean_steps": round(sum(r["steps"] for r in rows) / len(rows), 1),
        "rollout_saving": round(sum(r["scan_rollouts"] for r in rows) / max(1, sum(r["adaptive_rollouts"] for r in rows)), 2),
        "token_saving": round(sum(r["scan_tokens"] for r in rows) / max(1, sum(r["adaptive_tokens"] for r in rows)), 2),
        "identical_cut": round(sum(r["identical"] for r in rows) / len(rows), 3),
        "cut_within_one_step": round(sum(r["within_one"] for r in rows) / len(rows), 3),
        "mean_rounds": round(sum(r["rounds"] for r in rows) / len(rows), 1),
    }
    cliffs = [r for r in rows if "scan_near_cliff" in r]
    if cliffs:  # synthetic curves with a cliff inside the trace
        out["scan_within_one_of_cliff"] = round(sum(r["scan_near_cliff"] for r in cliffs) / len(cliffs), 3)
        out["adaptive_within_one_of_cliff"] = round(sum(r["adaptive_near_cliff"] for r in cliffs) / len(cliffs), 3)
    return out


def stored_scans(root: Path):
    """(outcomes, tokens) of every problem in a probe cache written by `adapt --probe scan`."""
    for path in sorted(root.rglob("probes-*.jsonl.gz")):
        meta = json.loads((path.parent / "probe.json").read_text()) if (path.parent / "probe.json").exists() else {}
        if (meta.get("simulation") or {}).get("probe", "scan") != "scan":
            continue  # only full scans can be replayed
        for line in gzip.decompress(path.read_bytes()).decode().splitlines():
            probe = json.loads(line)["probe"]
            groups = [g for g in probe["rollouts"] if g]
            if groups:
                yield [[c["correct"] for c in g] for g in groups], [[c["completion_tokens"] for c in g] for g in groups]


def synthetic_problem(rng: random.Random, steps: int, n_sim: int, max_tokens: int, tokens_per_step: int):
    kind = rng.random()
    if kind < 0.15:  # the student follows the whole trace
        p, cliff = [rng.uniform(0.7, 1.0)] * steps, steps
    elif kind < 0.3:  # a weak student: low everywhere
        low = rng.uniform(0.0, 0.3)
        p, cliff = [low] * steps, None
    else:
        cliff = rng.randint(1, steps - 1) if steps > 1 else 1
        hi, lo = rng.uniform(0.6, 1.0), rng.uniform(0.0, 0.2)
        p = [hi if t < cliff else lo for t in range(steps)]
    p = [min(1.0, max(0.0, q + rng.uniform(-0.05, 0.05))) for q in p]
    outcomes = [[rng.random() < q for _ in range(n_sim)] for q in p]
    tokens = [[min(max_tokens, 50 + tokens_per_step * (steps - t) + rng.randint(0, tokens_per_step)) for _ in range(n_sim)] for t in range(steps)]
    return outcomes, tokens, cliff


def plot(by_length: dict[int, dict], path: Path) -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    lengths = sorted(by_length)
    figure = Figure(figsize=(6.5, 3.6), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    ax.plot(lengths, [by_length[n]["token_saving"] for n in lengths], marker="o", label="generated tokens")
    ax.plot(lengths, [by_length[n]["rollout_saving"] for n in lengths], marker="s", label="rollouts")
    ax.axhline(5, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("probed prefixes per trace")
    ax.set_ylabel("scan / adaptive")
    ax.set_title("adaptive probing: savings against trace length (synthetic curves)")
    ax.legend()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--probe-cache", type=Path, help="replay the full scans stored in this probe cache")
    parser.add_argument("--synthetic", action="store_true", help="replay synthetic DART-shaped curves")
    parser.add_argument("--lengths", default="8,16,32,64,100,128")
    parser.add_argument("--problems", type=int, default=400, help="synthetic problems per length")
    parser.add_argument("--n-sim", type=int, default=4)
    parser.add_argument("--sim-max-tokens", type=int, default=4000)
    parser.add_argument("--tokens-per-step", type=int, default=60)
    parser.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON)
    parser.add_argument("--min-follow", type=float, default=DEFAULT_MIN_FOLLOW)
    parser.add_argument("--coarse", type=int, default=DEFAULT_COARSE)
    parser.add_argument("--first-round", type=int, default=DEFAULT_FIRST_ROUND)
    parser.add_argument("--strategy", default="full", choices=["full", "gap", "first"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.probe_cache and not args.synthetic:
        parser.error("give --probe-cache DIR and/or --synthetic")

    report: dict = {"settings": {k: v for k, v in vars(args).items() if k not in ("plot", "json", "probe_cache")}}
    if args.probe_cache:
        rows = [compare(o, t, args) for o, t in stored_scans(args.probe_cache)]
        buckets: dict[str, list[dict]] = {}
        for row in rows:
            key = "1-7" if row["steps"] < 8 else "8-15" if row["steps"] < 16 else "16-64" if row["steps"] <= 64 else "65+"
            buckets.setdefault(key, []).append(row)
        report["stored"] = {"all": summarize(rows), **{k: summarize(v) for k, v in sorted(buckets.items())}}
    if args.synthetic:
        rng = random.Random(args.seed)
        by_length = {}
        for steps in (int(x) for x in args.lengths.split(",")):
            rows = []
            for _ in range(args.problems):
                outcomes, tokens, cliff = synthetic_problem(rng, steps, args.n_sim, args.sim_max_tokens, args.tokens_per_step)
                rows.append(compare(outcomes, tokens, args, cliff if cliff is not None and cliff < steps else None))
            by_length[steps] = summarize(rows)
        report["synthetic"] = by_length
        if args.plot:
            plot(by_length, args.plot)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    for section in ("stored", "synthetic"):
        for key, value in (report.get(section) or {}).items():
            print(f"{section:9} {str(key):>6}: {value}")


if __name__ == "__main__":
    main()
