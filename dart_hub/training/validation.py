"""Where checkpoint selection gets its problems, and how many tokens an answer may use.

Two sources (`--validation-source`):

- `heldout` (default, the paper's): a slice of the training problems, held out of training
  (`--validation-size`, default 5%), answered with the training prompt (its system message);
- a benchmark of the evaluation registry, `NAME` or `NAME=PATH_OR_REPO` as for
  `dart-hub eval --benchmark-source` (e.g. `math500`, or `gsm8k=openai/gsm8k,config=main,split=train`
  for a named split): nothing is held out of training, the benchmark's items are asked with the
  evaluation prompt, and `--validation-size` (if given) keeps that share / count of them.

The budget (`--validation-max-tokens`) defaults to the evaluation budget (`dart-hub eval
--max-tokens`, 16384; a recipe's `eval.max_tokens`), so a checkpoint is chosen under the
conditions it is scored under.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dart_hub.errors import DartHubError

HELDOUT = "heldout"
HELDOUT_SIZE = 0.05  # the paper's 5% of the training problems


@dataclass(frozen=True)
class ValidationSource:
    kind: str  # "heldout" or "benchmark"
    benchmark: str | None = None
    override: str | None = None  # PATH_OR_REPO for the benchmark, as --benchmark-source takes

    @staticmethod
    def parse(text: str | None) -> ValidationSource:
        from dart_hub.evaluation.benchmarks import get_benchmark

        value = (text or HELDOUT).strip()
        if value == HELDOUT:
            return ValidationSource(HELDOUT)
        name, sep, spec = value.partition("=")
        try:
            get_benchmark(name.strip())
        except DartHubError as error:
            raise DartHubError(f"--validation-source {value!r}: '{HELDOUT}' or a benchmark: {error}") from None
        if sep and not spec.strip():
            raise DartHubError(f"--validation-source {value!r}: give NAME=PATH_OR_REPO, or only NAME")
        return ValidationSource("benchmark", name.strip(), spec.strip() or None)


def subset_count(size: float | None, total: int) -> int:
    """A benchmark's items kept for validation: all when size is None; a share if < 1, else a count."""
    if size is None or total == 0:
        return total
    if size <= 0:
        return 0
    count = round(size * total) if size < 1 else int(size)
    return max(1, min(count, total))


def benchmark_items(source: ValidationSource, size: float | None, seed: int) -> tuple[list[Any], dict[str, Any]]:
    """The validation items of a benchmark source (a stable subset when size is given) and where
    they came from."""
    import hashlib

    from dart_hub.evaluation.benchmarks import load_benchmark_data

    loaded = load_benchmark_data(source.benchmark or "", source.override)
    items = loaded.items
    count = subset_count(size, len(items))
    if count < len(items):  # same hash rule as the held-out slice: stable, order-free
        items = sorted(items, key=lambda i: hashlib.sha256(f"{seed}:{i.id}".encode()).hexdigest())[:count]
    record = {
        "source": "benchmark",
        "benchmark": loaded.benchmark.name,
        "title": loaded.benchmark.title,
        "where": loaded.source,
        "problems": len(items),
        "of": len(loaded.items),
    }
    return items, record


def validation_plan(options: dict[str, Any], training_problems: int | None, eval_budget: int) -> dict[str, Any]:
    """What checkpoint selection will use, from `dart-hub train` options, without loading data:
    {source, benchmark, problems (None when unknown), size, max_tokens}."""
    from dart_hub.evaluation.benchmarks import BENCHMARKS
    from dart_hub.training.data import validation_count

    source = ValidationSource.parse(options.get("validation_source"))
    size = options.get("validation_size")
    budget = options.get("validation_max_tokens") or eval_budget
    if options.get("select_best") is False:
        return {"source": "none", "problems": 0, "size": 0, "max_tokens": budget}
    if source.kind == HELDOUT:
        size = HELDOUT_SIZE if size is None else size
        problems = validation_count(size, training_problems) if training_problems else None
        return {"source": HELDOUT, "problems": problems, "size": size, "max_tokens": budget}
    rows = BENCHMARKS[source.benchmark or ""].rows
    return {"source": "benchmark", "benchmark": source.benchmark, "override": source.override,
            "problems": subset_count(size, rows), "size": size, "max_tokens": budget}


def describe_validation(record: dict[str, Any]) -> str:
    """One line for plans, summaries and the model card."""
    budget = f"at most {record['max_tokens']:,} new tokens" if record.get("max_tokens") else "the default budget"
    if record.get("source") == "none":
        return "no checkpoint selection (the last epoch is kept)"
    if record.get("source") == HELDOUT:
        count = f"{record['problems']:,} " if record.get("problems") is not None else ""
        size = record.get("size")
        share = f"{100 * size:g}% of " if isinstance(size, float) and size < 1 else ""
        return f"{count}held-out training problems ({share}the training problems, never trained on), {budget}"
    from dart_hub.evaluation.benchmarks import BENCHMARKS

    name = record.get("benchmark") or ""
    benchmark = BENCHMARKS.get(name)
    where = record.get("override") or (record.get("where") or {}).get("repo_id") or (record.get("where") or {}).get("path")
    if not where and benchmark is not None:
        where = benchmark.repo_id
    split = (record.get("where") or {}).get("split") or (benchmark.split if benchmark else None)
    count = f"{record['problems']:,} problems of " if record.get("problems") is not None else ""
    title = record.get("title") or (benchmark.title if benchmark else name)
    return f"{count}{title} ({where}{f', split {split}' if split else ''}), {budget}"


def select_validation(request: Any, rows: list[dict[str, Any]], seed: int):
    """(training rows, held-out rows (for the validation loss), {system prompt: [EvalItem]} to
    score each checkpoint on, a record of the choice for the summary and the card)."""
    from dart_hub.training.data import split_validation
    from dart_hub.training.select import heldout_items

    budget = request.validation_max_tokens
    if not request.select_best:
        return list(rows), [], {}, {"source": "none", "problems": 0, "size": 0, "max_tokens": budget}
    source = ValidationSource.parse(request.validation_source)
    if source.kind == HELDOUT:
        size = HELDOUT_SIZE if request.validation_size is None else request.validation_size
        train, held = split_validation(rows, size, seed)
        record = {"source": HELDOUT, "problems": len(held), "size": size, "max_tokens": budget}
        return train, held, heldout_items(held), record
    from dart_hub.evaluation.run import EVAL_SYSTEM_PROMPT

    items, record = benchmark_items(source, request.validation_size, seed)
    record.update(size=request.validation_size, override=source.override, max_tokens=budget)
    return list(rows), [], ({EVAL_SYSTEM_PROMPT: items} if items else {}), record
