"""Run configurations. Defaults reproduce the DART paper (Algorithm 1, Appendix A.2, A.3);
`rules="robust"` switches on dart-hub's additions (dart_hub.adaptation.rules)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from dart_hub.adaptation.cut import (
    DEFAULT_EPSILON,
    PEAK_ALIASES,
    PEAK_RULES,
    STRATEGIES,
)
from dart_hub.adaptation.rules import (
    ALL_ZERO,
    ANSWER_STEPS,
    DEFAULT_RULES,
    LEGACY,
    RULE_SETS,
    SWITCHES,
    UNFINISHED,
    resolve,
)
from dart_hub.adaptation.search import DEFAULT_COARSE, DEFAULT_FIRST_ROUND, DEFAULT_HEAD, SEARCHES
from dart_hub.errors import DartHubError
from dart_hub.repetition import DEFAULT_MAX_REPETITION, DEFAULT_NGRAM

KEEP_RULES = ("one", "all")
CLEANING = ("cleaned", "raw")  # paper Table 5: Adaptation-Cleaned (default) vs Adaptation-Raw


@dataclass(frozen=True)
class AdaptConfig:
    """Everything that decides what `adapt` produces (and so goes into the run fingerprint)."""

    strategy: str = "full"
    # Simulation (step adaptability), paper A.2.
    n_sim: int = 4
    sim_temperature: float = 0.1
    sim_top_p: float = 1.0
    sim_max_tokens: int = 4000
    # Imitation gap.
    probe: str = "scan"  # which prefixes are probed: dart_hub.adaptation.search
    probe_coarse: int = DEFAULT_COARSE
    probe_round: int = DEFAULT_FIRST_ROUND
    probe_head: int = DEFAULT_HEAD
    epsilon: float = DEFAULT_EPSILON
    # Which rules: "paper" (Algorithm 1 as written) or "robust"; the switches below left at None
    # take the rule set's value (dart_hub.adaptation.rules).
    rules: str = DEFAULT_RULES
    peak: str | None = None
    min_follow: float | None = None  # "no drop" keeps the expert trace only if f_last >= this
    answer_steps: str | None = None  # probe | skip the prefixes that state the answer
    all_zero: str | None = None  # trace | question: what an all-zero curve keeps
    unfinished: str | None = None  # keep | drop continuations cut off by the token budget
    confirm: int | None = None  # extra rollouts that may confirm a candidate gap (0: none)
    # Exploration, paper A.3.
    n_explore: int = 8
    explore_temperature: float = 0.7
    explore_top_p: float = 1.0
    explore_max_tokens: int = 2000
    # Cleaning (paper Appendix B) and choice of the kept continuation.
    max_repetition: float = DEFAULT_MAX_REPETITION
    repetition_ngram: int = DEFAULT_NGRAM
    keep: str = "one"
    cleaning: str = "cleaned"
    # Segmentation and scheduling.
    min_step_chars: int | None = None  # None = dart_hub.steps default
    chunk_size: int = 16  # problems per engine call; part of the fingerprint (batches decide samples)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.rules not in RULE_SETS:
            raise DartHubError(f"--rules must be one of {', '.join(RULE_SETS)}")
        for key, value in resolve(self.rules, {k: getattr(self, k) for k in SWITCHES}).items():
            object.__setattr__(self, key, value)
        object.__setattr__(self, "peak", PEAK_ALIASES.get(self.peak, self.peak))
        checks = [
            (self.strategy in STRATEGIES, f"--strategy must be one of {', '.join(STRATEGIES)}"),
            (self.peak in PEAK_RULES, f"--peak must be one of {', '.join(PEAK_RULES)}"),
            (self.keep in KEEP_RULES, f"--keep must be one of {', '.join(KEEP_RULES)}"),
            (self.cleaning in CLEANING, f"--cleaning must be one of {', '.join(CLEANING)}"),
            (self.probe in SEARCHES, f"--probe must be one of {', '.join(SEARCHES)}"),
            (self.probe == "scan" or self.peak == "local", "--probe adaptive follows the local peak rule; add --peak local (or --rules robust), or use --probe scan"),
            (self.answer_steps in ANSWER_STEPS, f"--answer-steps must be one of {', '.join(ANSWER_STEPS)}"),
            (self.all_zero in ALL_ZERO, f"--all-zero must be one of {', '.join(ALL_ZERO)}"),
            (self.unfinished in UNFINISHED, f"--unfinished must be one of {', '.join(UNFINISHED)}"),
            (self.confirm >= 0, "--confirm must be at least 0"),
            (self.probe_coarse >= 2, "--probe-coarse must be at least 2 (the first and the last prefix)"),
            (self.probe_round >= 1, "--probe-round must be at least 1"),
            (self.probe_head >= 0, "--probe-head must be at least 0"),
            (0 <= self.min_follow <= 1, "--min-follow must be between 0 and 1"),
            (self.n_sim >= 1, "--n-sim must be at least 1"),
            (self.n_explore >= 1, "--n-explore must be at least 1"),
            (0 < self.epsilon < 1, "--epsilon must be between 0 and 1 (exclusive)"),
            (self.sim_max_tokens >= 1 and self.explore_max_tokens >= 1, "max token budgets must be positive"),
            (self.sim_temperature >= 0 and self.explore_temperature >= 0, "temperatures must be >= 0"),
            (0 < self.sim_top_p <= 1 and 0 < self.explore_top_p <= 1, "top-p must be in (0, 1]"),
            (0 <= self.max_repetition <= 1, "--max-repetition must be between 0 and 1"),
            (self.repetition_ngram >= 1, "--repetition-ngram must be at least 1"),
            (self.chunk_size >= 1, "--chunk-size must be at least 1"),
        ]
        for ok, message in checks:
            if not ok:
                raise DartHubError(message)

    def simulation_settings(self) -> dict:
        """What decides the simulation phase's results (the probe cache key): nothing that
        only matters after probing (strategy, epsilon, peak, exploration, cleaning, keep)."""
        keys = ("n_sim", "sim_temperature", "sim_top_p", "sim_max_tokens", "repetition_ngram", "min_step_chars", "chunk_size", "seed", "probe")
        settings = {key: getattr(self, key) for key in keys}
        if self.answer_steps == "probe":  # more prefixes probed: a key of its own (skip keeps the old keys)
            settings["answer_steps"] = "probe"
        if self.confirm and self.strategy != "first":  # the extra rollouts depend on the cut rule
            settings.update(confirm=self.confirm, epsilon=self.epsilon, peak=self.peak)
        if self.probe == "adaptive":  # what the adaptive search probes depends on the cut rule
            settings.update(
                probe_coarse=self.probe_coarse, probe_round=self.probe_round, probe_head=self.probe_head, epsilon=self.epsilon,
                min_follow=self.min_follow, peak=self.peak, target="first" if self.strategy == "first" else "gap",
            )  # fmt: skip
        return settings

    @property
    def probes(self) -> bool:
        return self.strategy != "static"

    @property
    def explores(self) -> bool:
        return self.strategy == "full"

    def to_dict(self) -> dict:
        """Every setting, as published (dart_config.json, the card)."""
        data = asdict(self)
        if self.probe == "scan":  # the head only matters to adaptive: scan fingerprints stay as they were
            data.pop("probe_head")
        return data

    def fingerprint_dict(self) -> dict:
        """What decides the output, for the run fingerprint: the rule set's name does not (its
        switches do), and switches at the value runs had before they existed are left out, so
        work dirs made then resume under `--rules robust --confirm 0`."""
        data = self.to_dict()
        data.pop("rules")
        if self.strategy == "static":  # nothing probed or cut: the rules change nothing
            data.update(peak=LEGACY["peak"], min_follow=LEGACY["min_follow"])
            data.update({key: LEGACY[key] for key in ("answer_steps", "all_zero", "unfinished", "confirm")})
        for key in ("answer_steps", "all_zero", "unfinished", "confirm"):
            if data[key] == LEGACY[key]:
                data.pop(key)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> AdaptConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise DartHubError(f"unknown adapt settings {unknown}; known: {', '.join(sorted(known))}")
        if "rules" not in data:  # written before --rules existed: what dart-hub did then
            data = {**{k: v for k, v in LEGACY.items() if k not in data}, **data, "rules": "robust"}
        return cls(**data)
