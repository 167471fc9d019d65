"""Typed specs of the pipeline stages: what `dart_hub.api` takes, and what the commands build.

One field per option of the stage's command, with the option's parameter name, default and
check (the same click type), so a spec accepts exactly what the command line accepts and says
what is wrong the same way ("Invalid value for '--n-sim': 0 is not in the range x>=1.", as a
DartHubError). The CLI output switch `--json` has no field: printing is the command's job.

The command line is checked against these classes by tests/test_api_specs.py: a new option of
`dart-hub adapt`, `train`, `eval`, `inspect` or `mapper train` needs its field here (the test
prints the line to add); `dart-hub demo`'s spec is `dart_hub.toy.demo.DemoSpec`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import click

from dart_hub.adaptation.cut import PEAK_ALIASES, PEAK_RULES, STRATEGIES
from dart_hub.adaptation.rules import ALL_ZERO, ANSWER_STEPS, DEFAULT_RULES, RULE_SETS, UNFINISHED
from dart_hub.adaptation.search import SEARCHES
from dart_hub.config import CLEANING, KEEP_RULES
from dart_hub.engines.factory import ENGINES
from dart_hub.errors import DartHubError
from dart_hub.methods import METHODS
from dart_hub.repetition import DEFAULT_MAX_REPETITION, DEFAULT_NGRAM
from dart_hub.sources import PRESETS
from dart_hub.steps import DEFAULT_MIN_STEP_CHARS

REQUIRED: Any = dataclasses.MISSING


def option(default: Any, flag: str, check: click.ParamType | None = None) -> Any:
    """A spec field: its default (REQUIRED: none), its command-line flag and its click check."""
    metadata = {"flag": flag, "check": check}
    if default is REQUIRED:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


class SpecParam(NamedTuple):
    """A spec field as a value checker (what `dart_hub.recipes` validates recipe keys with)."""

    name: str
    flag: str
    type: click.ParamType
    multiple: bool
    default: Any
    required: bool
    nargs: int = 1


@dataclass(kw_only=True)
class Spec:
    """Base of the stage specs: values are checked (and converted, e.g. str -> Path) on creation."""

    def __post_init__(self) -> None:
        for param in self.params().values():
            value = getattr(self, param.name)
            if value is None:
                continue
            try:
                if param.multiple:
                    values = value if isinstance(value, list | tuple) else [value]
                    value = tuple(param.type.convert(v, None, None) for v in values)
                else:
                    value = param.type.convert(value, None, None)
            except click.BadParameter as error:
                raise DartHubError(f"Invalid value for '{param.flag}': {error.message}") from None
            setattr(self, param.name, value)

    @classmethod
    def params(cls) -> dict[str, SpecParam]:
        """Every field as a SpecParam (the shared source and engine fields first)."""
        out = {}
        for f in dataclasses.fields(cls):
            multiple = isinstance(f.default, tuple)
            check = f.metadata.get("check")
            if check is None:
                check = click.BOOL if f.type in ("bool", "bool | None") else click.STRING
            default = None if f.default is dataclasses.MISSING else f.default
            out[f.name] = SpecParam(f.name, f.metadata["flag"], check, multiple, default, f.default is dataclasses.MISSING)
        return out

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """The fields' defaults (None for a required field), as the command's defaults."""
        return {name: param.default for name, param in cls.params().items()}

    def options(self) -> dict[str, Any]:
        """The spec as the stage's keyword arguments (the command's parameter names)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any):
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)


@dataclass(kw_only=True)
class SourceFields(Spec):
    """The dataset-source options `adapt`, `inspect` and `mapper train` share
    (`dart_hub.commands.options.source_options`); see `dart-hub adapt --help` for each."""

    split: str = option("train", "--split")
    revision: str | None = option(None, "--revision")
    dataset_config: str | None = option(None, "--config")
    preset: str | None = option(None, "--preset", click.Choice(sorted(PRESETS)))
    question_column: str | None = option(None, "--question-column")
    solution_column: str | None = option(None, "--solution-column")
    answer_column: str | None = option(None, "--answer-column")


@dataclass(kw_only=True)
class EngineFields(Spec):
    """The engine options `adapt` and `eval` share (`dart_hub.commands.options.engine_options`);
    see `dart-hub adapt --help` for each."""

    engine: str = option("auto", "--engine", click.Choice(ENGINES))
    dtype: str = option("auto", "--dtype")
    device: str = option("auto", "--device")
    batch_size: int = option(32, "--batch-size", click.IntRange(min=1))
    tensor_parallel_size: int | None = option(None, "--tensor-parallel-size", click.IntRange(min=1))
    data_parallel_size: int | None = option(None, "--data-parallel-size", click.IntRange(min=1))
    gpu_memory_utilization: float | None = option(None, "--gpu-memory-utilization", click.FloatRange(min=0, max=1, min_open=True))
    max_num_seqs: int | None = option(None, "--max-num-seqs", click.IntRange(min=1))
    max_model_len: int | None = option(None, "--max-model-len", click.IntRange(min=1))
    base_url: str | None = option(None, "--base-url")
    concurrency: int = option(256, "--concurrency", click.IntRange(min=1))
    sample_batching: str = option("auto", "--sample-batching", click.Choice(["auto", "on", "off"]))
    max_retries: int | None = option(None, "--max-retries", click.IntRange(min=0))
    request_timeout: float | None = option(None, "--request-timeout", click.FloatRange(min=0, min_open=True))


@dataclass(kw_only=True)
class AdaptSpec(EngineFields, SourceFields):
    """`dart-hub adapt`: adapt an expert dataset to a student (DART, or --method dail / mapper).

    Field = option: `n_sim` is `--n-sim`, `dataset_config` is `--config`, `prompts_file` is
    `--prompts`, `mapper_model` is `--mapper`; see `dart-hub adapt --help` for each.
    """

    student: str = option(REQUIRED, "--student")
    dataset: str = option(REQUIRED, "--dataset")
    limit: int | None = option(None, "--limit", click.IntRange(min=1))
    shard: str | None = option(None, "--shard")
    output: Path | None = option(None, "--output", click.Path(file_okay=False, dir_okay=True, path_type=Path))
    work_dir: Path | None = option(None, "--work-dir", click.Path(file_okay=False, dir_okay=True, path_type=Path))
    probe_cache: Path | None = option(None, "--probe-cache", click.Path(file_okay=False, dir_okay=True, path_type=Path))
    method: str = option("dart", "--method", click.Choice(METHODS))
    strategy: str = option("full", "--strategy", click.Choice(STRATEGIES))
    n_sim: int = option(4, "--n-sim", click.IntRange(min=1))
    sim_temperature: float = option(0.1, "--sim-temperature", click.FLOAT)
    sim_max_tokens: int = option(4000, "--sim-max-tokens", click.IntRange(min=1))
    probe: str = option("scan", "--probe", click.Choice(SEARCHES))
    probe_coarse: int = option(4, "--probe-coarse", click.IntRange(min=2))
    probe_head: int = option(2, "--probe-head", click.IntRange(min=0))
    probe_round: int = option(2, "--probe-round", click.IntRange(min=1))
    epsilon: float = option(0.3, "--epsilon", click.FLOAT)
    rules: str = option(DEFAULT_RULES, "--rules", click.Choice(RULE_SETS))
    peak: str | None = option(None, "--peak", click.Choice((*PEAK_RULES, *PEAK_ALIASES)))
    min_follow: float | None = option(None, "--min-follow", click.FloatRange(min=0, max=1))
    answer_steps: str | None = option(None, "--answer-steps", click.Choice(ANSWER_STEPS))
    confirm: int | None = option(None, "--confirm", click.IntRange(min=0))
    all_zero: str | None = option(None, "--all-zero", click.Choice(ALL_ZERO))
    unfinished: str | None = option(None, "--unfinished", click.Choice(UNFINISHED))
    n_explore: int = option(8, "--n-explore", click.IntRange(min=1))
    explore_temperature: float = option(0.7, "--explore-temperature", click.FLOAT)
    explore_max_tokens: int = option(2000, "--explore-max-tokens", click.IntRange(min=1))
    max_repetition: float = option(0.3, "--max-repetition", click.FloatRange(min=0, max=1))
    repetition_ngram: int = option(10, "--repetition-ngram", click.IntRange(min=1))
    keep: str = option("one", "--keep", click.Choice(KEEP_RULES))
    cleaning: str = option("cleaned", "--cleaning", click.Choice(CLEANING))
    min_step_chars: int | None = option(None, "--min-step-chars", click.IntRange(min=1))
    chunk_size: int = option(16, "--chunk-size", click.IntRange(min=1))
    scheduler: str = option("stream", "--scheduler", click.Choice(["stream", "chunks"]))
    seed: int = option(0, "--seed", click.INT)
    prompts_file: Path | None = option(None, "--prompts", click.Path(file_okay=True, dir_okay=False, path_type=Path))
    dail_samples: int = option(32, "--dail-samples", click.IntRange(min=1))
    dail_temperature: float = option(0.6, "--dail-temperature", click.FloatRange(min=0))
    dail_top_p: float = option(0.95, "--dail-top-p", click.FloatRange(min=0, max=1, min_open=True))
    dail_max_tokens: int = option(2048, "--dail-max-tokens", click.IntRange(min=1))
    dail_tau: float = option(1.0, "--dail-tau", click.FloatRange(min=0, max=1))
    dail_proposer: str = option("plain", "--dail-proposer", click.Choice(["plain", "privileged"]))
    dail_filter: str = option("guarded", "--dail-filter", click.Choice(["guarded", "paper"]))
    dail_min_steps: int = option(2, "--dail-min-steps", click.IntRange(min=1))
    dail_max_hints: int = option(12, "--dail-max-hints", click.IntRange(min=0))
    method_prompts: Path | None = option(None, "--method-prompts", click.Path(file_okay=True, dir_okay=False, path_type=Path))
    mapper_model: str | None = option(None, "--mapper")
    mapper_samples: int = option(4, "--mapper-samples", click.IntRange(min=1))
    mapper_temperature: float = option(0.7, "--mapper-temperature", click.FloatRange(min=0))
    mapper_top_p: float = option(0.95, "--mapper-top-p", click.FloatRange(min=0, max=1, min_open=True))
    mapper_max_tokens: int = option(2048, "--mapper-max-tokens", click.IntRange(min=1))
    mapper_fallback: str = option("drop", "--mapper-fallback", click.Choice(["drop", "original"]))
    mapper_rewards: str | None = option(None, "--mapper-rewards")
    mapper_reward_settings: str | None = option(None, "--mapper-reward-settings")
    scorer: str = option("transformers", "--scorer", click.Choice(["transformers", "vllm"]))
    scorer_device: str | None = option(None, "--scorer-device")
    scorer_gpu_memory_utilization: float | None = option(None, "--scorer-gpu-memory-utilization", click.FloatRange(min=0, max=1, min_open=True))
    student_revision: str | None = option(None, "--student-revision")
    tokenizer: str | None = option(None, "--tokenizer")
    answer_timeout: float = option(5.0, "--answer-timeout", click.FLOAT)
    dry_run: bool = option(False, "--dry-run")
    admission: bool = option(True, "--admission")
    tokens_per_second: float | None = option(None, "--tokens-per-second", click.FloatRange(min=0, min_open=True))
    quiet: bool = option(False, "--quiet")
    progress_every: float = option(60.0, "--progress-every", click.FloatRange(min=0, min_open=True))
    no_report: bool = option(False, "--no-report")
    push_to_hub: str | None = option(None, "--push-to-hub")
    private: bool = option(False, "--private")
    hub_branch: str | None = option(None, "--hub-branch")
    create_pr: bool = option(False, "--create-pr")
    commit_message: str | None = option(None, "--commit-message")


@dataclass(kw_only=True)
class TrainSpec(Spec):
    """`dart-hub train`: fine-tune a student on adapted data (SFT, DAIL or GRPO).

    None means "not given": the --config YAML, then the paper's defaults decide (as on the
    command line). `config_file` is `--config`, `push_repo` is `--push-to-hub`, `license_` is
    `--license`, `eval_dirs` / `compare_evals` are the repeatable `--eval-dir` / `--compare-eval`.
    """

    config_file: Path | None = option(None, "--config", click.Path(file_okay=True, dir_okay=False, path_type=Path))
    student: str | None = option(None, "--student")
    student_revision: str | None = option(None, "--student-revision")
    data: str | None = option(None, "--data")
    static: bool | None = option(None, "--static")
    split: str | None = option(None, "--split")
    data_revision: str | None = option(None, "--data-revision")
    preset: str | None = option(None, "--preset")
    question_column: str | None = option(None, "--question-column")
    solution_column: str | None = option(None, "--solution-column")
    answer_column: str | None = option(None, "--answer-column")
    system_prompt: str | None = option(None, "--system-prompt")
    output: Path | None = option(None, "--output", click.Path(file_okay=False, dir_okay=True, path_type=Path))
    epochs: float | None = option(None, "--epochs", click.FloatRange(min=0, min_open=True))
    learning_rate: float | None = option(None, "--learning-rate", click.FloatRange(min=0, min_open=True))
    max_length: int | None = option(None, "--max-length", click.IntRange(min=1))
    batch_size: int | None = option(None, "--batch-size", click.IntRange(min=1))
    gradient_accumulation_steps: int | None = option(None, "--gradient-accumulation-steps", click.IntRange(min=1))
    seed: int | None = option(None, "--seed", click.INT)
    validation_source: str | None = option(None, "--validation-source")
    validation_size: float | None = option(None, "--validation-size", click.FloatRange(min=0))
    validation_max_tokens: int | None = option(None, "--validation-max-tokens", click.IntRange(min=1))
    validation_engine: str | None = option(None, "--validation-engine", click.Choice(["transformers", "vllm", "auto"]))
    keep_checkpoints: bool | None = option(None, "--keep-checkpoints")
    select_best: bool | None = option(None, "--select-best")
    answer_timeout: float | None = option(None, "--answer-timeout", click.FloatRange(min=0, min_open=True))
    push_repo: str | None = option(None, "--push-to-hub")
    push_only: bool = option(False, "--push-only")
    private: bool = option(False, "--private")
    eval_dirs: tuple[Path, ...] = option((), "--eval-dir", click.Path(file_okay=False, dir_okay=True, path_type=Path))
    compare_evals: tuple[str, ...] = option((), "--compare-eval")
    base_model: str | None = option(None, "--base-model")
    dataset_id: str | None = option(None, "--dataset-id")
    license_: str | None = option(None, "--license")
    lora: bool | None = option(None, "--lora")
    lora_rank: int | None = option(None, "--lora-rank", click.IntRange(min=1))
    lora_alpha: int | None = option(None, "--lora-alpha", click.IntRange(min=1))
    lora_dropout: float | None = option(None, "--lora-dropout", click.FloatRange(min=0, max=1, max_open=True))
    num_processes: int | None = option(None, "--num-processes", click.IntRange(min=1))
    accelerate_config: Path | None = option(None, "--accelerate-config", click.Path(file_okay=True, dir_okay=False, path_type=Path))
    device: str | None = option(None, "--device", click.Choice(["auto", "cuda", "cpu"]))
    objective: str | None = option(None, "--objective", click.Choice(["sft", "dail", "grpo"]))
    dail_lambda: float | None = option(None, "--dail-lambda", click.FloatRange(min=0))
    dail_kl: str | None = option(None, "--dail-kl", click.Choice(["reverse", "forward"]))
    dail_chunk_size: int | None = option(None, "--dail-chunk-size", click.IntRange(min=1))
    grpo_num_generations: int | None = option(None, "--grpo-num-generations", click.IntRange(min=2))
    grpo_prompts_per_step: int | None = option(None, "--grpo-prompts-per-step", click.IntRange(min=1))
    grpo_max_completion_tokens: int | None = option(None, "--grpo-max-completion-tokens", click.IntRange(min=1))
    grpo_temperature: float | None = option(None, "--grpo-temperature", click.FloatRange(min=0, min_open=True))
    grpo_top_p: float | None = option(None, "--grpo-top-p", click.FloatRange(min=0, max=1, min_open=True))
    grpo_beta: float | None = option(None, "--grpo-beta", click.FloatRange(min=0))
    grpo_max_steps: int | None = option(None, "--grpo-max-steps", click.IntRange(min=0))
    grpo_save_steps: int | None = option(None, "--grpo-save-steps", click.IntRange(min=1))
    dry_run: bool = option(False, "--dry-run")
    quiet: bool = option(False, "--quiet")


@dataclass(kw_only=True)
class EvalSpec(EngineFields):
    """`dart-hub eval`: a model on the math benchmarks; results.json in `output`.

    `benchmark_sources` is the repeatable `--benchmark-source NAME=PATH_OR_REPO`.
    """

    model: str = option(REQUIRED, "--model")
    model_revision: str | None = option(None, "--model-revision")
    benchmarks: str = option("gsm8k,gaokao2023en,olympiadbench,college_math,mmlu_stem", "--benchmarks")
    output: Path = option(REQUIRED, "--output", click.Path(file_okay=False, dir_okay=True, path_type=Path))
    limit: int | None = option(None, "--limit", click.IntRange(min=1))
    max_tokens: int = option(16384, "--max-tokens", click.IntRange(min=1))
    chunk_size: int = option(512, "--chunk-size", click.IntRange(min=1))
    benchmark_sources: tuple[str, ...] = option((), "--benchmark-source")
    samples: int = option(1, "--samples", click.IntRange(min=1))
    pass_k: str | None = option(None, "--pass-k")
    temperature: float | None = option(None, "--temperature", click.FloatRange(min=0))
    top_p: float | None = option(None, "--top-p", click.FloatRange(min=0, max=1, min_open=True))
    answer_timeout: float = option(5.0, "--answer-timeout", click.FLOAT)
    quiet: bool = option(False, "--quiet")


@dataclass(kw_only=True)
class InspectSpec(SourceFields):
    """`dart-hub inspect`: a dataset as DART will see it (problems, steps, gold answers, skipped
    rows). `dataset` is the DATASET argument; `limit` 0 reads every row. How the problems are
    shown (--full, --json) is the command's business, not the spec's."""

    dataset: str = option(REQUIRED, "DATASET")
    limit: int = option(3, "--limit", click.IntRange(min=0))
    min_step_chars: int = option(DEFAULT_MIN_STEP_CHARS, "--min-step-chars", click.IntRange(min=0))


@dataclass(kw_only=True)
class MapperTrainSpec(SourceFields):
    """`dart-hub mapper train`: train the rewriting mapper with GRPO (our design, docs/mapper.md).

    `mapper_model` is `--mapper`, `reward_weights` `--rewards`, `prompts_file` `--prompts`,
    `dataset_config` `--config`; see `dart-hub mapper train --help` for each.
    """

    student: str = option(REQUIRED, "--student")
    mapper_model: str | None = option(None, "--mapper")
    dataset: str = option(REQUIRED, "--dataset")
    limit: int | None = option(None, "--limit", click.IntRange(min=1))
    output: Path = option(REQUIRED, "--output", click.Path(file_okay=False, dir_okay=True, path_type=Path))
    num_generations: int = option(8, "--num-generations", click.IntRange(min=2))
    prompts_per_step: int = option(1, "--prompts-per-step", click.IntRange(min=1))
    temperature: float = option(1.0, "--temperature", click.FloatRange(min=0, min_open=True))
    top_p: float = option(1.0, "--top-p", click.FloatRange(min=0, max=1, min_open=True))
    max_completion_length: int = option(2048, "--max-completion-length", click.IntRange(min=1))
    beta: float = option(0.01, "--beta", click.FloatRange(min=0))
    learning_rate: float = option(1e-06, "--learning-rate", click.FloatRange(min=0, min_open=True))
    max_steps: int = option(200, "--max-steps", click.IntRange(min=0))
    epochs: float = option(1.0, "--epochs", click.FloatRange(min=0, min_open=True))
    gradient_accumulation_steps: int = option(1, "--gradient-accumulation-steps", click.IntRange(min=1))
    save_steps: int = option(50, "--save-steps", click.IntRange(min=1))
    seed: int = option(0, "--seed", click.INT)
    reward_weights: str | None = option(None, "--rewards")
    reward_settings: str | None = option(None, "--reward-settings")
    max_repetition: float = option(DEFAULT_MAX_REPETITION, "--max-repetition", click.FloatRange(min=0, max=1, max_open=True))
    repetition_ngram: int = option(DEFAULT_NGRAM, "--repetition-ngram", click.IntRange(min=1))
    mapper_prompts: Path | None = option(None, "--mapper-prompts", click.Path(file_okay=True, dir_okay=False, path_type=Path))
    prompts_file: Path | None = option(None, "--prompts", click.Path(file_okay=True, dir_okay=False, path_type=Path))
    scorer: str = option("transformers", "--scorer", click.Choice(["transformers", "vllm"]))
    scorer_device: str | None = option(None, "--scorer-device")
    scorer_batch_size: int | None = option(None, "--scorer-batch-size", click.IntRange(min=1))
    scorer_dtype: str = option("auto", "--scorer-dtype")
    scorer_gpu_memory_utilization: float | None = option(None, "--scorer-gpu-memory-utilization", click.FloatRange(min=0, max=1, min_open=True))
    answer_timeout: float = option(5.0, "--answer-timeout", click.FLOAT)
    quiet: bool = option(False, "--quiet")
