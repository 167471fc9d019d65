"""`dart-hub train --objective grpo`: direct GRPO on the student with an answer reward (TRL
`GRPOTrainer`), the RL baseline that the mapper's "cheaper than RL on the target" claim is
measured against (docs/mapper.md, docs/training.md).

Rows are `train`'s own (`dart_hub.training.data`: an adapt folder, a `messages` file, a Hub id,
or an expert source with --static). GRPO uses only the prompt, the conversation without its
assistant turn (the system message and the question, exactly as SFT shows them), and the gold
answer; one prompt per problem id (several trajectories of one problem are one prompt), rows
without a gold answer are skipped and counted.

Reward `answer_correct`: 1.0 when the completion's final `\\boxed{}` answer (the last box, with
the boxes joined to it: `dart_hub.answers.final_boxed`) is equivalent to the gold by
`dart_hub.answers.AnswerChecker` (math-verify), 0.0 when it is wrong or there is no box (the
system prompt asks for the box). A binary 0/1 accuracy reward as in DeepSeek-R1 / open-r1.

Defaults are `dart-hub mapper train`'s, so that both RL runs are compared under the same
settings (the mapper paper gives none): group size 8, one prompt per step, temperature 1.0,
top-p 1.0, 2048 new tokens, beta 0.01, learning rate 1e-6 (2e-5 with --lora: 20x, the ratio
of train's SFT LoRA default), 200 steps, a checkpoint every 50 steps with the optimizer state
(so the same command resumes), TRL 1.16's defaults otherwise (loss type, clipping, group-scaled
advantages). Every checkpoint is then scored on the validation problems like an SFT epoch.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dart_hub.errors import DartHubError

OBJECTIVE = "grpo"
REWARD_NAME = "answer_correct"
NO_GOLD = "grpo_no_gold_answer"

# GRPOConfig defaults of `--objective grpo` (`dart-hub mapper train`'s; ours, see the docstring).
GRPO_DEFAULTS: dict[str, Any] = {
    "num_generations": 8,
    "temperature": 1.0,
    "top_p": 1.0,
    "max_completion_length": 2048,
    "beta": 0.01,
    "learning_rate": 1e-6,
    "max_steps": 200,
    "num_train_epochs": 1,
    "save_strategy": "steps",
    "save_steps": 50,
    "save_only_model": False,  # the optimizer state too: the same command resumes
    "logging_steps": 1,
    "report_to": "none",
}
GRPO_LORA_LEARNING_RATE = 2e-5
DEFAULT_PROMPTS_PER_STEP = 1

# `dart-hub train` flags of GRPO -> GRPOConfig field.
GRPO_FLAGS = {
    "grpo_num_generations": "num_generations",
    "grpo_max_completion_tokens": "max_completion_length",
    "grpo_temperature": "temperature",
    "grpo_top_p": "top_p",
    "grpo_beta": "beta",
    "grpo_max_steps": "max_steps",
    "grpo_save_steps": "save_steps",
}


class AnswerReward:
    """TRL reward function: 1.0 for a final boxed answer equivalent to the row's `gold`, else 0.0."""

    __name__ = REWARD_NAME

    def __init__(self, checker):
        self.checker = checker

    def __call__(self, prompts=None, completions: Sequence[Any] = (), gold: Sequence[str] | None = None, **_columns) -> list[float]:
        from dart_hub.answers import final_boxed
        from dart_hub.methods.mapper.rewards import completion_text

        if gold is None:
            raise DartHubError("the GRPO answer reward needs a 'gold' column in the training data")
        answers = [final_boxed(completion_text(c)) for c in completions]
        verdicts = self.checker.equivalent_many([(str(g), a) for g, a in zip(gold, answers, strict=True)])
        return [1.0 if a and ok else 0.0 for a, ok in zip(answers, verdicts, strict=True)]


def grpo_rows(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """`train` rows -> GRPO rows {"prompt": messages without the assistant turn, "gold"}: one per
    problem id; rows without a gold answer are skipped and counted."""
    out, seen, skipped = [], set(), {}
    for row in rows:
        if not str(row.get("gold") or "").strip():
            skipped[NO_GOLD] = skipped.get(NO_GOLD, 0) + 1
            continue
        if row["id"] in seen:
            continue
        seen.add(row["id"])
        messages = row["messages"]
        prompt = messages[:-1] if messages and messages[-1]["role"] == "assistant" else messages
        out.append({"id": row["id"], "prompt": prompt, "gold": str(row["gold"]).strip()})
    return out, skipped


def resolve_grpo_kwargs(
    yaml_config: dict[str, Any], cli: dict[str, Any], output_dir, *, lora: bool, prompts_per_step: int | None
) -> tuple[dict[str, Any], list[str]]:
    """GRPO_DEFAULTS < YAML < CLI (None: not given), plus precision and the batch: each device
    step takes `prompts_per_step` prompts x `num_generations` completions. `max_steps` 0 (or
    --epochs without --grpo-max-steps): train by epochs."""
    from dart_hub.training.config import precision_defaults

    given = {k: v for k, v in cli.items() if v is not None}
    kwargs = {**GRPO_DEFAULTS, **yaml_config, **given}
    notes: list[str] = []
    if "num_train_epochs" in given and "max_steps" not in given and "max_steps" not in yaml_config:
        kwargs["max_steps"] = 0
    if kwargs.get("max_steps") == 0:
        kwargs["max_steps"] = -1  # the Trainer's "no step limit"
    if lora and "learning_rate" not in yaml_config and "learning_rate" not in given:
        kwargs["learning_rate"] = GRPO_LORA_LEARNING_RATE
        notes.append(f"LoRA: GRPO learning rate {GRPO_LORA_LEARNING_RATE:g} (1e-6 is for full fine-tuning)")
    if "per_device_train_batch_size" not in yaml_config:
        kwargs["per_device_train_batch_size"] = (prompts_per_step or DEFAULT_PROMPTS_PER_STEP) * int(kwargs["num_generations"])
    elif prompts_per_step is not None:
        raise DartHubError("--grpo-prompts-per-step and per_device_train_batch_size in --config both set the GRPO batch: keep one")
    kwargs["output_dir"] = str(output_dir)
    extra, note = precision_defaults({**yaml_config, **given})
    kwargs.update(extra)
    if note:
        notes.append(note)
    return kwargs, notes


def make_grpo_config(kwargs: dict[str, Any]):
    """`GRPOConfig(**kwargs)`; its validation errors become one-line DartHubErrors."""
    from dart_hub.training.config import make_trl_config

    return make_trl_config("GRPOConfig", kwargs, "GRPO settings")


def objective_record(config) -> dict[str, Any]:
    """What the summary and the card say about the objective."""
    return {
        "name": OBJECTIVE,
        "reward": f"{REWARD_NAME}: 1 when the final \\boxed{{}} answer is equivalent to the gold (math-verify), else 0",
        "num_generations": config.num_generations,
        "prompts_per_step": config.per_device_train_batch_size // config.num_generations,
        "temperature": config.temperature,
        "top_p": config.top_p,
        "max_completion_length": config.max_completion_length,
        "beta": config.beta,
        "max_steps": config.max_steps,
        "loss_type": _value(config.loss_type),
    }


def _value(value: Any) -> Any:
    return getattr(value, "value", value)


def reward_curve(log_history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per logged GRPO step: the mean weighted reward and each reward function's mean."""
    curve = []
    for entry in log_history:
        if "reward" not in entry:
            continue
        point = {"step": entry.get("step"), "reward": entry["reward"]}
        point.update({k.split("/")[1]: v for k, v in entry.items() if k.startswith("rewards/") and k.endswith("/mean")})
        curve.append(point)
    return curve


def reward_stats(log_history: list[dict[str, Any]]) -> dict[str, Any]:
    """The summary's `rewards`: the curve, the mean reward of its first and last quarter, the
    share of groups without reward variance and the mean completion length (TRL's logs)."""
    curve = reward_curve(log_history)
    values = [p["reward"] for p in curve]
    quarter = max(1, len(values) // 4)
    mean = lambda xs: round(sum(xs) / len(xs), 6) if xs else None  # noqa: E731
    logged = [e for e in log_history if "reward" in e]
    return {
        "function": REWARD_NAME,
        "steps_logged": len(values),
        # groups whose completions all got the same reward give GRPO nothing to learn from
        "zero_std_share": mean([e["frac_reward_zero_std"] for e in logged if "frac_reward_zero_std" in e]),
        "mean_completion_tokens": mean([e["completions/mean_length"] for e in logged if "completions/mean_length" in e]),
        "first": values[0] if values else None,
        "last": values[-1] if values else None,
        "mean_first_quarter": mean(values[:quarter]),
        "mean_last_quarter": mean(values[-quarter:]),
        "curve": curve,
    }


def build_grpo_trainer(
    student: str,
    train_rows: list[dict[str, Any]],
    grpo_kwargs: dict[str, Any],
    checker,
    student_revision: str | None = None,
    *,
    peft_config=None,
):
    """(GRPOTrainer, LossPlan, GRPOConfig): the same triple as `trainer.build_trainer`."""
    import datasets

    from dart_hub.training.config import require_trl
    from dart_hub.training.trainer import LossPlan, load_tokenizer

    require_trl()
    from trl import GRPOTrainer

    kwargs = dict(grpo_kwargs)
    if student_revision:
        kwargs["model_init_kwargs"] = {**(kwargs.get("model_init_kwargs") or {}), "revision": student_revision}
    config = make_grpo_config(kwargs)
    rows, skipped = grpo_rows(train_rows)
    if not rows:
        raise DartHubError(f"no GRPO prompt is usable ({skipped}): GRPO needs a gold answer per problem (--answer-column)")
    tokenizer = load_tokenizer(student, student_revision, bool(kwargs.get("trust_remote_code")))
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    dataset = datasets.Dataset.from_list([{"prompt": r["prompt"], "gold": r["gold"]} for r in rows])
    try:
        trainer = GRPOTrainer(
            model=student, reward_funcs=[AnswerReward(checker)], args=config, train_dataset=dataset,
            processing_class=tokenizer, peft_config=peft_config,
        )  # fmt: skip
    except (ValueError, OSError) as error:
        raise DartHubError(f"could not set up GRPO training: {' '.join(str(error).split())[:500]}") from error
    note = (
        f"GRPO on {len(rows)} prompts: {config.num_generations} completions each at temperature "
        f"{config.temperature:g}, beta {config.beta:g}, reward {REWARD_NAME} (0/1)"
        + (f"; rows skipped: {dict(sorted(skipped.items()))}" if skipped else "")
    )
    return trainer, LossPlan(OBJECTIVE, {}, note), config
