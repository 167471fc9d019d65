"""Deterministic sharding of problems across independent jobs (job arrays, matrix builds)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from dart_hub.errors import DartHubError
from dart_hub.records import Problem

_SHARD = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0-based, like SLURM_ARRAY_TASK_ID and matrix indices)."""

    index: int
    count: int

    @classmethod
    def parse(cls, text: str) -> Shard:
        match = _SHARD.match(text)
        if not match:
            raise DartHubError(f"--shard must look like I/N (e.g. 3/16, 0-based), got {text!r}")
        index, count = int(match.group(1)), int(match.group(2))
        if count < 1 or index >= count:
            raise DartHubError(f"--shard {text}: the index must be in 0..N-1 and N at least 1")
        return cls(index, count)

    @property
    def name(self) -> str:
        return f"shard-{self.index:05d}-of-{self.count:05d}"

    def owns(self, problem_id: str) -> bool:
        # problem ids are hex digests of the question: uniform, stable across runs and machines
        return int(problem_id, 16) % self.count == self.index

    def select(self, problems: Sequence[Problem]) -> list[Problem]:
        return [p for p in problems if self.owns(p.id)]
