"""Answer-checking throughput on a realistic rollout stream.

    python benchmarks/answers.py              # 20,000 verifications, 200 golds
    python benchmarks/answers.py --n 5000 --workers 2 --batch 64

The stream imitates DART's simulation / exploration stage: 200 gold answers (integers,
fractions, decimals, radicals, multiples of pi, intervals, sets, polynomials), each with many
student rollouts; about 90% of the predictions repeat one seen earlier for the same gold, and the
unique ones mix correct answers written differently with wrong answers. Pairs reach the checker
in `equivalent_many` batches, as `dart_hub.adaptation.judge` sends them. Reported: verifications per
second with the result cache on (default size) and off (`cache_size=0`); worker start-up is
measured separately and excluded.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from fractions import Fraction
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dart_hub.answers import AnswerChecker  # noqa: E402


def _integer(rng: random.Random) -> tuple[str, list[str], list[str]]:
    n = rng.randint(-50, 2000)
    right = [str(n), f"{n}.0", f"x = {n}", f"{n}."]
    if n >= 1000:
        right.append(f"{n // 1000},{n % 1000:03d}")
    elif n > 0:
        right.append(f"0{n}")
    wrong = [str(n + d) for d in (1, -1, 2, 10, -7)] + [str(2 * n + 1)]
    return str(n), right, wrong


def _fraction(rng: random.Random) -> tuple[str, list[str], list[str]]:
    q = rng.randint(2, 12)
    p = rng.choice([k for k in range(1, 3 * q) if Fraction(k, q).denominator == q] or [1])
    right = [
        rf"\frac{{{p}}}{{{q}}}",
        rf"\dfrac{{{p}}}{{{q}}}",
        f"{p}/{q}",
        rf"\frac{{{2 * p}}}{{{2 * q}}}",
    ]
    value = Fraction(p, q)
    if 10**6 % value.denominator == 0:
        right.append(str(float(value)))
    else:
        right.append(f"{float(value):.7f}")
    wrong = [
        rf"\frac{{{q}}}{{{p}}}",
        rf"\frac{{{p + 1}}}{{{q}}}",
        f"{float(value):.2f}",
        str(p),
        rf"-\frac{{{p}}}{{{q}}}",
    ]
    return rf"\frac{{{p}}}{{{q}}}", right, wrong


def _decimal(rng: random.Random) -> tuple[str, list[str], list[str]]:
    value = Fraction(rng.randint(1, 999), 100)
    text = f"{float(value):.2f}"
    right = [
        text,
        text.rstrip("0"),
        rf"\frac{{{value.numerator}}}{{{value.denominator}}}",
        f"{text}0",
    ]
    wrong = [f"{float(value) + 0.01:.2f}", f"{float(value) * 10:.1f}", f"{float(value) / 10:.3f}"]
    return text, right, wrong


def _radical(rng: random.Random) -> tuple[str, list[str], list[str]]:
    a, b = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7, 10])
    right = [
        rf"{a}\sqrt{{{b}}}",
        rf"\sqrt{{{a * a * b}}}",
        rf"{a} \sqrt{{{b}}}",
        rf"\sqrt{{{b}}} \cdot {a}",
    ]
    wrong = [rf"{a + 1}\sqrt{{{b}}}", rf"\sqrt{{{a * b}}}", rf"{a}\sqrt{{{b + 1}}}", str(a * b)]
    return rf"{a}\sqrt{{{b}}}", right, wrong


def _pi_multiple(rng: random.Random) -> tuple[str, list[str], list[str]]:
    p, q = rng.randint(1, 7), rng.choice([2, 3, 4, 6])
    right = [rf"\frac{{{p}\pi}}{{{q}}}", rf"\frac{{{p}}}{{{q}}}\pi", rf"{p}\pi/{q}"]
    wrong = [rf"\frac{{{p + 1}\pi}}{{{q}}}", rf"\frac{{{p}}}{{{q}}}", rf"{p}\pi"]
    return rf"\frac{{{p}\pi}}{{{q}}}", right, wrong


def _interval(rng: random.Random) -> tuple[str, list[str], list[str]]:
    a = rng.randint(-9, 5)
    b = a + rng.randint(1, 9)
    right = [f"[{a}, {b})", f"[{a},{b})", rf"\left[{a}, {b}\right)"]
    wrong = [f"({a}, {b})", f"[{a}, {b}]", f"[{a}, {b + 1})"]
    return f"[{a}, {b})", right, wrong


def _set(rng: random.Random) -> tuple[str, list[str], list[str]]:
    values = sorted(rng.sample(range(-9, 10), 3))
    listed = ", ".join(map(str, values))
    right = [
        rf"\{{{listed}\}}",
        ", ".join(map(str, reversed(values))),
        rf"\{{{','.join(map(str, values[::-1]))}\}}",
    ]
    wrong = [rf"\{{{', '.join(map(str, values[:2]))}\}}", rf"\{{{listed}, {values[-1] + 1}\}}"]
    return rf"\{{{listed}\}}", right, wrong


def _polynomial(rng: random.Random) -> tuple[str, list[str], list[str]]:
    r, s = rng.randint(1, 6), rng.randint(1, 6)
    gold = f"x^2 + {r + s}x + {r * s}"
    right = [f"(x+{r})(x+{s})", f"x^{{2}}+{r + s}x+{r * s}", f"(x + {s})(x + {r})"]
    wrong = [f"(x+{r})(x-{s})", f"x^2 + {r * s}x + {r + s}", f"(x+{r + 1})(x+{s})"]
    return gold, right, wrong


KINDS = [
    (_integer, 40),
    (_fraction, 15),
    (_decimal, 10),
    (_radical, 10),
    (_pi_multiple, 8),
    (_interval, 7),
    (_set, 5),
    (_polynomial, 5),
]


# Golds whose predictions always need math-verify (no in-process rule decides them).
SYMBOLIC_KINDS = [(_interval, 1), (_set, 1), (_polynomial, 1)]


def make_stream(
    n: int, golds: int, repeat: float, seed: int, kinds: list | None = None
) -> list[tuple[str, str]]:
    """n (gold, prediction) pairs; `repeat` of the predictions repeat an earlier one."""
    rng = random.Random(seed)
    generators = [g for g, _ in kinds or KINDS]
    weights = [w for _, w in kinds or KINDS]
    per_gold = max(1, n // golds)
    sequences: list[list[tuple[str, str]]] = []
    for _ in range(golds):
        gold, right, wrong = rng.choices(generators, weights)[0](rng)
        unique_count = max(1, round(per_gold * (1 - repeat)))
        candidates = right + wrong
        # ~40% of unique rollouts are correct (a weak student).
        uniques: list[str] = []
        while len(uniques) < unique_count:
            pool = right if rng.random() < 0.4 else wrong
            pick = rng.choice(pool)
            if pick in uniques:  # run out of forms: invent another wrong one
                pick = f"{rng.choice(candidates)} + {rng.randint(1, 10**6)}"
            uniques.append(pick)
        # each unique prediction appears once "first", the rest of the slots repeat earlier ones
        order: list[str] = []
        seen: list[str] = []
        pending = list(uniques)
        for slot in range(per_gold):
            left = per_gold - slot
            if pending and (not seen or rng.random() < len(pending) / left):
                seen.append(pending.pop(0))
                order.append(seen[-1])
            else:
                order.append(rng.choice(seen))
        sequences.append([(gold, p) for p in order])
    # interleave: rollouts of 8 problems at a time, as a generation batch mixes problems
    stream: list[tuple[str, str]] = []
    for start in range(0, golds, 8):
        group = sequences[start : start + 8]
        for index in range(per_gold):
            for sequence in group:
                if index < len(sequence):
                    stream.append(sequence[index])
    return stream[:n]


def run(
    stream: list[tuple[str, str]], workers: int, cache_size: int, batch: int, timeout: float
) -> dict:
    with AnswerChecker(timeout=timeout, workers=workers, cache_size=cache_size) as checker:
        started = time.perf_counter()
        checker.start()
        startup = time.perf_counter() - started
        started = time.perf_counter()
        verdicts: list[bool] = []
        for offset in range(0, len(stream), batch):
            verdicts.extend(checker.equivalent_many(stream[offset : offset + batch]))
        seconds = time.perf_counter() - started
        return {
            "seconds": seconds,
            "rate": len(stream) / seconds,
            "startup": startup,
            "correct": sum(verdicts) / len(verdicts),
            **checker.stats,
        }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000, help="verifications in the stream")
    parser.add_argument("--golds", type=int, default=200)
    parser.add_argument("--repeat", type=float, default=0.9, help="share of repeated predictions")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch", type=int, default=64, help="pairs per equivalent_many call")
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--symbolic",
        action="store_true",
        help="only intervals, sets and polynomials: every new pair goes to math-verify",
    )
    args = parser.parse_args()

    kinds = SYMBOLIC_KINDS if args.symbolic else KINDS
    stream = make_stream(args.n, args.golds, args.repeat, args.seed, kinds)
    unique = len(set(stream))
    print(
        f"stream{' (symbolic only)' if args.symbolic else ''}: {len(stream)} pairs, {args.golds} golds, {unique} unique pairs "
        f"({unique / len(stream):.0%}), batches of {args.batch}, {args.workers} workers, "
        f"{os.cpu_count()} CPUs"
    )
    rows = [("cache on", run(stream, args.workers, 100_000, args.batch, args.timeout))]
    rows.append(("cache off", run(stream, args.workers, 0, args.batch, args.timeout)))
    header = f"{'mode':<10} {'verif/s':>9} {'seconds':>8} {'start-up':>9} {'cache hits':>11} {'fast path':>10} {'math-verify':>12} {'timeouts':>9} {'errors':>7} {'correct':>8}"
    print(header)
    print("-" * len(header))
    for name, r in rows:
        print(
            f"{name:<10} {r['rate']:>9,.0f} {r['seconds']:>8.2f} {r['startup']:>8.2f}s "
            f"{r['cache_hits'] + r['duplicates']:>11,} {r['fast_path']:>10,} {r['verified']:>12,} "
            f"{r['timeouts']:>9} {r['errors']:>7} {r['correct']:>8.1%}"
        )
    print("(cache hits include repeats within one equivalent_many call, which are checked once")
    print(" even with the cache off)")


if __name__ == "__main__":
    main()
