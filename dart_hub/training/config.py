"""Training settings: the paper's defaults, a flat recipe YAML mapped 1:1 onto TRL's `SFTConfig`,
and the CLI flags on top.

Precedence (lowest first): `PAPER_DEFAULTS` < the YAML file (`--config`) < the CLI flags.

A recipe is one flat mapping, as in open-r1 / `trl sft --config`: every key is either a field of
`trl.SFTConfig` (which includes all of `transformers.TrainingArguments`), passed through as is, or
one of the train command's own settings (`TRAIN_KEYS`: student, data, validation_size, ...).
Anything else is an error naming the key. Values are checked by `SFTConfig` itself; strings are
converted to numbers / booleans when the field is numeric / boolean (PyYAML reads `5e-6` as a
string).
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from dart_hub.errors import DartHubError

# LIMO's own training (GAIR-NLP/LIMO train/examples/train_limo.yaml), which the DART paper
# follows: full fine-tune, lr 5e-6, 15 epochs, cosine, no warmup, bf16, 16384 tokens, batch 1,
# a checkpoint per epoch (DART picks the best one on validation), logging every step.
PAPER_DEFAULTS: dict[str, Any] = {
    "num_train_epochs": 15,
    "learning_rate": 5e-6,
    "lr_scheduler_type": "cosine",
    "warmup_steps": 0,
    "max_length": 16384,
    "per_device_train_batch_size": 1,
    "gradient_accumulation_steps": 1,
    "save_strategy": "epoch",
    "logging_steps": 1,
    # dart-hub's choices (not in the paper):
    # - checkpoints hold the model only (no optimizer state): 15 full optimizer states of a 3B
    #   model are about half a terabyte. Set `save_only_model: false` to be able to resume.
    "save_only_model": True,
    "report_to": "none",
}

# Settings of `dart-hub train` itself that a recipe may also carry (click parameter names).
TRAIN_KEYS = (
    "student",
    "student_revision",
    "data",
    "static",
    "split",
    "data_revision",
    "preset",
    "question_column",
    "solution_column",
    "answer_column",
    "system_prompt",
    "validation_source",
    "validation_size",
    "validation_max_tokens",
    "validation_engine",
    "keep_checkpoints",
    "select_best",
    "answer_timeout",
    "lora",
    "lora_rank",
    "lora_alpha",
    "lora_dropout",
    "objective",
    "dail_lambda",
    "dail_kl",
    "dail_chunk_size",
)


def require_trl() -> None:
    """A one-line error instead of an ImportError when the `train` extra is missing."""
    import importlib.util

    if importlib.util.find_spec("trl") is None:
        raise DartHubError('dart-hub train needs TRL: pip install "dart-hub[train]" (trl, peft)')


LORA_LEARNING_RATE = 1e-4  # --lora without a learning rate: LIMO's 5e-6 is for full fine-tuning


def require_peft() -> None:
    import importlib.util

    if importlib.util.find_spec("peft") is None:
        raise DartHubError('dart-hub train --lora needs PEFT: pip install "dart-hub[train]" (trl, peft)')


@functools.cache
def sft_fields() -> dict[str, Any]:
    """SFTConfig's init fields -> their resolved type hints."""
    require_trl()
    from trl import SFTConfig

    hints = typing.get_type_hints(SFTConfig)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(SFTConfig) if f.init}


@functools.cache
def grpo_fields() -> dict[str, Any]:
    """GRPOConfig's init fields -> their resolved type hints (`--objective grpo`)."""
    require_trl()
    from trl import GRPOConfig

    hints = typing.get_type_hints(GRPOConfig)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(GRPOConfig) if f.init}


def config_fields() -> dict[str, Any]:
    """Keys a recipe may set: SFTConfig's and GRPOConfig's (which one applies depends on the
    objective: `check_objective_keys`)."""
    return {**grpo_fields(), **sft_fields()}


def check_objective_keys(keys, objective: str) -> None:
    """A one-line error for a config key the objective's trainer config does not have."""
    if objective == "grpo":
        wrong = sorted(k for k in keys if k not in grpo_fields())
        if wrong:
            raise DartHubError(f"{', '.join(wrong)}: SFTConfig setting(s) that --objective grpo does not take (GRPOConfig has no such field)")
        return
    wrong = sorted(k for k in keys if k not in sft_fields())
    if wrong:
        raise DartHubError(f"{', '.join(wrong)}: GRPOConfig setting(s), only for --objective grpo")


def _unknown_key(key: str, where: str) -> DartHubError:
    choices = [*config_fields(), *TRAIN_KEYS]
    close = difflib.get_close_matches(key, choices, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return DartHubError(
        f"unknown key '{key}' in {where}{hint}: keys are trl.SFTConfig (or, for --objective grpo, "
        f"GRPOConfig) fields or dart-hub train settings ({', '.join(TRAIN_KEYS)})"
    )


def load_recipe_yaml(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Read a flat training YAML -> (SFTConfig keys, train-command keys). Unknown key: error."""
    path = Path(path)
    if not path.is_file():
        raise DartHubError(f"training config {path} not found; pass a YAML file of SFTConfig keys")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DartHubError(f"training config {path} is not valid YAML: {' '.join(str(error).split())}") from error
    if not isinstance(data, dict):
        raise DartHubError(f"training config {path} must be a flat mapping of SFTConfig keys to values")
    sft: dict[str, Any] = {}
    train: dict[str, Any] = {}
    fields = config_fields()
    for key, value in data.items():
        key = str(key)
        if key in TRAIN_KEYS:
            train[key] = value
        elif key in fields:
            sft[key] = coerce(key, value)
        else:
            raise _unknown_key(key, str(path))
    return sft, train


def check_sft_keys(values: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate and coerce a mapping of SFTConfig (or GRPOConfig) keys given from code (e.g. a recipe section)."""
    fields = config_fields()
    out = {}
    for key, value in values.items():
        if key not in fields:
            raise _unknown_key(key, where)
        out[key] = coerce(key, value)
    return out


def _allowed_types(hint: Any) -> tuple[type, ...]:
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        found: list[type] = []
        for arg in typing.get_args(hint):
            found.extend(_allowed_types(arg))
        return tuple(found)
    if isinstance(hint, type):
        return (hint,)
    return ()


def coerce(key: str, value: Any) -> Any:
    """YAML strings -> numbers/booleans for numeric/boolean fields (`5e-6` is a string in YAML 1.1)."""
    if not isinstance(value, str):
        return value
    allowed = _allowed_types(config_fields().get(key, Any))
    if not allowed or str in allowed or any(issubclass(t, str) for t in allowed):
        return value
    text = value.strip()
    if bool in allowed and text.lower() in ("true", "false", "yes", "no"):
        return text.lower() in ("true", "yes")
    if type(None) in allowed and text.lower() in ("none", "null", "~"):
        return None
    for kind in (int, float):
        if kind in allowed:
            try:
                return kind(text)
            except ValueError:
                continue
    if float in allowed or int in allowed:
        raise DartHubError(f"training setting '{key}' must be a number, got {value!r}")
    return value


def precision_defaults(sft: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
    """bf16 (the paper's) where the device supports it, else float32 with a note.

    Nothing is changed when the user set `bf16` or `fp16`. The weights are loaded in float32
    (TRL's default) so that bf16 is mixed precision: pure-bf16 weights would lose most updates
    of size lr=5e-6.
    """
    if "bf16" in sft or "fp16" in sft:
        return {}, None
    import torch

    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return {"bf16": True}, None
    where = "on CPU" if not torch.cuda.is_available() else "on this GPU"
    return {"bf16": False}, f"bf16 is not supported {where}: training in float32 (the paper uses bf16)"


def resolve_sft_kwargs(
    yaml_sft: dict[str, Any], cli_sft: dict[str, Any], output_dir: str | Path
) -> tuple[dict[str, Any], list[str]]:
    """PAPER_DEFAULTS < YAML < CLI (None values on the CLI mean "not given"), plus precision."""
    kwargs = dict(PAPER_DEFAULTS)
    kwargs.update(yaml_sft)
    kwargs.update({k: v for k, v in cli_sft.items() if v is not None})
    kwargs["output_dir"] = str(output_dir)
    notes: list[str] = []
    extra, note = precision_defaults({**yaml_sft, **{k: v for k, v in cli_sft.items() if v is not None}})
    kwargs.update(extra)
    if note:
        notes.append(note)
    return kwargs, notes


def make_trl_config(name: str, kwargs: dict[str, Any], what: str):
    """`trl.<name>(**kwargs)` (SFTConfig, GRPOConfig); its own validation errors become one-line
    DartHubErrors naming `what`."""
    require_trl()
    import trl

    try:
        return getattr(trl, name)(**kwargs)
    except (ValueError, TypeError) as error:
        raise DartHubError(f"invalid {what}: {' '.join(str(error).split())}") from error


def make_sft_config(kwargs: dict[str, Any]):
    """`SFTConfig(**kwargs)`; its own validation errors become one-line DartHubErrors."""
    return make_trl_config("SFTConfig", kwargs, "training settings")
