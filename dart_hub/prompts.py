"""Simulation, exploration and solve prompts: Jinja templates, replaceable with a YAML file."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from importlib import resources
from pathlib import Path

import jinja2
import yaml

from dart_hub.errors import DartHubError

TEMPLATE_KEYS = ("simulation", "exploration", "solve", "rewrite", "system", "sft_system")
# StrictUndefined: a typo like {{ questoin }} fails loudly instead of rendering empty.
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False, autoescape=False)


@dataclass(frozen=True)
class Prompts:
    simulation: str
    exploration: str
    solve: str
    system: str = ""
    sft_system: str = ""
    rewrite: str = ""  # "rewrite this reference solution in your own steps" (DAIL-style methods)

    def render(self, name: str, question: str, reasoning: str = "") -> str:
        template = getattr(self, name)
        try:
            return _ENV.from_string(template).render(question=question, reasoning=reasoning)
        except jinja2.TemplateError as error:
            raise DartHubError(f"prompt template '{name}' failed to render: {error}. Fix it in your --prompts file") from error

    def messages(self, name: str, question: str, reasoning: str = "") -> list[dict[str, str]]:
        """Chat messages for a rollout: optional system message + the rendered user prompt."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": self.render(name, question, reasoning)})
        return messages

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:16]

    def to_dict(self) -> dict[str, str]:
        return asdict(self)


def load_method_templates(cls, resource: str, path: str | Path | None, keys: Sequence[str], label: str):
    """A method's own templates (`cls`, a frozen dataclass of strings) from the packaged YAML
    `resource`, with the keys present in the user's file at `path` replaced."""
    text = resources.files("dart_hub").joinpath(resource).read_text(encoding="utf-8")
    templates = cls(**yaml.safe_load(text))
    if path is None:
        return templates
    path = Path(path)
    if not path.is_file():
        raise DartHubError(f"{label} prompts file {path} does not exist")
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    unknown = sorted(set(data) - set(keys)) if isinstance(data, dict) else ["(not a mapping)"]
    if unknown:
        raise DartHubError(f"{path}: unknown {label} prompt keys {unknown}; use {', '.join(keys)}")
    return replace(templates, **{k: str(v) for k, v in data.items()})


def default_prompts() -> Prompts:
    text = resources.files("dart_hub").joinpath("resources/prompts.yaml").read_text(encoding="utf-8")
    return Prompts(**yaml.safe_load(text))


def load_prompts(path: str | Path | None) -> Prompts:
    """Default prompts, with the keys present in the user's YAML file replaced."""
    prompts = default_prompts()
    if path is None:
        return prompts
    path = Path(path)
    if not path.is_file():
        raise DartHubError(f"prompts file {path} not found; pass a YAML file with keys {', '.join(TEMPLATE_KEYS)}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise DartHubError(f"prompts file {path} is not valid YAML: {error}") from error
    if not isinstance(data, dict):
        raise DartHubError(f"prompts file {path} must be a mapping with keys {', '.join(TEMPLATE_KEYS)}")
    unknown = sorted(set(data) - set(TEMPLATE_KEYS))
    if unknown:
        raise DartHubError(f"prompts file {path} has unknown keys {unknown}; allowed: {', '.join(TEMPLATE_KEYS)}")
    for key, value in data.items():
        if not isinstance(value, str):
            raise DartHubError(f"prompts file {path}: '{key}' must be a string template")
        try:
            _ENV.parse(value)
        except jinja2.TemplateSyntaxError as error:
            raise DartHubError(f"prompts file {path}: template '{key}' has a syntax error: {error.message} (line {error.lineno})") from error
    return replace(prompts, **data)
