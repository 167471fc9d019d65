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
INFRA_INPUTS = {"runner-labels", "merge-runner-labels", "timeout-minutes", "dart-hub", "python", "hf-home"}
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


# -- jobs that finish, on the right runners, with dart-hub from git in a virtual environment ------


@pytest.mark.parametrize("name", REUSABLE)
def test_gpu_jobs_take_their_timeout_from_an_input_and_every_job_has_one(name):
    data = load(name)
    inputs = data["on"]["workflow_call"]["inputs"]
    assert inputs["timeout-minutes"]["type"] == "number" and inputs["timeout-minutes"]["default"] > 360
    for job_name, job in data["jobs"].items():
        assert "timeout-minutes" in job, job_name
        if "inputs.runner-labels" in str(job["runs-on"]):
            assert job["timeout-minutes"] == "${{ inputs.timeout-minutes }}", job_name


def test_merge_job_runs_on_an_ordinary_runner_with_cpu_torch():
    jobs = load("adapt.yml")["jobs"]
    merge = jobs["merge-and-push"]
    assert merge["runs-on"] == "${{ fromJSON(inputs.merge-runner-labels) }}"
    assert load("adapt.yml")["on"]["workflow_call"]["inputs"]["merge-runner-labels"]["default"] == '["ubuntu-latest"]'
    [install] = [s for s in merge["steps"] if s.get("name", "").startswith("Install dart-hub")]
    assert install["env"]["TORCH_INDEX"] == "https://download.pytorch.org/whl/cpu" and install["env"]["EXTRAS"] == ""


def _install_step(name: str, job: str) -> dict:
    [step] = [s for s in load(name)["jobs"][job]["steps"] if s.get("name", "").startswith("Install dart-hub")]
    return step


def _run_install(step: dict, tmp_path: Path, workspace: Path, dart_hub: str):
    """Run the step's script with a stub interpreter that records the pip commands."""
    stub = tmp_path / "stub-python"
    stub.write_text(
        "#!/bin/bash\n"
        'if [ "$1 $2" = "-m venv" ]; then mkdir -p "$3/bin"; : > "$3/bin/activate";\n'
        '  printf \'#!/bin/bash\\necho "pip: $*" >> "%s"\\n\' "$LOG" > "$3/bin/python"; chmod +x "$3/bin/python";\n'
        '  printf \'#!/bin/bash\\necho dart-hub 0\\n\' > "$3/bin/dart-hub"; chmod +x "$3/bin/dart-hub"; fi\n'
    )
    stub.chmod(0o755)
    log, path_file = tmp_path / "pip.log", tmp_path / "github_path"
    env = {
        "PATH": f"{tmp_path / 'runner' / 'dart-venv' / 'bin'}:/usr/bin:/bin",
        "LOG": str(log), "RUNNER_TEMP": str(tmp_path / "runner"), "GITHUB_PATH": str(path_file),
        **{k: str(v) for k, v in step["env"].items()}, "PYTHON": str(stub), "DART_HUB": dart_hub,
    }  # fmt: skip
    (tmp_path / "runner").mkdir(exist_ok=True)
    done = subprocess.run(["bash", "-e", "-c", step["run"]], cwd=workspace, env=env, capture_output=True, text=True)
    return done, log.read_text() if log.exists() else "", path_file.read_text() if path_file.exists() else ""


def test_install_step_uses_a_venv_and_the_chosen_git_ref(tmp_path):
    step = _install_step("train-eval.yml", "train-eval")
    workspace = tmp_path / "caller"
    workspace.mkdir()
    done, pip, path = _run_install(step, tmp_path, workspace, "me/dart-hub@v1.2")
    assert done.returncode == 0, done.stderr
    assert "pip: -m pip install dart-hub[vllm,train] @ git+https://github.com/me/dart-hub@v1.2" in pip
    assert path.strip() == str(tmp_path / "runner" / "dart-venv" / "bin")  # later steps use the venv


def test_install_step_defaults_to_the_checked_out_dart_hub_and_refuses_other_repos(tmp_path):
    step = _install_step("adapt.yml", "adapt")
    fork = tmp_path / "fork"
    fork.mkdir()
    (fork / "pyproject.toml").write_text('[project]\nname = "dart-hub"\n')
    done, pip, _ = _run_install(step, tmp_path, fork, "")
    assert done.returncode == 0, done.stderr
    assert "pip: -m pip install .[vllm]" in pip
    (fork / "constraints").mkdir()
    (fork / "constraints" / "gpu.txt").write_text("vllm==0.33.0\n")
    done, pip, _ = _run_install(step, tmp_path, fork, "")
    assert done.returncode == 0 and "pip: -m pip install -c constraints/gpu.txt .[vllm]" in pip  # the GPU set
    other = tmp_path / "other"
    other.mkdir()
    done, _, _ = _run_install(step, tmp_path, other, "")
    assert done.returncode == 1 and "set the dart-hub input to OWNER/dart-hub@REF" in done.stdout
