"""DART (`dart-hub adapt --method dart`, the default): the algorithm lives in dart_hub.adaptation
(probe, cut, explore, pipeline); this is its face in the method interface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dart_hub.adaptation.pipeline import adapt_chunk, plan, problem_steps
from dart_hub.adaptation.reveal import reveal_steps
from dart_hub.config import AdaptConfig
from dart_hub.engines.base import Engine
from dart_hub.prompts import Prompts
from dart_hub.records import AdaptedExample, Problem


class Dart:
    name = "dart"
    objective = "sft"

    def __init__(self, config: AdaptConfig, prompts: Prompts):
        self.config = config
        self.prompts = prompts

    def settings(self) -> dict[str, Any]:
        return self.config.to_dict()

    def fingerprint_settings(self) -> dict[str, Any]:
        """What keys the work dir (the rule set's name does not; see AdaptConfig.fingerprint_dict)."""
        return self.config.fingerprint_dict()

    def adapt_chunk(self, engine: Engine, problems: Sequence[Problem], checker, reporter, probe_store=None) -> list[AdaptedExample]:
        return adapt_chunk(engine, problems, self.config, self.prompts, checker, reporter, probe_store)

    def flows(self, checker, probe_store=None):
        """DART for the streaming scheduler: probe -> cut -> explore per problem."""
        from dart_hub.adaptation.stream import DartFlows

        return DartFlows(self.config, self.prompts, checker, probe_store)

    def plan(self, problems: Sequence[Problem], checker) -> dict[str, Any]:
        reveals = None
        if self.config.probes:
            reveals = reveal_steps([(p, problem_steps(p, self.config)) for p in problems], checker)
        return plan(problems, self.config, reveals).to_dict()
