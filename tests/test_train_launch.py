"""Multi-process training (`dart-hub train --num-processes`, `--accelerate-config`), the shipped
DeepSpeed / FSDP accelerate configs, and bf16 checkpoints. Everything runs on CPU: the launch
path is the GPU one (`accelerate launch --multi_gpu`), the children form a gloo process group.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.training import launch as launch_module
from tests.test_train import message_rows

ROOT = Path(__file__).resolve().parents[1]
ACCELERATE_CONFIGS = ROOT / "configs" / "accelerate"


def losses(output: Path) -> list[float]:
    last = max(output.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    state = json.loads((last / "trainer_state.json").read_text())
    return [entry["loss"] for entry in state["log_history"] if "loss" in entry]


@pytest.fixture
def rows_file(tmp_path: Path) -> Path:
    rows = message_rows()
    rows = rows + [dict(r, id=r["id"] + "-2") for r in rows[:2]]  # 8 rows: 2 global batches of 4
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# -- the launch itself -------------------------------------------------------------------------


@pytest.mark.slow
def test_two_gloo_processes_through_dart_hub_run_give_the_one_process_loss_curve(tiny_model_dir, rows_file, tmp_path):
    """1 process x batch 4 == 2 processes x batch 2 (same global batch): the same per-step
    losses within 1e-4 relative (measured: equal to ~1e-7). The 2-process run goes through
    `dart-hub run`'s train stage, i.e. the launch path the recipes use."""
    pytest.importorskip("trl")
    student = Path(shutil.copytree(tiny_model_dir, tmp_path / "student"))
    common = ["--epochs", "2", "--max-length", "96", "--learning-rate", "1e-3", "--no-select-best"]
    one = CliRunner().invoke(cli, [
        "train", "--student", str(student), "--data", str(rows_file), "--output", str(tmp_path / "one"),
        "--batch-size", "4", "--num-processes", "1", *common, "--quiet",
    ])  # fmt: skip
    assert one.exit_code == 0, one.output

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: two\noutput: {tmp_path / 'run'}\nsource:\n  dataset: {rows_file}\nstudent:\n  model: {student}\n"
        f"train:\n  data: {rows_file}\n  epochs: 2\n  max_length: 96\n  learning_rate: 1.0e-3\n"
        "  batch_size: 2\n  num_processes: 2\n  device: cpu\n  select_best: false\n"
    )
    two = CliRunner().invoke(cli, ["run", str(recipe), "--only", "train", "--quiet"])
    assert two.exit_code == 0, two.output
    out = tmp_path / "run" / "train"
    summary = json.loads((out / "training_summary.json").read_text())
    assert summary["sft_config"]["per_device_train_batch_size"] == 2
    assert summary["sft_config"]["use_cpu"] is True  # set in the launched children
    assert (out / "final" / "model.safetensors").is_file()
    assert not (out / launch_module.SPEC_FILE).exists()

    reference, distributed = losses(tmp_path / "one"), losses(out)
    # 8 rows, global batch 4, 2 epochs: 4 optimizer steps in both runs. Two processes that did not
    # form a group would each take 4 steps per epoch on their own batches of 2.
    assert len(reference) == len(distributed) == 4
    assert distributed == pytest.approx(reference, rel=1e-4)
    assert reference[-1] < reference[0]


def test_default_number_of_processes_is_the_visible_gpu_count(monkeypatch, tmp_path):
    monkeypatch.setattr(launch_module, "visible_gpus", lambda: 8)
    assert launch_module.resolve_num_processes(None, None) == 8
    assert launch_module.resolve_num_processes(2, None) == 2
    monkeypatch.setattr(launch_module, "visible_gpus", lambda: 0)
    assert launch_module.resolve_num_processes(None, None) == 1
    # an accelerate config's num_processes counts when the flag is not given
    own = tmp_path / "own.yaml"
    own.write_text("distributed_type: MULTI_GPU\nnum_processes: 6\n")
    assert launch_module.resolve_num_processes(None, own) == 6
    assert launch_module.resolve_num_processes(4, own) == 4
    # the shipped configs name no count: one process per visible GPU, times the Slurm job's nodes
    monkeypatch.setattr(launch_module, "visible_gpus", lambda: 8)
    monkeypatch.delenv("SLURM_STEP_NUM_NODES", raising=False)
    assert launch_module.resolve_num_processes(None, ACCELERATE_CONFIGS / "fsdp.yaml") == 8
    monkeypatch.setenv("SLURM_STEP_NUM_NODES", "2")
    monkeypatch.setenv("SLURM_NODEID", "0")
    monkeypatch.setenv("MASTER_ADDR", "gpu01")
    assert launch_module.resolve_num_processes(None, ACCELERATE_CONFIGS / "deepspeed_zero3.yaml") == 16


def test_eight_visible_gpus_make_train_launch_eight_processes(monkeypatch, tiny_model_dir, rows_file, tmp_path):
    """What the first call on an 8-GPU node does: one accelerate launch of 8 processes (the launch
    is intercepted here), whose summary the parent prints."""
    pytest.importorskip("trl")
    monkeypatch.setattr(launch_module, "visible_gpus", lambda: 8)
    calls: list[list[str]] = []

    def fake_run(cmd, env, stdout, check):
        calls.append(cmd)
        spec = json.loads(Path(cmd[-1]).read_text())
        assert env[launch_module.CHILD_ENV] == "1"
        assert spec["options"]["push_repo"] is None and spec["options"]["student"] == str(tiny_model_dir)
        out = Path(spec["options"]["output"])
        (out / "training_summary.json").write_text(json.dumps({
            "selection": {"enabled": False}, "chosen_epoch": 1, "chosen_checkpoint": "checkpoint-1",
            "epochs": [], "request": {"output": str(out)}, "model_dir": "final",
        }))  # fmt: skip

        class Done:
            returncode = 0

        return Done()

    monkeypatch.setattr(launch_module.subprocess, "run", fake_run)
    result = CliRunner().invoke(cli, [
        "train", "--student", str(tiny_model_dir), "--data", str(rows_file), "--output", str(tmp_path / "o"),
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    [cmd] = calls
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"] and "--multi_gpu" in cmd
    assert cmd[cmd.index("--num_processes") + 1] == "8"
    assert cmd[-3:-1] == ["-m", "dart_hub.training.child"]
    assert "kept the last epoch: 1" in result.output


def test_a_failed_launch_is_one_line(monkeypatch, tiny_model_dir, rows_file, tmp_path):
    pytest.importorskip("trl")

    class Failed:
        returncode = 3

    monkeypatch.setattr(launch_module.subprocess, "run", lambda *a, **k: Failed())
    result = CliRunner().invoke(cli, [
        "train", "--student", str(tiny_model_dir), "--data", str(rows_file), "--output", str(tmp_path / "o"),
        "--num-processes", "2", "--device", "cpu",
    ])  # fmt: skip
    assert result.exit_code == 1
    assert "training processes failed (accelerate launch exit code 3)" in result.stderr
    assert "--num-processes 1" in result.stderr and "Traceback" not in result.output


def test_inside_a_distributed_launch_train_never_launches_again(monkeypatch):
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setenv("LOCAL_RANK", "0")  # accelerate launch / torchrun, even of one process
    assert launch_module.in_distributed_run()
    monkeypatch.delenv("LOCAL_RANK")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert launch_module.in_distributed_run()
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not launch_module.in_distributed_run()
    monkeypatch.setenv(launch_module.CHILD_ENV, "1")
    assert launch_module.in_distributed_run()


def test_missing_accelerate_config_is_a_one_line_error(tiny_model_dir, rows_file, tmp_path):
    result = CliRunner().invoke(cli, [
        "train", "--student", str(tiny_model_dir), "--data", str(rows_file), "--output", str(tmp_path / "o"),
        "--accelerate-config", str(tmp_path / "nope.yaml"),
    ])  # fmt: skip
    assert result.exit_code == 1 and "accelerate config" in result.stderr and "not found" in result.stderr


# -- the shipped accelerate configs ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected_env"),
    [
        ("deepspeed_zero3.yaml", {"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3",
                                  "ACCELERATE_DEEPSPEED_ZERO3_SAVE_16BIT_MODEL": "true"}),
        ("fsdp.yaml", {"ACCELERATE_USE_FSDP": "true", "FSDP_VERSION": "2",
                       "FSDP_STATE_DICT_TYPE": "FULL_STATE_DICT", "FSDP_ACTIVATION_CHECKPOINTING": "true"}),
    ],
)  # fmt: skip
def test_shipped_accelerate_configs_parse_with_accelerates_own_launcher(name, expected_env, tmp_path):
    """The command dart-hub builds, read back by accelerate's launch parser and validated; the
    environment accelerate prepares for the processes has the settings the docs promise."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env

    config = ACCELERATE_CONFIGS / name
    cmd = launch_module.launch_command(tmp_path / "spec.json", 8, config, port=29500)
    args = launch_command_parser().parse_args(cmd[3:])
    args, defaults, _ = _validate_launch_command(args)
    assert args.num_processes == 8 and args.mixed_precision == "bf16"
    if args.use_deepspeed:  # as accelerate's launch_command does before its DeepSpeed launcher
        args.deepspeed_fields_from_accelerate_config = ",".join(defaults.deepspeed_config)
        _, env = prepare_deepspeed_cmd_env(args)
    else:
        env = prepare_multi_gpu_env(args)
    for key, value in expected_env.items():
        assert str(env.get(key)).lower() == value.lower(), (key, env.get(key))
    assert env.get("ACCELERATE_MIXED_PRECISION") == "bf16"


# -- bf16 checkpoints --------------------------------------------------------------------------


def test_checkpoints_are_cast_to_bf16_and_load_back(tiny_model_dir, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    from dart_hub.training.trainer import cast_checkpoint_to_bf16

    folder = Path(shutil.copytree(tiny_model_dir, tmp_path / "ckpt"))
    before = (folder / "model.safetensors").stat().st_size
    reference = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    assert cast_checkpoint_to_bf16(folder) > 0
    after = (folder / "model.safetensors").stat().st_size
    assert after < 0.55 * before
    assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype="auto")
    assert model.dtype == torch.bfloat16
    for (name, p), (_, q) in zip(reference.named_parameters(), model.named_parameters(), strict=True):
        torch.testing.assert_close(q.float(), p.to(torch.bfloat16).float(), msg=name)
    assert cast_checkpoint_to_bf16(folder) == 0  # idempotent


@pytest.mark.slow
def test_bf16_training_writes_bf16_checkpoints(tiny_model_dir, rows_file, tmp_path):
    """bf16 on (as on a GPU; on CPU it needs use_cpu): every checkpoint, and the exported model,
    is half the float32 size."""
    pytest.importorskip("trl")
    config = tmp_path / "train.yaml"
    config.write_text("bf16: true\nuse_cpu: true\n")
    student = Path(shutil.copytree(tiny_model_dir, tmp_path / "student"))
    result = CliRunner().invoke(cli, [
        "train", "--config", str(config), "--student", str(student), "--data", str(rows_file),
        "--output", str(tmp_path / "o"), "--epochs", "1", "--batch-size", "4", "--max-length", "96",
        "--no-select-best", "--quiet",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    full = (student / "model.safetensors").stat().st_size
    for folder in [*(tmp_path / "o").glob("checkpoint-*"), tmp_path / "o" / "final"]:
        assert (folder / "model.safetensors").stat().st_size < 0.55 * full, folder
        assert json.loads((folder / "config.json").read_text())["dtype"] == "bfloat16"
