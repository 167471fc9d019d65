"""`dart-hub train`: fine-tune the student on adapted data with TRL, keep the best epoch, publish."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from dart_hub.training.stage import run  # noqa: F401  (the stage, for code written when it lived here; new code calls dart_hub.api)

HELP = """Fine-tune a student on a DART-adapted dataset (TRL SFTTrainer), keep the best epoch.

\b
Defaults are LIMO's training, which the DART paper follows: full fine-tune, learning rate 5e-6,
15 epochs, cosine schedule, no warmup, batch 1, max length 16384, bf16 (float32 where the device
has no bf16, e.g. CPU), a checkpoint per epoch. The loss covers the assistant turn only. After
training, each epoch's checkpoint answers a held-out slice of the training problems (greedy,
graded by mathematical equivalence to the gold answer); the best one (ties: earlier epoch) is
copied to OUTPUT/best and every score goes to OUTPUT/training_summary.json.

\b
Validation (--validation-source): 'heldout' (default, the paper's) holds out
--validation-size (default 5%) of the training problems; a benchmark name (math500,
gsm8k, ...; NAME=PATH_OR_REPO[,split=S] for another copy or split, as in `dart-hub eval
--benchmark-source`) scores the checkpoints on that benchmark instead (all its items unless
--validation-size) and trains on every problem. Answers get --validation-max-tokens, by default
the evaluation budget (16384, as `dart-hub eval`), so the checkpoint is chosen under the
conditions it is evaluated under (the paper does not give its validation budget).

\b
--data is an adapt output folder, a local .jsonl/.parquet file with a `messages` column, or a
Hub dataset id. With --static it is an expert source instead (preset such as limo, Hub id or
local file): the expert traces are trained on unchanged (the paper's Static baseline).

\b
--config takes a flat YAML file whose keys are trl.SFTConfig fields (all of TrainingArguments,
e.g. gradient_accumulation_steps, deepspeed, gradient_checkpointing) or this command's own
settings (student, data, validation_size, ...). CLI flags override the file.

\b
Several GPUs: one training process per GPU is started through `accelerate launch`
(--num-processes, default: the visible GPU count); --accelerate-config takes an accelerate
config file, e.g. the shipped DeepSpeed ZeRO-3 or FSDP ones in configs/accelerate/ (see
docs/training.md). Checkpoints are saved in bf16 when training in bf16.

\b
--objective dail trains with DAIL's contrastive distillation (per response token,
KL(student || privileged) - lambda x KL(student || negative), the references being the initial
weights) on an `adapt --method dail` output; with --lora the references are the adapter disabled.

\b
--objective grpo runs GRPO on the student itself (TRL GRPOTrainer) with an answer reward, the
RL baseline of the mapper (docs/mapper.md): prompts are the rows' system + question turns, the
reward is 1 when the final \\boxed{} answer is equivalent to the gold (math-verify), else 0.
Defaults are `dart-hub mapper train`'s (the paper gives none; common GRPO practice): 8
completions per prompt, temperature 1.0, 2048 new tokens, beta 0.01, learning rate 1e-6
(2e-5 with --lora), 200 steps, a checkpoint every 50 steps with the optimizer state: the same
command resumes from the last one. Each checkpoint is scored on the validation problems like an
epoch. The summary records the reward curve and the GPU-hours (wall time x GPUs).

\b
Examples:
  dart-hub train --student Qwen/Qwen2.5-1.5B-Instruct --data out/limo-1.5b --output runs/limo-1.5b
  dart-hub train --student Qwen/Qwen2.5-1.5B-Instruct --data limo --static --output runs/static
  dart-hub train --student Qwen/Qwen2.5-1.5B-Instruct --data limo --static --objective grpo --output runs/grpo
  dart-hub train --config recipes/train.yaml --epochs 3 --push-to-hub me/qwen-1.5b-dart \\
                 --compare-eval No-Tuning=evals/base --compare-eval Static=evals/static
"""


@click.command(help=HELP, context_settings={"max_content_width": 100})
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Flat YAML of SFTConfig keys (and train settings); CLI flags win.")
@click.option("--student", default=None, help="Student model to fine-tune: Hub id or local folder.")
@click.option("--student-revision", default=None, help="Hub revision of the student model.")
@click.option("--data", default=None, help="Adapted dataset: adapt output folder, .jsonl/.parquet file with `messages`, or Hub id. With --static: an expert source.")
@click.option("--static/--no-static", default=None, help="Train on the expert traces of --data unchanged (the Static baseline). [default: no]")
@click.option("--split", default=None, help="Dataset split to train on. [default: train]")
@click.option("--data-revision", default=None, help="Hub branch, tag or commit of --data.")
@click.option("--preset", default=None, help="With --static: read --data with a preset's column layout (limo, math-qwq-32b).")
@click.option("--question-column", default=None, metavar="NAME", help="With --static: the question column.")
@click.option("--solution-column", default=None, metavar="NAME", help="With --static: the expert solution column.")
@click.option("--answer-column", default=None, metavar="NAME", help="Gold answer column for validation [default: 'answer' when present, else the last \\boxed{} of the solution].")
@click.option("--system-prompt", default=None, help="With --static: the system message of the built conversations [default: the one adapt writes].")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), default=None, help="Output folder (checkpoints, best/, training_summary.json). [default: output_dir of --config]")
@click.option("--epochs", type=click.FloatRange(min=0, min_open=True), default=None, help="num_train_epochs. [default: 15; --objective grpo trains --grpo-max-steps unless only --epochs is given]")
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=None, help="learning_rate. [default: 5e-6; --objective grpo: 1e-6]")
@click.option("--max-length", type=click.IntRange(min=1), default=None, help="max_length in tokens (longer rows are truncated). [default: 16384]")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, help="per_device_train_batch_size. [default: 1]")
@click.option("--gradient-accumulation-steps", type=click.IntRange(min=1), default=None, help="gradient_accumulation_steps. [default: 1]")
@click.option("--seed", type=int, default=None, help="Training seed, also picks the validation slice. [default: 42]")
@click.option("--validation-source", default=None, metavar="heldout|BENCHMARK[=SOURCE]", help="Problems that choose the best epoch: 'heldout' training problems, or a benchmark (e.g. math500). [default: heldout]")
@click.option("--validation-size", type=click.FloatRange(min=0), default=None, help="Validation problems: a share if < 1, a count if >= 1, 0 for none. [default: 0.05 of the training problems held out; all of a benchmark]")
@click.option("--validation-max-tokens", type=click.IntRange(min=1), default=None, help="Max new tokens of a validation answer. [default: 16384, the evaluation budget]")
@click.option("--validation-engine", type=click.Choice(["transformers", "vllm", "auto"]), default=None, help="Engine that answers the validation problems: auto is vLLM over every visible GPU when vLLM is installed and a GPU is seen, else transformers. [default: auto]")
@click.option("--keep-checkpoints/--prune-checkpoints", default=None, help="Keep every epoch's checkpoint after selection; by default a checkpoint that can no longer be chosen is deleted as soon as it is scored (one is left: the best, also in OUTPUT/best). [default: prune]")
@click.option("--select-best/--no-select-best", default=None, help="Score every epoch and keep the best (else keep the last epoch in OUTPUT/final). [default: select]")
@click.option("--answer-timeout", type=click.FloatRange(min=0, min_open=True), default=None, help="Seconds before an answer comparison counts as not equal. [default: 5]")
@click.option("--push-to-hub", "push_repo", default=None, metavar="REPO", help="After training, publish the chosen model with its card to this Hub model repo (one commit).")
@click.option("--push-only", is_flag=True, help="Do not train: publish the model already trained in --output (e.g. after `dart-hub eval`).")
@click.option("--private", is_flag=True, help="Create the Hub repo private.")
@click.option("--eval-dir", "eval_dirs", multiple=True, type=click.Path(file_okay=False, path_type=Path), help="Evaluation folder(s) of the trained model (results.json): its results go into the card's model-index. Repeatable.")
@click.option("--compare-eval", "compare_evals", multiple=True, metavar="[LABEL=]DIR", help="Evaluation folder of a baseline to compare with in the card's results table, e.g. No-Tuning=evals/base. Repeatable.")
@click.option("--base-model", default=None, help="Hub id of the student, for the card's base_model when --student was a local folder.")
@click.option("--dataset-id", default=None, help="Hub id of the adapted dataset, for the card when --data was a local folder.")
@click.option("--license", "license_", default=None, help="License of the published model [default: the student's when known].")
@click.option("--lora/--no-lora", default=None, help="Train LoRA adapters (rank --lora-rank, all linear layers) instead of every weight: fits a small GPU. Checkpoints hold the adapter; best/ holds the merged model. [default: no; learning rate 1e-4 unless set]")
@click.option("--lora-rank", type=click.IntRange(min=1), default=None, help="LoRA rank r. [default: 16]")
@click.option("--lora-alpha", type=click.IntRange(min=1), default=None, help="LoRA alpha. [default: 2 x rank; DAIL uses alpha = rank]")
@click.option("--lora-dropout", type=click.FloatRange(0, 1, max_open=True), default=None, help="LoRA dropout. [default: 0.05; DAIL uses 0]")
@click.option("--num-processes", type=click.IntRange(min=1), default=None, help="Training processes, one per GPU, started through accelerate launch. [default: the visible GPU count, 1 without GPUs]")
@click.option("--accelerate-config", type=click.Path(dir_okay=False, path_type=Path), default=None, help="accelerate config file for the launch (DeepSpeed, FSDP, several nodes), e.g. configs/accelerate/deepspeed_zero3.yaml.")
@click.option("--device", type=click.Choice(["auto", "cuda", "cpu"]), default=None, help="Where to train: auto (the GPUs when torch sees one, else one CPU process), cuda (stop when torch sees no GPU), cpu (also for several processes: gloo). Several processes or --accelerate-config without --device cpu need a GPU. [default: auto]")
@click.option("--objective", type=click.Choice(["sft", "dail", "grpo"]), default=None, help="Training objective: sft (cross-entropy on the assistant turn), dail (DAIL's contrastive distillation from the privileged and negative prompts of an `adapt --method dail` output) or grpo (GRPO on the student with a 0/1 answer reward, the mapper's RL baseline); see docs/training.md. [default: sft]")
@click.option("--dail-lambda", type=click.FloatRange(min=0), default=None, help="With --objective dail: weight of the negative term, KL(student || negative). [default: 0.1]")
@click.option("--dail-kl", type=click.Choice(["reverse", "forward"]), default=None, help="With --objective dail: KL direction; reverse is KL(student || reference). [default: reverse]")
@click.option("--dail-chunk-size", type=click.IntRange(min=1), default=None, help="With --objective dail: response positions per output-head/log-softmax chunk (bounds memory). [default: 1024]")
@click.option("--grpo-num-generations", type=click.IntRange(min=2), default=None, help="With --objective grpo: completions per prompt (the group). [default: 8]")
@click.option("--grpo-prompts-per-step", type=click.IntRange(min=1), default=None, help="With --objective grpo: prompts per device and step, each with the group's completions. [default: 1]")
@click.option("--grpo-max-completion-tokens", type=click.IntRange(min=1), default=None, help="With --objective grpo: max new tokens per completion. [default: 2048]")
@click.option("--grpo-temperature", type=click.FloatRange(min=0, min_open=True), default=None, help="With --objective grpo: sampling temperature. [default: 1.0]")
@click.option("--grpo-top-p", type=click.FloatRange(0, 1, min_open=True), default=None, help="With --objective grpo: top-p of the completions. [default: 1.0]")
@click.option("--grpo-beta", type=click.FloatRange(min=0), default=None, help="With --objective grpo: KL coefficient to the initial student (0: no reference model). [default: 0.01]")
@click.option("--grpo-max-steps", type=click.IntRange(min=0), default=None, help="With --objective grpo: optimizer steps (0: --epochs passes over the prompts). [default: 200, or --epochs when only that is given]")
@click.option("--grpo-save-steps", type=click.IntRange(min=1), default=None, help="With --objective grpo: a checkpoint (resume point, scored for selection) every N steps, and at the end. [default: 50]")
@click.option("--dry-run", is_flag=True, help="Load the data, resolve the settings and the loss masking, print them, and exit (no model loaded).")
@click.option("--quiet", "-q", is_flag=True, help="Less output.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
def command(as_json: bool, **options: Any) -> None:
    from dart_hub.api import train
    from dart_hub.specs import TrainSpec
    from dart_hub.training.launch import in_distributed_run

    result = train(TrainSpec(**options), as_json=as_json)
    if in_distributed_run() and not options["dry_run"]:
        return  # inside `accelerate launch` / torchrun: every rank runs this command; none prints (as before)
    if result.summary is not None and not options["dry_run"] and not options["push_only"]:
        _print(result.summary, as_json, bool(options["quiet"]))


def _print(summary: dict[str, Any], as_json: bool, quiet: bool) -> None:
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    selection = summary["selection"]
    grpo = summary.get("objective", {}).get("name") == "grpo"
    unit = "step" if grpo else "epoch"
    chosen = next((e for e in summary["epochs"] if e["checkpoint"] == summary["chosen_checkpoint"]), {})
    label = chosen.get("step") if grpo else summary["chosen_epoch"]
    if selection["enabled"]:
        click.echo(f"best {unit}: {label} ({selection['best_checkpoint']})")
    else:
        click.echo(f"kept the last {unit}: {label} ({summary['chosen_checkpoint']})")
    if not quiet:
        for epoch in summary["epochs"]:
            v = epoch.get("validation")
            score = f"validation {v['correct']}/{v['total']}" if v else "not scored"
            loss = f", train loss {epoch['train_loss']:.4f}" if "train_loss" in epoch else ""
            label = epoch["step"] if grpo else epoch["epoch"]
            click.echo(f"  {unit} {label} {epoch['checkpoint']}: {score}{loss}")
        rewards = summary.get("rewards")
        if rewards:
            click.echo(f"  mean reward: first step {rewards['first']}, last step {rewards['last']}")
        if "device_hours" in summary:
            click.echo(f"  compute: {_compute_text(summary)}")
    click.echo(f"model: {Path(summary['request']['output']) / summary['model_dir']}")


def _compute_text(summary: dict[str, Any]) -> str:
    seconds = sum(s["seconds"] for s in summary.get("sessions", []))
    if summary.get("device") == "cuda":
        return f"{summary['gpu_hours']:.3f} GPU-hours ({seconds:.0f} s wall)"
    return f"{seconds:.0f} s wall on CPU (0 GPU-hours)"
