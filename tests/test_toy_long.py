"""Long toy expert traces (dart_hub.toy.long) for the probing benchmark, and the benchmark's
toy-long helpers (benchmarks/probing.py)."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

import pytest

from dart_hub.boxed import all_boxed
from dart_hub.steps import split_steps
from dart_hub.toy.datasets import read_jsonl
from dart_hub.toy.domain import parse_question, solution_errors, split_of
from dart_hub.toy.long import (
    LONG_MAX_STEPS,
    LONG_MIN_STEPS,
    MIN_STEP_CHARS,
    long_expert_rows,
    long_expert_solution,
    long_problems,
    main,
    max_operations,
)
from dart_hub.toy.styles import expert_intro

ROOT = Path(__file__).resolve().parents[1]
COUNT = 49  # every length 16..64 once


def _benchmark():
    spec = importlib.util.spec_from_file_location("probing_benchmark", ROOT / "benchmarks" / "probing.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["probing_benchmark"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def rows():
    return long_expert_rows(COUNT)


def test_long_traces_are_deterministic_correct_and_as_long_as_asked(rows):
    assert long_expert_rows(COUNT) == rows
    assert long_expert_rows(COUNT, seed=1) != rows
    lengths = []
    for row in rows:
        assert solution_errors(row["question"], row["solution"]) == []
        problem = parse_question(row["question"])
        assert split_of(problem) == "expert"
        assert 5 <= len(problem.ops) <= 7
        steps = split_steps(row["solution"], min_chars=MIN_STEP_CHARS)
        assert steps == row["solution"].split("\n\n")  # one step per paragraph at --min-step-chars 5
        lengths.append(len(steps) - 1)  # paragraphs before the answer
        assert len(problem.ops) <= max_operations(len(steps) - 1)
        # the learnable start in the expert's own words, then the answer only at the very end
        assert steps[0] == expert_intro(problem)
        assert [t for t, s in enumerate(steps) if all_boxed(s)] == [len(steps) - 1]
        assert any("combined give" in s or "Folding" in s or "In one go" in s for s in steps[1:-1])  # a fold is probed
    assert lengths == list(range(LONG_MIN_STEPS, LONG_MAX_STEPS + 1))
    assert len({row["question"] for row in rows}) == COUNT


def test_first_fold_falls_early_and_late(rows):
    """The cliff (the first folded paragraph) is spread over the trace, not always at one place."""
    relative = []
    for row in rows:
        steps = row["solution"].split("\n\n")
        fold = next(t for t, s in enumerate(steps) if "combined give" in s or "Folding" in s or "In one go" in s)
        relative.append(fold / (len(steps) - 1))
    assert min(relative) < 0.35 and max(relative) > 0.65


def test_long_traces_fit_the_toy_students_context(rows):
    """What `adapt`'s too_long admission checks, with the toy student's tokenizer and the
    benchmark's budgets: the simulation prompt with the whole trace plus 256 tokens fits 1,024."""
    from dart_hub.adaptation.admission import check_lengths, context_window, load_student_tokenizer
    from dart_hub.config import AdaptConfig
    from dart_hub.prompts import default_prompts
    from dart_hub.records import Problem, Provenance
    from dart_hub.sources import problem_id
    from dart_hub.toy import toy_student_path

    tokenizer, config = load_student_tokenizer(str(toy_student_path()), None)
    window = context_window(config, tokenizer)
    assert window == 1024
    adapt_config = AdaptConfig(strategy="gap", sim_max_tokens=256, min_step_chars=MIN_STEP_CHARS)
    problems = [
        Problem(problem_id(row["question"]), row["question"], row["solution"], row["answer"], Provenance("long", None, None, None, "train", i))
        for i, row in enumerate(rows)
    ]
    kept, skipped = check_lengths(problems, adapt_config, default_prompts(), tokenizer, window)
    assert skipped == [] and len(kept) == COUNT


def test_python_m_writes_the_set(tmp_path):
    out = tmp_path / "long.jsonl"
    assert main(["--output", str(out), "--count", "5", "--min-steps", "20", "--max-steps", "40"]) == 0
    written = read_jsonl(out)
    assert written == long_expert_rows(5, 0, 20, 40)
    assert [len(r["solution"].split("\n\n")) - 1 for r in written] == [20, 25, 30, 35, 40]


def test_bad_lengths_are_refused():
    with pytest.raises(ValueError):
        long_expert_rows(3, 0, 40, 20)
    problem = long_problems([16])[0]
    with pytest.raises(ValueError):
        long_expert_solution(problem, 3)


# -- benchmarks/probing.py -----------------------------------------------------------------------


def test_benchmark_buckets_stored_scans_by_length():
    bench = _benchmark()
    edges = [8, 16, 32, 48, 65]
    assert [bench.length_bucket(n, edges) for n in (5, 8, 16, 31, 32, 64, 65, 100)] == ["1-7", "8-15", "16-31", "16-31", "32-47", "48-64", "65+", "65+"]
    args = Namespace(epsilon=0.3, min_follow=0.5, strategy="full", coarse=4, first_round=2, head=2)
    # a clean cliff: high then zero, as long as the bucket's traces
    rows = [bench.compare([[True] * 4] * cliff + [[False] * 4] * (n - cliff), [[10] * 4] * n, args) for n, cliff in ((20, 7), (40, 30), (60, 12))]
    table = bench.length_table(rows, edges)
    assert list(table) == ["all", "16-31", "32-47", "48-64"]
    assert table["all"]["problems"] == 3 and table["all"]["identical_cut"] == 1.0
    assert table["all"]["rollouts"][0] == 4 * (20 + 40 + 60) and table["all"]["tokens"][0] == 10 * 4 * 120
    assert table["all"]["rollouts"][1] == sum(r["adaptive_rollouts"] for r in rows) < 4 * 120
    assert table["48-64"]["rollout_saving"] > table["16-31"]["rollout_saving"] > 1


def test_benchmark_exactness_check_compares_a_real_adaptive_run_with_the_replay():
    """check_exact on hand-made probe records: the adaptive record that draws what the replay
    draws passes; one rollout more or a changed outcome fails."""
    bench = _benchmark()
    args = Namespace(epsilon=0.3, min_follow=0.5, strategy="full", coarse=4, first_round=2, head=2)
    outcomes = [[True] * 4] * 9 + [[False] * 4] * 11
    rollout = lambda ok, n: {"correct": ok, "completion_tokens": n}  # noqa: E731
    scan = {"rollouts": [[rollout(ok, 50 + t) for ok in row] for t, row in enumerate(outcomes)] + [[]]}
    scores, samples, _ = bench.replay(outcomes, "adaptive", epsilon=0.3, min_follow=0.5, coarse=4, first_round=2)
    real = {
        "samples": [*samples, 0],
        "scores": [*scores, None],
        "rollouts": [scan["rollouts"][t][:m] for t, m in enumerate(samples)] + [[]],
    }
    good = bench.check_exact({"p": scan}, {"p": real}, args)[0]
    assert good["same_rollouts"] and good["same_cut"] and good["rollouts_real"] == sum(samples) < 4 * 20
    changed = json.loads(json.dumps(real))
    t = next(t for t, m in enumerate(samples) if m)
    changed["rollouts"][t][0]["completion_tokens"] += 1
    assert not bench.check_exact({"p": scan}, {"p": changed}, args)[0]["same_rollouts"]
    more = json.loads(json.dumps(real))
    unprobed = next(i for i, m in enumerate(samples) if m == 0)
    more["samples"][unprobed] = 2  # a prefix the replay never asks for
    more["rollouts"][unprobed] = scan["rollouts"][unprobed][:2]
    assert not bench.check_exact({"p": scan}, {"p": more}, args)[0]["same_rollouts"]


@pytest.mark.slow
def test_benchmark_toy_long_scans_checks_and_replays_as_typed(tmp_path):
    """`python benchmarks/probing.py --toy-long ... --toy-check ...` end to end with the toy
    student (tiny budgets): a real scan, a real adaptive run equal to its replay, the per-length
    table; a rerun reuses the stored scan and gives the same table."""
    command = [sys.executable, str(ROOT / "benchmarks" / "probing.py"), "--toy-long", "1", "--min-steps", "16", "--max-steps", "16",
               "--n-sim", "2", "--toy-max-tokens", "24", "--toy-check", "1", "--toy-work", str(tmp_path), "--json"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    first = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    table = report["toy_long"]
    assert list(table) == ["all", "16-31"] and table["all"]["problems"] == 1
    assert table["all"]["rollouts"][0] == 2 * 16  # the scan: every prefix but the answer, 2 rollouts each
    [check] = report["toy_long_check"]
    assert check["steps"] == 16 and check["same_rollouts"] and check["same_cut"]
    assert check["rollouts_real"] == table["all"]["rollouts"][1] < 2 * 16
    assert "toy-long scan: 1 problems, 32 rollouts" in first.stderr
    for finished in tmp_path.glob("long-*/work-*"):  # keep only the probe cache: the scan must come from there
        shutil.rmtree(finished)
    again = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["toy_long"] == table
    assert "0 chunks reused" in first.stderr and "1 chunks reused" in again.stderr  # the scan is not generated again
