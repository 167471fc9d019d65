"""Which cut rules run: the paper's Algorithm 1 as written (`--rules paper`, the default), or
dart-hub's robust additions (`--rules robust`), each of them also a switch of its own.

`paper` is Algorithm 1 of the DART paper read literally:

* f_t is computed for every step t, answer-stating steps included (``--answer-steps probe``);
* t_peak is the first index of the maximum of f (``--peak global``);
* t_gap = min{t > t_peak : f_t < f_peak - epsilon}; the kept prefix is s_0..s_{gap-1};
* with no such t the whole expert trace is the prefix, kept as it is (its outcome is the
  expert's): ``--min-follow 0``;
* where the paper is silent we take its most literal reading: an all-zero curve has its peak at
  t = 0 and no t with f_t < 0 - epsilon, so it has no gap and the expert trace is kept
  (``--all-zero trace``); the only test a continuation must pass is outcome consistency, so one
  cut off by the token budget is judged by the answer it boxed (``--unfinished keep``); every
  prefix gets its N_sim rollouts and no more (``--confirm 0``, ``--probe scan``).

`robust` changes each of these (docs/method.md gives the curves that motivated them). Every
setting that differs from the paper's value is a named deviation: the card and the run summary
list them (`deviations`), so a dataset made with our rules never passes for the paper's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

RULE_SETS = ("paper", "robust")
DEFAULT_RULES = "paper"
DEFAULT_CONFIRM = 16  # robust: at most 16 extra rollouts at a candidate gap and at its peak
ANSWER_STEPS = ("probe", "skip")
UNFINISHED = ("keep", "drop")
ALL_ZERO = ("trace", "question")

# The settings each rule set gives the switches the user did not set.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"answer_steps": "probe", "peak": "global", "min_follow": 0.0, "unfinished": "keep", "all_zero": "trace", "confirm": 0},
    "robust": {"answer_steps": "skip", "peak": "local", "min_follow": 0.5, "unfinished": "drop", "all_zero": "question", "confirm": DEFAULT_CONFIRM},
}  # fmt: skip
# What dart-hub did before --rules existed (robust without confirmation): run configs written then
# lack the newer keys, and work dirs / probe caches made then keep their fingerprints.
LEGACY: dict[str, Any] = {**PRESETS["robust"], "confirm": 0}
SWITCHES = tuple(PRESETS["paper"])

# name -> (CLI option, when it is active, one sentence). Order: the order of the pipeline.
DEVIATIONS: dict[str, tuple[str, Any, str]] = {
    "adaptive-probing": (
        "--probe adaptive", lambda s: s.get("probe") == "adaptive",
        "only some prefixes are probed (coarse points, then a binary search towards the cut), not every step as Algorithm 1 does.",
    ),
    "answer-steps-skipped": (
        "--answer-steps skip", lambda s: s.get("answer_steps") == "skip",
        "prefixes that already state the gold answer in a \\boxed{} are not probed and count for neither the peak nor the gap.",
    ),
    "local-peak": (
        "--peak local", lambda s: s.get("peak") in ("local", "first"),
        "the peak is the best step before the first significant drop, not the first index of the maximum of f.",
    ),
    "confirmation": (
        "--confirm K", lambda s: (s.get("confirm") or 0) > 0,
        "a candidate gap is accepted only after up to K more rollouts at it and at the peak pass a sequential test; otherwise the scan goes on.",
    ),
    "min-follow": (
        "--min-follow X", lambda s: (s.get("min_follow") or 0) > 0,
        "with no gap the expert trace is kept only when f at the last probed prefix is at least X; otherwise the student continues from the peak.",
    ),
    "all-zero-from-question": (
        "--all-zero question", lambda s: s.get("all_zero") == "question",
        "when no rollout from any prefix reaches the answer the student solves from the question alone instead of keeping the expert trace.",
    ),
    "unfinished-dropped": (
        "--unfinished drop", lambda s: s.get("unfinished") == "drop",
        "a continuation cut off by the token budget is never kept, even when the answer it boxed is right.",
    ),
}  # fmt: skip
GAP_ONLY = ("local-peak", "confirmation", "min-follow")


def resolve(rules: str, chosen: Mapping[str, Any]) -> dict[str, Any]:
    """The switches' values: those the user chose, the rule set's for the others."""
    if rules not in PRESETS:
        raise ValueError(f"unknown rules {rules!r}; choose one of {RULE_SETS}")
    return {key: chosen[key] if chosen.get(key) is not None else PRESETS[rules][key] for key in SWITCHES}


def with_legacy(settings: Mapping[str, Any]) -> dict[str, Any]:
    """A run config's adapt settings, completed with what runs made before --rules did."""
    return {**LEGACY, **{k: v for k, v in settings.items() if v is not None}}


def deviations(settings: Mapping[str, Any]) -> list[dict[str, str]]:
    """The active deviations from Algorithm 1 of a run's adapt settings, by name. Settings
    written before --rules existed are read with that version's behaviour (`LEGACY`)."""
    if (settings.get("strategy") or "full") == "static":
        return []  # nothing is probed or cut
    full = with_legacy(settings)
    unused = GAP_ONLY if settings.get("strategy") == "first" else ()  # Adaptation-First has no peak or gap
    return [
        {"name": name, "option": option, "text": text}
        for name, (option, active, text) in DEVIATIONS.items()
        if active(full) and name not in unused
    ]


def rules_label(settings: Mapping[str, Any]) -> str:
    """`paper`, `robust`, or the set a run started from plus `(modified)`."""
    full = with_legacy(settings)
    if not settings.get("rules") and all(full.get(k) == v for k, v in LEGACY.items()):
        return "robust without confirmation (written before --rules existed)"
    rules = settings.get("rules") or "robust"
    base = PRESETS.get(rules, {})
    same = all(full.get(k) == v for k, v in base.items())
    return rules if same else f"{rules} (modified)"
