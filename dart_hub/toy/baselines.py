"""The skeptic's arms of `dart-hub demo --train`: baselines that could explain the toy table
without DART's gap detection. They are ours, not the paper's arms, and are labelled so.

All three reuse DART's exploration exactly (`dart_hub.adaptation.explore`: the same request, the
same n_explore samples, temperature, top-p, token budget and per-request seeds, the same
outcome-consistency and cleaning rule, the same composition of kept prefix + continuation),
read from the `full` run's dart_config.json; only where the kept expert prefix ends differs:

- `rft` (rejection-sampling fine-tuning, STaR): no expert step; the student samples from the
  question alone (the `solve` prompt, as DART's exploration does with nothing kept) and an
  answer-checked solution is kept;
- `fixed-cut`: the first k expert steps of every problem, k = the median of DART's kept steps
  (`keep_steps`) over the `full` run's problems, then exploration;
- `random-cut`: a cut drawn uniformly per problem (seeded by the seed and the problem id),
  then exploration.

A cut never keeps an answer-revealing step (the first one, `reveal_step`, and every later one)
nor the whole trace: at most `cut_limit` steps, so the student always writes the answer itself.
"""

from __future__ import annotations

import json
import random
import statistics
from collections import Counter
from dataclasses import fields
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from dart_hub.records import AdaptedExample

BASELINE_ARMS = ("rft", "fixed-cut", "random-cut")


def cut_limit(example: AdaptedExample) -> int:
    """The most expert steps a baseline keeps: none that states the answer, never all of them."""
    steps = len(example.expert_steps)
    reveal = example.reveal_step if example.reveal_step is not None else steps
    return max(0, min(reveal, steps - 1))


def median_cut(examples: list[AdaptedExample]) -> int:
    """k of `fixed-cut`: the median (lower middle) of DART's kept steps over its problems."""
    if not examples:
        raise ValueError("no DART examples to take the median cut of")
    return int(statistics.median_low(e.keep_steps for e in examples))


def random_keep(example: AdaptedExample, seed: int) -> int:
    """A uniform draw from 0..cut_limit, seeded by the seed and the problem id only."""
    return random.Random(f"random-cut:{seed}:{example.id}").randint(0, cut_limit(example))


def baseline_cuts(arm: str, examples: list[AdaptedExample], seed: int) -> list[int]:
    """Kept expert steps per problem for a baseline arm."""
    if arm == "rft":
        return [0] * len(examples)
    if arm == "fixed-cut":
        k = median_cut(examples)
        return [min(k, cut_limit(e)) for e in examples]
    if arm == "random-cut":
        return [random_keep(e, seed) for e in examples]
    raise ValueError(f"unknown baseline arm {arm!r}; choose one of {BASELINE_ARMS}")


def dart_settings(folder: Path):
    """The AdaptConfig of a `dart-hub adapt` (DART) run, from its dart_config.json."""
    from dart_hub.config import AdaptConfig

    recorded = json.loads((Path(folder) / "dart_config.json").read_text())["adapt"]
    names = {f.name for f in fields(AdaptConfig)}
    return AdaptConfig(**{k: v for k, v in recorded.items() if k in names})


def explore_from_cuts(examples: list[AdaptedExample], keeps: list[int], engine, config, checker) -> list[dict[str, Any]]:
    """DART's exploration from each problem's kept prefix; one record per problem with the
    kept trajectory (None when no continuation qualified) and the reason."""
    from dart_hub.adaptation.explore import compose, discard_reason, explore_request, select
    from dart_hub.adaptation.judge import judge
    from dart_hub.prompts import default_prompts

    prompts = default_prompts()
    problems = [SimpleNamespace(id=e.id, question=e.question) for e in examples]
    requests = [explore_request(p, e.expert_steps, k, config, prompts) for p, e, k in zip(problems, examples, keeps, strict=True)]
    outputs = engine.generate(requests)
    judged = judge([(e.gold, out) for e, out in zip(examples, outputs, strict=True)], checker, origin="explore", ngram=config.repetition_ngram)
    records = []
    for example, keep, out, candidates in zip(examples, keeps, outputs, judged, strict=True):
        chosen = select(candidates, config)
        trajectory = compose(example.expert_steps, keep, candidates[chosen[0]].text) if chosen else None
        records.append({
            "id": example.id, "question": example.question, "answer": example.gold, "keep_steps": keep,
            "solution": trajectory, "discard_reason": None if chosen else discard_reason(candidates, "explore"),
            "rollouts": len(candidates), "completion_tokens": sum(c.completion_tokens for c in out),
        })  # fmt: skip
    return records


def build_baseline(arm: str, full_folder: Path, output: Path, student: str, checker, seed: int = 0) -> dict[str, Any]:
    """Write OUTPUT (jsonl: question, solution, answer per kept row) for a baseline arm and
    return its summary; a finished file for the same inputs is reused."""
    from dart_hub.engines.factory import create_engine
    from dart_hub.publish.folder import read_examples

    examples = read_examples(full_folder)
    config = dart_settings(full_folder)
    keeps = baseline_cuts(arm, examples, seed)
    summary_path = output.with_suffix(".summary.json")
    key = {"arm": arm, "keeps": keeps, "ids": [e.id for e in examples], "config": config.to_dict(), "seed": seed}
    from dart_hub.toy import toy_student_path

    if student != str(toy_student_path()):  # another world's student samples other rows (default key unchanged)
        key["student"] = student
    if summary_path.exists() and output.exists():
        done = json.loads(summary_path.read_text())
        if done.get("key") == key:
            return done["summary"]
    engine = create_engine("transformers", student, dtype="float32", device="cpu", batch_size=64)
    try:
        records = explore_from_cuts(examples, keeps, engine, config, checker)
    finally:
        engine.close()
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w") as handle:
        for record in records:
            if record["solution"] is not None:
                handle.write(json.dumps({k: record[k] for k in ("id", "question", "solution", "answer", "keep_steps")}) + "\n")
    summary = {
        "arm": arm,
        "problems": len(records),
        "kept": sum(r["solution"] is not None for r in records),
        "discard_reasons": dict(sorted(Counter(r["discard_reason"] for r in records if r["discard_reason"]).items())),
        "keep_steps": dict(sorted(Counter(keeps).items())),
        "fixed_k": median_cut(examples) if arm == "fixed-cut" else None,
        "rollouts": sum(r["rollouts"] for r in records),
        "completion_tokens": sum(r["completion_tokens"] for r in records),
        "exploration": {k: getattr(config, k) for k in ("n_explore", "explore_temperature", "explore_top_p", "explore_max_tokens", "seed")},
    }
    summary_path.write_text(json.dumps({"key": key, "summary": summary}, indent=2) + "\n")
    return summary
