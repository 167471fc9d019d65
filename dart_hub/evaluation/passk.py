"""pass@k with the unbiased estimator of Chen et al. (2021, "Evaluating Large Language Models
Trained on Code"): with n samples of which c are correct,

    pass@k = 1 - C(n - c, k) / C(n, k)

the probability that at least one of k samples drawn without replacement from the n is correct,
averaged over problems. Computed as 1 - prod_{i = n-c+1}^{n} (1 - k / i), which never forms the
huge binomials (n = 128, k = 64 overflows nothing).
"""

from __future__ import annotations

from collections.abc import Sequence

from dart_hub.errors import DartHubError


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k of one problem with `c` correct among `n` samples (1 <= k <= n)."""
    if not 0 <= c <= n or not 1 <= k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 1 <= k <= n (n={n}, c={c}, k={k})")
    if n - c < k:  # every k-subset holds a correct sample
        return 1.0
    product = 1.0
    for i in range(n - c + 1, n + 1):
        product *= 1.0 - k / i
    return 1.0 - product


def mean_pass_at_k(counts: Sequence[tuple[int, int]], k: int) -> float:
    """Mean pass@k over problems given as (n, c) pairs."""
    if not counts:
        return 0.0
    return sum(pass_at_k(n, c, k) for n, c in counts) / len(counts)


def default_pass_k(samples: int) -> list[int]:
    """1, 2, 4, ... up to `samples`, and `samples` itself (DAIL reports k = 1, 2, 4, ..., 128)."""
    ks, k = [], 1
    while k <= samples:
        ks.append(k)
        k *= 2
    if ks[-1] != samples:
        ks.append(samples)
    return ks


def parse_pass_k(text: str | None, samples: int) -> list[int]:
    """'1,4,16' -> [1, 4, 16] (sorted, unique), each k between 1 and `samples`."""
    if not text:
        return default_pass_k(samples)
    try:
        ks = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as error:
        raise DartHubError(f"--pass-k {text!r}: expected comma-separated integers, e.g. 1,4,16") from error
    if not ks or ks[0] < 1:
        raise DartHubError(f"--pass-k {text!r}: every k must be at least 1")
    if ks[-1] > samples:
        raise DartHubError(f"--pass-k {ks[-1]} needs at least {ks[-1]} samples per problem: raise --samples (now {samples})")
    return ks
