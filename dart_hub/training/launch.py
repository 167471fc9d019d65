"""Multi-process training: `dart-hub train` (and `dart-hub run`'s train stage) start N training
processes through `accelerate launch` themselves.

Why: with several GPUs visible, transformers sets `n_gpu` to the device count and TRL's
SFTTrainer refuses one process driving them all (nn.DataParallel); one process per GPU is the
supported way. The parent process writes the command's options to a JSON spec in the output
folder, runs

    python -m accelerate.commands.launch [--config_file CFG | --multi_gpu] --num_processes N \
        --main_process_port PORT -m dart_hub.training.child SPEC.json

and waits. Each child calls `dart_hub.training.stage.run` with the same options (rank 0 scores
the checkpoints and writes training_summary.json); the parent then reads the summary, pushes
and prints as a one-process run would. Without GPUs (tests, CPU clusters) the same launcher
runs N CPU processes with the gloo backend (`use_cpu` is set in the children).

A run already inside a distributed launch (LOCAL_RANK set or WORLD_SIZE > 1: the user ran
`accelerate launch -m dart_hub.cli train ...` or torchrun) is never launched again. The
launching process does not resolve the training settings itself (that would touch the GPUs
to check bf16 support and keep a CUDA context on GPU 0 during the whole run).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from dart_hub.errors import DartHubError

SPEC_FILE = ".dart-hub-launch.json"
CHILD_ENV = "DART_HUB_TRAIN_CHILD"  # set in the launched processes: never launch again


def in_distributed_run() -> bool:
    """True inside a process started by accelerate launch / torchrun (or our own launcher)."""
    if os.environ.get(CHILD_ENV) or os.environ.get("LOCAL_RANK") is not None:
        return True
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


def is_main_rank() -> bool:
    return os.environ.get("RANK", "0") == "0"


def visible_gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_num_processes(requested: int | None, accelerate_config: str | Path | None) -> int:
    """--num-processes, else the accelerate config's num_processes, else the visible GPU count
    (at least 1)."""
    if requested is not None:
        return int(requested)
    if accelerate_config is not None:
        config = read_accelerate_config(accelerate_config)
        if config.get("num_processes"):
            return int(config["num_processes"])
    return max(1, visible_gpus())


def read_accelerate_config(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise DartHubError(
            f"accelerate config {path} not found; pass a file written by `accelerate config` or one of "
            "the shipped ones (configs/accelerate/)"
        )
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DartHubError(f"accelerate config {path} is not valid YAML: {' '.join(str(error).split())}") from error
    if not isinstance(data, dict):
        raise DartHubError(f"accelerate config {path} must be a YAML mapping (see `accelerate config`)")
    return data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_command(
    spec: Path, num_processes: int, accelerate_config: str | Path | None, port: int | None = None
) -> list[str]:
    """The `accelerate launch` command line for N training processes."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if accelerate_config is not None:
        cmd += ["--config_file", str(accelerate_config)]
    else:
        # Plain DDP. Mixed precision is left to the Trainer's own bf16 setting.
        cmd += ["--multi_gpu", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += ["--num_processes", str(num_processes), "--main_process_port", str(port or free_port())]
    cmd += ["-m", "dart_hub.training.child", str(spec)]
    return cmd


def launch(
    options: dict[str, Any], sft: dict[str, Any] | None, output: Path, num_processes: int, echo=print
) -> dict[str, Any]:
    """Run the training in N processes; returns rank 0's training summary."""
    from dart_hub.training.run import load_summary

    output.mkdir(parents=True, exist_ok=True)
    spec = output / SPEC_FILE
    child_options = {k: _jsonable(v) for k, v in options.items()}
    # The children only train; pushing and printing stay with this process.
    for key in ("push_repo", "push_only", "dry_run", "as_json"):
        child_options[key] = None
    spec.write_text(json.dumps({"options": child_options, "sft": _jsonable(sft)}, indent=2), encoding="utf-8")
    accelerate_config = options.get("accelerate_config")
    cmd = launch_command(spec, num_processes, accelerate_config)
    env = {**os.environ, CHILD_ENV: "1", "PYTHONPATH": _pythonpath()}
    echo(f"launching {num_processes} training processes: accelerate launch ... --num_processes {num_processes}")
    try:  # the children's logs go to stderr: stdout stays for our result (--json)
        stdout = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # e.g. a captured stream in tests
        stdout = None
    try:
        done = subprocess.run(cmd, env=env, stdout=stdout, check=False)
    finally:
        spec.unlink(missing_ok=True)
    if done.returncode != 0:
        raise DartHubError(
            f"training processes failed (accelerate launch exit code {done.returncode}); the first error "
            f"is in the log above. Retry in one process with --num-processes 1 to see it alone"
        )
    summary = load_summary(output)
    if summary is None:
        raise DartHubError(f"the training processes ended without writing {output}/training_summary.json")
    return summary


def _pythonpath() -> str:
    """The children import this very dart_hub (a source checkout may not be installed)."""
    here = str(Path(__file__).resolve().parents[2])
    current = os.environ.get("PYTHONPATH")
    return here if not current else f"{here}{os.pathsep}{current}"


def _jsonable(value: Any) -> Any:
    """Options as JSON; anything else (click's "unset" sentinel) is None, i.e. not given."""
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return None
