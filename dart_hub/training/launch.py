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
SUMMARY_FILE = "training_summary.json"  # rank 0's result (dart_hub.training.run writes it)


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
    """--num-processes, else the accelerate config's num_processes (all machines together),
    else the visible GPU count times the machines (the config's num_machines, or the nodes of
    the Slurm job step), at least 1."""
    config = read_accelerate_config(accelerate_config) if accelerate_config is not None else {}
    if requested is not None:
        return int(requested)
    if config.get("num_processes"):
        return int(config["num_processes"])
    return max(1, visible_gpus()) * machine_settings(config)["num_machines"]


# Shipped accelerate configs (configs/accelerate/NAME.yaml in the source checkout).
SHIPPED_CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


def resolve_accelerate_config(path: str | Path) -> Path:
    """An accelerate config path as given; else, for a relative path or a shipped name
    (`deepspeed_zero3`, `fsdp`), the shipped file, so that recipes naming
    `configs/accelerate/...` work from any folder."""
    path = Path(path)
    if path.is_file():
        return path
    candidates = []
    if not path.is_absolute():
        candidates.append(SHIPPED_CONFIGS.parents[1] / path)  # configs/accelerate/... from elsewhere
    if path.parent == Path(".") and not path.suffix:
        candidates.append(SHIPPED_CONFIGS / f"{path.name}.yaml")  # a shipped name
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    shipped = ", ".join(sorted(p.stem for p in SHIPPED_CONFIGS.glob("*.yaml")))
    raise DartHubError(
        f"accelerate config {path} not found; pass a file written by `accelerate config` or one of "
        f"the shipped ones (configs/accelerate/: {shipped or 'none in this installation'})"
    )


def read_accelerate_config(path: str | Path) -> dict[str, Any]:
    path = resolve_accelerate_config(path)
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


DEFAULT_PORT = 29500  # several machines must agree on the port: no free-port pick there


def machine_settings(config: dict[str, Any], env: dict[str, str] | None = None) -> dict[str, Any]:
    """num_machines, machine_rank, main_process_ip, main_process_port of this node.

    The accelerate config's values count; inside a Slurm job step over several nodes
    (`srun` with SLURM_STEP_NUM_NODES > 1, one task per node: scripts/slurm/train.sbatch) the
    node's own rank is SLURM_NODEID (one config file serves every node, so its machine_rank
    cannot be right for all of them), the main address is MASTER_ADDR or else the step's first
    node, the port MASTER_PORT or else 29500. A command run in the batch script itself, without
    srun, runs on the first node alone (no step variables): one machine. `main_process_port` is
    None on one machine without a configured port (a free port is picked)."""
    env = os.environ if env is None else env
    machines = int(config.get("num_machines") or 1)
    rank = int(config.get("machine_rank") or 0)
    address = config.get("main_process_ip")
    port = config.get("main_process_port")
    slurm_nodes = _int(env.get("SLURM_STEP_NUM_NODES"))
    if slurm_nodes and slurm_nodes > 1:
        machines = slurm_nodes
        rank = _int(env.get("SLURM_NODEID")) or 0
        address = address or env.get("MASTER_ADDR") or first_host(env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST") or "")
    if machines > 1:
        address = address or env.get("MASTER_ADDR")
        port = port or _int(env.get("MASTER_PORT")) or DEFAULT_PORT
        if not address:
            raise DartHubError(
                f"training over {machines} machines needs the main machine's address: set main_process_ip "
                "in the accelerate config or MASTER_ADDR (scripts/slurm/train.sbatch sets it)"
            )
    return {"num_machines": machines, "machine_rank": rank, "main_process_ip": address, "main_process_port": port}


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def first_host(nodelist: str) -> str | None:
    """The first host of a Slurm node list: "gpu[03-05,09],cpu1" -> "gpu03" (what `scontrol show
    hostnames` would print first)."""
    nodelist = nodelist.strip()
    if not nodelist:
        return None
    head = nodelist.split(",")[0] if "[" not in nodelist.split(",")[0] else nodelist[: nodelist.index("]") + 1]
    if "[" not in head:
        return head
    prefix, ranges = head.split("[", 1)
    first = ranges.rstrip("]").split(",")[0].split("-")[0]
    return prefix + first


def launch_command(
    spec: Path, num_processes: int, accelerate_config: str | Path | None, port: int | None = None,
    env: dict[str, str] | None = None,
) -> list[str]:  # fmt: skip
    """The `accelerate launch` command line for N training processes (N: all machines together).

    The config's port, machine rank and main address are kept (several machines must agree on
    them); a Slurm job over several nodes supplies them when the config does not
    (`machine_settings`). On one machine without a configured port, `port` or a free one."""
    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    config: dict[str, Any] = {}
    if accelerate_config is not None:
        config = read_accelerate_config(accelerate_config)
        cmd += ["--config_file", str(resolve_accelerate_config(accelerate_config))]
    machines = machine_settings(config, env)
    if accelerate_config is None:
        # Plain DDP. Mixed precision is left to the Trainer's own bf16 setting.
        cmd += ["--multi_gpu", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += ["--num_processes", str(num_processes)]
    if machines["num_machines"] > 1:
        cmd += [
            "--num_machines", str(machines["num_machines"]), "--machine_rank", str(machines["machine_rank"]),
            "--main_process_ip", str(machines["main_process_ip"]), "--main_process_port", str(machines["main_process_port"]),
            "--rdzv_backend", "static", "--same_network",
        ]  # fmt: skip
        if str(config.get("distributed_type", "")).upper() == "DEEPSPEED":
            cmd += ["--deepspeed_multinode_launcher", "standard"]  # one accelerate launch per node, no pdsh
    else:
        if accelerate_config is None:
            cmd += ["--num_machines", "1"]
        if machines["main_process_port"] is None:
            cmd += ["--main_process_port", str(port or free_port())]
    cmd += ["-m", "dart_hub.training.child", str(spec)]
    return cmd


def launch(
    options: dict[str, Any], sft: dict[str, Any] | None, output: Path, num_processes: int, echo=print
) -> dict[str, Any] | None:
    """Run the training in N processes; returns rank 0's training summary (None on the other
    machines of a multi-node launch)."""
    output.mkdir(parents=True, exist_ok=True)
    accelerate_config = options.get("accelerate_config")
    config = read_accelerate_config(accelerate_config) if accelerate_config is not None else {}
    machine_rank = machine_settings(config)["machine_rank"]
    # one spec per machine: the nodes of a multi-node run share the output folder
    spec = output / (SPEC_FILE if machine_rank == 0 else f"{SPEC_FILE[:-5]}-{machine_rank}.json")
    child_options = {k: _jsonable(v) for k, v in options.items()}
    # The children only train; pushing and printing stay with this process.
    for key in ("push_repo", "push_only", "dry_run", "as_json"):
        child_options[key] = None
    spec.write_text(json.dumps({"options": child_options, "sft": _jsonable(sft)}, indent=2), encoding="utf-8")
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
    if machine_rank != 0:
        # Another node trained its share; the main node scores, exports and pushes.
        echo(f"machine {machine_rank}: training processes finished; the main machine (rank 0) selects the best epoch")
        return None
    summary = load_summary(output)
    if summary is None:
        raise DartHubError(f"the training processes ended without writing {output}/training_summary.json")
    return summary


def load_summary(output: str | Path) -> dict[str, Any] | None:
    path = Path(output) / SUMMARY_FILE
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


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
