"""The specs of dart_hub.api agree with the command line: one field per option, same name,
flag, default and check. A failure names the line to add or remove in dart_hub/specs.py (or
dart_hub/toy/demo.py for DemoSpec). The API functions that take plain arguments instead of a
spec (merge, card, report, prefetch, push, compare, run_recipe) have one parameter per option,
with the option's default."""

from __future__ import annotations

import importlib
import inspect

import click
import pytest

from dart_hub import api
from dart_hub.errors import DartHubError
from dart_hub.specs import AdaptSpec, EvalSpec, InspectSpec, MapperTrainSpec, TrainSpec
from dart_hub.toy.demo import DemoSpec
from tests.spec_fields import default_of, field_line, flag_of, type_source

CLI_ONLY = {"as_json"}  # --json: how the command prints, not what the stage does
# options that only choose how a command prints: inspect --full (whole steps, not one line each)
PRINT_ONLY = {"inspect": {"full"}}
PAIRS = [
    ("adapt", AdaptSpec), ("train", TrainSpec), ("eval", EvalSpec), ("inspect", InspectSpec),
    ("mapper train", MapperTrainSpec), ("demo", DemoSpec),
]  # fmt: skip


def command_of(name: str) -> click.Command:
    """`dart-hub NAME [SUB]`'s click command."""
    first, *subs = name.split()
    command = importlib.import_module(f"dart_hub.commands.{first}").command
    for sub in subs:
        command = command.commands[sub]
    return command


@pytest.mark.parametrize(("name", "spec"), PAIRS)
def test_every_option_has_its_spec_field_and_back(name, spec):
    command = command_of(name)
    options = {p.name: p for p in command.params if p.name not in CLI_ONLY | PRINT_ONLY.get(name, set())}
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


# command -> (API function, {option: API parameter, or None for an option that only decides how
# the command prints or reads its input}, API parameters no option sets)
FUNCTIONS = {
    "merge": ("merge", {}, set()),
    "card": ("card", {}, set()),
    "report": ("report", {}, set()),
    "prefetch": ("prefetch", {"quiet": None}, {"on_fetch"}),
    "push": ("push", {"token_env": "token"}, set()),
    "compare": ("compare", {"directories": "runs"}, set()),
    "run": ("run_recipe", {"recipe_path": "path", "dry_run": None}, set()),
}


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_every_option_is_a_parameter_of_its_api_function_and_back(name):
    function_name, renamed, api_only = FUNCTIONS[name]
    parameters = inspect.signature(getattr(api, function_name)).parameters
    command = command_of(name)
    covered = set()
    for option in command.params:
        if option.name in CLI_ONLY or renamed.get(option.name, "") is None:
            continue
        target = renamed.get(option.name, option.name)
        assert target in parameters, f"`dart-hub {name}` {flag_of(option)} has no parameter {target!r} in dart_hub.api.{function_name}"
        covered.add(target)
        if not option.required:
            expected = default_of(option)
            got = parameters[target].default
            # a repeatable option's () and the function's None both mean "none given"
            assert (got or None) == (expected or None), f"dart_hub.api.{function_name}({target}=...): default {got!r}, CLI {flag_of(option)} {expected!r}"
    extra = set(parameters) - covered - api_only
    assert not extra, f"dart_hub.api.{function_name} has parameters no `dart-hub {name}` option sets: {sorted(extra)}"


def test_the_function_check_catches_a_drift(monkeypatch):
    command = command_of("merge")
    monkeypatch.setattr(command, "params", [*command.params, click.Option(["--keep-duplicates"], is_flag=True)])
    with pytest.raises(AssertionError, match=r"--keep-duplicates has no parameter 'keep_duplicates' in dart_hub.api.merge"):
        test_every_option_is_a_parameter_of_its_api_function_and_back("merge")


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
        "from dart_hub import card, demo, inspect, mapper_train, merge, prefetch, report, DemoSpec, InspectSpec, MapperTrainSpec; "
        "assert inspect is api.inspect and demo is api.demo and DemoSpec is api.DemoSpec and MapperTrainSpec is api.MapperTrainSpec; "
        "assert 'torch' not in sys.modules; "
        # dart_hub.adapt is the function even after the adapt stage's package is imported
        "from dart_hub import adapt; import dart_hub.adaptation.stage; "
        "assert adapt is api.adapt and dart_hub.adapt is api.adapt"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
