"""CPU reproductions of the first-day GPU-node failures (issue 24): FSDP with TRL's defaults,
checkpoint selection after a DeepSpeed ZeRO-3 training, multi-node launch commands, and the
training settings each launch gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.training import launch as launch_module
from dart_hub.training.distributed import (
    LaunchKind,
    checkpointing_settings,
    kind_from_accelerate_config,
    kind_from_environment,
    release_training_state,
)
from tests.test_train import message_rows

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs" / "accelerate"


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in message_rows()))
    return path


def accelerate_env(config: Path, processes: int = 8) -> dict[str, str]:
    """The environment `accelerate launch` gives the training processes for a config file, from
    accelerate's own parser (as in tests/test_train_launch.py)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    cmd = launch_module.launch_command(Path("spec.json"), processes, config, port=29500, env={})
    args, defaults, _ = _validate_launch_command(launch_command_parser().parse_args(cmd[3:]))
    if args.use_deepspeed:
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        return prepare_deepspeed_cmd_env(args)[1]
    return prepare_multi_gpu_env(args)


def in_launch(monkeypatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        if key.startswith(("ACCELERATE_", "FSDP_")):
            monkeypatch.setenv(key, str(value))


# -- FSDP: the shipped config with TRL's defaults ----------------------------------------------


def test_shipped_fsdp_config_and_the_trainer_arguments_agree(monkeypatch, tmp_path):
    """The Trainer raises at setup, on every rank, when FSDP's activation checkpointing and the
    training argument are both on (transformers' trainer.py). Under the shipped fsdp.yaml the
    settings dart-hub resolves leave only FSDP's on; TRL's own default would have both."""
    pytest.importorskip("trl")
    from accelerate.utils import FullyShardedDataParallelPlugin

    from dart_hub.training.config import make_sft_config, resolve_sft_kwargs
    from dart_hub.training.stage import _launch_settings

    in_launch(monkeypatch, accelerate_env(CONFIGS / "fsdp.yaml"))
    plugin = FullyShardedDataParallelPlugin()  # reads the launch environment, as the Trainer's Accelerator does
    assert plugin.activation_checkpointing is True

    # (use_cpu: this machine has no GPU; a launched child without GPUs sets it as well)
    trl_default = make_sft_config({"output_dir": str(tmp_path), "report_to": "none", "use_cpu": True})
    assert trl_default.gradient_checkpointing is True  # what used to reach the Trainer

    kwargs, _ = resolve_sft_kwargs({}, {}, tmp_path)
    notes = _launch_settings(kwargs, {}, {}, "auto", None, 8)
    config = make_sft_config({**kwargs, "use_cpu": True})
    # transformers' check: fsdp_plugin.activation_checkpointing and args.activation_checkpointing
    assert not (plugin.activation_checkpointing and getattr(config, "activation_checkpointing", config.gradient_checkpointing))
    assert config.gradient_checkpointing is False
    assert any("FSDP activation checkpointing" in note for note in notes)


def test_gradient_checkpointing_set_by_the_launch_in_the_dry_run(tmp_path, rows_file, tiny_model_dir):
    """What the user sees: the resolved SFTConfig of `train --dry-run` per accelerate config."""
    pytest.importorskip("trl")

    def plan(*extra: str) -> dict:
        result = CliRunner().invoke(cli, [
            "train", "--student", str(tiny_model_dir), "--data", str(rows_file), "--output", str(tmp_path / "o"),
            "--dry-run", "--json", *extra,
        ])  # fmt: skip
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    assert plan()["sft_config"]["gradient_checkpointing"] is True
    assert plan("--accelerate-config", str(CONFIGS / "deepspeed_zero3.yaml"))["sft_config"]["gradient_checkpointing"] is True
    fsdp = plan("--accelerate-config", str(CONFIGS / "fsdp.yaml"))
    assert fsdp["sft_config"]["gradient_checkpointing"] is False
    assert any("FSDP" in note for note in fsdp["notes"])


def test_explicit_gradient_checkpointing_under_fsdp_is_one_line(tmp_path, rows_file, tiny_model_dir):
    pytest.importorskip("trl")
    config = tmp_path / "train.yaml"
    config.write_text("gradient_checkpointing: true\n")
    result = CliRunner().invoke(cli, [
        "train", "--student", str(tiny_model_dir), "--data", str(rows_file), "--output", str(tmp_path / "o"),
        "--config", str(config), "--accelerate-config", str(CONFIGS / "fsdp.yaml"), "--dry-run",
    ])  # fmt: skip
    assert result.exit_code == 1
    assert "fsdp_activation_checkpointing" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1


def test_launch_kind_from_config_and_environment(monkeypatch):
    import yaml

    zero3 = yaml.safe_load((CONFIGS / "deepspeed_zero3.yaml").read_text())
    fsdp = yaml.safe_load((CONFIGS / "fsdp.yaml").read_text())
    assert kind_from_accelerate_config(zero3) == LaunchKind("deepspeed", zero_stage=3)
    assert kind_from_accelerate_config(fsdp) == LaunchKind("fsdp", fsdp_activation_checkpointing=True)
    assert kind_from_accelerate_config(None, 8).kind == "ddp"
    assert kind_from_accelerate_config(None, 1).kind == "single"
    env = accelerate_env(CONFIGS / "deepspeed_zero3.yaml")
    assert kind_from_environment(env) == LaunchKind("deepspeed", zero_stage=3)
    assert kind_from_environment({"WORLD_SIZE": "4"}).kind == "ddp"
    assert kind_from_environment({}) is None
    # a user's own value stays (outside FSDP)
    kwargs: dict = {}
    checkpointing_settings(kwargs, {"gradient_checkpointing": False}, LaunchKind("deepspeed", 3))
    assert "gradient_checkpointing" not in kwargs


# -- selection after DeepSpeed ZeRO-3 ----------------------------------------------------------


def zero3_config(tmp_path):
    """An SFTConfig of a ZeRO-3 run, as the training keeps it for its summary: it sets
    transformers' global DeepSpeed config (a weak reference to its HfTrainerDeepSpeedConfig)."""
    pytest.importorskip("deepspeed")
    pytest.importorskip("trl")
    from dart_hub.training.config import make_sft_config

    return make_sft_config({
        "output_dir": str(tmp_path / "run"), "report_to": "none", "bf16": False, "use_cpu": True,
        "deepspeed": {"zero_optimization": {"stage": 3}, "train_micro_batch_size_per_gpu": "auto"},
    })  # fmt: skip


def test_selection_engine_loads_after_a_deepspeed_zero3_config_existed(tmp_path, tiny_model_dir):
    """The crash after the last epoch: transformers refused the selection engine's device_map
    while the run's SFTConfig kept ZeRO-3 'enabled', and the message blamed the checkpoint."""
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    from dart_hub.answers import AnswerChecker
    from dart_hub.engines.transformers import TransformersEngine
    from dart_hub.errors import DartHubError
    from dart_hub.evaluation import EvalItem
    from dart_hub.training.select import score_checkpoint

    config = zero3_config(tmp_path)
    assert is_deepspeed_zero3_enabled()
    # the real cause is named (not "the folder is not a transformers causal language model")
    with pytest.raises(DartHubError, match="DeepSpeed Zero-3") as error:
        TransformersEngine(str(tiny_model_dir), device="cpu")
    assert "not a transformers causal language model" not in str(error.value)

    items = {"": [EvalItem(benchmark="validation", id="p0", question="What is 1+1?", gold="2")]}
    with AnswerChecker(timeout=5) as checker:
        score = score_checkpoint(tiny_model_dir, items, checker, max_tokens=4)
    assert score["total"] == 1
    assert not is_deepspeed_zero3_enabled()
    assert config.deepspeed  # the config itself is still alive: the global was what mattered


def test_release_training_state_clears_deepspeed_accelerate_and_launch_switches(monkeypatch, tmp_path):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from transformers.integrations.deepspeed import is_deepspeed_zero3_enabled

    config = zero3_config(tmp_path)  # kept alive, as run_training keeps it
    Accelerator(cpu=True)
    in_launch(monkeypatch, accelerate_env(CONFIGS / "deepspeed_zero3.yaml"))
    assert is_deepspeed_zero3_enabled()
    assert AcceleratorState._shared_state
    release_training_state()
    assert not is_deepspeed_zero3_enabled()
    assert not AcceleratorState._shared_state
    import os

    assert not [k for k in os.environ if k.startswith(("ACCELERATE_USE_", "ACCELERATE_DEEPSPEED_"))]
    assert config.deepspeed


# -- several machines --------------------------------------------------------------------------


def parsed(cmd: list[str]):
    """The launch command as accelerate reads it (config file values merged)."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    return _validate_launch_command(launch_command_parser().parse_args(cmd[3:]))[0]


def test_launch_command_keeps_the_configs_port_rank_and_address(tmp_path):
    config = tmp_path / "two-nodes.yaml"
    text = (CONFIGS / "deepspeed_zero3.yaml").read_text().replace("num_machines: 1", "num_machines: 2").replace("machine_rank: 0", "machine_rank: 1")
    config.write_text(text + "main_process_ip: 10.1.2.3\nmain_process_port: 29777\n")
    cmd = launch_module.launch_command(tmp_path / "spec.json", 16, config, env={})
    args = parsed(cmd)
    assert (args.main_process_port, args.machine_rank, args.main_process_ip, args.num_machines) == (29777, 1, "10.1.2.3", 2)
    assert args.num_processes == 16 and args.deepspeed_multinode_launcher == "standard"

    # one machine: a configured port is kept too (no free port appended over it)
    single = tmp_path / "one.yaml"
    single.write_text((CONFIGS / "fsdp.yaml").read_text() + "main_process_port: 29888\n")
    assert parsed(launch_module.launch_command(tmp_path / "spec.json", 8, single, env={})).main_process_port == 29888
    # ... and without one, a free port as before
    assert "--main_process_port" in launch_module.launch_command(tmp_path / "spec.json", 8, CONFIGS / "fsdp.yaml", env={})


def test_launch_command_from_the_slurm_environment(tmp_path):
    env = {"SLURM_STEP_NUM_NODES": "2", "SLURM_NODEID": "1", "SLURM_STEP_NODELIST": "gpu[03-04]", "MASTER_PORT": "29601"}
    for config in (CONFIGS / "deepspeed_zero3.yaml", CONFIGS / "fsdp.yaml", None):
        cmd = launch_module.launch_command(tmp_path / "spec.json", 16, config, env=env)
        args = parsed(cmd)
        assert (args.num_machines, args.machine_rank, args.main_process_ip, args.main_process_port) == (2, 1, "gpu03", 29601)
    # MASTER_ADDR wins over the node list; without MASTER_PORT the agreed default port
    args = parsed(launch_module.launch_command(tmp_path / "s.json", 16, None, env={**env, "MASTER_ADDR": "10.0.0.9", "MASTER_PORT": ""}))
    assert (args.main_process_ip, args.main_process_port) == ("10.0.0.9", launch_module.DEFAULT_PORT)
    assert launch_module.first_host("gpu[03-05,09],cpu1") == "gpu03" and launch_module.first_host("a7,a8") == "a7"
    # the batch script itself (no srun step) of a 2-node job runs on its first node alone
    alone = launch_module.launch_command(tmp_path / "s.json", 8, None, env={"SLURM_JOB_NUM_NODES": "2", "SLURM_NODEID": "0"})
    assert "--machine_rank" not in alone and alone[alone.index("--num_machines") + 1] == "1"


def test_a_non_main_machine_ends_cleanly_without_the_summary(monkeypatch, tmp_path, rows_file, tiny_model_dir):
    """Machine 1 of 2 trains its share and returns; only machine 0 writes the summary, selects
    and pushes. Before, every other node failed with 'ended without writing training_summary.json'."""
    pytest.importorskip("trl")
    monkeypatch.setenv("SLURM_STEP_NUM_NODES", "2")
    monkeypatch.setenv("SLURM_NODEID", "1")
    monkeypatch.setenv("SLURM_STEP_NODELIST", "gpu[03-04]")
    monkeypatch.setattr(launch_module, "visible_gpus", lambda: 8)
    monkeypatch.setattr("dart_hub.gpu.gpu_visible", lambda: (True, None))
    calls = []

    class Done:
        returncode = 0

    def fake_run(cmd, env, stdout, check):
        calls.append(cmd)
        assert Path(cmd[-1]).name == ".dart-hub-launch-1.json"  # one spec per machine
        return Done()

    monkeypatch.setattr(launch_module.subprocess, "run", fake_run)
    result = CliRunner().invoke(cli, [
        "train", "--student", str(tiny_model_dir), "--data", str(rows_file), "--output", str(tmp_path / "o"),
        "--accelerate-config", "deepspeed_zero3", "--push-to-hub", "me/x",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    [cmd] = calls
    assert cmd[cmd.index("--num_processes") + 1] == "16" and cmd[cmd.index("--machine_rank") + 1] == "1"
    assert "machine 1: training processes finished" in result.stderr
    assert "pushed" not in result.output and "best epoch:" not in result.output


def test_shipped_config_names_resolve_from_any_folder(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert launch_module.resolve_accelerate_config("deepspeed_zero3") == CONFIGS / "deepspeed_zero3.yaml"
    assert launch_module.resolve_accelerate_config("configs/accelerate/fsdp.yaml") == CONFIGS / "fsdp.yaml"
    from dart_hub.errors import DartHubError

    with pytest.raises(DartHubError, match="deepspeed_zero3, fsdp"):
        launch_module.resolve_accelerate_config("zero9")


def test_release_frees_the_trainer_before_the_barrier():
    """Every process drops its model and optimizer before waiting for the others, so that the
    main process's selection engine finds the other GPUs free once the barrier is passed."""
    calls = []

    class Accelerator:
        def free_memory(self):
            calls.append(("free_memory", trainer.model is not None))

        def wait_for_everyone(self):
            calls.append(("barrier", "model" in vars(trainer)))

    class Trainer:
        pass

    trainer = Trainer()
    trainer.accelerator, trainer.model, trainer.ref_model = Accelerator(), object(), object()
    release_training_state(trainer)
    assert calls == [("free_memory", True), ("barrier", False)]
    assert vars(trainer) == {}
