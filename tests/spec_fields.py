"""How a CLI option is written as a field of its spec (dart_hub.specs): used by the option/spec
agreement test to tell the developer the exact line to add, and to compare the two."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


def _constants() -> dict[tuple[str, ...], str]:
    from dart_hub.adaptation.cut import PEAK_ALIASES, PEAK_RULES, STRATEGIES
    from dart_hub.adaptation.search import SEARCHES
    from dart_hub.config import CLEANING, KEEP_RULES
    from dart_hub.engines.factory import ENGINES
    from dart_hub.methods import METHODS
    from dart_hub.sources import PRESETS

    return {
        tuple(STRATEGIES): "STRATEGIES",
        tuple(SEARCHES): "SEARCHES",
        (*PEAK_RULES, *PEAK_ALIASES): "(*PEAK_RULES, *PEAK_ALIASES)",
        tuple(KEEP_RULES): "KEEP_RULES",
        tuple(CLEANING): "CLEANING",
        tuple(ENGINES): "ENGINES",
        tuple(METHODS): "METHODS",
        tuple(sorted(PRESETS)): "sorted(PRESETS)",
    }


def type_source(t: click.ParamType) -> str | None:
    """The click type as source code (None: a plain str/bool needs no check)."""
    if isinstance(t, click.Choice):
        name = _constants().get(tuple(t.choices))
        return f"click.Choice({name})" if name else f"click.Choice({list(t.choices)!r})"
    if isinstance(t, click.IntRange | click.FloatRange):
        cls = "IntRange" if isinstance(t, click.IntRange) else "FloatRange"
        args = []
        if t.min is not None:
            args.append(f"min={t.min!r}")
        if t.max is not None:
            args.append(f"max={t.max!r}")
        if t.min_open:
            args.append("min_open=True")
        if t.max_open:
            args.append("max_open=True")
        return f"click.{cls}({', '.join(args)})"
    if isinstance(t, click.Path):
        return f"click.Path(file_okay={t.file_okay}, dir_okay={t.dir_okay}, path_type=Path)"
    if t is click.INT:
        return "click.INT"
    if t is click.FLOAT:
        return "click.FLOAT"
    return None


def annotation(p: click.Parameter, default: Any) -> str:
    t = p.type
    base = None
    if isinstance(t, click.types.BoolParamType):
        base = "bool"
    elif t is click.INT:
        base = "int"
    elif t is click.FLOAT:
        base = "float"
    if base is None:
        if isinstance(t, click.IntRange):
            base = "int"
        elif isinstance(t, click.FloatRange):
            base = "float"
        elif isinstance(t, click.Path):
            base = "Path"
        else:
            base = "str"
    if p.multiple or p.nargs == -1:
        return f"tuple[{base}, ...]"
    return f"{base} | None" if default is None and not p.required else base


def default_of(p: click.Parameter) -> Any:
    value = p.get_default(click.Context(click.Command("x")))
    if type(value).__name__ == "Sentinel":
        value = None
    if p.multiple or p.nargs == -1:
        return tuple(value or ())
    if isinstance(value, Path):
        return value
    return value


def flag_of(p: click.Parameter) -> str:
    if isinstance(p, click.Argument):
        return p.human_readable_name
    return max(p.opts, key=len)


def field_line(p: click.Parameter) -> str:
    """`name: type = option(default, "--flag", check)` as the spec writes it."""
    default = default_of(p)
    check = type_source(p.type)
    args = [("REQUIRED" if p.required else repr(default)), repr(flag_of(p))]
    if check:
        args.append(check)
    return f"    {p.name}: {annotation(p, default)} = option({', '.join(args)})"
