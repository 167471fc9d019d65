"""GitHub Actions workflows: schema-valid, clean under zizmor, and in step with `dart-hub run`."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from dart_hub.commands.run import command as run_command

WORKFLOWS = Path(__file__).parent.parent / ".github" / "workflows"
REUSABLE = ["adapt.yml", "train-eval.yml"]
# inputs that configure the runner rather than dart-hub
INFRA_INPUTS = {"runner-labels", "install", "hf-home"}
# inputs that become `dart-hub run` arguments
RUN_INPUTS = {"recipe": "recipe_path", "set": "overrides", "shards": "shard"}


def load(name: str) -> dict:
    data = yaml.safe_load((WORKFLOWS / name).read_text())
    return {**data, "on": data.get("on", data.get(True))}  # YAML 1.1 reads `on:` as True


def test_workflows_match_githubs_schema():
    tool = shutil.which("check-jsonschema")
    assert tool, "check-jsonschema is part of the dev extra"
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    result = subprocess.run([tool, "--builtin-schema", "vendor.github-workflows", *files], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_workflows_pass_zizmor():
    tool = shutil.which("zizmor")
    assert tool, "zizmor is part of the dev extra"
    result = subprocess.run([tool, "--offline", str(WORKFLOWS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("name", REUSABLE)
def test_reusable_workflow_inputs_match_dart_hub_run(name):
    triggers = load(name)["on"]
    call, dispatch = triggers["workflow_call"]["inputs"], triggers["workflow_dispatch"]["inputs"]
    assert {k: v["type"] for k, v in call.items()} == {k: v["type"] for k, v in dispatch.items()}
    run_params = {p.name for p in run_command.params}
    for key in call:
        assert key in INFRA_INPUTS or RUN_INPUTS.get(key) in run_params, f"{name}: input {key} maps to nothing dart-hub run accepts"
    assert call["recipe"]["required"] is True


@pytest.mark.parametrize("name", [*REUSABLE, "ci.yml"])
def test_workflow_hygiene(name):
    data = load(name)
    assert data["permissions"] == {"contents": "read"}
    steps = [step for job in data["jobs"].values() for step in job.get("steps", [])]
    for uses in [step["uses"] for step in steps if "uses" in step]:
        assert re.search(r"@[0-9a-f]{40}$", uses), f"{uses} is not pinned by commit sha"
    # inputs and secrets reach scripts through env, never spliced into the shell text
    for job in data["jobs"].values():
        for step in job.get("steps", []):
            assert "${{" not in step.get("run", ""), step.get("run")


@pytest.mark.parametrize("name", REUSABLE)
def test_scripts_use_only_existing_run_options(name):
    flags = {opt for p in run_command.params for opt in p.opts}
    text = (WORKFLOWS / name).read_text()
    used = set(re.findall(r"dart-hub run \"\$RECIPE\"([^\n]*)", text))
    assert used
    for line in used:
        for flag in re.findall(r"(--[a-z-]+)", line):
            assert flag in flags, f"{name} uses {flag}, which dart-hub run does not accept"
