"""One training run: data -> validation slice -> SFTTrainer -> per-epoch checkpoints -> selection.

Output folder:

    OUTPUT/checkpoint-N/            one per epoch (the Trainer's; model files only by default)
    OUTPUT/best/                    the selected checkpoint's model (hard links), ready to push
    OUTPUT/final/                   instead of best/ with --no-select-best (the last epoch)
    OUTPUT/training_summary.json    settings, data, per-epoch losses and validation scores, choice

Under `accelerate launch` / DeepSpeed every process trains; only the main process scores the
checkpoints and writes the summary (the others return as soon as training is done).
"""

from __future__ import annotations

import contextlib
import enum
import gc
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dart_hub import __version__
from dart_hub.errors import DartHubError
from dart_hub.store import write_atomic
from dart_hub.training.compute import compute_log as make_compute_log
from dart_hub.training.compute import device_kind, previous_sessions
from dart_hub.training.launch import SUMMARY_FILE, load_summary  # noqa: F401 (re-exported)

SECRET_KEYS = frozenset({"hub_token", "push_to_hub_token"})

# Hyperparameters shown in the summary's short view and on the model card.
CARD_HYPERPARAMETERS = (
    "num_train_epochs",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "bf16",
    "optim",
    "weight_decay",
    "max_grad_norm",
    "seed",
    "assistant_only_loss",
    "completion_only_loss",
)
# ... and for --objective grpo (GRPOConfig has no max_length / loss-masking fields).
GRPO_CARD_HYPERPARAMETERS = (
    "max_steps",
    "num_train_epochs",
    "learning_rate",
    "lr_scheduler_type",
    "warmup_steps",
    "num_generations",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_completion_length",
    "temperature",
    "top_p",
    "beta",
    "loss_type",
    "bf16",
    "seed",
)


@dataclass
class TrainRequest:
    """What `dart-hub train` was asked to do, besides the SFTConfig settings."""

    student: str
    data: str
    output: Path
    static: bool = False
    split: str = "train"
    data_revision: str | None = None
    preset: str | None = None
    question_column: str | None = None
    solution_column: str | None = None
    answer_column: str | None = None
    system_prompt: str | None = None
    student_revision: str | None = None
    validation_size: float | None = None  # None: 5% held out, or all of a benchmark source
    validation_max_tokens: int = 16384  # the evaluation budget (dart_hub.evaluation.run.DEFAULT_MAX_TOKENS)
    validation_source: str = "heldout"  # or a benchmark: dart_hub.training.validation
    validation_engine: str = "auto"  # vLLM over every visible GPU when installed, else transformers
    keep_checkpoints: bool = False  # False: delete the checkpoints that can no longer be chosen
    select_best: bool = True
    answer_timeout: float = 5.0
    lora: bool = False  # LoRA adapters instead of a full fine-tune (merged into best/ at export)
    lora_rank: int = 16
    lora_alpha: int | None = None  # None: 2 x rank
    lora_dropout: float = 0.05
    objective: str = "sft"  # or "dail": dart_hub.training.dail, "grpo": dart_hub.training.grpo
    dail_lambda: float = 0.1
    dail_kl: str = "reverse"
    dail_chunk_size: int = 1024

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["output"] = str(self.output)
        return out


def run_training(
    request: TrainRequest,
    sft_kwargs: dict[str, Any],
    notes: list[str] | None = None,
    echo: Callable[[str], None] = print,
) -> dict[str, Any] | None:
    """Train, select, summarize. Returns the summary (None on non-main processes)."""
    from dart_hub.training.validation import select_validation

    notes = list(notes or [])
    started = time.monotonic()
    output = Path(request.output)
    data = _load_data(request)
    seed = int(sft_kwargs.get("seed", 42))
    train_rows, validation_rows, validation_items, validation = select_validation(request, data.rows, seed)
    if request.select_best and not validation_items:
        notes.append("no validation problem could be held out: the last epoch is kept")
    if not train_rows:
        raise DartHubError("no training rows left after holding out the validation slice")
    notes += _objective_notes(data, request)

    with contextlib.ExitStack() as stack:
        checker = None
        if request.objective == "grpo":  # the reward's answer checker lives as long as training
            from dart_hub.answers import AnswerChecker

            checker = stack.enter_context(AnswerChecker(timeout=request.answer_timeout))
        trainer, plan, config = _build_trainer(request, train_rows, validation_rows, sft_kwargs, checker)
        length = f"{config.max_steps} steps" if config.max_steps > 0 else f"{config.num_train_epochs:g} epochs"
        echo(
            f"training {request.student} on {len(train_rows)} rows ({len(validation_rows)} held out), "
            f"{length}, loss: {plan.mode}"
            + (f", LoRA rank {request.lora_rank}" if request.lora else "")
        )
        resume = config.resume_from_checkpoint
        previous = previous_sessions(output, load_summary(output)) if resume else []
        compute_log = make_compute_log(
            output, previous, *device_kind(trainer.accelerator.num_processes), _resumed_from(resume, output)
        )
        trainer.add_callback(compute_log)
        trainer.train(resume_from_checkpoint=resume)
        trained = time.monotonic()
    is_main = trainer.accelerator.is_main_process
    compute = compute_log.record()
    peak_memory = _peak_gpu_memory()  # this process's GPU (rank 0's on several)
    log_history = list(trainer.state.log_history)
    # Free the training model, its optimizer and the DeepSpeed / FSDP state before loading
    # checkpoints to score them (dart_hub.training.distributed).
    from dart_hub.training.distributed import release_training_state

    release_training_state(trainer)
    del trainer
    _free_memory()
    if not is_main:
        return None

    from dart_hub.training.select import choose_best, epoch_losses, export_model, list_checkpoints

    checkpoints = list_checkpoints(output)
    if not checkpoints:
        raise DartHubError(
            f"training finished but no checkpoint-* folder is in {output}; keep save_strategy "
            f"'epoch' (the default) so that each epoch can be scored"
        )
    losses = epoch_losses(log_history)
    epochs = [{**c, **losses.get(c["epoch"], {})} for c in checkpoints]

    best = None
    scoring = None
    if validation_items:
        from dart_hub.answers import AnswerChecker
        from dart_hub.training.select import prunable, prune_checkpoint, selection_plan

        scoring = selection_plan(request.validation_engine)
        gpus = scoring["data_parallel_size"]
        echo(f"scoring {len(epochs)} checkpoints with {scoring['engine']}" + (f" over {gpus} GPUs" if gpus > 1 else ""))
        with AnswerChecker(timeout=request.answer_timeout) as checker:
            for epoch in epochs:
                epoch["validation"] = _score(output / epoch["checkpoint"], validation_items, checker, request, scoring)
                v = epoch["validation"]
                where = f"step {epoch['step']}" if request.objective == "grpo" else f"epoch {epoch['epoch']}"
                echo(f"{where}: validation {v['correct']}/{v['total']} ({v['accuracy']:.1%})")
                if not request.keep_checkpoints:
                    # disk: one checkpoint left at the end (two when the run can be resumed)
                    for loser in prunable(epochs, keep_last=not config.save_only_model):
                        prune_checkpoint(output, loser)
        best = choose_best(epochs)
    chosen = best or epochs[-1]
    model_dir = "best" if best is not None else "final"
    export_model(output / chosen["checkpoint"], output / model_dir)

    summary = {
        "dart_hub_version": __version__,
        "status": "finished",
        "student": request.student,
        "student_revision": request.student_revision,
        "request": request.to_dict(),
        "data": data.source,
        "rows": {
            "train": len(train_rows),
            "validation": len(validation_rows),
            "skipped": data.skipped,
        },
        "validation_ids": [item.id for items in validation_items.values() for item in items],
        "loss": plan.to_dict(),
        "objective": objective_record(request, config),
        "notes": notes,
        "hyperparameters": _hyperparameters(config, request.objective),
        "sft_config": _jsonable(config.to_dict()),
        "epochs": epochs,
        "selection": {
            "enabled": best is not None,
            "metric": "validation accuracy: greedy answers graded by mathematical equivalence; ties -> earlier epoch",
            "max_tokens": request.validation_max_tokens,
            "source": validation,
            "best_epoch": best["epoch"] if best else None,
            "best_checkpoint": best["checkpoint"] if best else None,
            "engine": scoring,
            "pruned": [e["checkpoint"] for e in epochs if e.get("pruned")],
        },
        "chosen_epoch": chosen["epoch"],
        "chosen_checkpoint": chosen["checkpoint"],
        "model_dir": model_dir,
        "model_path": str(output / model_dir),
        "seconds": {
            "training": round(trained - started, 1),
            "selection": round(time.monotonic() - trained, 1),
        },
        "memory": {"peak_allocated_gb": peak_memory},
        # this training's compute, summed over resumed sessions: sessions, device, device_hours,
        # gpu_hours (the same fields as `mapper train`'s run record)
        **compute,
    }
    if request.objective == "grpo":
        from dart_hub.training.grpo import reward_stats

        summary["rewards"] = reward_stats(log_history)
    write_atomic(output / SUMMARY_FILE, json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return summary


def _resumed_from(resume: Any, output: Path) -> str | None:
    if isinstance(resume, str) and resume:
        return resume
    if resume is True:
        from transformers.trainer_utils import get_last_checkpoint

        return get_last_checkpoint(str(output))
    return None


def _hyperparameters(config, objective: str) -> dict[str, Any]:
    keys = GRPO_CARD_HYPERPARAMETERS if objective == "grpo" else CARD_HYPERPARAMETERS
    return {k: _jsonable(getattr(config, k, None)) for k in keys}


def objective_record(request: TrainRequest, config=None) -> dict[str, Any]:
    """The training objective and its parameters (summary, card)."""
    if request.objective == "grpo":
        from dart_hub.training.grpo import objective_record as grpo_record

        return grpo_record(config) if config is not None else {"name": "grpo"}
    if request.objective == "dail":
        from dart_hub.training.dail import objective_record as dail_record

        return dail_record(request.dail_lambda, request.dail_kl, request.dail_chunk_size, request.lora)
    return {"name": "sft"}


def _objective_notes(data, request: TrainRequest) -> list[str]:
    """A note when the adapted data was made for another objective (its dart_config.json)."""
    named = (data.source.get("adapt") or {}).get("objective") or "sft"
    if named == request.objective or request.objective == "grpo":
        return []  # GRPO takes only the prompts and gold answers: any objective's data will do
    return [f"the data names the training objective '{named}' (its dart_config.json); training with --objective {request.objective}"]


def _build_trainer(request: TrainRequest, train_rows, validation_rows, sft_kwargs, checker=None):
    """(trainer, LossPlan, config) for the request's objective."""
    if request.objective == "grpo":
        from dart_hub.training.grpo import build_grpo_trainer
        from dart_hub.training.trainer import lora_config

        peft_config = lora_config(request.lora_rank, request.lora_alpha, request.lora_dropout) if request.lora else None
        return build_grpo_trainer(request.student, train_rows, sft_kwargs, checker, request.student_revision, peft_config=peft_config)
    if request.objective == "dail":
        from dart_hub.training.dail import build_dail_trainer

        peft_config = None
        if request.lora:
            from dart_hub.training.trainer import lora_config

            peft_config = lora_config(request.lora_rank, request.lora_alpha, request.lora_dropout)
        return build_dail_trainer(
            request.student, train_rows, validation_rows, sft_kwargs, request.student_revision,
            peft_config=peft_config, lam=request.dail_lambda, kl=request.dail_kl, chunk_size=request.dail_chunk_size,
        )  # fmt: skip
    if request.objective != "sft":
        raise DartHubError(f"unknown training objective '{request.objective}': sft, dail or grpo")
    from dart_hub.training.trainer import build_trainer

    return build_trainer(
        request.student, train_rows, validation_rows, sft_kwargs, request.student_revision,
        lora_rank=request.lora_rank if request.lora else None,
        lora_alpha=request.lora_alpha, lora_dropout=request.lora_dropout,
    )  # fmt: skip


def plan_training(request: TrainRequest, sft_kwargs: dict[str, Any], notes: list[str] | None = None) -> dict[str, Any]:
    """What a run would do, without loading the model: data, validation slice, loss mode and
    the resolved SFTConfig (so a bad setting fails here)."""
    from dart_hub.training.config import make_sft_config
    from dart_hub.training.trainer import load_tokenizer, plan_loss
    from dart_hub.training.validation import select_validation

    data = _load_data(request)
    notes = [*(notes or []), *_objective_notes(data, request)]
    train_rows, validation_rows, items, validation = select_validation(request, data.rows, int(sft_kwargs.get("seed", 42)))
    tokenizer = load_tokenizer(request.student, request.student_revision, bool(sft_kwargs.get("trust_remote_code")))
    example = train_rows[0]["messages"] if train_rows else None
    if request.objective == "grpo":
        from dart_hub.training.grpo import OBJECTIVE, grpo_rows, make_grpo_config
        from dart_hub.training.trainer import LossPlan

        config = make_grpo_config(sft_kwargs)
        prompts, skipped = grpo_rows(train_rows)
        if not prompts:
            raise DartHubError(f"no GRPO prompt is usable ({skipped}): GRPO needs a gold answer per problem (--answer-column)")
        example = prompts[0]["prompt"]
        record = objective_record(request, config)
        plan = LossPlan(OBJECTIVE, {}, f"GRPO on {len(prompts)} prompts, {record['reward']}" + (f"; rows skipped: {skipped}" if skipped else ""))
    elif request.objective == "dail":
        from dart_hub.training.dail import OBJECTIVE, check_columns, featurize_rows
        from dart_hub.training.trainer import LossPlan

        config = make_sft_config(sft_kwargs)
        check_columns(train_rows)
        _, skipped = featurize_rows(tokenizer, train_rows, config.max_length)
        record = objective_record(request)
        plan = LossPlan(OBJECTIVE, {}, f"{record['formula']}, lambda {request.dail_lambda:g}" + (f"; rows skipped: {skipped}" if skipped else ""))
    else:
        plan = plan_loss(tokenizer, sft_kwargs)
        config = make_sft_config({**sft_kwargs, **plan.settings})
    return {
        "request": request.to_dict(),
        "data": data.source,
        "rows": {"train": len(train_rows), "validation": len(validation_rows), "skipped": data.skipped},
        "validation_ids": [item.id for group in items.values() for item in group],
        "validation": validation,
        "example": example,
        "loss": plan.to_dict(),
        "objective": objective_record(request, config),
        "notes": list(notes or []),
        "hyperparameters": _hyperparameters(config, request.objective),
        "sft_config": _jsonable(config.to_dict()),
    }


def _score(checkpoint: Path, items, checker, request: TrainRequest, plan: dict[str, Any] | None = None) -> dict[str, Any]:
    from dart_hub.training.select import score_checkpoint

    plan = plan or {"engine": request.validation_engine, "data_parallel_size": 1}
    try:
        return score_checkpoint(
            checkpoint,
            items,
            checker,
            max_tokens=request.validation_max_tokens,
            engine_kind=plan["engine"],
            data_parallel_size=plan["data_parallel_size"],
        )
    finally:
        _free_memory()


def _peak_gpu_memory() -> float | None:
    """Peak GPU memory torch allocated in this process during training, in GB (None on CPU)."""
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return round(torch.cuda.max_memory_allocated() / 1e9, 2)
    except ImportError:  # pragma: no cover
        pass
    return None


def _free_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover
        pass


def _jsonable(value: Any) -> Any:
    """JSON-safe copy (enums -> values, unknown objects -> str), Hub tokens redacted
    (TrainingArguments.to_dict masks them already; this is the belt to its braces)."""
    if isinstance(value, dict):
        return {
            str(k): ("<redacted>" if v else None) if str(k) in SECRET_KEYS else _jsonable(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def _load_data(request):
    """The training rows the request names (adapt output, messages file, Hub id, or --static)."""
    from dart_hub.training.data import load_train_data

    return load_train_data(
        request.data,
        static=request.static,
        split=request.split,
        revision=request.data_revision,
        preset=request.preset,
        question_column=request.question_column,
        solution_column=request.solution_column,
        answer_column=request.answer_column,
        system_prompt=request.system_prompt,
        prompts_only=request.objective == "grpo",
    )
