"""What the report of an adapted dataset folder shows, as plain data.

Everything is computed from the folder's own files (dart_config.json and the `steps` parquet,
through `read_examples`), so the report of a folder says what the folder holds; the counts are
the ones `adapt` printed and recorded in dart_config.json's "summary" (tests compare them).
"""

from __future__ import annotations

import re
import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dart_hub.records import AdaptedExample, Candidate

CURVE_BINS = 10  # relative position bins of the mean adaptability curve, as the card's figure
CUT_BINS = 20  # bins of the keep/T histogram over [0, 1]

VERDICTS = ("chosen", "correct", "wrong answer", "unfinished", "repetitive")


def candidate_verdict(candidate: Candidate, max_repetition: float | None, cleaning: str = "cleaned") -> str:
    """Why a candidate was or was not kept, in the order the keep rule checks: chosen; cut off by
    the token budget (unfinished, never kept); a wrong or missing answer; too repetitive (only
    with --cleaning cleaned); otherwise correct but not chosen (--keep one took another)."""
    if candidate.kept:
        return "chosen"
    if candidate.finish_reason == "length":
        return "unfinished"
    if not candidate.correct:
        return "wrong answer"
    if cleaning != "raw" and max_repetition is not None and candidate.repetition > max_repetition:
        return "repetitive"
    return "correct"


def problem_file(index: int, problem_id: str) -> str:
    """The problem page's file name: its position (for order on disk) and a safe form of its id."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", str(problem_id))[:40] or "problem"
    return f"problems/{index:05d}-{safe}.html"


def student_part(example: AdaptedExample, trajectory: str) -> tuple[str, str]:
    """(expert prefix, student's text) of a kept trajectory. DART trajectories are the kept expert
    steps joined, then the continuation; a trajectory the expert wrote whole (nothing cut) has no
    student part; other methods' rewrites are the student's (or the mapper's) from the start."""
    from dart_hub.adaptation.cut import STUDENT_CONTINUES
    from dart_hub.steps import join_steps

    if example.method != "dart":
        return ("", trajectory) if example.cut_reason != "mapper_original" else (trajectory, "")
    if example.cut_reason not in STUDENT_CONTINUES:
        return trajectory, ""
    prefix = join_steps(example.expert_steps[: example.keep_steps]) if example.keep_steps else ""
    if prefix and trajectory.startswith(prefix):
        return prefix, trajectory[len(prefix):].lstrip("\n")  # the blank line between is the join's
    return "", trajectory


def relative_cut(example: AdaptedExample) -> float | None:
    """keep/T, the kept share of the expert trace, for problems whose trace was cut."""
    return example.relative_gap


def quartiles(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    from dart_hub.publish.figures import _quartiles

    q1, median, q3 = _quartiles(values)
    return {"q1": q1, "median": median, "q3": q3, "mean": statistics.fmean(values), "n": len(values)}


def curve_bins(examples: Sequence[AdaptedExample], bins: int = CURVE_BINS) -> list[dict[str, float]]:
    """Mean adaptability by relative position (t+1)/T, with quartiles over problems, in `bins`
    right-closed bins of (0, 1]: every problem contributes the mean of its probed steps in a bin
    (so long traces do not outweigh short ones), as the card's figure does."""
    per_bin: list[list[float]] = [[] for _ in range(bins)]
    for example in examples:
        total = len(example.scores)
        sums, counts = [0.0] * bins, [0] * bins
        for t, f in enumerate(example.scores):
            if f is None:
                continue
            index = min(bins - 1, max(0, -(-(t + 1) * bins // total) - 1))  # ceil((t+1)/T * bins) - 1
            sums[index] += f
            counts[index] += 1
        for i in range(bins):
            if counts[i]:
                per_bin[i].append(sums[i] / counts[i])
    rows = []
    for i, values in enumerate(per_bin):
        if values:
            rows.append({"lo": i / bins, "hi": (i + 1) / bins, **quartiles(values)})
    return rows


def histogram(values: Sequence[float], bins: int = CUT_BINS) -> list[dict[str, float]]:
    """Counts of values in [0, 1] over `bins` equal bins (the last one closed: 1.0 counts)."""
    counts = [0] * bins
    for value in values:
        counts[min(bins - 1, max(0, int(value * bins)))] += 1
    return [{"lo": i / bins, "hi": (i + 1) / bins, "count": c} for i, c in enumerate(counts)]


def problem_record(index: int, example: AdaptedExample, adapt: dict[str, Any]) -> dict[str, Any]:
    """Everything a problem's page and its row in the list show."""
    max_repetition = adapt.get("max_repetition")
    cleaning = adapt.get("cleaning", "cleaned")
    candidates = []
    for number, candidate in enumerate(example.candidates):
        candidates.append(
            {
                "number": number,
                "text": candidate.text,
                "answer": candidate.answer,
                "verdict": candidate_verdict(candidate, max_repetition, cleaning),
                "correct": candidate.correct,
                "repetition": candidate.repetition,
                "completion_tokens": candidate.completion_tokens,
                "finish_reason": candidate.finish_reason,
                "origin": candidate.origin,
            }
        )
    verdicts = Counter(c["verdict"] for c in candidates)
    steps = len(example.expert_steps)
    trajectories = [dict(zip(("expert", "student"), student_part(example, t), strict=True)) for t in example.trajectories]
    return {
        "index": index,
        "id": example.id,
        "file": problem_file(index, example.id),
        "question": example.question,
        "gold": example.gold,
        "method": example.method,
        "strategy": example.strategy,
        "outcome": example.outcome,
        "cut_reason": example.cut_reason,
        "discard_reason": example.discard_reason,
        "steps": steps,
        "expert_steps": list(example.expert_steps),
        "keep_steps": example.keep_steps,
        "relative_cut": relative_cut(example),
        "scores": list(example.scores),
        "successes": list(example.successes),
        "samples": list(example.samples),
        "peak": example.peak,
        "gap": example.gap,
        "reveal_step": example.reveal_step,
        "probed_steps": [t for t, f in enumerate(example.scores) if f is not None],
        "candidates": candidates,
        "verdicts": dict(verdicts),
        "trajectories": trajectories,
        "rollouts": example.rollouts,
        "prompt_tokens": example.prompt_tokens,
        "completion_tokens": example.completion_tokens,
    }


def method_settings(config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(method, its settings as recorded in dart_config.json: "adapt" for DART)."""
    method = config.get("method") or "dart"
    return method, dict(config.get("adapt" if method == "dart" else method) or {})


def parameter_rows(config: dict[str, Any]) -> list[dict[str, str]]:
    """The settings that ran, with their flag and meaning where the card knows them."""
    from dart_hub.publish.cards import DAIL_PARAMETERS, MAPPER_PARAMETERS, PARAMETERS, fmt

    method, settings = method_settings(config)
    known = {"dart": PARAMETERS, "dail": DAIL_PARAMETERS, "mapper": MAPPER_PARAMETERS}.get(method, {})
    keys = [k for k in known if k in settings] + sorted(k for k in settings if k not in known)
    rows = []
    for key in keys:
        flag, meaning = known.get(key, (None, ""))
        rows.append({"name": key, "flag": flag or "", "value": fmt(settings[key]), "meaning": meaning})
    return rows


def rules_rows(summary: dict[str, Any], config: dict[str, Any]) -> list[dict[str, str]]:
    """The cut rules that ran (DART): the rule set (`paper`, `robust`, or one of them modified,
    dart_hub.adaptation.rules.rules_label) and the value of each switch, then epsilon and the
    strategy; settings written before --rules existed read as that version ran them."""
    from dart_hub.adaptation.rules import SWITCHES, rules_label, with_legacy
    from dart_hub.publish.cards import fmt

    method, settings = method_settings(config)
    if method != "dart" or not settings:
        return []
    full = with_legacy(settings)
    rows = [{"name": "rules", "value": rules_label(settings)}]
    rows += [{"name": key, "value": fmt(full[key])} for key in SWITCHES]
    rows += [{"name": key, "value": fmt(settings[key])} for key in ("epsilon", "strategy", "probe") if key in settings]
    return rows


def deviation_rows(summary: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The run's active deviations from Algorithm 1 (dart_hub.adaptation.rules.deviations), each as
    one line: its name, the option that turns it on and one sentence. None for a paper run."""
    from dart_hub.adaptation.rules import deviations

    method, settings = method_settings(config)
    if method != "dart" or not settings:
        return []
    return [f"{d['name']} ({d['option']}): {d['text']}" for d in deviations(settings)]


def cost(summary: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """Rollouts, tokens, seconds, and GPU-hours where known: recorded by the run, else 0 on a
    CPU engine; a GPU run without a recorded GPU count has wall hours only."""
    engine = config.get("engine") or {}
    device = str(engine.get("device") or "")
    seconds = summary.get("seconds")
    gpu_hours = summary.get("gpu_hours")
    note = ""
    if gpu_hours is None and device == "cpu":
        gpu_hours, note = 0.0, "CPU engine"
    elif gpu_hours is None and seconds is not None:
        note = f"not recorded; wall time {seconds / 3600:.3f} h on {device or engine.get('engine') or 'an unknown device'}"
    return {
        "rollouts": summary.get("rollouts"),
        "candidates": summary.get("candidates"),
        "prompt_tokens": summary.get("prompt_tokens"),
        "completion_tokens": summary.get("completion_tokens"),
        "probed_prefixes": summary.get("probed_prefixes"),
        "seconds": seconds,
        "gpu_hours": gpu_hours,
        "gpu_hours_note": note,
        "engine": engine.get("engine"),
        "device": device or None,
    }


def dataset_report(folder: str | Path) -> dict[str, Any]:
    """The report's data for an adapt output folder: {"overview": ..., "problems": [...]}."""
    from types import SimpleNamespace

    from dart_hub.adaptation.pipeline import summarize
    from dart_hub.publish.cards import (
        CUT_REASONS,
        DISCARD_REASONS,
        STRATEGY_NAMES,
        model_label,
        source_name,
    )
    from dart_hub.publish.layout import DATA_FILE, STEPS_FILE, read_config, read_examples
    from dart_hub.report.paper import TABLE6_CAPTION, table6_marks, table6_rows

    folder = Path(folder)
    config = read_config(folder)
    examples = read_examples(folder)
    method, settings = method_settings(config)
    recorded = dict(config.get("summary") or {})
    repetition = settings.get("max_repetition")
    # summarize reads only max_repetition (as the card computes its statistics)
    counted = summarize(examples, SimpleNamespace(max_repetition=1.0 if repetition is None else repetition))
    # the folder's own counts; what only the run knew (seconds, skipped rows) from its summary
    summary = {**recorded, **counted}
    strategy = method if method in ("dail", "mapper") else settings.get("strategy", "full")
    source = config.get("source") or {}
    problems = [problem_record(i, e, settings) for i, e in enumerate(examples)]
    cuts = [p["relative_cut"] for p in problems if p["relative_cut"] is not None]
    links = [{"name": "dataset card", "path": "README.md"}]
    for name, relative in (("train config (parquet)", DATA_FILE), ("steps config (parquet)", STEPS_FILE),
                           ("run configuration", "dart_config.json"), ("card figure", "figures/adaptability.png")):  # fmt: skip
        if (folder / relative).is_file():
            links.append({"name": name, "path": relative})
    skipped = source.get("skipped") or {}
    overview = {
        "title": f"{source_name(source)} adapted to {model_label(config.get('student'))} with {method.upper()}",
        "method": method,
        "strategy": strategy,
        "strategy_name": STRATEGY_NAMES.get(strategy, strategy),
        "student": config.get("student"),
        "source": source_name(source),
        "content_id": config.get("content_id"),
        "fingerprint": config.get("fingerprint"),
        "dart_hub_version": config.get("dart_hub_version"),
        "counts": {key: summary.get(key) for key in ("problems", "kept", "discarded", "trajectories", "candidates")},
        "discard_reasons": [(k, v, DISCARD_REASONS.get(k, "")) for k, v in sorted(summary["discard_reasons"].items())],
        "cut_reasons": [(k, v, CUT_REASONS.get(k, "")) for k, v in sorted(summary["cut_reasons"].items())],
        "skipped_rows": sorted(skipped.items()) if isinstance(skipped, dict) else [],
        "rules": rules_rows(summary, config),
        "deviations": deviation_rows(summary, config),
        "parameters": parameter_rows(config),
        "curve": curve_bins(examples),
        "probed_problems": sum(1 for e in examples if any(f is not None for f in e.scores)),
        "cut_positions": quartiles(cuts),
        "cut_histogram": histogram(cuts),
        "mean_relative_gap": summary.get("mean_relative_gap"),
        "table6_marks": table6_marks(strategy),
        "table6_rows": table6_rows(),
        "table6_caption": TABLE6_CAPTION,
        "cost": cost(summary, config),
        "links": links,
        "summary": summary,
    }
    return {"overview": overview, "problems": problems}


def list_entry(problem: dict[str, Any]) -> dict[str, Any]:
    """A problem's row in the report's list (what filtering, sorting and search need)."""
    return {
        "i": problem["index"],
        "id": problem["id"],
        "file": problem["file"],
        "q": problem["question"],
        "outcome": problem["outcome"],
        "reason": problem["cut_reason"],
        "discard": problem["discard_reason"],
        "keep": problem["keep_steps"],
        "steps": problem["steps"],
        "cut": problem["relative_cut"],
        "rollouts": problem["rollouts"],
        "tokens": problem["prompt_tokens"] + problem["completion_tokens"],
        "verdicts": problem["verdicts"],
    }
