"""`dart-hub mapper train`: GRPO on the mapper with the weighted mapper rewards (TRL
`GRPOTrainer`). Our design after METHOD-MAPPER.md section 6 (the paper's RL settings are
unknown): group size 8, temperature 1.0, a small KL (beta 0.01) to the initial mapper.

The frozen student scores rewrites through its own scorer (`--scorer transformers|vllm`,
--scorer-device), so the mapper can train on one device while the student runs on another.
Checkpoints go to OUTPUT/checkpoint-*; the same command resumes from the last one. The final
mapper is saved to OUTPUT/final (what `dart-hub adapt --method mapper --mapper OUTPUT/final`
takes), and OUTPUT/mapper_run.json records the settings, the scorer, the reward curve (TRL's log history) and the
compute: wall time x devices, summed over resumed sessions, as GPU-hours on GPUs (the number
the "cheaper than RL on the student" comparison needs).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError
from dart_hub.methods.mapper.method import MapperPrompts
from dart_hub.methods.mapper.rewards import MapperRewards, RewardConfig
from dart_hub.training.grpo import reward_curve

RUN_FILE = "mapper_run.json"


@dataclass(frozen=True)
class MapperTrainConfig:
    """GRPO settings of the mapper (ours; the paper's are unknown)."""

    num_generations: int = 8  # group size: rewrites per prompt compared with each other
    prompts_per_step: int = 1  # prompts per optimizer step (x num_generations completions)
    temperature: float = 1.0
    top_p: float = 1.0
    max_completion_length: int = 2048
    beta: float = 0.01  # KL to the initial mapper
    learning_rate: float = 1e-6
    max_steps: int = 200
    epochs: float = 1.0  # used when max_steps is 0
    gradient_accumulation_steps: int = 1
    save_steps: int = 50
    logging_steps: int = 1
    seed: int = 0
    bf16: bool | None = None  # None: on a GPU that supports it
    rewards: RewardConfig = field(default_factory=RewardConfig)

    def __post_init__(self) -> None:
        checks = [
            (self.num_generations >= 2, "--num-generations must be at least 2 (GRPO compares rewrites within a group)"),
            (self.prompts_per_step >= 1, "--prompts-per-step must be at least 1"),
            (self.max_steps >= 0 and self.epochs > 0, "--max-steps must be >= 0 and --epochs positive"),
            (self.learning_rate > 0 and self.beta >= 0, "--learning-rate must be positive and --beta >= 0"),
        ]
        for ok, message in checks:
            if not ok:
                raise DartHubError(message)
        if not self.rewards.active():
            raise DartHubError("every mapper reward has weight 0: nothing to train on")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def grpo_dataset(problems, prompts: MapperPrompts):
    """The GRPO rows: the mapper's chat prompt and the columns the rewards read."""
    import datasets

    return datasets.Dataset.from_list([
        {"prompt": prompts.messages(p.question, p.solution), "question": p.question, "solution": p.solution, "answer": p.answer}
        for p in problems
    ])  # fmt: skip


def train_mapper(*, mapper: str, student: str, problems, prompts: MapperPrompts, output: Path, config: MapperTrainConfig,
                 checker, scorer, progress: bool = True, source: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    """Run (or resume) GRPO on the mapper; returns the run record written to OUTPUT/mapper_run.json."""
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOConfig, GRPOTrainer

    from dart_hub.training.compute import compute_log as make_compute_log
    from dart_hub.training.compute import device_kind, previous_sessions

    output = Path(output)
    output.mkdir(parents=True, exist_ok=True)
    rewards = MapperRewards(config.rewards, checker, scorer)
    kind, devices = device_kind()
    bf16 = config.bf16 if config.bf16 is not None else kind == "cuda" and _bf16_ok()
    args = GRPOConfig(
        output_dir=str(output),
        per_device_train_batch_size=config.prompts_per_step * config.num_generations,
        gradient_accumulation_steps=config.gradient_accumulation_steps,
        num_generations=config.num_generations,
        temperature=config.temperature,
        top_p=config.top_p,
        max_completion_length=config.max_completion_length,
        beta=config.beta,
        learning_rate=config.learning_rate,
        max_steps=config.max_steps if config.max_steps else -1,
        num_train_epochs=config.epochs,
        reward_weights=rewards.weights(),
        save_steps=config.save_steps,
        logging_steps=config.logging_steps,
        seed=config.seed,
        bf16=bf16,
        use_cpu=kind == "cpu",
        report_to="none",
        disable_tqdm=not progress,
        save_only_model=False,
    )  # fmt: skip
    trainer = GRPOTrainer(model=mapper, reward_funcs=rewards.functions(), args=args, train_dataset=grpo_dataset(problems, prompts))
    last = get_last_checkpoint(str(output)) if output.exists() else None
    previous = previous_sessions(output, _read_run(output)) if last else []
    compute_log = make_compute_log(output, previous, kind, devices, last)
    trainer.add_callback(compute_log)
    trainer.train(resume_from_checkpoint=last)
    final = output / "final"
    trainer.save_model(str(final))
    trainer.processing_class.save_pretrained(str(final))
    compute = compute_log.record()
    record = {
        "mapper": mapper,
        "student": student,
        "source": source,
        "config": config.to_dict(),
        "prompts": asdict(prompts),
        "reward_functions": [f.__name__ for f in rewards.functions()],
        "reward_weights": rewards.weights(),
        "scorer": scorer.describe() if hasattr(scorer, "describe") else None,  # which scorer computed the alignment reward
        "steps": trainer.state.global_step,
        "reward_curve": reward_curve(trainer.state.log_history),
        "log_history": trainer.state.log_history,
        **compute,  # sessions, device, device_hours, gpu_hours (dart_hub.training.compute)
        "final": str(final),
    }
    (output / RUN_FILE).write_text(json.dumps(record, indent=2, default=str), encoding="utf-8")
    return record


def _read_run(output: Path) -> dict[str, Any]:
    path = output / RUN_FILE
    if not path.exists():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return {}


def _bf16_ok() -> bool:
    import torch

    return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
