"""`dart-hub eval`: a model on the five math benchmarks of the DART paper."""

from __future__ import annotations

import json
from pathlib import Path

import click

from dart_hub.commands.options import engine_options
from dart_hub.evaluation.benchmarks import BENCHMARK_NAMES, BENCHMARKS
from dart_hub.evaluation.run import DEFAULT_CHUNK_SIZE, DEFAULT_MAX_TOKENS
from dart_hub.evaluation.stage import run  # noqa: F401  (the stage, for code written when it lived here; new code calls dart_hub.api)

_TABLE = "\n".join(
    f"  {b.name:<14}{b.title:<16}{b.rows:>5} rows  {b.repo_id}" for b in BENCHMARKS.values()
)

HELP = f"""Evaluate a model on the DART paper's math benchmarks.

\b
Benchmarks (--benchmarks: default the five of the paper's Table 1; 'all' adds MATH-500 and
Minerva Math, the paper's other two):
{_TABLE}

\b
Each question is sent through the model's chat template with a system message asking for
step-by-step reasoning and a final answer in \\boxed{{}} (MMLU-STEM: the question with its
options lettered A-D, answer with the letter). Greedy decoding, one sample, unless --samples N:
then N samples per question at temperature 0.6 / top-p 0.95 (DAIL's evaluation), accuracy is
the share of correct samples (= pass@1) and results.json adds pass@k for --pass-k (unbiased
estimator 1 - C(n-c,k)/C(n,k)). Every benchmark reports its mean response length in tokens.
Math answers are
the last \\boxed{{}} compared with the gold answer by math-verify (gold first); MMLU-STEM by the
chosen letter.

\b
--max-tokens defaults to {DEFAULT_MAX_TOKENS}: long-CoT students (LIMO-style SFT, trained at
16384 tokens) need that room; the Qwen2.5-Math suite's 2048 cuts their reasoning short.
The number of truncated outputs is in results.json.

\b
Writes OUTPUT/<benchmark>.jsonl (prompt, output, extracted answer, gold, correct) and
OUTPUT/results.json (accuracies, counts, average over benchmarks, model, engine, settings).
Rerunning the same command resumes: finished benchmarks and chunks are not recomputed.
Compare runs with `dart-hub compare DIR...`.

\b
Sources: each benchmark's Hub dataset is in the table; --benchmark-source NAME=PATH reads a
local .jsonl/.json/.parquet file or folder instead, NAME=OWNER/REPO[@REVISION][,config=C]
[,split=S] another Hub dataset (same columns as the original, e.g. the Qwen2.5-Math suite's
evaluation/data/<name>/test.jsonl).

\b
Examples:
  dart-hub eval --model Qwen/Qwen2.5-1.5B-Instruct --output eval/base
  dart-hub eval --model ./checkpoints/limo-full --benchmarks gsm8k,mmlu_stem \\
                --benchmark-source gsm8k=./data/gsm8k/test.jsonl --output eval/full
"""


@click.command(help=HELP, context_settings={"max_content_width": 100})
@click.option("--model", required=True, help="Model to evaluate: Hub id or local folder (a checkpoint).")
@click.option("--model-revision", default=None, help="Hub revision of the model.")
@click.option("--benchmarks", default=",".join(BENCHMARK_NAMES), show_default=True, help="Comma-separated benchmark names, 'default' (the first five) or 'all'.")
@click.option("--output", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder for results.json and the per-benchmark jsonl files (resumes if it holds a run of the same model).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="Evaluate only the first N items of each benchmark (smoke tests; results are marked incomplete).")
@click.option("--max-tokens", type=click.IntRange(min=1), default=DEFAULT_MAX_TOKENS, show_default=True, help="Max new tokens per answer.")
@click.option("--chunk-size", type=click.IntRange(min=1), default=DEFAULT_CHUNK_SIZE, show_default=True, help="Items per engine call (and per stored chunk for resume).")
@click.option("--benchmark-source", "benchmark_sources", multiple=True, metavar="NAME=PATH_OR_REPO", help="Read benchmark NAME from a local file/folder or another Hub dataset (OWNER/REPO[@REVISION][,config=C][,split=S]). Repeatable.")
@click.option("--samples", type=click.IntRange(min=1), default=1, show_default=True, help="Samples per question; above 1, pass@k is reported (unbiased estimator) and decoding samples at --temperature.")
@click.option("--pass-k", "pass_k", default=None, metavar="K[,K...]", help="k values of pass@k, each <= --samples. [default: 1, 2, 4, ... up to --samples]")
@click.option("--temperature", type=click.FloatRange(min=0), default=None, help="Sampling temperature. [default: 0 (greedy) for one sample, 0.6 (DAIL's) for several]")
@click.option("--top-p", type=click.FloatRange(min=0, max=1, min_open=True), default=None, help="Nucleus sampling top-p. [default: 1 when greedy, 0.95 (DAIL's) when sampling]")
@engine_options
@click.option("--answer-timeout", type=float, default=5.0, show_default=True, help="Seconds before an answer comparison is killed and counted as wrong.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print results.json's content on stdout.")
def command(as_json: bool, **options) -> None:
    from dart_hub.api import evaluate
    from dart_hub.specs import EvalSpec

    options["quiet"] = options["quiet"] or as_json  # --json: no progress bars either
    result = evaluate(EvalSpec(**options))
    print_report(result.report, result.benchmarks, as_json)


def print_report(report, names: list[str], as_json: bool) -> None:
    """results.json as JSON, or one line per benchmark (warnings on stderr)."""
    data = report.data
    if as_json:
        click.echo(json.dumps(report.to_dict(), sort_keys=True))
        return
    for name in names:
        for warning in data["benchmarks"][name].get("warnings", []):
            click.echo(f"warning: {warning}", err=True)
    click.echo(f"{data['model']} -> {report.output_dir}")
    for name, entry in data["benchmarks"].items():
        note = " (resumed)" if name in report.resumed else ""
        extra = f", {entry['truncated']} truncated" if entry.get("truncated") else ""
        if entry.get("mean_completion_tokens") is not None:
            extra += f", {entry['mean_completion_tokens']:g} tokens on average"
        if entry.get("pass_at_k"):
            shown = "  ".join(f"pass@{k} {100 * v:5.1f}" for k, v in entry["pass_at_k"].items())
            count = f"{entry['correct']}/{entry['total'] * entry['samples']} samples correct"
            click.echo(f"  {entry.get('title', name):<16}{shown}  ({count}{extra}){note}")
            continue
        click.echo(
            f"  {entry.get('title', name):<16}{100 * entry['accuracy']:6.1f}  "
            f"({entry['correct']}/{entry['total']}{extra}){note}"
        )
    if data.get("average") is not None:
        click.echo(f"  {'Average':<16}{100 * data['average']:6.1f}  over {len(data['average_over'])} benchmarks")
