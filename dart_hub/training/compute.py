"""Training compute, recorded the same way by `dart-hub train` (training_summary.json) and
`dart-hub mapper train` (mapper_run.json), so that the cost of the two can be compared (the
mapper paper's "cheaper than RL on the target" claim).

Each training session (a run, or a resumed continuation of it) adds
`{"seconds", "devices", "device", "resumed_from"}`: its wall time and the number of devices it
trained on (GPUs, or CPU processes). `device_hours` = sum of seconds x devices / 3600;
`gpu_hours` counts the CUDA sessions only (0 on CPU; the wall time is in `sessions`).
"""

from __future__ import annotations

from typing import Any


def device_kind(processes: int | None = None) -> tuple[str, int]:
    """("cuda", GPUs used) or ("cpu", processes). `processes`: one device per training process
    (accelerate launch); None: every visible GPU (one process driving them), 1 on CPU."""
    import torch

    if torch.cuda.is_available():
        return "cuda", int(processes) if processes else torch.cuda.device_count()
    return "cpu", int(processes) if processes else 1


def compute_record(previous: list[dict[str, Any]], seconds: float, kind: str, devices: int, resumed_from: str | None) -> dict[str, Any]:
    """The record's compute fields after one more session of `seconds` on `devices` x `kind`."""
    sessions = [*previous, {"seconds": round(seconds, 1), "devices": devices, "device": kind, "resumed_from": resumed_from}]
    device_hours = sum(s["seconds"] * s["devices"] for s in sessions) / 3600
    gpu_hours = sum(s["seconds"] * s["devices"] for s in sessions if s["device"] == "cuda") / 3600
    return {"sessions": sessions, "device": kind, "device_hours": round(device_hours, 6), "gpu_hours": round(gpu_hours, 6)}
