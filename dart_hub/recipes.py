"""YAML recipes: one file per student x dataset, validated against the CLI's own options.

A recipe has the sections `source`, `student`, `adapt`, `engine`, `publish`, `train`, `eval`
plus `name`, `output` (the run folder) and `paper` (where the run sits in the DART paper's
tables, read by `dart-hub compare`). Every key maps onto an option of the command that runs the
stage (`dart-hub adapt`, `train`, `eval`), and values are checked with that option's own click
type, so a recipe accepts exactly what the CLI accepts, with the same defaults (the paper's).
Errors name the file, the line and the key.

Sections stay in their stage: a stage receives its own section and only the keys of other
sections that mean the same thing there (`STAGE_SHARED`). `engine.batch_size` is the generation
batch of adapt and eval; it never becomes train's per-device batch size.

A recipe without a `source` section runs no adapt stage: `student` + `eval` is the paper's
No-Tuning row (the student evaluated as it is).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import yaml

from dart_hub.errors import DartHubError
from dart_hub.specs import AdaptSpec, EvalSpec, SpecParam, TrainSpec

# recipe section -> {recipe key: `dart-hub adapt` parameter name}
ADAPT_SECTIONS: dict[str, dict[str, str]] = {
    "source": {
        "dataset": "dataset", "split": "split", "revision": "revision", "config": "dataset_config",
        "preset": "preset", "question_column": "question_column", "solution_column": "solution_column",
        "answer_column": "answer_column", "limit": "limit",
    },
    "student": {"model": "student", "revision": "student_revision"},
    "engine": {
        "name": "engine", "dtype": "dtype", "device": "device", "batch_size": "batch_size",
        "tensor_parallel_size": "tensor_parallel_size", "data_parallel_size": "data_parallel_size",
        "gpu_memory_utilization": "gpu_memory_utilization", "max_num_seqs": "max_num_seqs",
        "max_model_len": "max_model_len", "base_url": "base_url", "concurrency": "concurrency",
        "max_retries": "max_retries", "request_timeout": "request_timeout",
    },
    "adapt": {
        "strategy": "strategy", "n_sim": "n_sim", "sim_temperature": "sim_temperature",
        "sim_max_tokens": "sim_max_tokens", "epsilon": "epsilon", "peak": "peak", "n_explore": "n_explore",
        "explore_temperature": "explore_temperature", "explore_max_tokens": "explore_max_tokens",
        "max_repetition": "max_repetition", "repetition_ngram": "repetition_ngram", "keep": "keep",
        "min_follow": "min_follow", "cleaning": "cleaning", "rules": "rules", "answer_steps": "answer_steps",
        "confirm": "confirm", "all_zero": "all_zero", "unfinished": "unfinished",
        "min_step_chars": "min_step_chars", "chunk_size": "chunk_size", "seed": "seed",
        "prompts": "prompts_file", "answer_timeout": "answer_timeout", "work_dir": "work_dir",
        "probe_cache": "probe_cache", "probe": "probe", "probe_coarse": "probe_coarse", "probe_head": "probe_head", "probe_round": "probe_round",
        "method": "method", "dail_samples": "dail_samples", "dail_temperature": "dail_temperature",
        "dail_top_p": "dail_top_p", "dail_max_tokens": "dail_max_tokens", "dail_tau": "dail_tau", "dail_proposer": "dail_proposer",
        "dail_max_hints": "dail_max_hints", "dail_filter": "dail_filter", "dail_min_steps": "dail_min_steps",
        "method_prompts": "method_prompts",
        "mapper": "mapper_model", "mapper_samples": "mapper_samples", "mapper_temperature": "mapper_temperature",
        "mapper_top_p": "mapper_top_p", "mapper_max_tokens": "mapper_max_tokens", "mapper_fallback": "mapper_fallback",
        "mapper_rewards": "mapper_rewards", "mapper_reward_settings": "mapper_reward_settings",
        "scorer": "scorer", "scorer_device": "scorer_device", "scorer_gpu_memory_utilization": "scorer_gpu_memory_utilization",
    },
}  # fmt: skip
PUBLISH_KEYS = {"push_to_hub": str, "private": bool, "hub_branch": str, "create_pr": bool, "commit_message": str}
STAGE_SECTIONS = ("train", "eval")  # validated against those stages' specs (dart_hub.specs)
TOP_LEVEL = ("name", "output", "paper", *ADAPT_SECTIONS, "publish", *STAGE_SECTIONS)
STAGES = ("adapt", "push", "train", "eval")

# What a train / eval stage takes from sections other than its own: {section: {recipe key:
# command parameter}}. Only keys that mean the same thing in both places. `train` gets nothing
# from `engine` (its --batch-size is the per-device training batch, its --seed the training
# seed); `eval` generates with the same engine options as adapt. The student's id is passed by
# `dart-hub run` itself (the trained model for eval).
STAGE_SHARED: dict[str, dict[str, dict[str, str]]] = {
    "train": {},
    "eval": {"engine": {key: param for key, param in ADAPT_SECTIONS["engine"].items()}},
}

# The arms of the paper's tables (Table 1: No-Tuning, Static, Adaptation-Full; Table 3:
# Adaptation-First, Adaptation-Gap; Table 5: Adaptation-Raw vs Adaptation-Cleaned = Full).
ARMS = ("No-Tuning", "Static", "Adaptation-First", "Adaptation-Gap", "Adaptation-Raw", "Adaptation-Full", "DAIL")  # DAIL: another method, no DART-paper cell
PAPER_TABLES = (1, 3, 5)
DATASET_TITLES = {"limo": "LIMO", "math-qwq-32b": "Math-QwQ-32B"}  # the presets, as the paper names them


@dataclass
class Recipe:
    path: Path
    name: str
    output: Path
    sections: dict[str, dict[str, Any]]
    lines: dict[str, int] = field(default_factory=dict)  # "section.key" -> line in the file

    def section(self, name: str) -> dict[str, Any]:
        return self.sections.get(name) or {}

    @property
    def adapts(self) -> bool:
        """A recipe without a source evaluates the student as it is (No-Tuning)."""
        return bool(self.section("source"))

    def stages(self) -> list[str]:
        """Stages the recipe asks for, in order."""
        stages = ["adapt"] if self.adapts else []
        if self.adapts and self.section("publish").get("push_to_hub"):
            stages.append("push")
        for name in STAGE_SECTIONS:
            section = self.sections.get(name)
            if section is not None and section.get("enabled", True):
                stages.append(name)
        return stages

    def arm(self) -> str:
        """The paper's name for what this recipe trains, from its settings."""
        return settings_arm(self.adapts, self.section("adapt"), "train" in self.stages())

    def paper(self) -> dict[str, Any]:
        """{tables, arm, dataset, student}: the recipe's `paper` section completed from its settings."""
        paper = dict(self.section("paper"))
        paper.setdefault("tables", [])
        paper.setdefault("arm", self.arm())
        if self.adapts and not paper.get("dataset"):
            source = self.section("source")
            dataset = str(source.get("preset") or source["dataset"])
            paper["dataset"] = DATASET_TITLES.get(dataset, Path(dataset).name)
        paper.setdefault("dataset", None)
        paper.setdefault("student", Path(str(self.section("student")["model"]).rstrip("/")).name)
        return paper


def settings_arm(adapts: bool, adapt: dict[str, Any], trains: bool) -> str:
    if not adapts or not trains:
        return "No-Tuning"
    if adapt.get("method") == "dail":
        return "DAIL"
    if adapt.get("method") == "mapper":  # own design (docs/mapper.md): the no-RL baseline when no mapper is given
        return "Mapper" if adapt.get("mapper") else "Mapper-Prompt"
    strategy = adapt.get("strategy") or "full"
    if strategy == "full":
        return "Adaptation-Raw" if adapt.get("cleaning") == "raw" else "Adaptation-Full"
    return {"static": "Static", "first": "Adaptation-First", "gap": "Adaptation-Gap"}[strategy]


def _line_map(node: yaml.Node, prefix: str = "") -> dict[str, int]:
    lines: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = f"{prefix}{key_node.value}"
            lines[key] = key_node.start_mark.line + 1
            lines.update(_line_map(value_node, key + "."))
    return lines


def _fail(recipe_path: Path, lines: dict[str, int], key: str, message: str) -> DartHubError:
    line = lines.get(key)
    where = f"{recipe_path}:{line}" if line else str(recipe_path)
    return DartHubError(f"{where}: {key}: {message}")


def _adapt_params() -> dict[str, SpecParam]:
    return AdaptSpec.params()


def _command_params(section: str) -> dict[str, SpecParam] | None:
    return {"train": TrainSpec, "eval": EvalSpec}[section].params()


def _convert(param: SpecParam, value: Any) -> Any:
    if value is None:
        return None
    if param.multiple or (param.nargs not in (1, None) and param.nargs != -1):
        values = value if isinstance(value, list) else [value]
        return tuple(param.type.convert(v, None, None) for v in values)
    return param.type.convert(value, None, None)  # no param: messages name the recipe key, not a flag


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """`--set section.key=value` (value parsed as YAML, so numbers and booleans keep their type)."""
    data = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or "." not in key and key not in ("name", "output"):
            raise DartHubError(f"--set {item!r}: use section.key=value, e.g. --set adapt.n_sim=8")
        value = yaml.safe_load(raw) if raw != "" else None
        if "." not in key:
            data[key] = value
            continue
        section, name = key.split(".", 1)
        if not isinstance(data.get(section), dict):
            data[section] = {}
        data[section][name] = value
    return data


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    path = Path(path)
    if not path.is_file():
        raise DartHubError(f"recipe {path} not found; see recipes/ for examples")
    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise DartHubError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from error
    if not isinstance(data, dict):
        raise DartHubError(f"{path}: a recipe is a mapping with sections {', '.join(TOP_LEVEL)}")
    lines = _line_map(node) if node is not None else {}
    data = apply_overrides(data, overrides or [])
    return validate(path, data, lines)


def validate(path: Path, data: dict[str, Any], lines: dict[str, int]) -> Recipe:
    for key in data:
        if key not in TOP_LEVEL:
            raise _fail(path, lines, key, f"unknown section; allowed: {', '.join(TOP_LEVEL)}")
    for key in (*ADAPT_SECTIONS, "publish", *STAGE_SECTIONS):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise _fail(path, lines, key, "must be a mapping of settings")

    params = _adapt_params()
    sections: dict[str, dict[str, Any]] = {}
    for section, mapping in ADAPT_SECTIONS.items():
        values = {}
        for key, value in (data.get(section) or {}).items():
            if key not in mapping or mapping[key] not in params:
                allowed = sorted(k for k, name in mapping.items() if name in params)
                raise _fail(path, lines, f"{section}.{key}", f"unknown key; allowed: {', '.join(allowed)}")
            try:
                values[key] = _convert(params[mapping[key]], value)
            except click.BadParameter as error:
                raise _fail(path, lines, f"{section}.{key}", error.message) from error
        sections[section] = values
    adapts = any(data.get(name) for name in ("source", "adapt", "publish")) or "train" in data
    for required in ("source.dataset", "student.model") if adapts else ("student.model",):
        section, key = required.split(".")
        if not sections[section].get(key):
            raise _fail(path, lines, required, "is required" + (" (a recipe that adapts or trains needs its expert data)" if section == "source" else ""))
    if not adapts and "eval" not in data:
        raise _fail(path, lines, "eval", "is required: a recipe without `source` evaluates the student (No-Tuning)")
    sections["paper"] = _paper_section(path, data.get("paper"), lines)

    publish = {}
    for key, value in (data.get("publish") or {}).items():
        if key not in PUBLISH_KEYS:
            raise _fail(path, lines, f"publish.{key}", f"unknown key; allowed: {', '.join(PUBLISH_KEYS)}")
        if value is not None and not isinstance(value, PUBLISH_KEYS[key]):
            raise _fail(path, lines, f"publish.{key}", f"must be a {PUBLISH_KEYS[key].__name__}")
        publish[key] = value
    sections["publish"] = publish

    for section in STAGE_SECTIONS:
        if section not in data:
            continue
        values = dict(data[section] or {})
        stage_params = _command_params(section)
        for key, value in values.items():
            if key in ("enabled", "sft"):
                continue
            if stage_params is not None:
                if key not in stage_params:
                    raise _fail(path, lines, f"{section}.{key}", f"unknown key; allowed: enabled, {', '.join(sorted(stage_params))}")
                try:
                    values[key] = _convert(stage_params[key], value)
                except click.BadParameter as error:
                    raise _fail(path, lines, f"{section}.{key}", error.message) from error
        sections[section] = values

    recipe_trains = "train" in sections and sections["train"].get("enabled", True)
    declared = sections["paper"].get("arm")
    actual = settings_arm(adapts, sections["adapt"], bool(recipe_trains))
    if declared and declared != actual:
        raise _fail(path, lines, "paper.arm", f"says {declared}, but the recipe's settings make it {actual}")

    name = data.get("name") or path.stem
    output = data.get("output") or f"runs/{path.parent.name}/{path.stem}"
    if not isinstance(name, str) or not isinstance(output, str):
        raise _fail(path, lines, "name" if not isinstance(name, str) else "output", "must be a string")
    return Recipe(path=path, name=name, output=Path(output), sections=sections, lines=lines)


def _paper_section(path: Path, value: Any, lines: dict[str, int]) -> dict[str, Any]:
    """`paper: {tables: [1, 5], arm: Adaptation-Full, dataset: Math-QwQ-32B}`."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(path, lines, "paper", "must be a mapping (tables, arm, dataset)")
    out: dict[str, Any] = {}
    for key, item in value.items():
        where = f"paper.{key}"
        if key == "tables":
            tables = item if isinstance(item, list) else [item]
            if not all(isinstance(t, int) and t in PAPER_TABLES for t in tables):
                raise _fail(path, lines, where, f"a list of the paper's table numbers ({', '.join(map(str, PAPER_TABLES))})")
            out[key] = sorted(set(tables))
        elif key == "arm":
            if item not in ARMS:
                raise _fail(path, lines, where, f"one of {', '.join(ARMS)}")
            out[key] = item
        elif key in ("dataset", "student"):
            if not isinstance(item, str) or not item:
                raise _fail(path, lines, where, "must be a string (the name shown in the table)")
            out[key] = item
        else:
            raise _fail(path, lines, where, "unknown key; allowed: arm, dataset, student, tables")
    return out


def stage_options(recipe: Recipe, stage: str, params: set[str]) -> dict[str, Any]:
    """A train / eval stage's settings from the recipe: the keys other sections share with it
    (`STAGE_SHARED`), then its own section. Nothing else crosses over."""
    options: dict[str, Any] = {}
    for section, mapping in STAGE_SHARED[stage].items():
        for key, value in recipe.section(section).items():
            name = mapping.get(key)
            if name in params:
                options[name] = value
    options.update({k: v for k, v in recipe.section(stage).items() if k in params})
    return options


def adapt_options(recipe: Recipe, output: Path, *, dry_run: bool = False, quiet: bool = False) -> dict[str, Any]:
    """The fields of the recipe's `AdaptSpec`: the CLI's defaults, overridden by the recipe."""
    options = AdaptSpec.defaults()
    options.update({"output": output, "dry_run": dry_run, "quiet": quiet})
    for section, mapping in ADAPT_SECTIONS.items():
        for key, value in recipe.section(section).items():
            options[mapping[key]] = value
    if "push_to_hub" in options:
        options["push_to_hub"] = None  # `dart-hub run` publishes in its own push stage
    return options
