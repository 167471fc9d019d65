"""The train stage as one call: resolve the settings (defaults, --config YAML, flags), train in
one process or launch several, score the checkpoints, keep the best, push."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from dart_hub.errors import DartHubError
from dart_hub.evaluation.run import DEFAULT_MAX_TOKENS

# Defaults of the train settings that a YAML file may also set (see dart_hub.training.config).
TRAIN_DEFAULTS: dict[str, Any] = {
    "student": None,
    "student_revision": None,
    "data": None,
    "static": False,
    "split": "train",
    "data_revision": None,
    "preset": None,
    "question_column": None,
    "solution_column": None,
    "answer_column": None,
    "system_prompt": None,
    "validation_source": "heldout",
    "validation_size": None,  # dart_hub.training.validation: 5% held out, or all of a benchmark
    "validation_max_tokens": DEFAULT_MAX_TOKENS,  # the evaluation budget
    "validation_engine": "auto",
    "keep_checkpoints": False,
    "select_best": True,
    "answer_timeout": 5.0,
    "lora": False,
    "lora_rank": 16,
    "lora_alpha": None,
    "lora_dropout": 0.05,
    "objective": "sft",
    "dail_lambda": 0.1,
    "dail_kl": "reverse",
    "dail_chunk_size": 1024,
}


# CLI flag -> SFTConfig field.
SFT_FLAGS = {
    "epochs": "num_train_epochs",
    "learning_rate": "learning_rate",
    "max_length": "max_length",
    "batch_size": "per_device_train_batch_size",
    "gradient_accumulation_steps": "gradient_accumulation_steps",
    "seed": "seed",
}


def run(sft: dict[str, Any] | None = None, **o: Any) -> dict[str, Any] | None:
    """Run `train` with the command's options (as click passes them). `sft`: extra SFTConfig
    keys from code (e.g. a recipe's `train.sft` section), between the YAML file and the flags."""
    from dart_hub.training.config import (
        TRAIN_KEYS,
        check_sft_keys,
        load_recipe_yaml,
        resolve_sft_kwargs,
    )
    from dart_hub.training.validation import ValidationSource, describe_validation

    yaml_sft: dict[str, Any] = {}
    yaml_train: dict[str, Any] = {}
    if o.get("config_file") is not None:
        yaml_sft, yaml_train = load_recipe_yaml(o["config_file"])
    if sft:
        yaml_sft = {**yaml_sft, **check_sft_keys(dict(sft), "the train settings")}
    settings = dict(TRAIN_DEFAULTS)
    settings.update(yaml_train)
    settings.update({k: o[k] for k in TRAIN_KEYS if o.get(k) is not None})

    if settings["objective"] not in ("sft", "dail", "grpo"):
        raise DartHubError(f"unknown objective '{settings['objective']}' in --config: sft, dail or grpo")
    _check_objective_options(settings["objective"], o, yaml_sft, yaml_train)
    ValidationSource.parse(settings["validation_source"])  # a bad name fails before anything loads
    output = o.get("output") or yaml_sft.get("output_dir")
    if not output:
        raise DartHubError("--output is required (or output_dir in --config)")
    output = Path(output)

    if o.get("push_only"):
        if not o.get("push_repo"):
            raise DartHubError("--push-only needs --push-to-hub REPO")
        return _push(output, o, settings, quiet=o.get("quiet", False) or o.get("as_json") is None)  # from Python: nothing printed

    for key in ("student", "data"):
        if not settings.get(key):
            raise DartHubError(f"--{key} is required (or `{key}:` in --config)")
    if not o.get("dry_run") and settings["objective"] != "grpo":
        _check_fresh_output(output, yaml_sft)

    from dart_hub.training.launch import (
        in_distributed_run,
        is_main_rank,
        launch,
        resolve_num_processes,
    )

    quiet = o.get("quiet") or o.get("as_json")
    echo = (lambda _message: None) if quiet else (lambda message: click.echo(message, err=True))
    device = o.get("device") or "auto"
    child = in_distributed_run()
    if not o.get("dry_run") and not child:
        _check_device(device, o)  # before anything is loaded
    num_processes = resolve_num_processes(o.get("num_processes"), o.get("accelerate_config"))
    if not o.get("dry_run") and not child and (num_processes > 1 or o.get("accelerate_config") is not None):
        if o.get("accelerate_config") is None and device != "cpu":
            o = {**o, "accelerate_config": _launch_by_memory(settings, yaml_sft, o, num_processes, echo)}
        # The processes resolve the settings themselves: this one stays off the GPUs.
        summary = launch(o, sft, output, num_processes, echo=echo)
    else:
        cli_sft = {field: o.get(flag) for flag, field in SFT_FLAGS.items()}
        if settings["objective"] == "grpo":
            from dart_hub.training.grpo import GRPO_FLAGS, resolve_grpo_kwargs

            cli_grpo = {**cli_sft, **{field: o.get(flag) for flag, field in GRPO_FLAGS.items()}}
            sft_kwargs, notes = resolve_grpo_kwargs(
                yaml_sft, cli_grpo, output, lora=bool(settings.get("lora")), prompts_per_step=o.get("grpo_prompts_per_step")
            )
            if not o.get("dry_run"):
                notes += _grpo_resume(output, sft_kwargs)
        else:
            sft_kwargs, notes = resolve_sft_kwargs(yaml_sft, cli_sft, output)
        notes += _launch_settings(sft_kwargs, yaml_sft, cli_sft, device, o.get("accelerate_config"), num_processes)
        if settings["objective"] != "grpo" and settings.get("lora") and "learning_rate" not in yaml_sft and cli_sft.get("learning_rate") is None:
            from dart_hub.training.config import LORA_LEARNING_RATE

            sft_kwargs["learning_rate"] = LORA_LEARNING_RATE
            notes.append(f"LoRA: learning rate {LORA_LEARNING_RATE:g} (the paper's 5e-6 is for full fine-tuning)")

        from dart_hub.training.run import TrainRequest, plan_training, run_training

        request = TrainRequest(output=output, **{k: settings[k] for k in TRAIN_KEYS})
        if o.get("dry_run"):
            plan = plan_training(request, sft_kwargs, notes)
            plan["processes"] = num_processes
            plan["memory"] = _memory_plan(settings, sft_kwargs, o.get("accelerate_config"), num_processes)
            if o.get("as_json") is None:  # called from Python (dart_hub.api): the plan is returned, not printed
                pass
            elif o.get("as_json"):
                click.echo(json.dumps(plan, sort_keys=True))
            else:
                click.echo(f"would train {request.student} on {plan['rows']['train']} rows ({plan['rows']['validation']} held out)")
                click.echo(f"  validation: {describe_validation(plan['validation'])}")
                click.echo(f"  loss: {plan['loss']['mode']} ({plan['loss']['note']})")
                launcher = f", accelerate config {o['accelerate_config']}" if o.get("accelerate_config") else ""
                click.echo(f"  processes: {num_processes}{launcher}")
                if plan["memory"]:
                    click.echo(f"  memory (arithmetic, docs/training.md): {plan['memory']['text']}")
                for key, value in plan["hyperparameters"].items():
                    click.echo(f"  {key}: {value}")
                for note in notes:
                    click.echo(f"  note: {note}")
            return plan
        if not child or is_main_rank():
            for note in notes:
                echo(f"note: {note}")
        # Trainer / TRL print their logs on stdout: keep stdout for our result (--json).
        with contextlib.redirect_stdout(sys.stderr):
            summary = run_training(request, sft_kwargs, notes, echo=echo)
        if child:
            return summary  # the launching process pushes and prints
    if summary is None:  # pragma: no cover - only non-main ranks return None
        return None
    if o.get("push_repo"):
        summary["push"] = _push(output, o, settings, quiet=True)
    return summary


def _check_device(device: str, o: dict[str, Any]) -> None:
    """No silent CPU fallback (dart_hub.gpu): GPU work asked for and no GPU seen stops here."""
    from dart_hub.gpu import require_gpu

    if device == "cpu":
        return
    if device == "cuda":
        require_gpu("--device cuda")
    elif (o.get("num_processes") or 1) > 1:
        require_gpu(f"--num-processes {o['num_processes']}")
    elif o.get("accelerate_config") is not None:
        from dart_hub.training.launch import read_accelerate_config

        if not read_accelerate_config(o["accelerate_config"]).get("use_cpu"):
            require_gpu("--accelerate-config")


def _memory_plan(settings: dict[str, Any], kwargs: dict[str, Any], accelerate_config: Any, processes: int) -> dict[str, Any] | None:
    """The per-GPU memory estimate of this launch (dart_hub.training.memory), None when the
    student's shape is unknown or the objective is GRPO."""
    from dart_hub.training.distributed import current_kind
    from dart_hub.training.memory import estimate, student_shape

    shape = student_shape(settings["student"], settings.get("student_revision"))
    if shape is None or settings.get("objective") == "grpo":
        return None
    kind = current_kind(accelerate_config, processes)
    memory = estimate(
        shape, kind=kind.kind, zero_stage=kind.zero_stage, processes=processes, tokens=int(kwargs.get("max_length") or 16384),
        lora=bool(settings.get("lora")), objective=settings.get("objective", "sft"), batch=int(kwargs.get("per_device_train_batch_size") or 1),
    )  # fmt: skip
    return {"launch": kind.label, "parameters": shape.parameters, "per_gpu_gb": round(memory.total, 1),
            "text": f"{memory.describe()} under {kind.label}" + (f" over {processes} processes" if processes > 1 else "")}  # fmt: skip


def _launch_by_memory(settings: dict[str, Any], yaml_sft: dict[str, Any], o: dict[str, Any], processes: int, echo) -> str | None:
    """No accelerate config given: the shipped ZeRO-3 one when plain DDP would not fit the GPUs
    by the memory arithmetic of docs/training.md (dart_hub.training.memory), else None (DDP)."""
    from dart_hub.training.memory import choose_launch, gpu_memory_gb, student_shape

    if settings.get("objective") == "grpo":
        return None  # GRPO's memory is not this arithmetic's (generation, group size)
    gpu_gb = gpu_memory_gb()
    shape = student_shape(settings["student"], settings.get("student_revision"))
    if gpu_gb is None or shape is None:
        return None
    tokens = int(o.get("max_length") or yaml_sft.get("max_length") or 16384)
    batch = int(o.get("batch_size") or yaml_sft.get("per_device_train_batch_size") or 1)
    chosen, note = choose_launch(shape, gpu_gb, processes, tokens=tokens, lora=bool(settings.get("lora")),
                                 objective=settings.get("objective", "sft"), batch=batch)  # fmt: skip
    echo(f"note: {note}")
    return chosen


def _launch_settings(
    kwargs: dict[str, Any], yaml_sft: dict[str, Any], cli_sft: dict[str, Any], device: str,
    accelerate_config: Any, processes: int,
) -> list[str]:  # fmt: skip
    """Settings the launch decides: gradient checkpointing for DDP / DeepSpeed / FSDP
    (dart_hub.training.distributed) and CPU training with --device cpu."""
    from dart_hub.training.distributed import checkpointing_settings, current_kind

    given = {**yaml_sft, **{k: v for k, v in cli_sft.items() if v is not None}}
    notes = checkpointing_settings(kwargs, given, current_kind(accelerate_config, processes))
    if device == "cpu":
        kwargs["use_cpu"] = True
        if "bf16" not in given and "fp16" not in given and kwargs.get("bf16"):
            kwargs["bf16"] = False
            notes.append("--device cpu: training in float32 (the paper uses bf16)")
    return notes


# Options that only one objective takes (CLI flag -> the setting's name in `settings` / `o`).
DAIL_OPTIONS = ("dail_lambda", "dail_kl", "dail_chunk_size")


GRPO_OPTIONS = (
    "grpo_num_generations", "grpo_prompts_per_step", "grpo_max_completion_tokens", "grpo_temperature",
    "grpo_top_p", "grpo_beta", "grpo_max_steps", "grpo_save_steps",
)  # fmt: skip


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _check_objective_options(objective: str, o: dict[str, Any], yaml_sft: dict[str, Any], yaml_train: dict[str, Any]) -> None:
    """One-line errors for options the objective does not take."""
    from dart_hub.training.config import check_objective_keys

    given_grpo = [_flag(k) for k in GRPO_OPTIONS if o.get(k) is not None]
    if given_grpo and objective != "grpo":
        raise DartHubError(f"{', '.join(given_grpo)} only apply to --objective grpo (this run trains with --objective {objective})")
    if objective == "grpo":
        given_dail = [_flag(k) for k in DAIL_OPTIONS if o.get(k) is not None or k in yaml_train]
        if given_dail:
            raise DartHubError(f"{', '.join(given_dail)} only apply to --objective dail, not grpo")
        if o.get("max_length") is not None:
            raise DartHubError("--max-length is SFT's sequence length; with --objective grpo set --grpo-max-completion-tokens (prompts are not cut)")
        if o.get("batch_size") is not None:
            raise DartHubError("--batch-size does not apply to --objective grpo: set --grpo-prompts-per-step (each prompt gets --grpo-num-generations completions)")
    check_objective_keys(yaml_sft, objective)


def _grpo_resume(output: Path, kwargs: dict[str, Any]) -> list[str]:
    """GRPO resumes from the last checkpoint of OUTPUT by itself (as `mapper train` does)."""
    if kwargs.get("resume_from_checkpoint") or not output.is_dir():
        return []
    from transformers.trainer_utils import get_last_checkpoint

    last = get_last_checkpoint(str(output))
    if last is None:
        return []
    from dart_hub.training.run import load_summary

    earlier = ((load_summary(output) or {}).get("objective") or {}).get("name", "grpo")
    if earlier != "grpo":
        raise DartHubError(f"{output} holds checkpoints of an earlier --objective {earlier} run; pass a new --output for GRPO")
    kwargs["resume_from_checkpoint"] = last
    return [f"resuming GRPO from {Path(last).name}"]


def _check_fresh_output(output: Path, yaml_sft: dict[str, Any]) -> None:
    if yaml_sft.get("resume_from_checkpoint"):
        return
    if output.is_dir() and any(output.glob("checkpoint-*")):
        raise DartHubError(
            f"{output} already holds checkpoints of an earlier run; pass a new --output, or set "
            f"`resume_from_checkpoint: true` in --config to continue it (needs save_only_model: false)"
        )


def _push(output: Path, o: dict[str, Any], settings: dict[str, Any], quiet: bool) -> dict[str, Any]:
    from dart_hub.publish.model_card import parse_compare, push_model

    result = push_model(
        output,
        o["push_repo"],
        eval_dirs=list(o.get("eval_dirs") or ()),
        compare=parse_compare(o.get("compare_evals") or ()),
        private=bool(o.get("private")),
        base_model=o.get("base_model"),
        dataset_id=o.get("dataset_id"),
        license=o.get("license_"),
    )
    if not quiet:
        click.echo(f"pushed {result['files']} files to {result['url']} (commit {result['commit'][:12]})")
    return result
