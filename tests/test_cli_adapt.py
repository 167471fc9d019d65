"""`dart-hub adapt` end to end on CPU with a tiny transformers model the tests build themselves."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

from dart_hub.cli import cli

DATA = Path(__file__).parent / "data"
FAST = ["--n-sim", "2", "--sim-max-tokens", "12", "--n-explore", "2", "--explore-max-tokens", "12", "--quiet"]


def adapt_args(model: Path, out: Path, work: Path, *extra: str) -> list[str]:
    """Each work dir gets its own probe cache beside it, so two runs in one test are
    independent unless they name the same cache."""
    return [
        "adapt", "--student", str(model), "--dataset", str(DATA / "limo_sample.jsonl"),
        "--engine", "transformers", "--output", str(out), "--work-dir", str(work),
        "--probe-cache", str(work.parent / f"{work.name}-probes"), *FAST, *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_adapt_writes_parquet_that_datasets_reads(tiny_model_dir, tmp_path):
    result = CliRunner().invoke(cli, [*adapt_args(tiny_model_dir, tmp_path / "out", tmp_path / "w"), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    steps = datasets.load_dataset(str(tmp_path / "out"), "steps", split="train")
    assert summary["problems"] == len(steps) >= 3
    assert summary["skipped_rows"] >= 1  # the sample has a row with an empty solution
    row = steps[0]
    assert len(row["scores"]) == len(row["expert_steps"]) == row["num_steps"]
    assert all(len(c["text"]) >= 0 for c in row["candidates"])
    # a random model solves nothing: every rollout's answer is wrong, so every score is 0
    assert summary["rollouts"] == sum(r["rollouts"] for r in steps) > 0
    assert summary["kept"] + summary["discarded"] == summary["problems"]
    config = json.loads((tmp_path / "out" / "dart_config.json").read_text())
    assert config["adapt"]["n_sim"] == 2 and config["engine"]["engine"] == "transformers"


@pytest.mark.slow
def test_static_strategy_keeps_expert_traces_without_loading_a_model(tmp_path):
    args = [
        "adapt", "--student", str(tmp_path / "no-such-model"), "--dataset", str(DATA / "limo_sample.jsonl"),
        "--strategy", "static", "--output", str(tmp_path / "out"), "--work-dir", str(tmp_path / "w"), "--quiet",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    train = datasets.load_dataset(str(tmp_path / "out"), split="train")
    source = [json.loads(line) for line in (DATA / "limo_sample.jsonl").read_text().splitlines()]
    by_question = {r["question"]: r for r in source}
    assert len(train) >= 3
    for row in train:
        assert row["solution"] == by_question[row["question"]]["solution"]  # drop-in: same column names
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert row["messages"][-1]["content"] == row["solution"]


def test_dry_run_counts_rollouts(tmp_path, tiny_model_dir):
    # budgets that fit the tiny student's 4,096-token window: the dry run runs the real admission
    args = ["adapt", "--student", str(tiny_model_dir), "--dataset", str(DATA / "limo_sample.jsonl"), "--dry-run", "--json", "--sim-max-tokens", "3000"]
    result = CliRunner().invoke(cli, [*args, "--rules", "robust", "--confirm", "0"])
    assert result.exit_code == 0, result.output
    cost = json.loads(result.stdout)
    # the sample's solutions end with a boxed answer: robust does not probe those prefixes
    assert cost["answer_revealing_steps"] >= 3
    assert cost["simulation_rollouts"] == (cost["steps"] - cost["answer_revealing_steps"]) * 4
    assert cost["exploration_rollouts_max"] == cost["problems"] * 8
    assert cost["new_tokens_max"] == cost["simulation_rollouts"] * 3000 + cost["exploration_rollouts_max"] * 2000
    assert cost["skipped_before_generation"] == {} and cost["would_skip"] == []
    assert cost["confirm_rollouts_max"] == 0
    # the paper's rules (the default) probe every step, answer-stating ones included
    paper = json.loads(CliRunner().invoke(cli, args).stdout)
    assert paper["answer_revealing_steps"] == cost["answer_revealing_steps"]
    assert paper["simulation_rollouts"] == paper["steps"] * 4 and paper["confirm_rollouts_max"] == 0
    # robust with confirmation: at most K more per probed prefix as a candidate and K as a peak
    confirmed = json.loads(CliRunner().invoke(cli, [*args, "--rules", "robust"]).stdout)
    assert confirmed["confirm_rollouts_max"] == 2 * 16 * (cost["steps"] - cost["answer_revealing_steps"])
    assert confirmed["rollouts_max"] == confirmed["simulation_rollouts"] + confirmed["confirm_rollouts_max"] + confirmed["exploration_rollouts_max"]


@pytest.mark.slow
def test_other_strategies_reuse_the_simulation_of_an_earlier_run(tiny_model_dir, tmp_path):
    cache = ["--probe-cache", str(tmp_path / "shared-probes"), "--json"]
    full = CliRunner().invoke(cli, [*adapt_args(tiny_model_dir, tmp_path / "full", tmp_path / "wf"), *cache])
    assert full.exit_code == 0, full.output
    assert json.loads(full.stdout.strip().splitlines()[-1])["probe_chunks_reused"] == 0
    gap = CliRunner().invoke(cli, [*adapt_args(tiny_model_dir, tmp_path / "gap", tmp_path / "wg"), *cache, "--strategy", "gap", "--peak", "first"])
    assert gap.exit_code == 0, gap.output
    assert json.loads(gap.stdout.strip().splitlines()[-1])["probe_chunks_reused"] == 1
    alone = CliRunner().invoke(cli, [*adapt_args(tiny_model_dir, tmp_path / "alone", tmp_path / "wa"), "--strategy", "gap", "--json"])
    assert alone.exit_code == 0, alone.output
    strip = lambda rows: [{k: v for k, v in r.items() if k != "strategy"} for r in rows]  # noqa: E731
    assert [r["scores"] for r in _rows(tmp_path / "gap", "steps")] == [r["scores"] for r in _rows(tmp_path / "full", "steps")]
    assert strip(_rows(tmp_path / "gap", "steps")) == strip(_rows(tmp_path / "alone", "steps"))
    config = json.loads((tmp_path / "gap" / "dart_config.json").read_text())
    assert config["adapt"]["peak"] == "local"  # the old name of the rule is accepted


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--epsilon", "1.5"], "--epsilon must be between 0 and 1"),
        (["--question-column", "nope"], "--question-column"),
        (["--engine", "openai"], "--base-url"),
        (["--probe", "adaptive"], "--probe adaptive follows the local peak rule; add --peak local (or --rules robust)"),
    ],
)
def test_bad_input_is_one_line_error(tmp_path, extra, message):
    args = ["adapt", "--student", "m", "--dataset", str(DATA / "limo_sample.jsonl"), "--work-dir", str(tmp_path), "--quiet", *extra]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_missing_student_is_one_line_error(tmp_path):
    args = ["adapt", "--student", str(tmp_path / "missing"), "--dataset", str(DATA / "limo_sample.jsonl"), "--engine", "transformers", "--work-dir", str(tmp_path / "w"), "--quiet", *FAST]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, result.output
    assert "missing" in result.stderr and len(result.stderr.strip().splitlines()) == 1


def _rows(out: Path, config: str) -> list[dict]:
    # read the parquet directly: datasets refuses to load a split with zero rows, which the
    # default config is when a random model keeps nothing
    import pyarrow.parquet as pq

    folder = "data" if config == "default" else config
    return pq.read_table(out / folder / "train-00000-of-00001.parquet").to_pylist()


@pytest.mark.slow
@pytest.mark.parametrize("probe", ["scan", "adaptive"])
@pytest.mark.timeout(1200)  # minutes of tiny-model work: the suite's 300 s is a guard for quick tests
def test_kill_and_resume_gives_the_uninterrupted_result(tiny_model_dir, tmp_path, probe):
    """SIGKILL mid-run, rerun the same command: same records as an uninterrupted run."""
    extra = ["--chunk-size", "1", "--dataset", str(DATA / "qwq_sample.jsonl"), "--preset", "math-qwq-32b", "--probe", probe]
    extra += ["--rules", "robust"] if probe == "adaptive" else []  # adaptive needs the local peak
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "dart_hub.cli", *adapt_args(tiny_model_dir, tmp_path / "a", tmp_path / "wa"), *extra]
    victim = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    chunks = tmp_path / "wa" / "chunks"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and victim.poll() is None and len(list(chunks.glob("chunk-*.jsonl"))) < 1:
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    finished_before_kill = len(list(chunks.glob("chunk-*.jsonl")))
    assert finished_before_kill >= 1, "the run never finished a chunk before the deadline"
    total = sum(1 for _ in (DATA / "qwq_sample.jsonl").read_text().splitlines() if _.strip())
    assert finished_before_kill < total, "the run finished before it could be killed: nothing was resumed"

    resumed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    straight = subprocess.run(
        [sys.executable, "-m", "dart_hub.cli", *adapt_args(tiny_model_dir, tmp_path / "b", tmp_path / "wb"), *extra],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert straight.returncode == 0, straight.stderr

    a, b = _rows(tmp_path / "a", "steps"), _rows(tmp_path / "b", "steps")
    assert [r["id"] for r in a] == [r["id"] for r in b]
    assert len({r["id"] for r in a}) == len(a)  # nothing duplicated
    assert a == b
    assert _rows(tmp_path / "a", "default") == _rows(tmp_path / "b", "default")


def test_rules_option_help_and_summary_through_the_cli(tmp_path):
    from dart_hub.adaptation.rules import DEVIATIONS

    help_text = CliRunner().invoke(cli, ["adapt", "--help"]).output
    assert "--rules [paper|robust]" in help_text and "[default: paper]" in help_text
    flat = " ".join(help_text.split())
    assert "paper [default] runs Algorithm 1 of the DART paper as written" in flat
    for name, (_, _, sentence) in DEVIATIONS.items():
        assert name in flat
        if name != "adaptive-probing":
            assert " ".join(sentence.split()) in flat
    assert "the paper's (Appendix" not in flat  # no claim that our rules are the paper's
    bad = CliRunner().invoke(cli, ["adapt", "--student", "m", "--dataset", str(DATA / "limo_sample.jsonl"), "--rules", "nope"])
    assert bad.exit_code == 2 and "'nope' is not one of 'paper', 'robust'" in bad.output
    # the summary names the rules and the deviations: static runs offline, with nothing to deviate
    args = ["adapt", "--student", str(tmp_path / "none"), "--dataset", str(DATA / "limo_sample.jsonl"), "--strategy", "static",
            "--work-dir", str(tmp_path / "w"), "--quiet", "--json"]  # fmt: skip
    for rules in ("paper", "robust"):
        result = CliRunner().invoke(cli, [*args, "--rules", rules])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert (summary["rules"], summary["deviations"], summary["confirm_rollouts"]) == (rules, [], 0)
    # a dry run of robust with one switch back to the paper's
    dry = CliRunner().invoke(cli, ["adapt", "--student", "m", "--dataset", str(DATA / "limo_sample.jsonl"), "--dry-run", "--json", "--no-admission",
                                   "--rules", "robust", "--confirm", "0", "--answer-steps", "probe"])  # fmt: skip
    cost = json.loads(dry.stdout)
    assert cost["simulation_rollouts"] == cost["steps"] * 4
