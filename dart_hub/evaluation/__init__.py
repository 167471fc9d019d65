"""Evaluation of students on the DART paper's five math benchmarks.

    from dart_hub.evaluation import evaluate, evaluate_items, load_benchmark

`benchmarks` (registry, loading, gold answers), `run` (prompts, generation, resume),
`grading` (math equivalence, choice letters), `report` (results.json, comparisons).
"""

from dart_hub.evaluation.benchmarks import (
    BENCHMARK_NAMES,
    BENCHMARKS,
    Benchmark,
    BenchmarkSource,
    EvalItem,
    load_benchmark,
    load_benchmark_data,
)
from dart_hub.evaluation.grading import extract_choice, grade_outputs
from dart_hub.evaluation.report import compare_runs, load_runs, read_results, render_comparison
from dart_hub.evaluation.run import (
    DEFAULT_MAX_TOKENS,
    EVAL_SYSTEM_PROMPT,
    EvalReport,
    ItemResult,
    build_messages,
    evaluate,
    evaluate_items,
)

__all__ = [
    "BENCHMARKS",
    "BENCHMARK_NAMES",
    "DEFAULT_MAX_TOKENS",
    "EVAL_SYSTEM_PROMPT",
    "Benchmark",
    "BenchmarkSource",
    "EvalItem",
    "EvalReport",
    "ItemResult",
    "build_messages",
    "compare_runs",
    "evaluate",
    "evaluate_items",
    "extract_choice",
    "grade_outputs",
    "load_benchmark",
    "load_benchmark_data",
    "load_runs",
    "read_results",
    "render_comparison",
]
