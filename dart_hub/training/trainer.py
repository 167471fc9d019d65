"""TRL `SFTTrainer` on `messages` rows, with the loss on the assistant turn only.

How the assistant-only loss is obtained (TRL >= 1.0):

1. `assistant_only_loss=True` (TRL's own option) when the student's chat template has
   `{% generation %}` markers, or when TRL ships a training version of it
   (`trl.chat_template_utils.get_training_chat_template`: Qwen2.5 / Qwen3 / Llama 3 and others;
   the Qwen2.5-Instruct template is swapped for TRL's `qwen2_5_training.jinja` during training
   only, the saved tokenizer keeps the original);
2. otherwise each conversation is split into prompt = [system, user] and completion =
   [assistant] and trained with TRL's `completion_only_loss=True` (prompt tokens get label -100).
   For dart-hub's single-turn rows this masks exactly the same tokens as 1., with any template.

A recipe that sets `assistant_only_loss` or `completion_only_loss` itself decides: setting both
to false trains on every token.

Precision. With bf16 the Trainer trains in mixed precision on float32 master weights (pure bf16
weights would round away most updates of size lr=5e-6), except under DeepSpeed, whose bf16 mode
keeps its own float32 master copy: there the model is loaded in bf16 (half the memory before
sharding). Either way every checkpoint is written in bf16 (`SaveInBf16`): a 3B checkpoint is
about 6 GB instead of 12, and the published model has the base model's size.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError

ASSISTANT_ONLY = "assistant_only"  # TRL assistant_only_loss on `messages`
COMPLETION_ONLY = "completion_only"  # TRL completion_only_loss on prompt/completion
FULL = "full"  # every token


@dataclass(frozen=True)
class LossPlan:
    mode: str
    settings: dict[str, Any]  # SFTConfig keys to set
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "settings": self.settings, "note": self.note}


def load_tokenizer(student: str, revision: str | None, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(student, revision=revision, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as error:
        cause = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise DartHubError(
            f"could not load the tokenizer of student '{student}': {cause}. Pass a local model "
            f"folder or a Hub model id (and set HF_TOKEN for gated models)"
        ) from error


def _template_tokenizer(tokenizer, chat_template_path: str | None):
    """The tokenizer whose chat template the trainer will use (SFTConfig.chat_template_path)."""
    if not chat_template_path:
        return tokenizer
    path = Path(chat_template_path)
    if path.is_file() and path.suffix in (".jinja", ".j2"):
        tokenizer.chat_template = path.read_text(encoding="utf-8")
        return tokenizer
    return load_tokenizer(chat_template_path, None)


def plan_loss(tokenizer, sft_kwargs: dict[str, Any]) -> LossPlan:
    """Choose how to restrict the loss to the assistant turn (see the module docstring)."""
    from dart_hub.training.config import require_trl

    require_trl()
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    explicit_assistant = sft_kwargs.get("assistant_only_loss")
    explicit_completion = sft_kwargs.get("completion_only_loss")
    if explicit_assistant:
        return LossPlan(ASSISTANT_ONLY, {"assistant_only_loss": True}, "assistant_only_loss set by the config")
    if explicit_completion:
        return LossPlan(COMPLETION_ONLY, {"completion_only_loss": True}, "completion_only_loss set by the config")
    if explicit_assistant is False or explicit_completion is False:
        return LossPlan(FULL, {"assistant_only_loss": False, "completion_only_loss": False}, "loss on every token (set by the config)")

    template_owner = _template_tokenizer(tokenizer, sft_kwargs.get("chat_template_path"))
    template = template_owner.chat_template
    if not template:
        raise DartHubError(
            "the student's tokenizer has no chat template; set one with `chat_template_path` in the "
            "training config (a .jinja file or a model whose template to use)"
        )
    if has_generation_markers(template):
        return LossPlan(ASSISTANT_ONLY, {"assistant_only_loss": True}, "chat template has {% generation %} markers")
    try:
        patched = get_training_chat_template(template_owner)
    except ValueError:
        patched = None
    if patched is not None:
        return LossPlan(
            ASSISTANT_ONLY,
            {"assistant_only_loss": True},
            "TRL's training version of the chat template (with {% generation %} markers) is used for masking",
        )
    return LossPlan(
        COMPLETION_ONLY,
        {"assistant_only_loss": False, "completion_only_loss": True},
        "chat template without {% generation %} markers and unknown to TRL: rows split into prompt "
        "(system+user) and completion (assistant), loss on the completion (TRL completion_only_loss)",
    )


def to_dataset(rows: list[dict[str, Any]], mode: str):
    """`datasets.Dataset` in the format the loss mode needs (only the columns TRL reads)."""
    import datasets

    if mode == COMPLETION_ONLY:
        return datasets.Dataset.from_list(
            [{"prompt": row["messages"][:-1], "completion": row["messages"][-1:]} for row in rows]
        )
    return datasets.Dataset.from_list([{"messages": row["messages"]} for row in rows])


def cast_checkpoint_to_bf16(folder: Path) -> int:
    """Rewrite a saved model folder's float32 tensors as bf16 (and say so in config.json).
    Returns the number of tensors cast."""
    import torch
    from safetensors.torch import load_file, save_file

    cast = 0
    sizes = 0
    for path in sorted(folder.glob("*.safetensors")):
        tensors = load_file(str(path))
        if any(t.dtype == torch.float32 for t in tensors.values()):
            for name, tensor in tensors.items():
                if tensor.dtype == torch.float32:
                    tensors[name] = tensor.to(torch.bfloat16)
                    cast += 1
            tmp = path.with_suffix(".tmp")
            save_file(tensors, str(tmp), metadata={"format": "pt"})
            tmp.replace(path)
        sizes += sum(t.numel() * t.element_size() for t in tensors.values())
    if cast:
        for name in ("config.json", "model.safetensors.index.json"):
            meta_path = folder / name
            if not meta_path.is_file():
                continue
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            if name == "config.json":
                meta["dtype"] = "bfloat16"
                if "torch_dtype" in meta:
                    meta["torch_dtype"] = "bfloat16"
            elif isinstance(meta.get("metadata"), dict):
                meta["metadata"]["total_size"] = sizes
            meta_path.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return cast


def _save_in_bf16_callback():
    from transformers import TrainerCallback

    class SaveInBf16(TrainerCallback):
        """After each checkpoint save, the main process rewrites its weights in bf16."""

        def on_save(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
                if folder.is_dir():
                    cast_checkpoint_to_bf16(folder)
            return control

    return SaveInBf16()


def lora_config(rank: int, alpha: int | None = None, dropout: float = 0.05):
    """LoRA on every linear layer of the student (the QLoRA paper's finding: all layers, not
    only attention), alpha = 2 x rank and dropout 0.05 unless given (DAIL: alpha = rank, 0)."""
    from dart_hub.training.config import require_peft

    require_peft()
    from peft import LoraConfig

    return LoraConfig(
        r=rank, lora_alpha=2 * rank if alpha is None else alpha, lora_dropout=dropout,
        target_modules="all-linear", task_type="CAUSAL_LM",
    )  # fmt: skip


def uses_deepspeed(kwargs: dict[str, Any]) -> bool:
    """DeepSpeed from the training config or from an accelerate config's launch."""
    import os

    return bool(kwargs.get("deepspeed")) or os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() == "true"


def build_trainer(
    student: str,
    train_rows: list[dict[str, Any]],
    validation_rows: list[dict[str, Any]],
    sft_kwargs: dict[str, Any],
    student_revision: str | None = None,
    lora_rank: int | None = None,
    lora_alpha: int | None = None,
    lora_dropout: float = 0.05,
):
    """(SFTTrainer, LossPlan, SFTConfig). See the module docstring for the precision."""
    from dart_hub.training.config import make_sft_config, require_trl

    require_trl()
    from trl import SFTTrainer

    kwargs = dict(sft_kwargs)
    tokenizer = load_tokenizer(student, student_revision, bool(kwargs.get("trust_remote_code")))
    plan = plan_loss(tokenizer, kwargs)
    kwargs.update(plan.settings)
    if student_revision:
        init = dict(kwargs.get("model_init_kwargs") or {})
        init.setdefault("revision", student_revision)
        kwargs["model_init_kwargs"] = init
    if kwargs.get("bf16") and uses_deepspeed(kwargs):
        init = dict(kwargs.get("model_init_kwargs") or {})
        init.setdefault("dtype", "bfloat16")  # DeepSpeed's bf16 mode holds the fp32 master copy
        kwargs["model_init_kwargs"] = init
    if validation_rows and "eval_strategy" not in sft_kwargs:
        # Validation loss per epoch, next to the validation accuracy computed after training.
        kwargs["eval_strategy"] = kwargs.get("save_strategy", "epoch")
        if kwargs["eval_strategy"] == "steps" and "save_steps" in kwargs:
            kwargs.setdefault("eval_steps", kwargs["save_steps"])
    config = make_sft_config(kwargs)
    train_dataset = to_dataset(train_rows, plan.mode)
    eval_dataset = to_dataset(validation_rows, plan.mode) if validation_rows and config.eval_strategy != "no" else None
    try:
        trainer = SFTTrainer(
            model=student,
            args=config,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            processing_class=tokenizer,
            callbacks=[_save_in_bf16_callback()] if config.bf16 and lora_rank is None else None,
            peft_config=lora_config(lora_rank, lora_alpha, lora_dropout) if lora_rank is not None else None,
        )
    except (ValueError, OSError) as error:
        raise DartHubError(f"could not set up training: {' '.join(str(error).split())[:500]}") from error
    if len(trainer.train_dataset) == 0:
        # TRL drops rows whose assistant turn was truncated away entirely.
        raise DartHubError(
            f"no training example is left after truncation to max_length={config.max_length}: every "
            f"conversation's prompt fills the budget. Raise --max-length"
        )
    return trainer, plan, config
