"""No silent CPU fallback: GPU work asked for on a machine where torch sees no GPU stops before
anything is loaded, with one line naming the likely cause (dart_hub.gpu)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from dart_hub import gpu
from dart_hub.cli import cli
from dart_hub.training import launch as launch_module

pytestmark = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine where torch sees no GPU")


@pytest.fixture
def nothing_loads(monkeypatch):
    """Any model / tokenizer / data load or training launch fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("loaded something after the GPU check should have stopped the command")

    monkeypatch.setattr(launch_module.subprocess, "run", refuse)
    monkeypatch.setattr("dart_hub.training.data.load_train_data", refuse)
    monkeypatch.setattr("transformers.AutoTokenizer.from_pretrained", refuse)
    monkeypatch.setattr("transformers.AutoModelForCausalLM.from_pretrained", refuse)


@pytest.mark.parametrize(
    "flags",
    [["--num-processes", "2"], ["--device", "cuda"], ["--accelerate-config", "deepspeed_zero3"], ["--accelerate-config", "fsdp"]],
    ids=["num-processes", "device-cuda", "zero3", "fsdp"],
)
def test_train_asked_for_gpu_work_stops_with_one_line(flags, tmp_path, nothing_loads):
    result = CliRunner().invoke(cli, [
        "train", "--student", "Qwen/Qwen2.5-0.5B-Instruct", "--data", str(tmp_path / "rows.jsonl"),
        "--output", str(tmp_path / "o"), *flags,
    ])  # fmt: skip
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output
    assert "needs a GPU, but torch sees none" in lines[0] and "--device cpu" in lines[0]
    if torch.version.cuda is None:
        assert "CPU-only build" in lines[0]
    assert not (tmp_path / "o").exists()


def test_device_cpu_is_the_explicit_way_to_launch_cpu_processes(monkeypatch, tmp_path):
    """--device cpu --num-processes 2 passes the check and launches (gloo) processes."""
    pytest.importorskip("trl")
    calls = []

    class Failed:
        returncode = 5

    def fake_run(cmd, env, stdout, check):
        calls.append(json.loads(Path(cmd[-1]).read_text()))
        return Failed()

    monkeypatch.setattr(launch_module.subprocess, "run", fake_run)
    result = CliRunner().invoke(cli, [
        "train", "--student", "x", "--data", "y", "--output", str(tmp_path / "o"), "--num-processes", "2", "--device", "cpu",
    ])  # fmt: skip
    assert "exit code 5" in result.stderr
    assert calls and calls[0]["options"]["device"] == "cpu"


def test_vllm_on_a_cuda_build_without_gpu_stops_before_loading(monkeypatch):
    from dart_hub.engines import factory
    from dart_hub.errors import DartHubError

    real_find_spec = factory.importlib.util.find_spec
    monkeypatch.setattr(factory.importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real_find_spec(name, *a))
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(gpu, "driver_version", lambda path=gpu.DRIVER_FILE: "550.54.15")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(factory, "check_hub_model", lambda *a, **k: pytest.fail("looked the model up"))
    with pytest.raises(DartHubError) as error:
        factory.create_engine("vllm", "Qwen/Qwen2.5-0.5B-Instruct")
    message = str(error.value)
    assert "--engine vllm needs a GPU" in message and "driver 550.54.15" in message and "580 or newer" in message
    assert "\n" not in message


def test_the_likely_causes(monkeypatch):
    assert "CPU-only build" in gpu.absence_cause("2.13.0+cpu", None, [])
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert "hides every GPU" in gpu.absence_cause("2.14.0", "13.0", [])
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    monkeypatch.setattr(gpu, "driver_version", lambda path=gpu.DRIVER_FILE: None)
    assert "no NVIDIA driver is loaded" in gpu.absence_cause("2.14.0", "13.0", [])
    old = gpu.absence_cause("2.14.0", "13.0", ["CUDA initialization: The NVIDIA driver on your system is too old (found version 12040)."], driver="550.54.15")
    assert "built for CUDA 13.0" in old and "driver 550.54.15" in old and "needs driver 580 or newer" in old
    assert "too old (found version 12040)" in old


def test_driver_version_is_read_from_the_kernel_module_file(tmp_path):
    path = tmp_path / "version"
    path.write_text("NVRM version: NVIDIA UNIX x86_64 Kernel Module  550.54.15  Tue Mar  5 22:23:56 UTC 2024\nGCC version: gcc 12\n")
    assert gpu.driver_version(path) == "550.54.15"
    path.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.65.06  Release Build\n")
    assert gpu.driver_version(path) == "580.65.06"
    assert gpu.driver_version(tmp_path / "missing") is None


SMOKE = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_smoke.py"


def test_gpu_smoke_answers_help_anywhere(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(SMOKE), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--sft-model" in done.stdout and "with no download" in done.stdout


def test_gpu_smoke_stops_with_one_line_without_a_gpu(tmp_path):
    import subprocess
    import sys

    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([sys.executable, str(SMOKE), "--output", str(tmp_path / "r.json")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line.strip() and "[WARNING]" not in line]
    assert len(lines) == 1 and lines[0].startswith("gpu_smoke: needs a GPU, but torch sees none:")
    assert not (tmp_path / "r.json").exists()


def test_engine_auto_says_why_it_generates_on_cpu(monkeypatch, capsys):
    from dart_hub.engines import factory

    real_find_spec = factory.importlib.util.find_spec
    monkeypatch.setattr(factory.importlib.util, "find_spec", lambda name, *a: object() if name == "vllm" else real_find_spec(name, *a))
    monkeypatch.setattr(torch.version, "cuda", "13.0")
    monkeypatch.setattr(gpu, "driver_version", lambda path=gpu.DRIVER_FILE: None)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert factory.resolve_engine_kind("auto") == "transformers"
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--engine auto generates with transformers on CPU" in err and "no NVIDIA driver is loaded" in err
