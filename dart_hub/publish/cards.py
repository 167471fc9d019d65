"""The dataset card (README.md) of an adapted dataset: YAML metadata + Markdown body.

Metadata is a huggingface_hub ``DatasetCardData`` dumped by the library (never string
concatenation), the body is rendered from the Jinja templates in the top-level ``cards/`` folder.
Everything the card says comes from the run configuration (``dart_config.json``) and the
examples (the ``steps`` config), so ``dart-hub card FOLDER`` re-renders exactly the card that
``adapt`` wrote:

* deterministic: the run config is normalised through JSON with sorted keys, dicts are shown
  sorted or in a fixed order, statistics are recomputed from the examples, nothing depends on
  the clock, the machine or the run's wall time;
* safe: user strings (questions, model and dataset names, prompts) go through :func:`md`
  (inline / table cells), :func:`code` (inline code) or :func:`fence` (code blocks), and into
  the YAML only through ``DatasetCardData``; the card is refused when it contains something
  that looks like a Hugging Face token.
"""

from __future__ import annotations

import json
import re
import shlex
import statistics
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import jinja2

from dart_hub.errors import DartHubError
from dart_hub.records import AdaptedExample

# A user access token is "hf_" + 34 letters/digits; 30+ keeps a margin for other token kinds.
TOKEN_RE = re.compile(r"hf_[A-Za-z0-9]{30,}")

TAGS = ["dart", "reasoning", "math", "distillation", "synthetic", "chain-of-thought", "sft"]

# (upper bound exclusive, Hub size category)
_SIZES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
    (1_000_000_000, "100M<n<1B"),
]

# adapt parameter -> (CLI flag or None, meaning). The card's parameter table follows this order;
# parameters not listed here (added later) follow, sorted, with their raw value.
PARAMETERS: dict[str, tuple[str | None, str]] = {
    "strategy": ("--strategy", "adaptation strategy: full (gap + exploration), gap, first or static"),
    "n_sim": ("--n-sim", "simulation rollouts per expert step (N_sim); f_t has granularity 1/N_sim"),
    "sim_temperature": ("--sim-temperature", "sampling temperature of simulation rollouts"),
    "sim_top_p": (None, "top-p of simulation rollouts"),
    "sim_max_tokens": ("--sim-max-tokens", "max new tokens of a simulation rollout"),
    "probe": ("--probe", "which prefixes get simulation rollouts: scan (every prefix, N_sim each) or adaptive (coarse prefixes, binary search towards the cut, sequential stopping)"),
    "probe_coarse": ("--probe-coarse", "adaptive probing: evenly spaced prefixes probed first"),
    "probe_head": ("--probe-head", "adaptive probing: the first prefixes t = 0..H are probed first as well"),
    "probe_round": ("--probe-round", "adaptive probing: rollouts a prefix gets first; the rest only while they could change its side of the threshold"),
    "epsilon": ("--epsilon", "significant drop of f below the peak that marks the imitation gap"),
    "rules": ("--rules", "paper: Algorithm 1 as written; robust: dart-hub's additions (the switches below, each a named deviation)"),
    "peak": ("--peak", "which maximum of f is the peak: global (the first index of the maximum, Algorithm 1) or local (the best step before the first significant drop)"),
    "min_follow": ("--min-follow", "with no significant drop the expert trace is kept unchanged only if f at the last probed prefix is at least this (0: always, as in Algorithm 1); otherwise the student continues from its best prefix"),
    "answer_steps": ("--answer-steps", "probe (Algorithm 1) or skip the prefixes that already state the gold answer in a \\boxed{}"),
    "confirm": ("--confirm", "extra rollouts that may confirm a candidate gap and its peak (sequential test); 0: none, as in Algorithm 1"),
    "all_zero": ("--all-zero", "f all zero: trace = no gap, the expert trace is kept (Algorithm 1 read literally); question = the student solves from the question alone"),
    "unfinished": ("--unfinished", "keep (outcome consistency alone decides) or drop continuations cut off by the token budget"),
    "n_explore": ("--n-explore", "exploration samples from the kept prefix (strategy full)"),
    "explore_temperature": ("--explore-temperature", "sampling temperature of exploration"),
    "explore_top_p": (None, "top-p of exploration"),
    "explore_max_tokens": ("--explore-max-tokens", "max new tokens of an exploration sample"),
    "max_repetition": ("--max-repetition", "continuations whose repeated word n-gram share is above this are dropped"),
    "repetition_ngram": ("--repetition-ngram", "n of the word n-grams of the repetition ratio"),
    "keep": ("--keep", "one: keep the best qualifying continuation per problem; all: every qualifying one"),
    "cleaning": ("--cleaning", "cleaned: repetition filter and low-repetition preference (paper Appendix B); raw: neither (paper Table 5, Adaptation-Raw)"),
    "min_step_chars": ("--min-step-chars", "solution fragments shorter than this are merged into a neighbouring step"),
    "chunk_size": ("--chunk-size", "problems per engine call and per stored chunk (part of the run fingerprint)"),
    "seed": ("--seed", "base seed; every request's seed derives from it and the request"),
}

CUT_REASONS = {
    "gap": "cut at the imitation gap; the student continued from the kept prefix",
    "no_drop": "no significant drop after the peak and the student follows the trace to its end (f at the last probed prefix >= min_follow): the whole expert trace was kept",
    "weak_follow": "no significant drop, but the student does not reliably follow the whole trace: it continued from its best prefix s_0..s_peak",
    "all_zero": "no rollout reached the answer from any prefix (f all zero)",
    "answer_first": "the first expert step already states the answer: nothing could be probed (handled like all zero)",
    "first_feasible": "cut after the first step with a successful rollout (Adaptation-First)",
    "static": "expert trace kept unchanged (nothing probed)",
    "rewrite": "DAIL: the student rewrote the whole solution from the privileged context",
    "mapper_rewrite": "mapper: the best-rewarded qualifying rewrite of the mapper model",
    "mapper_original": "mapper: no rewrite qualified; the original solution was kept (--mapper-fallback original)",
}

DISCARD_REASONS = {
    "no_consistent_continuation": "no exploration sample reached the expert's answer",
    "no_successful_rollout": "no simulation rollout from the kept prefix reached the answer",
    "repetitive": "every finished continuation with the right answer was too repetitive",
    "truncated": "every continuation with the right answer was cut off by the token budget (never kept: the row would end mid-sentence)",
    "answer_in_first_step": "the first expert step already states the answer and the strategy has no exploration",
    "no_candidates": "no continuation was generated",
    "no_correct_rewrite": "mapper: no rewrite reached the expert's answer",
    "cheating_too_short": "mapper: every correct finished rewrite was much shorter (words or steps) than the student's own solution",
    "cheating_answer_first": "mapper: every correct finished rewrite stated the answer before deriving it",
    "answer_only_rewrite": "DAIL, guarded filter (a dart-hub addition): every correct sample only restated the answer",
    "cheating_unsupported_answer": "mapper: in every correct finished rewrite the boxed answer was not what its derivation reached",
    "cheating_copy": "mapper: every correct finished rewrite was a near-verbatim copy of the original",
    "cheating_repetition": "mapper: every correct finished rewrite was degenerately repetitive",
}

MAPPER_PARAMETERS: dict[str, tuple[str | None, str]] = {
    "mapper": ("--mapper", "the rewriting model (none: the student itself, the no-RL baseline)"),
    "samples": ("--mapper-samples", "rewrites sampled per problem"),
    "temperature": ("--mapper-temperature", "sampling temperature"),
    "top_p": ("--mapper-top-p", "top-p"),
    "max_tokens": ("--mapper-max-tokens", "max new tokens per rewrite"),
    "fallback": ("--mapper-fallback", "when no rewrite qualifies: drop the problem or keep the original"),
    "scorer": ("--scorer", "what computed the student's likelihood (alignment reward): transformers forward pass or vLLM prompt log-probabilities"),
    "chunk_size": ("--chunk-size", "problems per engine call and per stored chunk"),
    "seed": ("--seed", "base seed; every request's seed derives from it and the request"),
}

DAIL_PARAMETERS: dict[str, tuple[str | None, str]] = {
    "samples": ("--dail-samples", "samples per problem from the privileged context"),
    "temperature": ("--dail-temperature", "sampling temperature"),
    "top_p": ("--dail-top-p", "top-p"),
    "max_tokens": ("--dail-max-tokens", "max new tokens per sample"),
    "tau": ("--dail-tau", "mixed-policy threshold: 1 = every token from the privileged context"),
    "proposer": ("--dail-proposer", "mixed policy (tau < 1): the context that proposes tokens; the other validates"),
    "top_k": (None, "mixed policy: tokens each context keeps, renormalised"),
    "max_draws": (None, "mixed policy: proposals tried before the validator samples"),
    "max_hints": ("--dail-max-hints", "intermediate quantities in the negative context's hint"),
    "filter": ("--dail-filter", "paper: the DAIL paper's filter; guarded: also the answer-only guard (a dart-hub addition, not the paper's)"),
    "min_steps": ("--dail-min-steps", "guarded filter (dart-hub addition): fewest reasoning steps (sentences or lines besides the answer) of a kept sample"),
    "max_repetition": ("--max-repetition", "samples whose repeated word n-gram share is above this are dropped"),
    "repetition_ngram": ("--repetition-ngram", "n of the word n-grams of the repetition ratio"),
    "chunk_size": ("--chunk-size", "problems per engine call and per stored chunk"),
    "seed": ("--seed", "base seed; every request's seed derives from it and the request"),
}

DAIL_BIBTEX = """@misc{mendes2026dail,
  title  = {Didactic to Constructive: Turning Expert Solutions into Learnable Reasoning},
  author = {Mendes, Ethan and Park, Jungsoo and Ritter, Alan},
  year   = {2026},
  note   = {arXiv:2602.02405}
}"""

MAPPER_BIBTEX = """@misc{sun2026mapper,
  title  = {Learning to Adapt SFT Data for Better Reasoning Generalization},
  author = {Sun and Wang and Zhang and Wu and Zhang and Peng and Wu},
  year   = {2026},
  note   = {arXiv:2605.26924}
}"""

STRATEGY_NAMES = {
    "mapper": "mapper (own design: a mapper model rewrites each expert solution; best-rewarded verified rewrite kept)",
    "dail": "DAIL (the student rewrites each expert solution from a privileged view; contexts for the contrastive objective included)",
    "full": "Adaptation-Full (imitation-gap cut + exploration with outcome consistency)",
    "gap": "Adaptation-Gap (imitation-gap cut, continuation taken from a successful simulation rollout, no extra search)",
    "first": "Adaptation-First (cut at the first feasible step, continuation taken from a successful simulation rollout)",
    "static": "Static (the expert traces unchanged; baseline)",
}

DART_BIBTEX = """@misc{wu2025dart,
  title  = {Beyond Templates: Dynamic Adaptation of Reasoning Demonstrations via Feasibility-Aware Exploration},
  author = {Wu, Yong and Pan, Weihang and Li, Ke and {Chen Binhui} and Li, Ping and Lin, Binbin},
  year   = {2025},
  note   = {DART: Dynamic Adaptation of Reasoning Trajectories}
}"""

LIMO_BIBTEX = """@misc{ye2025limo,
  title  = {LIMO: Less is More for Reasoning},
  author = {Ye and others},
  year   = {2025}
}"""


# ------------------------------------------------------------------ escaping


# Characters with a meaning anywhere in a line (line-start markers cannot occur: md() output
# is always inside a sentence or a table cell). < > & become HTML entities instead.
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|~$])")


def md(value: Any, limit: int | None = None) -> str:
    """Escape a user string for inline Markdown and table cells: one line, HTML-escaped
    (`<script>` is shown, not run), Markdown punctuation backslash-escaped (`|` cannot end a
    table cell, `*`/`_` cannot start emphasis, `$` cannot start math)."""
    text = " ".join(str(value).split())
    if limit is not None and len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def code(value: Any) -> str:
    """A user string as one line of inline code (safe in prose, not in table cells: use md)."""
    text = " ".join(str(value).split())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text else ""
    return f"{ticks}{pad}{text}{pad}{ticks}"


def fence(value: Any, lang: str = "") -> str:
    """A user text as a fenced code block whose fence is longer than any backtick run inside."""
    text = str(value).rstrip("\n")
    longest = max((len(run) for run in re.findall(r"`{3,}", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def fmt(value: Any) -> str:
    """Stable textual form of a parameter / statistic (floats as Python prints them)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return repr(round(value, 6))
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, ensure_ascii=False)
    return str(value)


def percent(part: int | float, whole: int | float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def check_no_token(text: str, what: str = "the dataset card") -> None:
    """Refuse to write or publish text that contains something that looks like an HF token."""
    # also with Markdown escapes removed: md() writes hf_ as hf\_
    match = TOKEN_RE.search(text) or TOKEN_RE.search(text.replace("\\", ""))
    if match:
        raise DartHubError(
            f"{what} contains something that looks like a Hugging Face token ({match.group(0)[:5]}…); "
            "refusing to write it: remove it from the run configuration / prompts / data and re-render with `dart-hub card`"
        )


# ------------------------------------------------------------------ metadata


def size_category(rows: int) -> str:
    return next((name for bound, name in _SIZES if rows < bound), "n>1B")


def configs_metadata(has_train_rows: bool) -> list[dict[str, Any]]:
    """The `configs` YAML entry: default = kept trajectories, steps = every example.

    datasets refuses to load a split with zero rows, so when nothing was kept the default
    config is not declared and `steps` becomes the default (the empty data/ file stays)."""
    from dart_hub.publish.layout import DATA_FILE, STEPS_FILE

    steps = {"config_name": "steps", "data_files": [{"split": "train", "path": STEPS_FILE}]}
    if not has_train_rows:
        return [{**steps, "default": True}]
    default = {"config_name": "default", "default": True, "data_files": [{"split": "train", "path": DATA_FILE}]}
    return [default, steps]


def _license(source: dict[str, Any]) -> str | list[str]:
    """The source's license id(s) for the YAML; "unknown" when absent or not shaped like a Hub
    license id (the Hub refuses a README whose metadata has an invalid license). The card's
    body shows the source's license text as it is."""
    value = source.get("license")
    parts = [p.strip().lower() for p in str(value or "").split(",") if p.strip()]
    if not parts or not all(re.fullmatch(r"[a-z0-9][a-z0-9.+\-]*", p) for p in parts):
        return "unknown"
    return parts[0] if len(parts) == 1 else parts


def _short(name: str | None) -> str:
    """Display name of a model or dataset: the Hub id as is, a local path's last component."""
    if not name:
        return "?"
    text = str(name).rstrip("/")
    # Decided on the string alone (never by looking at the disk), so the card is the same everywhere.
    if re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", text):
        return text
    return Path(text).name or text


def is_local_model(name: str | None) -> bool:
    """Whether `name` is a local path rather than a Hub id (decided on the string alone)."""
    return bool(name) and _short(name) != str(name).rstrip("/")


def model_label(name: str | None) -> str:
    """How cards and commit titles name a model: a Hub id as is, a local path by its folder name
    followed by "(local)", so that a published card never shows the user's file system."""
    short = _short(name)
    return f"{short} (local)" if is_local_model(name) else short


def model_argument(name: str | None) -> str:
    """A model as a command-line argument in a published card: a Hub id as is, a local path as
    ./FOLDER (the reader has their own copy, wherever it is)."""
    return f"./{_short(name)}" if is_local_model(name) else _short(name)


def _dataset_argument(source: dict[str, Any]) -> str:
    """The --dataset of the card's reproduce command: a local file or folder by its name only."""
    dataset = source.get("dataset") or source.get("repo_id") or "?"
    return f"./{_short(dataset)}" if source.get("kind") == "local" else str(dataset)


def source_name(source: dict[str, Any]) -> str:
    return source.get("repo_id") or _short(source.get("dataset"))


def card_data(config: dict[str, Any], train_rows: int, dataset_info: Any = None):
    """The YAML metadata. `dataset_info`: a datasets ``DatasetInfosDict`` describing the
    folder's parquet files (features, rows, sizes), see folder.dataset_infos."""
    from huggingface_hub import DatasetCardData

    source = config.get("source") or {}
    repo_id = source.get("repo_id")
    pretty = f"{source_name(source)} adapted to {model_label(config.get('student'))} with {(config.get('method') or 'dart').upper()}"
    data = DatasetCardData(
        license=_license(source),
        language=["en"],
        pretty_name=" ".join(pretty.split()),
        size_categories=[size_category(train_rows)],
        source_datasets=[repo_id] if source.get("kind") == "hub" and repo_id else None,
        task_categories=["text-generation"],
        tags=list(TAGS),
        configs=configs_metadata(train_rows > 0),
    )
    if dataset_info:
        # datasets' own serialisation (as push_to_hub writes it). Besides showing features and
        # sizes on the Hub, it keys datasets' cache of a local folder: without it, datasets 5.2
        # reuses a stale cache when a folder with YAML `configs` is rewritten or another folder
        # of the same name is loaded.
        dataset_info.to_dataset_card_data(data)
    return data


# ------------------------------------------------------------------ body


def library_versions() -> dict[str, str]:
    """Versions recorded in dart_config.json when the folder is written (the card reads them
    from there, so re-rendering elsewhere gives the same card)."""
    out = {}
    for name in ("dart-hub", "datasets", "huggingface_hub", "pyarrow"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if "dart-hub" not in out:
        from dart_hub import __version__

        out["dart-hub"] = __version__
    return dict(sorted(out.items()))


def _normalise(run_config: dict[str, Any]) -> dict[str, Any]:
    """The run config as it reads back from dart_config.json (same types, same order)."""
    return json.loads(json.dumps(run_config, sort_keys=True, default=str))


def _statistics(examples: Sequence[AdaptedExample], config: dict[str, Any]) -> dict[str, Any]:
    from dart_hub.adaptation.pipeline import summarize

    adapt = config.get("adapt") or {}
    # summarize only reads max_repetition from the config; a namespace keeps cards renderable
    # for run configs written by other dart-hub versions (AdaptConfig.from_dict would refuse them).
    max_repetition = adapt.get("max_repetition")
    stats = summarize(examples, SimpleNamespace(**{**adapt, "max_repetition": 1.0 if max_repetition is None else max_repetition}))
    lengths = [len(t) for e in examples for t in e.trajectories]
    stats["mean_trajectory_chars"] = round(statistics.fmean(lengths)) if lengths else None
    gaps = [e.relative_gap for e in examples if e.cut_reason == "gap" and e.relative_gap is not None]
    stats["gap_examples"] = len(gaps)
    stats["mean_relative_gap_at_gap"] = round(statistics.fmean(gaps), 4) if gaps else None
    stats["probed"] = sum(1 for e in examples if e.scores)
    return stats


def _reproduce(config: dict[str, Any]) -> str:
    source = config.get("source") or {}
    args = ["dart-hub", "adapt", "--student", model_argument(config.get("student")), "--dataset", _dataset_argument(source)]
    if config.get("student_revision"):
        args += ["--student-revision", str(config["student_revision"])]
    if source.get("kind") == "hub" and source.get("revision"):
        args += ["--revision", str(source["revision"])]
    if source.get("config"):
        args += ["--config", str(source["config"])]
    if source.get("split") and source.get("split") != "train":
        args += ["--split", str(source["split"])]
    if config.get("method") == "mapper":
        mapper = config.get("mapper") or {}
        args += ["--method", "mapper"]
        for key, (flag, _) in MAPPER_PARAMETERS.items():
            if flag and mapper.get(key) is not None:
                args += [flag, fmt(mapper[key])]
    adapt = config.get("adapt") or {}
    if adapt and "rules" not in adapt:  # written before --rules: what ran then, spelled out
        from dart_hub.adaptation.rules import with_legacy

        adapt = {"rules": "robust", **with_legacy(adapt)}
    for key, (flag, _) in PARAMETERS.items():
        if flag and adapt.get(key) is not None:
            args += [flag, fmt(adapt[key])]
    engine = (config.get("engine") or {}).get("engine")
    if engine and engine not in ("scripted",):
        args += ["--engine", str(engine)]
    args += ["--output", "out/"]
    return " \\\n    ".join(" ".join(shlex.quote(a) for a in args[i : i + 2]) for i in range(0, len(args), 2))


# TRL >= 1.16: `trl sft`'s options as its own parser (TrlParser over ScriptArguments, SFTConfig,
# ModelConfig) reads them; booleans take a value there (`--bf16 true`).
TRL_MIN_VERSION = "1.16"


def training_settings() -> dict[str, Any]:
    """The SFTConfig settings `dart-hub train` uses on a GPU with bf16: the paper's defaults,
    bf16 mixed precision, and the loss on the assistant turn only."""
    from dart_hub.training.config import PAPER_DEFAULTS

    return {**PAPER_DEFAULTS, "bf16": True, "assistant_only_loss": True}


def _cli_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def dart_hub_train_command(student: str, dataset: str) -> str:
    """The recommended command: `dart-hub train` with its defaults (the settings above)."""
    name = _short(student).split("/")[-1]
    args = [("dart-hub train", None), ("--student", student), ("--data", dataset), ("--output", f"{name}-dart")]
    return " \\\n    ".join(flag if value is None else f"{flag} {shlex.quote(value)}" for flag, value in args)


def trl_command(student: str, dataset: str) -> str:
    """The same training as a `trl sft` command line, generated from `training_settings()`
    (tests parse it with TRL's own argument parser)."""
    name = _short(student).split("/")[-1]
    args: list[tuple[str, str | None]] = [
        ("trl sft", None),
        ("--model_name_or_path", model_argument(student)),
        ("--dataset_name", dataset),
        ("--output_dir", f"{name}-dart"),
    ]
    args += [(f"--{key}", _cli_value(value)) for key, value in training_settings().items()]
    return " \\\n    ".join(flag if value is None else f"{flag} {shlex.quote(value)}" for flag, value in args)


def _hub_id(value: Any) -> str | None:
    """value when it is a plain Hub repo id (safe inside a URL), else None."""
    if isinstance(value, str) and re.fullmatch(r"[A-Za-z0-9][\w.\-]*/[\w.\-]+", value):
        return value
    return None


def _parameters(adapt: dict[str, Any]) -> list[dict[str, str]]:
    from dart_hub.steps import DEFAULT_MIN_STEP_CHARS

    keys = [k for k in PARAMETERS if k in adapt] + sorted(k for k in adapt if k not in PARAMETERS)
    rows = []
    for key in keys:
        flag, meaning = PARAMETERS.get(key, (None, ""))
        value = adapt[key]
        shown = fmt(value)
        if key == "min_step_chars" and value is None:
            shown = f"none (default {DEFAULT_MIN_STEP_CHARS})"
        rows.append({"name": key, "flag": flag or "", "value": shown, "meaning": meaning})
    return rows


def _example_rows(examples: Sequence[AdaptedExample], limit: int = 5) -> list[dict[str, Any]]:
    rows = []
    for e in examples[:limit]:
        rows.append(
            {
                "id": e.id,
                "question": e.question,
                "steps": len(e.expert_steps),
                "keep_steps": e.keep_steps,
                "scores": " ".join("-" if f is None else f"{f:.2f}" for f in e.scores) if e.scores else "-",
                "cut": e.cut_reason,
                "outcome": e.outcome if e.outcome == "kept" else f"discarded ({e.discard_reason})",
            }
        )
    return rows


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FunctionLoader(_load_template),
        undefined=jinja2.StrictUndefined,  # a typo in a template fails loudly
        autoescape=False,  # Markdown, not HTML: user strings are escaped explicitly (md / code / fence)
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # pystr: a Python string literal (JSON's escaping is valid Python for str).
    env.filters.update(md=md, code=code, fence=fence, fmt=fmt, pystr=lambda v: json.dumps(str(v), ensure_ascii=False))
    env.globals.update(percent=percent)
    return env


def _load_template(name: str) -> str:
    from dart_hub.publish.templates import read_template

    return read_template(name)


def card_context(run_config: dict[str, Any], examples: Sequence[AdaptedExample], figure: str | None) -> dict[str, Any]:
    """Everything the template shows, computed here so the template only formats."""
    from dart_hub.publish import figures

    config = _normalise(run_config)
    source = config.get("source") or {}
    adapt = config.get("adapt") or {}
    stats = _statistics(examples, config)
    engine = config.get("engine") or {}
    versions = config.get("versions") or library_versions()
    hub = config.get("hub") or {}
    repo_id = hub.get("repo_id")
    method = config.get("method") or "dart"
    strategy = method if method in ("dail", "mapper") else adapt.get("strategy", "full")
    skipped = source.get("skipped") or {}
    curve = figures.curves(examples) if figure else None
    dail = config.get("dail") or {}
    return {
        "title": f"{source_name(source)} adapted to {model_label(config.get('student'))} with {method.upper()}",
        "method": method,
        "dail": dail,
        "dail_parameters": [
            {"name": k, "flag": DAIL_PARAMETERS[k][0], "value": fmt(dail[k]), "meaning": DAIL_PARAMETERS[k][1]}
            for k in DAIL_PARAMETERS if k in dail
        ],
        "dail_bibtex": DAIL_BIBTEX,
        **_mapper_context(config.get("mapper") or {}),
        "repo_id": repo_id,
        "load_id": repo_id or "path/to/this/folder",
        "student": model_label(config.get("student")),
        "student_revision": config.get("student_revision"),
        "source": source,
        "source_name": source_name(source),
        "source_license": source.get("license"),
        "columns": source.get("columns") or {},
        "skipped": sorted(skipped.items()) if isinstance(skipped, dict) else [],
        "skipped_total": sum(skipped.values()) if isinstance(skipped, dict) else 0,
        "strategy": strategy,
        "strategy_name": STRATEGY_NAMES.get(strategy, strategy),
        "adapt": adapt,
        "parameters": _parameters(adapt),
        "prompts": sorted((k, v) for k, v in (config.get("prompts") or {}).items() if v),
        "engine": sorted((k, fmt(v)) for k, v in engine.items()),
        "versions": sorted(versions.items()),
        "dart_hub_version": config.get("dart_hub_version") or versions.get("dart-hub", "?"),
        "fingerprint": config.get("fingerprint"),
        "shard": config.get("shard"),
        "merged_from": config.get("merged_from") or [],
        "stats": stats,
        "cut_reasons": [(k, v, CUT_REASONS.get(k, "")) for k, v in sorted(stats["cut_reasons"].items())],
        "discard_reasons": [(k, v, DISCARD_REASONS.get(k, "")) for k, v in sorted(stats["discard_reasons"].items())],
        "figure": figure,
        "report": config.get("report"),  # set by `push --with-report`: the report is in the repo
        "curve": curve,
        "examples": _example_rows(examples),
        "reproduce": _reproduce(config),
        "trl": trl_command(config.get("student") or "?", repo_id or "path/to/this/folder"),
        "train_command": dart_hub_train_command(config.get("student") or "?", repo_id or "path/to/this/folder"),
        "trl_min_version": TRL_MIN_VERSION,
        "repo_link": _hub_id(source.get("repo_id")),
        "is_limo": source.get("repo_id") == "GAIR/LIMO" or source.get("preset") == "limo",
        "dart_bibtex": DART_BIBTEX,
        "limo_bibtex": LIMO_BIBTEX,
        "sft_system": (config.get("prompts") or {}).get("sft_system") or "",
        **_method_texts(adapt, strategy),
        **_rules_context(adapt, method),
    }


def _rules_context(adapt: dict[str, Any], method: str) -> dict[str, Any]:
    """Which cut rules ran and every active deviation from Algorithm 1, by name; where the cuts
    fall next to the paper's Table 6."""
    from dart_hub.adaptation.position import PAPER_TABLE6, TABLE6_SOURCE
    from dart_hub.adaptation.rules import deviations, rules_label, with_legacy

    if method != "dart":
        return {"rules": None, "deviations": [], "rule_settings": {}, "table6": [], "table6_source": TABLE6_SOURCE}
    return {
        "rules": rules_label(adapt),
        "deviations": deviations(adapt),
        "rule_settings": with_legacy(adapt),
        "table6": [(dataset, size, fmt(first), fmt(gap)) for dataset, sizes in PAPER_TABLE6.items() for size, (first, gap) in sizes.items()],
        "table6_source": TABLE6_SOURCE,
    }


def _mapper_context(mapper: dict[str, Any]) -> dict[str, Any]:
    """The mapper section's values: its parameters and its reward parameters, as tables."""
    rewards = mapper.get("rewards") or {}
    return {
        "mapper": mapper,
        "mapper_parameters": [
            {"name": k, "flag": MAPPER_PARAMETERS[k][0], "value": fmt(mapper[k]), "meaning": MAPPER_PARAMETERS[k][1]}
            for k in MAPPER_PARAMETERS if k in mapper
        ],
        "mapper_weights": sorted((rewards.get("weights") or {}).items()),
        "mapper_reward_settings": sorted((k, fmt(v)) for k, v in rewards.items() if k != "weights"),
        "mapper_bibtex": MAPPER_BIBTEX,
    }


def _method_texts(adapt: dict[str, Any], strategy: str) -> dict[str, str]:
    """The strategy- and option-dependent sentences of the Method section."""
    if adapt.get("peak") in ("local", "first", None):  # "first": the old name; None: written before --rules
        peak = ("the first local maximum of f that is followed by a significant drop (the best step "
                "seen before the first t with f_t < max(f_0..f_{t-1}) - epsilon; a deviation from Algorithm 1)")
    else:
        peak = "the first index of the maximum of f (Algorithm 1)"
    if strategy == "full":
        all_zero = "The student then solves the problem from the question alone (empty prefix) and outcome consistency decides."
        exploration = (
            f"From the kept prefix the student writes {fmt(adapt.get('n_explore'))} continuations "
            f"(temperature {fmt(adapt.get('explore_temperature'))}, at most {fmt(adapt.get('explore_max_tokens'))} "
            "new tokens), told to go on from the last kept step in its own style."
        )
    elif strategy == "static":
        all_zero = "(Not applicable: the static baseline probes nothing.)"
        exploration = "None: the static baseline keeps every expert trace unchanged and generates nothing."
    else:
        all_zero = "There is no successful rollout to reuse: the example is discarded."
        exploration = "No extra search: the continuation is one of the successful simulation rollouts of the kept prefix."
    if adapt.get("all_zero") == "trace" and strategy in ("full", "gap"):
        all_zero = ("Then the peak is t = 0 and no f_t falls below 0 - epsilon: there is no gap and the rule "
                    "for no significant drop applies (Algorithm 1 read literally).")
    if adapt.get("keep") == "all":
        keep = "Every qualifying continuation becomes its own row."
    elif adapt.get("cleaning") == "raw":
        keep = "One continuation per problem: the qualifying one with the lowest sample index (raw: no low-repetition preference)."
    else:
        keep = ("One continuation per problem: the qualifying one with the lowest repetition ratio, "
                "then the fewest tokens, then the lowest sample index.")
    return {"peak_text": peak, "all_zero_text": all_zero, "exploration_text": exploration, "keep_text": keep}


def render_card(
    run_config: dict[str, Any],
    examples: Sequence[AdaptedExample],
    figure: str | None = None,
    dataset_info: Any = None,
) -> str:
    """The full README.md text. `figure`: the figure's path relative to the folder, or None;
    `dataset_info`: see card_data (folder.render_folder_card passes the folder's)."""
    from huggingface_hub import DatasetCard

    context = card_context(run_config, examples, figure)
    body = _environment().get_template("dataset_card.md.j2").render(**context)
    train_rows = context["stats"]["trajectories"]
    metadata_yaml = card_data(_normalise(run_config), train_rows, dataset_info).to_yaml()
    from dart_hub.publish.layout import card_marker

    marker = card_marker(run_config)
    content = f"---\n{metadata_yaml}\n---\n\n{body.strip()}\n" + (f"\n{marker}\n" if marker else "")
    # Round trip through the library's parser: the metadata must read back exactly as built.
    parsed = DatasetCard(content).data.to_dict()
    expected = card_data(_normalise(run_config), train_rows, dataset_info).to_dict()
    if parsed != expected:  # pragma: no cover - would be a bug in the escaping
        raise DartHubError("the dataset card's YAML metadata does not read back as written; please report this")
    check_no_token(content)
    return content
