"""`dart-hub mapper train`: train the rewriting mapper with GRPO (our design; docs/mapper.md)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dart_hub.commands.options import source_options
from dart_hub.repetition import DEFAULT_MAX_REPETITION, DEFAULT_NGRAM

TRAIN_HELP = """Train a rewriting mapper with GRPO (TRL GRPOTrainer) to make expert data fit a student.

\b
Own design after "Learning to Adapt SFT Data for Better Reasoning Generalization" (its method
could not be read; this is not a reproduction, docs/mapper.md). For each problem the mapper
(MAPPER, default the student) gets the question and the expert solution and samples
NUM_GENERATIONS rewrites; each is rewarded with weighted reward functions: correctness (+1 /
-1, math-verify against the gold), alignment (the frozen student's mean log-probability per
token of the rewrite given the question alone) and anti-cheating detectors (too_short,
answer_first, copy, repetition). A wrong or missing answer gets every reward's minimum.

\b
Checkpoints go to OUTPUT/checkpoint-*; the same command resumes from the last one. The mapper
is saved to OUTPUT/final (use it with `dart-hub adapt --method mapper --mapper OUTPUT/final`);
OUTPUT/mapper_run.json holds the reward curve and the GPU-hours (wall time x devices).

\b
Example:
  dart-hub mapper train --student Qwen/Qwen2.5-1.5B-Instruct --dataset limo --output runs/mapper
"""


@click.group(help="The rewriting mapper (adapt --method mapper): train it with GRPO.")
def command() -> None:
    pass


@command.command("train", help=TRAIN_HELP, context_settings={"max_content_width": 100})
@click.option("--student", required=True, help="The frozen student whose likelihood rewards the rewrites: Hub id or folder.")
@click.option("--mapper", "mapper_model", default=None, help="The mapper to train (Hub id or folder) [default: the student].")
@click.option("--dataset", required=True, help="Preset (limo, math-qwq-32b), Hub dataset id, or local .jsonl/.json/.parquet file or folder.")
@source_options
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Train on the first N valid problems only.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), required=True, help="Run folder: checkpoints, final/, mapper_run.json.")
@click.option("--num-generations", type=click.IntRange(min=2), default=8, show_default=True, help="GRPO group size: rewrites per prompt.")
@click.option("--prompts-per-step", type=click.IntRange(min=1), default=1, show_default=True, help="Prompts per device and step (each with NUM_GENERATIONS rewrites).")
@click.option("--temperature", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Sampling temperature of the rewrites.")
@click.option("--top-p", type=click.FloatRange(0, 1, min_open=True), default=1.0, show_default=True, help="Top-p of the rewrites.")
@click.option("--max-completion-length", type=click.IntRange(min=1), default=2048, show_default=True, help="Max new tokens per rewrite.")
@click.option("--beta", type=click.FloatRange(min=0), default=0.01, show_default=True, help="KL coefficient to the initial mapper (0: no reference model).")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-6, show_default=True, help="AdamW learning rate.")
@click.option("--max-steps", type=click.IntRange(min=0), default=200, show_default=True, help="Optimizer steps (0: --epochs passes over the data).")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True, help="Passes over the data when --max-steps is 0.")
@click.option("--gradient-accumulation-steps", type=click.IntRange(min=1), default=1, show_default=True, help="Gradient accumulation steps.")
@click.option("--save-steps", type=click.IntRange(min=1), default=50, show_default=True, help="Checkpoint every N steps (resume point).")
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@click.option("--rewards", "reward_weights", default=None, metavar="NAME=W,...", help="Reward weights (correctness, alignment, too_short, answer_first, copy, repetition; 0 switches one off) [default: all 1].")
@click.option("--reward-settings", default=None, metavar="KEY=VALUE,...", help="Reward parameters, e.g. relative=true,align_floor=-10,min_length_ratio=0.5,max_copy=0.6 (docs/mapper.md).")
@click.option("--max-repetition", type=click.FloatRange(0, 1, max_open=True), default=DEFAULT_MAX_REPETITION, show_default=True, help="repetition reward: ratio above which a rewrite is penalised.")
@click.option("--repetition-ngram", type=click.IntRange(min=1), default=DEFAULT_NGRAM, show_default=True, help="n of the word n-grams of the repetition ratio.")
@click.option("--mapper-prompts", type=click.Path(dir_okay=False, path_type=Path), default=None, help="YAML replacing the mapper prompt (keys: rewrite, system).")
@click.option("--prompts", "prompts_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="dart-hub prompts YAML; its sft_system is the system turn the student's likelihood is computed under (as SFT shows the question).")
@click.option("--scorer", type=click.Choice(["transformers", "vllm"]), default="transformers", show_default=True, help="What computes the student's likelihood: transformers (a forward pass, on --scorer-device) or vllm (vLLM prompt log-probabilities; needs vLLM, docs/mapper.md).")
@click.option("--scorer-device", default=None, help="Device of the scorer. transformers: any torch device [default: cuda when available, else cpu]. vllm: vLLM picks its platform; cuda:N starts its engine on GPU N (CUDA_VISIBLE_DEVICES narrowed).")
@click.option("--scorer-batch-size", type=click.IntRange(min=1), default=None, help="Rewrites per scorer call: per forward pass (transformers) [default: 8] or per vLLM generate call (vllm, scheduled by vLLM) [default: 256].")
@click.option("--scorer-dtype", default="auto", show_default=True, help="Scorer dtype: auto, float32, bfloat16, float16 (auto: the model's for transformers; float16 on GPU / float32 on CPU for vllm).")
@click.option("--scorer-gpu-memory-utilization", type=click.FloatRange(0, 1, min_open=True), default=None, help="vllm scorer: share of its GPU vLLM may take [default: 0.9]; lower it when the scorer shares a GPU with the mapper.")
@click.option("--answer-timeout", type=float, default=5.0, show_default=True, help="Seconds before an answer comparison is killed and counted as not equal.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print the run record's summary as JSON on stdout.")
def train(as_json: bool, **options) -> None:
    from dart_hub.api import mapper_train
    from dart_hub.specs import MapperTrainSpec

    options["quiet"] = options["quiet"] or as_json  # --json: no progress bars either
    summary = mapper_train(MapperTrainSpec(**options)).summary
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    click.echo(f"mapper trained: {summary['final']}")
    for key in ("steps", "first_reward", "last_reward", "scorer", "device", "device_hours", "gpu_hours"):
        click.echo(f"  {key}: {summary[key]}")
