"""Adaptation methods behind one interface: `dart-hub adapt --method dart|dail|mapper`.

A method turns a chunk of problems into `AdaptedExample` records (and may name a training
objective), and gives the streaming scheduler its problems as per-problem flows
(`flows`; dart_hub.adaptation.stream). Everything else is shared: sources, steps, engines, answer
checking, the work dir and resume (`run_chunks`, `stream`), publishing, cards, training,
evaluation, recipes, shards, merge.
Adding a method is a new module here plus an entry in METHODS; it touches no other method.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from dart_hub.records import AdaptedExample, Problem

METHODS = ("dart", "dail", "mapper")


class Method(Protocol):
    name: str
    objective: str  # the training objective its data is meant for: "sft" or "dail"

    def settings(self) -> dict[str, Any]:
        """What decides the method's output (fingerprint, dart_config.json, card)."""
        ...

    def adapt_chunk(self, engine, problems: Sequence[Problem], checker, reporter, probe_store) -> list[AdaptedExample]:
        """Adapt one chunk: the engine calls of the whole chunk batched together."""
        ...

    def flows(self, checker, probe_store):
        """The method as per-problem flows for the streaming scheduler (dart_hub.adaptation.stream.Flows,
        `--scheduler stream`); None where it only runs chunk by chunk (DAIL with tau < 1)."""
        ...

    def plan(self, problems: Sequence[Problem], checker) -> dict[str, Any]:
        """Rollouts and (upper-bound) tokens the run needs (`--dry-run`)."""
        ...
