"""`mapper train` as one call: load the source, build the rewards, the scorer and the answer
checker, run GRPO (dart_hub.methods.mapper.train), and sum the run up."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dart_hub.errors import DartHubError
from dart_hub.progress import library_progress_bars


@dataclass
class MapperTrainResult:
    """What `mapper_train` did: the summary `dart-hub mapper train --json` prints (final,
    steps, first/last mean reward, scorer, device, device_hours, gpu_hours, run_file), the
    trained mapper's folder (OUTPUT/final) and the run record (OUTPUT/mapper_run.json)."""

    summary: dict[str, Any]
    final: Path
    run_file: Path


def run(spec) -> MapperTrainResult:
    """Train the mapper of a `MapperTrainSpec`; the same spec resumes from the last checkpoint."""
    with library_progress_bars(not spec.quiet):
        summary = _train(spec)
    return MapperTrainResult(summary=summary, final=Path(summary["final"]), run_file=Path(summary["run_file"]))


def _train(spec) -> dict[str, Any]:
    from dart_hub.answers import AnswerChecker
    from dart_hub.methods.mapper.method import load_mapper_prompts
    from dart_hub.methods.mapper.rewards import NEEDS_STUDENT, RewardConfig
    from dart_hub.methods.mapper.scorer import make_scorer
    from dart_hub.methods.mapper.train import MapperTrainConfig, train_mapper
    from dart_hub.prompts import load_prompts
    from dart_hub.sources import load_source, source_record, source_spec

    o = spec.options()
    rewards = RewardConfig(max_repetition=o["max_repetition"], repetition_ngram=o["repetition_ngram"])
    rewards = rewards.with_weights(o["reward_weights"]).with_settings(o["reward_settings"])
    config = MapperTrainConfig(
        num_generations=o["num_generations"], prompts_per_step=o["prompts_per_step"], temperature=o["temperature"],
        top_p=o["top_p"], max_completion_length=o["max_completion_length"], beta=o["beta"],
        learning_rate=o["learning_rate"], max_steps=o["max_steps"], epochs=o["epochs"],
        gradient_accumulation_steps=o["gradient_accumulation_steps"], save_steps=o["save_steps"], seed=o["seed"],
        rewards=rewards,
    )  # fmt: skip
    mapper_prompts = load_mapper_prompts(o["mapper_prompts"])
    prompts = load_prompts(o["prompts_file"])
    source = load_source(source_spec(o["dataset"], o, o["limit"]))
    if not source.problems:
        raise DartHubError(f"no usable problems in {o['dataset']} ({len(source.skipped)} rows skipped); run `dart-hub inspect {o['dataset']}` to see why")
    scorer = None
    if any(rewards.weights.get(name, 0.0) for name in NEEDS_STUDENT):
        scorer = make_scorer(o["scorer"], o["student"], device=o["scorer_device"], dtype=o["scorer_dtype"], batch_size=o["scorer_batch_size"],
                             system=prompts.sft_system, gpu_memory_utilization=o["scorer_gpu_memory_utilization"])  # fmt: skip
    try:
        with AnswerChecker(timeout=o["answer_timeout"]) as checker:
            record = train_mapper(
                mapper=o["mapper_model"] or o["student"], student=o["student"], problems=source.problems,
                prompts=mapper_prompts, output=o["output"], config=config, checker=checker, scorer=scorer,
                progress=not o["quiet"], source=source_record(source),
            )  # fmt: skip
    finally:
        if scorer is not None:
            scorer.close()  # a vLLM scorer's engine process
    curve = record["reward_curve"]
    return {
        "final": record["final"],
        "steps": record["steps"],
        "first_reward": curve[0]["reward"] if curve else None,
        "last_reward": curve[-1]["reward"] if curve else None,
        "scorer": (record.get("scorer") or {}).get("scorer"),
        "device": record["device"],
        "device_hours": record["device_hours"],
        "gpu_hours": record["gpu_hours"],
        "run_file": str(Path(o["output"]) / "mapper_run.json"),
    }
