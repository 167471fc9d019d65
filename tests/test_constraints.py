"""constraints/gpu.txt: every pin satisfies dart-hub's own requirements, and the README's install
row names the pinned versions. (That pip resolves the set with `.[vllm,train]` is checked by
.ci/run with `pip install --dry-run`, which needs the package index.)"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]


def pins() -> dict[str, str]:
    found = {}
    for line in (ROOT / "constraints" / "gpu.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            found[name.strip().lower()] = version.strip()
    return found


def test_the_gpu_set_pins_the_stack_and_meets_dart_hubs_floors():
    pinned = pins()
    assert {"torch", "vllm", "transformers", "trl", "accelerate", "deepspeed"} <= set(pinned)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [Requirement(r) for r in project["dependencies"]]
    for extra in ("vllm", "train"):
        requirements += [Requirement(r) for r in project["optional-dependencies"][extra]]
    checked = 0
    for requirement in requirements:
        version = pinned.get(requirement.name.lower())
        if version is not None:
            assert requirement.specifier.contains(version, prereleases=True), (requirement, version)
            checked += 1
    assert checked >= 6


def test_the_readme_install_row_names_the_pinned_versions():
    row = next(line for line in (ROOT / "README.md").read_text().splitlines() if "constraints/gpu.txt -e" in line)
    for name, version in pins().items():
        if name == "peft":
            continue
        label = {"trl": "TRL", "deepspeed": "DeepSpeed", "vllm": "vLLM"}.get(name, name)
        assert re.search(rf"{re.escape(label)} {re.escape(version)}\b", row), (name, version)
