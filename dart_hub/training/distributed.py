"""What the launch (plain DDP, DeepSpeed, FSDP) means for the training settings, and leaving it
cleanly before checkpoint selection.

Gradient checkpointing is set here, by code, so that every launch works with TRL's defaults:

- plain DDP and DeepSpeed: `gradient_checkpointing: true` (TRL's default, written out so that
  the summary records it and a later TRL default cannot change the memory arithmetic of
  docs/training.md);
- FSDP with `fsdp_activation_checkpointing: true` (the shipped configs/accelerate/fsdp.yaml):
  `gradient_checkpointing: false`, since FSDP checkpoints the layers itself and the Trainer
  refuses both at once (it raised on every rank at setup). A config that sets
  `gradient_checkpointing: true` explicitly under it is a one-line error.

After `trainer.train()` the process still holds transformers' DeepSpeed config (a global weak
reference to the `HfTrainerDeepSpeedConfig` inside the SFTConfig that the run keeps for its
summary), accelerate's shared state and the process group. `release_training_state` drops them,
so that rank 0's selection engine loads like in a fresh process (transformers refuses a
`device_map` while ZeRO-3 looks enabled).
"""

from __future__ import annotations

import contextlib
import gc
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError


@dataclass(frozen=True)
class LaunchKind:
    """How the training processes share the model."""

    kind: str  # "single", "ddp", "deepspeed", "fsdp"
    zero_stage: int | None = None
    fsdp_activation_checkpointing: bool = False

    @property
    def label(self) -> str:
        if self.kind == "deepspeed":
            return f"DeepSpeed ZeRO-{self.zero_stage}"
        if self.kind == "fsdp":
            return "FSDP full shard"
        return {"single": "one process", "ddp": "plain DDP"}[self.kind]


def _true(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes")


def kind_from_accelerate_config(config: dict[str, Any] | None, processes: int = 1) -> LaunchKind:
    """The launch an accelerate config file (as read by `launch.read_accelerate_config`) asks for."""
    if not config:
        return LaunchKind("ddp" if processes > 1 else "single")
    distributed = str(config.get("distributed_type", "")).upper()
    if distributed == "DEEPSPEED":
        stage = (config.get("deepspeed_config") or {}).get("zero_stage")
        return LaunchKind("deepspeed", zero_stage=int(stage) if stage is not None else None)
    if distributed == "FSDP":
        fsdp = config.get("fsdp_config") or {}
        return LaunchKind("fsdp", fsdp_activation_checkpointing=_true(fsdp.get("fsdp_activation_checkpointing", False)))
    return LaunchKind("ddp" if processes > 1 else "single")


def kind_from_environment(env: dict[str, str] | None = None) -> LaunchKind | None:
    """Inside processes started by `accelerate launch`: the launch its environment describes
    (None outside one)."""
    env = os.environ if env is None else env
    if _true(env.get("ACCELERATE_USE_DEEPSPEED", "")):
        stage = env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE")
        return LaunchKind("deepspeed", zero_stage=int(stage) if stage and stage.isdigit() else None)
    if _true(env.get("ACCELERATE_USE_FSDP", "")):
        return LaunchKind("fsdp", fsdp_activation_checkpointing=_true(env.get("FSDP_ACTIVATION_CHECKPOINTING", "")))
    try:
        world = int(env.get("WORLD_SIZE", "1"))
    except ValueError:
        world = 1
    if world > 1:
        return LaunchKind("ddp")
    return None


def current_kind(accelerate_config: str | Path | None, processes: int) -> LaunchKind:
    """The launch of this run: the environment inside launched processes, else the config file
    the parent was given (for --dry-run and the memory arithmetic)."""
    found = kind_from_environment()
    if found is not None:
        return found
    config = None
    if accelerate_config is not None:
        from dart_hub.training.launch import read_accelerate_config

        config = read_accelerate_config(accelerate_config)
    return kind_from_accelerate_config(config, processes)


def checkpointing_settings(kwargs: dict[str, Any], given: dict[str, Any], kind: LaunchKind) -> list[str]:
    """Set `gradient_checkpointing` in `kwargs` for the launch (see the module docstring).
    `given`: the keys the user set (YAML and flags). Returns notes."""
    explicit = given.get("gradient_checkpointing", given.get("activation_checkpointing"))
    if kind.kind == "fsdp" and kind.fsdp_activation_checkpointing:
        if explicit:
            raise DartHubError(
                "gradient_checkpointing: true and the accelerate config's fsdp_activation_checkpointing: true "
                "cannot be combined (transformers refuses both); remove gradient_checkpointing from the "
                "training config (FSDP checkpoints the layers itself) or set fsdp_activation_checkpointing: false"
            )
        kwargs["gradient_checkpointing"] = False
        kwargs.pop("activation_checkpointing", None)
        return ["FSDP activation checkpointing (accelerate config) replaces the Trainer's gradient_checkpointing"]
    if explicit is None:
        kwargs["gradient_checkpointing"] = True  # TRL's default, written out
    return []


def release_training_state(trainer: Any = None) -> None:
    """Drop what training leaves behind in this process (see the module docstring): everything
    the trainer holds (model, optimizer, DeepSpeed engine; the trainer is unusable afterwards),
    cached GPU memory, then, once every process has got that far, transformers' DeepSpeed
    config, accelerate's shared state and the process group."""
    accelerator = getattr(trainer, "accelerator", None) if trainer is not None else None
    if trainer is not None:
        with contextlib.suppress(Exception):
            if accelerator is not None:
                accelerator.free_memory()
        # model, wrapped model, optimizer, DeepSpeed engine, a reference model (DAIL, GRPO), ...:
        # the caller has taken what it needs (state, logs) before this point
        vars(trainer).clear()
    _empty_gpu_cache()
    # Every process has freed its GPU memory before any goes on: the main process's selection
    # engine (vLLM over every GPU) then finds the other GPUs empty.
    with contextlib.suppress(Exception):
        if accelerator is not None:
            accelerator.wait_for_everyone()
    forget_deepspeed_config()
    with contextlib.suppress(Exception):
        from accelerate.state import AcceleratorState

        AcceleratorState._reset_state()
    with contextlib.suppress(Exception):
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    # The selection engine runs in this process and in vLLM's children: they must not see the
    # launch's DeepSpeed / FSDP switches (transformers reads them when loading a model).
    for key in [k for k in os.environ if k.startswith(("ACCELERATE_USE_", "ACCELERATE_DEEPSPEED_", "FSDP_"))]:
        os.environ.pop(key, None)
    _empty_gpu_cache()


def _empty_gpu_cache() -> None:
    gc.collect()
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def forget_deepspeed_config() -> None:
    """Unset transformers' global DeepSpeed config: with it, `is_deepspeed_zero3_enabled()` stays
    true as long as any SFTConfig of a ZeRO-3 run is alive, and loading a model with a
    `device_map` (every inference engine does) raises."""
    with contextlib.suppress(ImportError):
        from transformers.integrations.deepspeed import unset_hf_deepspeed_config

        unset_hf_deepspeed_config()
