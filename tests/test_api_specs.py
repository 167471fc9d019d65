"""The specs of dart_hub.api agree with the command line: one field per option, same name,
flag, default and check. A failure names the line to add or remove in dart_hub/specs.py."""

from __future__ import annotations

import importlib

import pytest

from dart_hub.errors import DartHubError
from dart_hub.specs import AdaptSpec, EvalSpec, TrainSpec
from tests.spec_fields import default_of, field_line, flag_of, type_source

CLI_ONLY = {"as_json"}  # --json: how the command prints, not what the stage does
PAIRS = [("adapt", AdaptSpec), ("train", TrainSpec), ("eval", EvalSpec)]


@pytest.mark.parametrize(("name", "spec"), PAIRS)
def test_every_option_has_its_spec_field_and_back(name, spec):
    command = importlib.import_module(f"dart_hub.commands.{name}").command
    options = {p.name: p for p in command.params if p.name not in CLI_ONLY}
    fields = spec.params()
    missing = [field_line(options[n]) for n in options if n not in fields]
    assert not missing, f"`dart-hub {name}` has options {spec.__name__} lacks; add to dart_hub/specs.py:\n" + "\n".join(missing)
    extra = [n for n in fields if n not in options]
    assert not extra, f"{spec.__name__} has fields no `dart-hub {name}` option sets: {extra} (add the option or remove the field)"
    for option_name, option in options.items():
        field = fields[option_name]
        expected = field_line(option)
        assert field.flag == flag_of(option), f"{spec.__name__}.{option_name}: flag {field.flag}, CLI {flag_of(option)}; write: {expected}"
        assert field.required == option.required, f"{spec.__name__}.{option_name}: required differs; write: {expected}"
        if not option.required:
            assert field.default == default_of(option), f"{spec.__name__}.{option_name}: default {field.default!r}, CLI {default_of(option)!r}; write: {expected}"
        spec_check = spec.__dataclass_fields__[option_name].metadata["check"]
        got = type_source(spec_check) if spec_check is not None else None
        assert got == type_source(option.type), f"{spec.__name__}.{option_name}: check {got}, CLI {type_source(option.type)}; write: {expected}"
        assert field.multiple == bool(option.multiple), f"{spec.__name__}.{option_name}: repeatable differs; write: {expected}"


def test_the_agreement_check_catches_a_drift(monkeypatch):
    """A new CLI option without a spec field fails the test above with the line to add."""
    import click

    command = importlib.import_module("dart_hub.commands.adapt").command
    extra = click.Option(["--new-knob"], type=click.IntRange(min=1), default=3)
    monkeypatch.setattr(command, "params", [*command.params, extra])
    with pytest.raises(AssertionError, match=r"new_knob: int = option\(3, '--new-knob', click.IntRange\(min=1\)\)"):
        test_every_option_has_its_spec_field_and_back("adapt", AdaptSpec)


def test_a_spec_checks_values_as_the_command_line_does():
    spec = AdaptSpec(student="s", dataset="d", n_sim="3", output="out")
    assert spec.n_sim == 3 and str(spec.output) == "out" and spec.output.__class__.__name__.endswith("Path")
    with pytest.raises(DartHubError, match=r"^Invalid value for '--n-sim': 0 is not in the range x>=1.$"):
        AdaptSpec(student="s", dataset="d", n_sim=0)
    with pytest.raises(DartHubError, match="Invalid value for '--strategy': 'bogus' is not one of"):
        AdaptSpec(student="s", dataset="d", strategy="bogus")
    with pytest.raises(TypeError):
        AdaptSpec(dataset="d")  # --student is required
    assert EvalSpec(model="m", output="o", benchmark_sources="gsm8k=x.jsonl").benchmark_sources == ("gsm8k=x.jsonl",)
    assert TrainSpec().static is None and TrainSpec(eval_dirs=["a"]).eval_dirs[0].name == "a"


def test_the_package_re_exports_the_api_without_loading_it_at_import():
    import subprocess
    import sys

    script = (
        "import sys, dart_hub; assert 'dart_hub.api' not in sys.modules; "
        "from dart_hub import AdaptSpec, DartHubError, compare, evaluate, push, run_recipe, train; "
        "import dart_hub.api as api, dart_hub.errors as errors; "
        "assert train is api.train and push is api.push and AdaptSpec is api.AdaptSpec and DartHubError is errors.DartHubError; "
        "assert 'torch' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
