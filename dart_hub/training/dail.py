"""`dart-hub train --objective dail`: DAIL's contrastive distillation with a `Trainer` subclass.

Rows (from a `dart-hub adapt --method dail` folder) carry three conversations that share the
assistant response: `messages` (plain: system?/user/assistant), `privileged_messages` and
`negative_messages` (the privileged and negative prompts; a trailing assistant turn, when
present, must be the same response and is dropped). Each row becomes token ids:

    prompt_ids / privileged_prompt_ids / negative_prompt_ids   chat template + generation prompt
    response_ids                                                the plain conversation's tokens after its prompt

The response is cut so that the longest view fits `max_length`. The loss is
`dart_hub.training.dail_loss.dail_loss`; the references are the initial weights: the LoRA model
with its adapter disabled (`--lora`), else a frozen copy of the student (twice the weights in
memory). Epochs, checkpoints, per-epoch selection, the card and the push are `train`'s own.
"""

from __future__ import annotations

import copy
from typing import Any

from dart_hub.errors import DartHubError
from dart_hub.training.dail_loss import DEFAULT_CHUNK_SIZE, DEFAULT_LAMBDA, KL_DIRECTIONS, REVERSE

OBJECTIVE = "dail"
PROMPT_COLUMNS = {"privileged_prompt_ids": "privileged_messages", "negative_prompt_ids": "negative_messages"}

# Skip reasons of rows the objective cannot use.
NO_DAIL_PROMPTS = "no_dail_prompts"
RESPONSE_MISMATCH = "dail_response_mismatch"
NO_ROOM_FOR_RESPONSE = "dail_prompt_fills_max_length"


def objective_record(lam: float, kl: str, chunk_size: int, lora: bool) -> dict[str, Any]:
    """What the summary and the card say about the objective."""
    return {
        "name": OBJECTIVE,
        "lambda": lam,
        "kl": kl,
        "chunk_size": chunk_size,
        "reference": "the initial weights: LoRA adapter disabled" if lora else "the initial weights: a frozen copy",
        "formula": (
            "mean over response tokens of KL(p_t || P_t) - lambda * KL(p_t || N_t)"
            if kl == REVERSE
            else "mean over response tokens of KL(P_t || p_t) - lambda * KL(N_t || p_t)"
        ),
    }


def _ids(tokenizer, messages: list[dict[str, str]], generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, add_generation_prompt=generation_prompt, tokenize=True, return_dict=True)
    return list(out["input_ids"])


def featurize(tokenizer, row: dict[str, Any], max_length: int) -> dict[str, Any] | str:
    """A row -> the collator's token ids, or a skip reason."""
    messages = row["messages"]
    response_text = messages[-1]["content"]
    views = {"prompt_ids": messages[:-1]}
    for key, column in PROMPT_COLUMNS.items():
        prompt = row.get(column)
        if not prompt:
            return NO_DAIL_PROMPTS
        if prompt[-1]["role"] == "assistant":
            if prompt[-1]["content"] != response_text:
                return RESPONSE_MISMATCH
            prompt = prompt[:-1]
        views[key] = prompt
    ids = {key: _ids(tokenizer, prompt, True) for key, prompt in views.items()}
    full = _ids(tokenizer, messages, False)
    plain = ids["prompt_ids"]
    if full[: len(plain)] != plain:
        raise DartHubError(
            "the chat template does not render the plain prompt as a prefix of the conversation; "
            "DAIL needs a template where it does (set chat_template_path in --config)"
        )
    response = full[len(plain) :]
    eos = tokenizer.eos_token_id
    if eos in response:  # drop what the template adds after the end of the turn (e.g. "\n")
        response = response[: len(response) - response[::-1].index(eos)]
    room = max_length - max(len(v) for v in ids.values())
    if room < 1 or not response:
        return NO_ROOM_FOR_RESPONSE
    return {**ids, "response_ids": response[:room]}


def featurize_rows(tokenizer, rows: list[dict[str, Any]], max_length: int) -> tuple[list[dict[str, Any]], dict[str, int]]:
    features, skipped = [], {}
    for row in rows:
        out = featurize(tokenizer, row, max_length)
        if isinstance(out, str):
            skipped[out] = skipped.get(out, 0) + 1
        else:
            features.append(out)
    return features, skipped


def check_columns(rows: list[dict[str, Any]]) -> None:
    if rows and not any(row.get(column) for row in rows for column in PROMPT_COLUMNS.values()):
        raise DartHubError(
            "--objective dail needs `privileged_messages` and `negative_messages` columns next to "
            "`messages`: train on a `dart-hub adapt --method dail` output (or use --objective sft)"
        )


def _trainer_class():
    import torch
    from transformers import Trainer

    from dart_hub.training.dail_loss import dail_loss

    class DailTrainer(Trainer):
        """`Trainer` whose loss is DAIL's; everything else (schedule, checkpoints) is the Trainer's."""

        def __init__(self, *args, dail: dict[str, Any], reference_model=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.dail = dail
            self.reference_model = reference_model
            if reference_model is not None:
                reference_model.to(self.args.device)
            # The loss is a mean over the micro-batch's response tokens: the Trainer averages
            # micro-batches over gradient accumulation.
            self.model_accepts_loss_kwargs = False
            self._dail_sums = {"kl_privileged": 0.0, "kl_negative": 0.0, "count": 0}

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            out = dail_loss(
                model,
                inputs,
                reference_model=self.reference_model,
                lam=self.dail["lambda"],
                kl=self.dail["kl"],
                chunk_size=self.dail["chunk_size"],
            )
            if model.training:
                self._dail_sums["kl_privileged"] += out.kl_privileged
                self._dail_sums["kl_negative"] += out.kl_negative
                self._dail_sums["count"] += 1
            return (out.loss, {}) if return_outputs else out.loss

        def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
            inputs = self._prepare_inputs(inputs)
            with torch.no_grad():
                loss = self.compute_loss(model, inputs)
            return loss.detach(), None, None

        def log(self, logs, *args, **kwargs):
            count = self._dail_sums["count"]
            if count and "loss" in logs:  # training logs: the two KL terms since the last log
                logs["kl_privileged"] = round(self._dail_sums["kl_privileged"] / count, 6)
                logs["kl_negative"] = round(self._dail_sums["kl_negative"] / count, 6)
                self._dail_sums = {"kl_privileged": 0.0, "kl_negative": 0.0, "count": 0}
            return super().log(logs, *args, **kwargs)

    return DailTrainer


def build_dail_trainer(
    student: str,
    train_rows: list[dict[str, Any]],
    validation_rows: list[dict[str, Any]],
    sft_kwargs: dict[str, Any],
    student_revision: str | None = None,
    *,
    peft_config=None,
    lam: float = DEFAULT_LAMBDA,
    kl: str = REVERSE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
):
    """(DailTrainer, LossPlan, config): the same triple as `trainer.build_trainer`."""
    import datasets
    from transformers import AutoModelForCausalLM

    from dart_hub.training.config import make_sft_config, require_trl
    from dart_hub.training.dail_loss import DailCollator
    from dart_hub.training.trainer import LossPlan, _save_in_bf16_callback, load_tokenizer

    require_trl()
    if kl not in KL_DIRECTIONS:
        raise DartHubError(f"--dail-kl must be one of {', '.join(KL_DIRECTIONS)}")
    check_columns(train_rows)
    kwargs = dict(sft_kwargs)
    kwargs["remove_unused_columns"] = False  # the collator reads our own columns
    if validation_rows and "eval_strategy" not in sft_kwargs:
        kwargs["eval_strategy"] = kwargs.get("save_strategy", "epoch")
        if kwargs["eval_strategy"] == "steps" and "save_steps" in kwargs:
            kwargs.setdefault("eval_steps", kwargs["save_steps"])
    config = make_sft_config(kwargs)
    tokenizer = load_tokenizer(student, student_revision, bool(kwargs.get("trust_remote_code")))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    train_features, skipped = featurize_rows(tokenizer, train_rows, config.max_length)
    if not train_features:
        raise DartHubError(f"no DAIL training example is usable ({skipped}); check the adapted data and --max-length")
    eval_features, _ = featurize_rows(tokenizer, validation_rows, config.max_length) if config.eval_strategy != "no" else ([], {})
    if not eval_features and config.eval_strategy != "no":
        config = make_sft_config({**kwargs, "eval_strategy": "no"})  # nothing to compute a loss on

    init = dict(config.model_init_kwargs or {})
    if student_revision:
        init.setdefault("revision", student_revision)
    init.setdefault("trust_remote_code", bool(kwargs.get("trust_remote_code")))
    try:
        model = AutoModelForCausalLM.from_pretrained(student, **init)
    except (OSError, ValueError) as error:
        raise DartHubError(f"could not load student '{student}': {' '.join(str(error).split())[:300]}") from error
    reference = None
    if peft_config is None:
        reference = copy.deepcopy(model).requires_grad_(False).eval()
    else:
        from peft import get_peft_model

        model = get_peft_model(model, peft_config)
        if config.gradient_checkpointing:
            model.enable_input_require_grads()
    dail = {"lambda": float(lam), "kl": kl, "chunk_size": int(chunk_size)}
    try:
        trainer = _trainer_class()(
            model=model,
            args=config,
            train_dataset=datasets.Dataset.from_list(train_features),
            eval_dataset=datasets.Dataset.from_list(eval_features) if eval_features else None,
            data_collator=DailCollator(tokenizer.pad_token_id, padding_side="right"),
            processing_class=tokenizer,
            dail=dail,
            reference_model=reference,
            # as for SFT: full fine-tune checkpoints are written in bf16 when training in bf16
            callbacks=[_save_in_bf16_callback()] if config.bf16 and peft_config is None else None,
        )
    except (ValueError, OSError) as error:
        raise DartHubError(f"could not set up DAIL training: {' '.join(str(error).split())[:500]}") from error
    record = objective_record(lam, kl, chunk_size, peft_config is not None)
    note = f"DAIL: {record['formula']}, lambda {lam:g}, {kl} KL; references: {record['reference']}"
    if skipped:
        note += f"; rows skipped: {dict(sorted(skipped.items()))}"
    plan = LossPlan(OBJECTIVE, {}, note)
    return trainer, plan, config
