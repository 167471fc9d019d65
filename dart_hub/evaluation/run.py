"""Running a model on the benchmarks: prompts, one engine call per chunk, grading, resume.

Output directory layout::

    <output>/results.json          per benchmark accuracy and counts, model, engine, settings,
                                   the unweighted average over benchmarks
    <output>/<benchmark>.jsonl     one record per item: prompt, output, extracted answer, gold,
                                   correct (written once the benchmark is finished)
    <output>/.partial/<benchmark>/ finished chunks of a benchmark still running (removed at the
                                   end); a killed run resumes from them

Every file is written to a temporary name, fsync'd and renamed (`dart_hub.store.write_atomic`),
so it is either absent or complete. A benchmark whose results.json entry has the same
fingerprint (model, token budget, prompt, source commit or file hashes, item ids) and whose
jsonl is complete is not recomputed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from dart_hub import __version__
from dart_hub.answers import AnswerChecker
from dart_hub.engines.base import Engine, GenerationRequest
from dart_hub.errors import DartHubError
from dart_hub.evaluation.benchmarks import (
    ALL_BENCHMARKS,
    CHOICE_LETTERS,
    BenchmarkSource,
    EvalItem,
    LoadedBenchmark,
    load_benchmark_data,
    parse_benchmark_list,
)
from dart_hub.evaluation.grading import grade_outputs
from dart_hub.evaluation.report import RESULTS_FILE, RESULTS_FORMAT, read_results_file
from dart_hub.store import fingerprint, write_atomic

# The Qwen2.5-Math chain-of-thought system prompt, which is also the system message of the
# SFT data dart-hub writes (prompts.yaml `sft_system`): students are evaluated as trained.
EVAL_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."
CHOICE_INSTRUCTION = "Answer with the letter of the correct choice (A, B, C or D) inside \\boxed{}."
PROMPT_VERSION = "eval-prompt/1"  # bump when build_messages changes: stored results then redo
# Long-CoT students (LIMO-style SFT, trained at max length 16384) write traces of several
# thousand tokens; the Qwen suite's 2048 truncates them. 16384 matches the training length.
DEFAULT_MAX_TOKENS = 16384
# Items per engine call and per stored chunk: the paper's vLLM max_num_seqs (512), so one call
# keeps the scheduler full; a crash loses at most one chunk.
DEFAULT_CHUNK_SIZE = 512


# ---------------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------------


def build_messages(item: EvalItem, system_prompt: str = EVAL_SYSTEM_PROMPT) -> list[dict[str, str]]:
    """Chat messages for one item: the system prompt, then the question (multiple choice: with
    the options lettered A-D and an instruction to box the letter)."""
    user = item.question
    if item.choices is not None:
        options = "\n".join(
            f"({letter}) {choice}" for letter, choice in zip(CHOICE_LETTERS, item.choices, strict=False)
        )
        user = f"{item.question}\n\nAnswer Choices:\n{options}\n\n{CHOICE_INSTRUCTION}"
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": user})
    return messages


def build_request(
    item: EvalItem,
    max_tokens: int,
    system_prompt: str = EVAL_SYSTEM_PROMPT,
    sampling: Sampling | None = None,
) -> GenerationRequest:
    """Greedy decoding (temperature 0, one sample) through the engine's chat path, or
    `sampling.samples` samples at its temperature / top-p, seeded per item (its benchmark and
    id): one seed for every item would draw every problem's samples from the same random
    stream, and a seed from the item's position would change with --limit or a shard."""
    from dart_hub.adaptation.judge import request_seed

    sampling = sampling or Sampling()
    seed = 0 if sampling.temperature == 0 else request_seed(0, f"{item.benchmark}:{item.id}", "eval", 0)
    return GenerationRequest.chat(
        build_messages(item, system_prompt),
        n=sampling.samples,
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=max_tokens,
        seed=seed,
    )


# DAIL's evaluation sampling (METHOD-DAIL.md section 3): temperature 0.6, top-p 0.95.
SAMPLING_TEMPERATURE = 0.6
SAMPLING_TOP_P = 0.95


@dataclass(frozen=True)
class Sampling:
    """Samples per problem and how they are drawn; the default is one greedy answer."""

    samples: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    pass_k: tuple[int, ...] = (1,)

    @staticmethod
    def make(samples: int = 1, temperature: float | None = None, top_p: float | None = None, pass_k: str | Sequence[int] | None = None) -> Sampling:
        """Greedy for one sample unless a temperature is given; DAIL's 0.6 / 0.95 for several."""
        from dart_hub.evaluation.passk import parse_pass_k

        if samples < 1:
            raise DartHubError("--samples must be at least 1")
        if temperature is None:
            temperature = 0.0 if samples == 1 else SAMPLING_TEMPERATURE
        if top_p is None:
            top_p = 1.0 if temperature == 0 else SAMPLING_TOP_P
        if samples > 1 and temperature == 0:
            raise DartHubError("--samples > 1 with temperature 0 draws the same greedy answer n times; set --temperature > 0")
        ks = parse_pass_k(pass_k if isinstance(pass_k, str) or pass_k is None else ",".join(map(str, pass_k)), samples)
        return Sampling(samples, float(temperature), float(top_p), tuple(ks))

    @property
    def greedy_single(self) -> bool:
        return self.samples == 1 and self.temperature == 0


# ---------------------------------------------------------------------------------------------
# Items
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemResult:
    benchmark: str
    id: str
    prompt: list[dict[str, str]]  # the chat messages sent
    output: str
    finish_reason: str  # "stop" or "length" (hit max_tokens)
    completion_tokens: int
    extracted: str | None  # the final answer read from the output (a letter for MMLU)
    gold: str
    correct: bool
    choices: list[str] | None = None
    # With --samples N > 1: every sample (output, finish_reason, completion_tokens, extracted,
    # correct); the fields above are the first sample's.
    samples: list[dict[str, Any]] | None = None
    num_correct: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if self.samples is None:  # one greedy answer: the records stay as they were
            out.pop("samples")
            out.pop("num_correct")
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ItemResult:
        return ItemResult(**{key: data.get(key) for key in ItemResult.__dataclass_fields__})


def evaluate_items(
    engine: Engine,
    items: Sequence[EvalItem],
    checker: AnswerChecker | None,
    max_tokens: int,
    progress: Any = None,
    *,
    system_prompt: str = EVAL_SYSTEM_PROMPT,
    sampling: Sampling | None = None,
) -> list[ItemResult]:
    """Generate (one `engine.generate` call for all `items`, greedy) and grade.

    `progress(count)` is passed to the engine (called as sequences finish). Math items are graded
    with `checker.equivalent_many` (gold first; None: the shared default checker), items with
    `choices` by letter. Results come back in the order of `items`."""
    items = list(items)
    if not items:
        return []
    sampling = sampling or Sampling()
    requests = [build_request(item, max_tokens, system_prompt, sampling) for item in items]
    completions = engine.generate(requests, progress=progress)
    n = sampling.samples
    if len(completions) != len(items) or any(len(c) < n for c in completions):
        raise DartHubError(f"engine {engine.name} returned {len(completions)} results for {len(items)} prompts ({n} samples each)")
    if n > 1:
        return _sampled_results(items, requests, completions, checker, n)
    firsts = [c[0] for c in completions]
    grades = grade_outputs(items, [c.text for c in firsts], checker)
    return [
        ItemResult(
            benchmark=item.benchmark,
            id=item.id,
            prompt=[dict(m) for m in request.message_dicts()],
            output=completion.text,
            finish_reason=completion.finish_reason,
            completion_tokens=completion.completion_tokens,
            extracted=grade.extracted,
            gold=item.gold,
            correct=grade.correct,
            choices=item.choices,
        )
        for item, request, completion, grade in zip(items, requests, firsts, grades, strict=True)
    ]


def _sampled_results(items, requests, completions, checker, n: int) -> list[ItemResult]:
    """Grade all n samples of every item (one grading call) -> one ItemResult per item."""
    flat_items = [item for item in items for _ in range(n)]
    flat = [sample for group in completions for sample in group[:n]]
    grades = grade_outputs(flat_items, [c.text for c in flat], checker)
    out = []
    for index, (item, request) in enumerate(zip(items, requests, strict=True)):
        group = flat[index * n : (index + 1) * n]
        marks = grades[index * n : (index + 1) * n]
        samples = [
            {
                "output": c.text,
                "finish_reason": c.finish_reason,
                "completion_tokens": c.completion_tokens,
                "extracted": g.extracted,
                "correct": g.correct,
            }
            for c, g in zip(group, marks, strict=True)
        ]
        first = samples[0]
        out.append(
            ItemResult(
                benchmark=item.benchmark,
                id=item.id,
                prompt=[dict(m) for m in request.message_dicts()],
                output=first["output"],
                finish_reason=first["finish_reason"],
                completion_tokens=first["completion_tokens"],
                extracted=first["extracted"],
                gold=item.gold,
                correct=first["correct"],
                choices=item.choices,
                samples=samples,
                num_correct=sum(s["correct"] for s in samples),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Whole runs
# ---------------------------------------------------------------------------------------------


class EvalProgress(Protocol):
    def benchmark_started(self, name: str, total: int, done: int) -> None: ...

    def items_done(self, count: int) -> None: ...


class _NoProgress:
    def benchmark_started(self, name: str, total: int, done: int) -> None:
        pass

    def items_done(self, count: int) -> None:
        pass


@dataclass
class EvalReport:
    """What `evaluate` wrote: the results.json content and which benchmarks ran or resumed."""

    output_dir: Path
    data: dict[str, Any]
    computed: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)

    @property
    def average(self) -> float | None:
        return self.data.get("average")

    def accuracy(self, name: str) -> float:
        return self.data["benchmarks"][name]["accuracy"]

    def to_dict(self) -> dict[str, Any]:
        return {**self.data, "output_dir": str(self.output_dir), "computed": self.computed, "resumed": self.resumed}


def evaluate(
    engine: Engine,
    benchmarks: Sequence[str] | str | None,
    output_dir: str | Path,
    limit: int | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    checker: AnswerChecker | None = None,
    *,
    sources: dict[str, BenchmarkSource | str] | None = None,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    system_prompt: str = EVAL_SYSTEM_PROMPT,
    model_revision: str | None = None,
    progress: EvalProgress | None = None,
    sampling: Sampling | None = None,
) -> EvalReport:
    """Evaluate `engine` on `benchmarks` (names; None = all five), writing `<output_dir>/<name>.jsonl`
    and `<output_dir>/results.json`. Finished benchmarks (same fingerprint) are not recomputed,
    finished chunks of an interrupted benchmark are reused. All benchmarks are loaded first, so a
    bad source fails before any generation."""
    names = parse_benchmark_list(benchmarks)
    if max_tokens < 1 or chunk_size < 1:
        raise DartHubError("max_tokens and chunk_size must be at least 1")
    output = Path(output_dir)
    output.mkdir(parents=True, exist_ok=True)
    progress = progress or _NoProgress()
    sampling = sampling or Sampling()
    identity = {
        "model": engine.model_id,
        "model_revision": model_revision,
        "max_tokens": max_tokens,
        "system_prompt": system_prompt,
        "prompt_version": PROMPT_VERSION,
    }
    if not sampling.greedy_single:  # (greedy runs keep their identity: older results resume)
        identity.update(n=sampling.samples, temperature=sampling.temperature, top_p=sampling.top_p)
    previous = _previous_results(output, identity)
    sources = sources or {}
    loaded = {name: load_benchmark_data(name, sources.get(name), limit) for name in names}

    own_checker = checker is None and any(
        item.choices is None for data in loaded.values() for item in data.items
    )
    if own_checker:
        checker = AnswerChecker()
    data = _results_skeleton(engine, identity, previous)
    if not sampling.greedy_single:
        data["settings"]["pass_k"] = list(sampling.pass_k)
    report = EvalReport(output, data)
    started = time.monotonic()
    try:
        for name, bench in loaded.items():
            key = _benchmark_fingerprint(identity, bench)
            entry = previous.get("benchmarks", {}).get(name) if previous else None
            if entry and entry.get("fingerprint") == key and _jsonl_complete(output / f"{name}.jsonl", len(bench.items)):
                data["benchmarks"][name] = entry
                report.resumed.append(name)
                continue
            results = _run_benchmark(engine, bench, key, output, checker, max_tokens, chunk_size, system_prompt, progress, sampling)
            data["benchmarks"][name] = _summary(bench, results, key, limit, sampling)
            report.computed.append(name)
            _finish(data, engine, started)
            write_atomic(output / RESULTS_FILE, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    finally:
        if own_checker and checker is not None:
            checker.close()
    _finish(data, engine, started)
    data["benchmarks"] = _ordered(data["benchmarks"])
    write_atomic(output / RESULTS_FILE, json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return report


GREEDY = {"n": 1, "temperature": 0.0, "top_p": 1.0}


def _previous_results(output: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    path = output / RESULTS_FILE
    if not path.exists():
        return None  # nothing finished here yet (stray jsonl files are recomputed)
    previous = read_results_file(path)
    # sampling settings count even where one side is greedy (results without them were greedy)
    identity = {**GREEDY, **identity}
    theirs = {key: previous.get("settings", {}).get(key, previous.get(key, GREEDY.get(key))) for key in identity}
    different = [key for key in identity if theirs.get(key) != identity[key]]
    if different:
        shown = ", ".join(f"{key} {theirs.get(key)!r} (now {identity[key]!r})" for key in different if key != "system_prompt")
        if "system_prompt" in different:
            shown = ", ".join(filter(None, [shown, "another system prompt"]))
        raise DartHubError(
            f"output dir {output} holds results of another run ({shown}); use another --output "
            f"or delete {path}"
        )
    return previous


def _results_skeleton(engine: Engine, identity: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "format": RESULTS_FORMAT,
        "dart_hub_version": __version__,
        "model": identity["model"],
        "model_revision": identity["model_revision"],
        "engine": (previous or {}).get("engine") or engine.describe(),
        "settings": {
            "max_tokens": identity["max_tokens"],
            "temperature": identity.get("temperature", 0.0),
            "top_p": identity.get("top_p", 1.0),
            "n": identity.get("n", 1),
            "system_prompt": identity["system_prompt"],
            "choice_instruction": CHOICE_INSTRUCTION,
            "prompt_version": identity["prompt_version"],
            "grading": "math: last \\boxed{} (then ####, 'the answer is', 'Answer:') vs gold with "
            "math-verify, gold first; multiple choice: the option letter",
        },
        # Benchmarks finished earlier in this dir (other names) stay: same model and settings.
        "benchmarks": dict((previous or {}).get("benchmarks", {})),
        "average": None,
        "average_over": [],
    }


def _finish(data: dict[str, Any], engine: Engine, started: float) -> None:
    described = engine.describe()
    if len(described) > len(data.get("engine") or {}):
        data["engine"] = described  # the loaded engine knows more (dtype, device, versions)
    accuracies = {name: entry["accuracy"] for name, entry in data["benchmarks"].items()}
    data["average"] = sum(accuracies.values()) / len(accuracies) if accuracies else None
    data["average_over"] = list(accuracies)
    data["seconds"] = round(time.monotonic() - started, 1)  # of this invocation


def _ordered(entries: dict[str, Any]) -> dict[str, Any]:
    """Registry order (the paper's column order), whatever order they were run in."""
    order = [n for n in ALL_BENCHMARKS if n in entries] + [n for n in entries if n not in ALL_BENCHMARKS]
    return {name: entries[name] for name in order}


def _benchmark_fingerprint(identity: dict[str, Any], bench: LoadedBenchmark) -> str:
    # The items themselves (ids, questions, golds, choices), not only where they came from.
    ids = hashlib.sha256(
        json.dumps([[i.id, i.question, i.gold, i.choices] for i in bench.items]).encode()
    ).hexdigest()
    # Local files count by content (sha256), not by where they lie.
    source = {key: value for key, value in bench.source.items() if key != "path"}
    return fingerprint({"identity": identity, "source": source, "ids": ids, "n": len(bench.items)})


def _jsonl_complete(path: Path, expected: int) -> bool:
    if not path.exists():
        return False
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        return len(lines) == expected and all(json.loads(line).get("id") for line in lines)
    except (OSError, ValueError):
        return False


def _run_benchmark(
    engine: Engine,
    bench: LoadedBenchmark,
    key: str,
    output: Path,
    checker: AnswerChecker | None,
    max_tokens: int,
    chunk_size: int,
    system_prompt: str,
    progress: EvalProgress,
    sampling: Sampling,
) -> list[ItemResult]:
    name = bench.benchmark.name
    partial = output / ".partial" / name
    partial.mkdir(parents=True, exist_ok=True)
    for stale in partial.glob("*.jsonl"):
        if not stale.name.startswith(key):
            stale.unlink()  # chunks of this benchmark under other settings or items
    items = bench.items
    chunks = [items[i : i + chunk_size] for i in range(0, len(items), chunk_size)]
    stored: dict[int, list[ItemResult]] = {}
    for index, chunk in enumerate(chunks):
        records = _load_chunk(partial / _chunk_name(key, index, chunk), chunk)
        if records is not None:
            stored[index] = records
    # progress counts sequences: n per item
    progress.benchmark_started(name, len(items) * sampling.samples, sum(len(r) for r in stored.values()) * sampling.samples)
    results: list[ItemResult] = []
    for index, chunk in enumerate(chunks):
        if index not in stored:
            stored[index] = evaluate_items(
                engine, chunk, checker, max_tokens, progress=progress.items_done, system_prompt=system_prompt, sampling=sampling
            )
            write_atomic(partial / _chunk_name(key, index, chunk), _jsonl(stored[index]))
        results.extend(stored[index])
    write_atomic(output / f"{name}.jsonl", _jsonl(results))
    shutil.rmtree(partial, ignore_errors=True)
    with contextlib.suppress(OSError):
        (output / ".partial").rmdir()  # only when empty
    return results


def _chunk_name(key: str, index: int, chunk: Sequence[EvalItem]) -> str:
    ids = hashlib.sha256("\n".join(item.id for item in chunk).encode()).hexdigest()[:12]
    return f"{key}-{index:05d}-{ids}.jsonl"


def _load_chunk(path: Path, chunk: Sequence[EvalItem]) -> list[ItemResult] | None:
    if not path.exists():
        return None
    try:
        records = [ItemResult.from_dict(json.loads(line)) for line in path.read_text(encoding="utf-8").splitlines() if line]
    except (OSError, ValueError, TypeError):
        return None
    if [r.id for r in records] != [item.id for item in chunk]:
        return None
    return records


def _jsonl(results: Sequence[ItemResult]) -> str:
    return "".join(json.dumps(r.to_dict(), ensure_ascii=False) + "\n" for r in results)


def _summary(
    bench: LoadedBenchmark, results: Sequence[ItemResult], key: str, limit: int | None, sampling: Sampling | None = None
) -> dict[str, Any]:
    from dart_hub.evaluation.passk import mean_pass_at_k

    sampling = sampling or Sampling()
    total = len(results)
    # every sample (one per item when greedy): counts and lengths are over samples
    samples = [s for r in results for s in r.samples] if sampling.samples > 1 else [r.to_dict() for r in results]
    tokens = [s["completion_tokens"] for s in samples if s["completion_tokens"] is not None]
    sampled: dict[str, Any] = {}
    if sampling.samples > 1:
        counts = [(len(r.samples), int(r.num_correct)) for r in results]
        pass_k = {str(k): mean_pass_at_k(counts, k) for k in sampling.pass_k}
        # accuracy = the mean share of correct samples = unbiased pass@1; `correct` counts
        # samples, out of total x samples
        sampled = {"samples": sampling.samples, "pass_at_k": pass_k}
        accuracy = mean_pass_at_k(counts, 1) if counts else 0.0
        correct = sum(c for _, c in counts)
    else:
        correct = sum(r.correct for r in results)
        accuracy = correct / total if total else 0.0
    return {
        "title": bench.benchmark.title,
        "accuracy": accuracy,
        "correct": correct,
        "total": total,
        **sampled,
        "answered": sum(s["extracted"] is not None for s in samples),
        "truncated": sum(s["finish_reason"] == "length" for s in samples),
        "mean_completion_tokens": round(sum(tokens) / len(tokens), 1) if tokens else None,
        "limit": limit,
        "complete": not bench.limited and total == bench.benchmark.rows,
        "rows_expected": bench.benchmark.rows,
        "rows_in_source": bench.complete_rows,
        "excluded_rows": bench.excluded,
        "skipped": bench.skipped,
        "warnings": bench.warnings(),
        "source": bench.source,
        "fingerprint": key,
        "file": f"{bench.benchmark.name}.jsonl",
    }
