"""`dart-hub train`: fine-tune the student on adapted data with TRL, keep the best epoch, publish."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click

from dart_hub.errors import DartHubError
from dart_hub.evaluation.run import DEFAULT_MAX_TOKENS

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
def command(**options: Any) -> None:
    run(**options)


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
        return _push(output, o, settings, quiet=o.get("quiet", False))

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
            if o.get("as_json"):
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
    _print(summary, bool(o.get("as_json")), bool(o.get("quiet")))
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
