"""Training compute, recorded the same way by `dart-hub train` (training_summary.json) and
`dart-hub mapper train` (mapper_run.json), so that the cost of the two can be compared (the
mapper paper's "cheaper than RL on the target" claim).

Each training session (a run, or a resumed continuation of it) adds
`{"seconds", "devices", "device", "resumed_from"}`: its wall time and the number of devices it
trained on (GPUs, or CPU processes). `device_hours` = sum of seconds x devices / 3600;
`gpu_hours` counts the CUDA sessions only (0 on CPU; the wall time is in `sessions`).
OUTPUT/compute.json holds the record so far, rewritten at every checkpoint: a session that is
interrupted still counts, up to its last checkpoint, when the run is resumed.
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


COMPUTE_FILE = "compute.json"


def previous_sessions(output, fallback: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The sessions before a resumed one: OUTPUT/compute.json (written at every checkpoint, so an
    interrupted session counts up to its last checkpoint), else the finished run's record."""
    import json
    from pathlib import Path

    path = Path(output) / COMPUTE_FILE
    if path.is_file():
        try:
            return list(json.loads(path.read_text(encoding="utf-8")).get("sessions") or [])
        except (OSError, ValueError):
            pass
    return list((fallback or {}).get("sessions") or [])


def compute_log(output, previous: list[dict[str, Any]], kind: str, devices: int, resumed_from: str | None):
    """A TrainerCallback that writes OUTPUT/compute.json (the record so far) at every checkpoint
    and at the end of training; `.record()` gives the record at any time."""
    import json
    import time
    from pathlib import Path

    from transformers import TrainerCallback

    from dart_hub.store import write_atomic

    class ComputeLog(TrainerCallback):
        def __init__(self):
            self.started = time.monotonic()
            self.seconds = None  # fixed at the end of training (checkpoint scoring is not counted)

        def record(self) -> dict[str, Any]:
            seconds = self.seconds if self.seconds is not None else time.monotonic() - self.started
            return compute_record(previous, seconds, kind, devices, resumed_from)

        def _write(self, state) -> None:
            if state.is_world_process_zero:
                Path(output).mkdir(parents=True, exist_ok=True)
                write_atomic(Path(output) / COMPUTE_FILE, json.dumps(self.record(), indent=2) + "\n")

        def on_save(self, args, state, control, **kwargs):
            self._write(state)
            return control

        def on_train_end(self, args, state, control, **kwargs):
            self.seconds = time.monotonic() - self.started
            self._write(state)
            return control

    return ComputeLog()
