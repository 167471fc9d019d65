"""Adaptive probing vs the full scan: rollouts, tokens and agreement of the cut, by exact replay.

    python benchmarks/probing.py --probe-cache ~/.cache/dart-hub/probes    # stored full scans
    python benchmarks/probing.py --synthetic                               # curves of 8..128 steps
    python benchmarks/probing.py --synthetic --plot docs/figures/probing-savings.png --json
    python benchmarks/probing.py --toy-long 6 --toy-check 6 --toy-work /tmp/toy-long  # the toy world
    python benchmarks/probing.py --unimodal 20000    # adaptive vs scan on random unimodal curves

Latent-cliff curves and the cut rules (paper, robust, confirmation): benchmarks/cliffs.py.

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

--toy-long N builds N long toy traces (16 to 64 paragraphs before the answer,
`dart_hub.toy.long`), scans them with the shipped toy student through `dart-hub adapt`'s
library path (transformers on the CPU, float32, 256-token budgets, --min-step-chars 5; reused
from TOY_WORK/probes when that scan is already there) and replays the stored scans.
--toy-check K also runs `adapt --probe adaptive` for real on K of those problems (spread over
the lengths) and checks that every prefix got the rollouts the replay says, with the same
outcomes and token counts, and that the cuts are the same: the exactness claim, on real runs.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dart_hub.adaptation.cut import DEFAULT_EPSILON, DEFAULT_MIN_FOLLOW, decide_cut  # noqa: E402
from dart_hub.adaptation.search import DEFAULT_COARSE, DEFAULT_FIRST_ROUND, DEFAULT_HEAD, replay  # noqa: E402


def compare(outcomes, tokens, args, cliff=None) -> dict:
    """Replay both searches on one problem's rollouts; outcomes[t][j], tokens[t][j]."""
    common = dict(epsilon=args.epsilon, min_follow=args.min_follow, target="first" if args.strategy == "first" else "gap")
    full, full_samples, _ = replay(outcomes, "scan", **common)
    fast, fast_samples, rounds = replay(outcomes, "adaptive", coarse=args.coarse, first_round=args.first_round, head=args.head, **common)
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
        "rollouts": [sum(r["scan_rollouts"] for r in rows), sum(r["adaptive_rollouts"] for r in rows)],  # scan, adaptive
        "tokens": [sum(r["scan_tokens"] for r in rows), sum(r["adaptive_tokens"] for r in rows)],
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


def length_bucket(steps: int, edges: list[int]) -> str:
    """'16-31' for steps=20 with edges [8, 16, 32, ...]; the last bucket is open ('65+')."""
    low = 1
    for edge in edges:
        if steps < edge:
            return f"{low}-{edge - 1}"
        low = edge
    return f"{low}+"


def length_table(rows: list[dict], edges: list[int]) -> dict:
    buckets: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: r["steps"]):
        buckets.setdefault(length_bucket(row["steps"], edges), []).append(row)
    return {"all": summarize(rows), **{key: summarize(value) for key, value in buckets.items()}}


# -- the toy world's long traces -----------------------------------------------------------------


def toy_adapt(data: Path, work: Path, probe: str, args) -> dict:
    """`dart-hub adapt` (the library path of the command) with the toy student on `data`."""
    import contextlib
    import io

    from dart_hub import AdaptSpec, adapt
    from dart_hub.toy import toy_student_path
    from dart_hub.toy.long import MIN_STEP_CHARS

    # one work dir per data file and settings: adapt refuses to resume another run's work dir
    chosen = (args.n_sim, args.toy_max_tokens, args.coarse, args.first_round, args.head, args.epsilon, args.min_follow, args.strategy)
    settings = hashlib.sha256(repr(chosen).encode()).hexdigest()[:8]
    spec = AdaptSpec(
        student=str(toy_student_path()), dataset=str(data), engine="transformers", dtype="float32", device="cpu",
        strategy="first" if args.strategy == "first" else "gap",  # the cut of full and gap is the same; gap skips exploration
        n_sim=args.n_sim, sim_max_tokens=args.toy_max_tokens, explore_max_tokens=args.toy_max_tokens,
        min_step_chars=MIN_STEP_CHARS, probe=probe, probe_coarse=args.coarse, probe_round=args.first_round, probe_head=args.head,
        epsilon=args.epsilon, min_follow=args.min_follow, seed=0,
        rules="robust", confirm=0,  # the rules these figures were measured with (adaptive needs the local peak)
        output=work / f"out-{data.stem}-{probe}-{settings}", work_dir=work / f"work-{data.stem}-{probe}-{settings}", probe_cache=work / "probes",
        quiet=True,
    )  # fmt: skip
    with contextlib.redirect_stdout(io.StringIO()):
        return adapt(spec).summary


def stored_probes(root: Path, probe: str) -> dict[str, dict]:
    """problem id -> stored probe result, for the runs in a probe cache made with `--probe probe`."""
    out = {}
    for path in sorted(root.rglob("probes-*.jsonl.gz")):
        meta = json.loads((path.parent / "probe.json").read_text())
        if (meta.get("simulation") or {}).get("probe", "scan") == probe:
            for line in gzip.decompress(path.read_bytes()).decode().splitlines():
                record = json.loads(line)
                out[record["id"]] = record["probe"]
    return out


def _rollout_key(rollout: dict) -> tuple:
    """What must be equal between a scan's rollout and an adaptive run's (same seed)."""
    return rollout["correct"], rollout["completion_tokens"], rollout.get("text")


def check_exact(scans: dict[str, dict], adaptive: dict[str, dict], args) -> list[dict]:
    """For each problem probed by a real adaptive run: does it match the replay of the scan?"""
    common = dict(epsilon=args.epsilon, min_follow=args.min_follow, target="first" if args.strategy == "first" else "gap")
    rows = []
    for problem_id, real in sorted(adaptive.items()):
        scan = scans[problem_id]
        groups = [g for g in scan["rollouts"] if g]
        outcomes = [[c["correct"] for c in g] for g in groups]
        scores, samples, _ = replay(outcomes, "adaptive", coarse=args.coarse, first_round=args.first_round, head=args.head, **common)
        drawn = real["samples"][: len(groups)]
        same_rollouts = drawn == samples and all(
            [_rollout_key(c) for c in real["rollouts"][t]] == [_rollout_key(c) for c in groups[t][:m]] for t, m in enumerate(samples)
        )
        a, b = decide_cut(args.strategy, scores), decide_cut(args.strategy, real["scores"])
        rows.append({
            "id": problem_id, "steps": len(groups), "rollouts_real": sum(drawn), "rollouts_replay": sum(samples),
            "same_rollouts": same_rollouts, "cut_real": [b.reason, b.keep_steps], "cut_replay": [a.reason, a.keep_steps],
            "same_cut": (a.reason, a.keep_steps) == (b.reason, b.keep_steps),
        })  # fmt: skip
    return rows


def toy_long(args) -> tuple[Path, list[dict]]:
    """Build the long toy set, scan it (or reuse its stored scan), optionally check a real
    adaptive run against the replay. Everything of one set lives in its own folder of
    --toy-work, so scans of other sets never mix in. Returns (probe cache, exactness rows)."""
    from dart_hub.toy.datasets import write_jsonl
    from dart_hub.toy.long import long_expert_rows

    work = args.toy_work / f"long-{args.toy_long}-seed{args.seed}-{args.min_steps}-{args.max_steps}"
    rows = long_expert_rows(args.toy_long, args.seed, args.min_steps, args.max_steps)
    write_jsonl(rows, work / "long.jsonl")
    summary = toy_adapt(work / "long.jsonl", work, "scan", args)
    skipped = summary.get("skipped_before_generation") or {}
    reused = summary.get("probe_chunks_reused", 0)
    print(f"toy-long scan: {summary['problems']} problems, {summary['rollouts']} rollouts, {summary['seconds']} s, {reused} chunks reused, skipped {skipped}", file=sys.stderr)
    checks: list[dict] = []
    if args.toy_check:
        k = min(args.toy_check, len(rows))
        picked = sorted({round(i * (len(rows) - 1) / max(1, k - 1)) for i in range(k)})
        write_jsonl([rows[i] for i in picked], work / f"check-{k}.jsonl")
        summary = toy_adapt(work / f"check-{k}.jsonl", work, "adaptive", args)
        print(f"toy-long adaptive check: {summary['problems']} problems, {summary['rollouts']} rollouts, {summary['seconds']} s", file=sys.stderr)
        checks = check_exact(stored_probes(work / "probes", "scan"), stored_probes(work / "probes", "adaptive"), args)
    return work / "probes", checks


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


def unimodal_curve(rng: random.Random, n_sim: int, max_steps: int) -> list[int]:
    """Successes of n_sim per prefix on a random unimodal curve: non-decreasing up to one peak,
    non-increasing after it (plateaus allowed)."""
    steps = rng.randint(2, max_steps)
    peak_at, top = rng.randrange(steps), rng.randint(0, n_sim)
    rise = sorted(rng.randint(0, top) for _ in range(peak_at))
    fall = sorted((rng.randint(0, top) for _ in range(steps - peak_at - 1)), reverse=True)
    return [*rise, top, *fall]


def in_exact_class(successes: list[int], n_sim: int, epsilon: float, head: int) -> bool:
    """The class on which adaptive provably returns the scan's cut (docs/method.md section 7)."""
    scores = [k / n_sim for k in successes]
    cut = decide_cut("full", scores, epsilon)
    before = scores[: cut.gap] if cut.gap is not None else scores
    top = max(before)
    after = scores[cut.gap :] if cut.gap is not None else []
    return before.index(top) <= head and all(f < top - epsilon for f in after)


def unimodal(args) -> dict:
    """Adaptive against the scan on random unimodal curves: how often the cut differs, in and
    outside the class where it is proven equal."""
    rng = random.Random(args.seed)
    counts = {"in_class": [0, 0], "outside": [0, 0]}  # [curves, different cuts]
    for _ in range(args.unimodal):
        successes = unimodal_curve(rng, args.n_sim, args.unimodal_max_steps)
        outcomes = [rng.sample([j < k for j in range(args.n_sim)], args.n_sim) for k in successes]
        full, _, _ = replay(outcomes, "scan", epsilon=args.epsilon, min_follow=args.min_follow)
        fast, _, _ = replay(outcomes, "adaptive", epsilon=args.epsilon, min_follow=args.min_follow, coarse=args.coarse, first_round=args.first_round, head=args.head)
        a, b = decide_cut("full", full, args.epsilon), decide_cut("full", fast, args.epsilon)
        bucket = counts["in_class" if in_exact_class(successes, args.n_sim, args.epsilon, args.head) else "outside"]
        bucket[0] += 1
        bucket[1] += (a.reason, a.keep_steps) != (b.reason, b.keep_steps)
    return {
        "curves": args.unimodal,
        **{f"{key}_curves": value[0] for key, value in counts.items()},
        **{f"{key}_different_cut": round(value[1] / max(1, value[0]), 4) for key, value in counts.items()},
        "all_different_cut": round((counts["in_class"][1] + counts["outside"][1]) / max(1, args.unimodal), 4),
    }


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
    parser.add_argument("--toy-long", type=int, metavar="N", help="build N long toy traces, scan them with the toy student and replay (minutes: about 1.5 rollouts/s on 2 cores)")
    parser.add_argument("--toy-check", type=int, default=0, metavar="K", help="with --toy-long: also run --probe adaptive for real on K of the problems and check it equals the replay")
    parser.add_argument("--toy-work", type=Path, default=Path("probing-toy-long"), help="with --toy-long: folder for the data, probe cache and adapt outputs (reruns reuse the scan)")
    parser.add_argument("--toy-max-tokens", type=int, default=256, help="with --toy-long: --sim-max-tokens of the toy runs")
    parser.add_argument("--min-steps", type=int, default=16, help="with --toy-long: shortest trace (paragraphs before the answer)")
    parser.add_argument("--max-steps", type=int, default=64, help="with --toy-long: longest trace")
    parser.add_argument("--bucket-edges", default="8,16,32,48,65", help="stored scans: trace-length buckets (probed prefixes) for the per-length rows")
    parser.add_argument("--lengths", default="8,16,32,64,100,128")
    parser.add_argument("--problems", type=int, default=400, help="synthetic problems per length")
    parser.add_argument("--n-sim", type=int, default=4)
    parser.add_argument("--sim-max-tokens", type=int, default=4000)
    parser.add_argument("--tokens-per-step", type=int, default=60)
    parser.add_argument("--epsilon", type=float, default=DEFAULT_EPSILON)
    parser.add_argument("--min-follow", type=float, default=DEFAULT_MIN_FOLLOW)
    parser.add_argument("--coarse", type=int, default=DEFAULT_COARSE)
    parser.add_argument("--head", type=int, default=DEFAULT_HEAD, help="adaptive: the first prefixes 0..HEAD are probed in the coarse round (--probe-head)")
    parser.add_argument("--first-round", type=int, default=DEFAULT_FIRST_ROUND)
    parser.add_argument("--strategy", default="full", choices=["full", "gap", "first"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--unimodal", type=int, default=0, metavar="N", help="adaptive vs scan on N random unimodal curves (successes of N_SIM), in and outside the exact class")
    parser.add_argument("--unimodal-max-steps", type=int, default=64)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if not args.probe_cache and not args.synthetic and not args.toy_long and not args.unimodal:
        parser.error("give --probe-cache DIR, --synthetic, --toy-long N and/or --unimodal N")

    report: dict = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k not in ("plot", "json")}}
    edges = [int(x) for x in args.bucket_edges.split(",")]
    if args.probe_cache:
        report["stored"] = length_table([compare(o, t, args) for o, t in stored_scans(args.probe_cache)], edges)
    if args.toy_long:
        cache, checks = toy_long(args)
        report["toy_long"] = length_table([compare(o, t, args) for o, t in stored_scans(cache)], edges)
        if checks:
            report["toy_long_check"] = checks
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
    if args.unimodal:
        report["unimodal"] = unimodal(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return
    if report.get("unimodal"):
        print(f"unimodal: {report['unimodal']}")
    for section in ("stored", "toy_long", "synthetic"):
        for key, value in (report.get(section) or {}).items():
            print(f"{section:9} {str(key):>6}: {value}")
    for check in report.get("toy_long_check") or []:
        print(f"exactness {check['steps']:>3} steps: rollouts real {check['rollouts_real']} / replay {check['rollouts_replay']}, same rollouts {check['same_rollouts']}, cut real {check['cut_real']} / replay {check['cut_replay']}")


if __name__ == "__main__":
    main()
