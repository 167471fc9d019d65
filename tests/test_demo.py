"""`dart-hub demo`: the toy world end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.toy.demo import curve_lines, gap_lines


def test_curve_and_gap_views():
    rows = [
        {"scores": [1.0, 0.5, 0.0], "gap": 2, "cut_reason": "gap"},
        {"scores": [0.5, 0.5], "gap": None, "cut_reason": "no_drop"},
    ]
    lines = curve_lines(rows, width=10)
    assert lines[1].startswith("  step  0 | ########") and "0.75  (2 problems)" in lines[1]
    assert "0.50  (2 problems)" in lines[2] and "0.00  (1 problems)" in lines[3]
    assert gap_lines(rows) == ["cut reasons: {'gap': 1, 'no_drop': 1}", "imitation gap at expert step: 2: 1"]


@pytest.mark.slow
@pytest.mark.timeout(1200)  # minutes of tiny-model work: the suite's 300 s is a guard for quick tests
def test_demo_adapts_the_toy_expert_set(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--output", str(out), "--work-dir", str(tmp_path / "w"), "--limit", "6", "--quiet", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["adapt"]["problems"] == 6
    assert report["adapt"]["kept"] + report["adapt"]["discarded"] == 6
    # the demo says which rules it runs: robust without confirmation (its published figures' rules)
    assert report["adapt"]["rules"] == "robust" and report["adapt"]["confirm_rollouts"] == 0
    assert report["adapt"]["deviations"] == ["answer-steps-skipped", "local-peak", "min-follow", "all-zero-from-question", "unfinished-dropped"]
    assert "Rules: **robust (modified)**." in (out / "README.md").read_text()
    assert (out / "README.md").exists() and (out / "steps" / "train-00000-of-00001.parquet").exists()
    # the student follows the expert's worked-out start (f high at the intro) and is lost by the
    # last probed (folded) step
    from dart_hub.publish.folder import read_examples

    examples = read_examples(out)
    first = sum(e.scores[0] for e in examples) / len(examples)
    later = sum([f for f in e.scores if f is not None][-1] for e in examples) / len(examples)  # last probed
    assert all(e.scores[-1] is None for e in examples)  # the boxed final step is not probed
    assert first >= 0.5 and later <= first - 0.3

    text = CliRunner().invoke(cli, args[:-1])  # resumes from the work dir, human-readable report
    assert text.exit_code == 0, text.output
    assert "mean adaptability f_t by expert step" in text.output and "step  0 |" in text.output
    assert "rules: robust (--confirm 0); deviations from Algorithm 1: answer-steps-skipped, local-peak" in text.output
    index = out / "report" / "index.html"  # the HTML report, and the output says where it is
    assert f"report (open in a browser): {index}" in text.output and index.is_file()
    assert report["adapt"]["report"] == str(index) and len(list((out / "report" / "problems").glob("*.html"))) == 6


def test_bootstrap_interval_and_table():
    from dart_hub.toy.compare import bootstrap_interval, summarize_arm, table_lines

    grid = [[1, 0, 1, 1], [1, 1, 0, 1], [0, 0, 1, 1]]
    low, high = bootstrap_interval(grid, resamples=500)
    assert 0.0 <= low < 8 / 12 < high <= 1.0
    assert bootstrap_interval([[1] * 10]) == (1.0, 1.0)
    assert bootstrap_interval(grid, resamples=500) == (low, high)  # seeded: reproducible
    arm = summarize_arm("full", grid, rows=7)
    assert arm | {"ci_low": 0, "ci_high": 0} == {
        "arm": "full", "kind": "paper", "objective": "sft", "mean": 0.6667, "ci_low": 0, "ci_high": 0, "seeds": 3, "problems": 4,
        "per_seed": [0.75, 0.75, 0.5], "train_rows": 7,
    }
    sampled = {"deciding_token": {"mean": 0.97}, "pass1_t07": {"mean": 0.5}}
    lines = table_lines({"arms": [summarize_arm("no-tuning", [[1, 0, 0, 0]], None), arm, summarize_arm("rft", grid, 5, sampled)]})
    assert "Adaptation-Full" in lines[-2] and "+41.7" in lines[-2] and "25.0%" in lines[-3] and " paper " in lines[-2]
    assert lines[-1].split()[:5] == ["[baseline]", "RFT", "baseline", "sft", "5"] and lines[-1].split()[-2:] == ["0.97", "50.0%"]
    empty = {"arm": "mapper", "kind": "method", "objective": "sft", "train_rows": 0, "reason": "adapt kept no example"}
    lines = table_lines({"arms": [summarize_arm("no-tuning", [[1, 0, 0, 0]], None)], "skipped_arms": [empty]})
    assert lines[-1].split() == ["Mapper", "method", "sft", "0", "-", "not", "trained:", "adapt", "kept", "no", "example"]


PAPER_AND_BASELINE_ARMS = ["no-tuning", "static", "first", "gap", "full", "rft", "fixed-cut", "random-cut"]


def _check_results_file(folder, seeds: int, problems: int, extra: tuple[str, ...] = (), sampled: int | None = None) -> dict:
    results = json.loads((folder / "demo-results.json").read_text())
    trained = [a["arm"] for a in results["arms"]] + [a["arm"] for a in results["skipped_arms"]]
    assert trained[: len(PAPER_AND_BASELINE_ARMS)] == PAPER_AND_BASELINE_ARMS and trained[len(PAPER_AND_BASELINE_ARMS) :] == list(extra)
    for arm in results["arms"]:
        assert 0.0 <= arm["ci_low"] <= arm["mean"] <= arm["ci_high"] <= 1.0
        assert arm["problems"] == problems
        assert arm["seeds"] == (1 if arm["arm"] == "no-tuning" else seeds)
        assert arm["kind"] == {"no-tuning": "paper", "static": "paper", "first": "paper", "gap": "paper", "full": "paper"}.get(
            arm["arm"], "baseline" if arm["arm"] in ("rft", "fixed-cut", "random-cut") else "method")
        assert arm["objective"] == {"no-tuning": "none", "dail": "dail"}.get(arm["arm"], "sft")
        assert 0.0 <= arm["deciding_token"]["mean"] <= 1.0 and len(arm["deciding_token"]["per_seed"]) == arm["seeds"]
        if sampled:
            assert arm["pass1_t07"]["problems"] == sampled and arm["pass1_t07"]["samples"] == 8 and 0 <= arm["pass1_t07"]["mean"] <= 1
    assert (folder / "demo-results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    return results


@pytest.mark.slow
@pytest.mark.timeout(1200)  # minutes of tiny-model work: the suite's 300 s is a guard for quick tests
def test_demo_train_prints_the_five_arm_table_and_writes_the_results(tmp_path):
    out = tmp_path / "demo"
    args = ["demo", "--output", str(out), "--work-dir", str(tmp_path / "w"), "--limit", "4", "--n-sim", "2",
            "--train", "--seeds", "2", "--heldout", "12", "--sampled-problems", "3", "--quiet", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    results = _check_results_file(out, seeds=2, problems=12, sampled=3)
    assert report["comparison"]["arms"] == results["arms"]
    static = next(a for a in results["arms"] if a["arm"] == "static")
    assert static["train_rows"] == 4  # every expert trace, unchanged
    assert report["adapt_gap"]["problems"] == report["adapt_first"]["problems"] == 4
    # the arms' HTML report: every arm's accuracy with its interval, every trained model's loss per epoch
    arms_report = Path(report["arms_report"])
    assert arms_report == tmp_path / "demo-training" / "report" / "index.html"
    html = arms_report.read_text(encoding="utf-8")
    assert html.count('data-role="score-bar"') == len(results["arms"]) and html.count('data-role="interval"') == len(results["arms"])
    trained = [a for a in results["arms"] if a["arm"] != "no-tuning" and not a.get("reason")]
    assert {"static", "first", "gap", "full", "rft", "fixed-cut", "random-cut"} <= {a["arm"] for a in trained}
    # every trained arm x 2 seeds; an arm with the same rows as an earlier one (First, Gap, Full
    # when every cut falls at the same step) reuses its models and has no charts of its own
    twins = {a["arm"]: a["same_rows_as"] for a in trained if a.get("same_rows_as")}
    assert set(twins.values()) <= {a["arm"] for a in trained} - set(twins)
    assert html.count('data-role="loss-chart"') == 2 * (len(trained) - len(twins))
    # the baselines: DART's exploration budget (n_explore 8 per problem) from their own cuts
    assert report["baseline_rft"]["keep_steps"] == {"0": 4}  # no expert step: from the question alone
    assert all(report[f"baseline_{arm}"]["rollouts"] == 4 * 8 for arm in ("rft", "fixed-cut", "random-cut"))
    assert report["baseline_fixed-cut"]["fixed_k"] >= 1


@pytest.mark.slow
@pytest.mark.timeout(1200)  # minutes of tiny-model work: the suite's 300 s is a guard for quick tests
def test_demo_methods_add_their_folders_and_arms(tmp_path):
    """--method dail / mapper adapt the toy set with the toy prompts and add their arms."""
    out = tmp_path / "demo"
    args = ["demo", "--output", str(out), "--work-dir", str(tmp_path / "w"), "--limit", "3", "--n-sim", "1",
            "--method", "dail", "--method", "mapper", "--train", "--seeds", "1", "--heldout", "4", "--quiet", "--json"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for method in ("dail", "mapper"):
        summary = report[f"adapt_{method}"]
        assert summary["method"] == method and summary["problems"] == 3
        config = json.loads((tmp_path / f"demo-{method}" / "dart_config.json").read_text())
        assert config["method"] == method
    # the DAIL samples and the mapper rewrites: 8 and 4 per problem
    assert report["adapt_dail"]["candidates"] == 3 * 8 and report["adapt_mapper"]["candidates"] == 3 * 4
    arms = [a["arm"] for a in report["comparison"]["arms"]]
    kept = {m: report[f"adapt_{m}"]["kept"] for m in ("dail", "mapper")}
    kept["dail-sft"] = kept["dail"]  # the DAIL rows with SFT: a second, labelled arm
    # an arm whose method kept nothing is skipped (and said so), never trained on nothing
    assert arms[:2] == ["no-tuning", "static"] and arms[-2:] != ["mapper", "dail"]
    assert all((method in arms) == bool(kept[method]) for method in ("dail", "dail-sft", "mapper"))
    skipped = {a["arm"]: a for a in report["comparison"]["skipped_arms"]}
    assert all((method in skipped) == (not kept[method]) for method in ("dail", "dail-sft", "mapper"))
    for arm in report["comparison"]["arms"]:
        if arm["arm"] == "dail":  # DAIL's own contrastive objective, as its training summary says
            assert arm["objective"] == "dail" and arm["training_objective"]["name"] == "dail"
            assert "KL(p_t || N_t)" in arm["training_objective"]["formula"]
    marker = tmp_path / "demo-training" / "static-seed0" / "demo-train.json"
    trained = marker.stat().st_mtime_ns
    text = CliRunner().invoke(cli, args[:-1])  # resumes every method from the work dir, reuses the models
    assert text.exit_code == 0, text.output
    assert marker.stat().st_mtime_ns == trained
    assert "--method dail: 3 toy problems" in text.output and "--method mapper: 3 toy problems" in text.output


def test_demo_train_rejects_more_heldout_problems_than_shipped(tmp_path):
    from dart_hub.toy.compare import heldout_items

    with pytest.raises(Exception, match="held-out set has 300 problems"):
        heldout_items(301)


@pytest.mark.toy_train
@pytest.mark.timeout(3600)  # the suite's 300 s per test is far too short for this run
def test_demo_train_full_comparison(tmp_path):
    """The full `dart-hub demo --train` (64 admitted expert problems, the paper's five arms and
    the three baselines, 3 seeds, 300 held-out problems; timings and results in
    docs/toy-world.md): the paper's ordering, Full above No-Tuning and Static with 95% intervals
    that do not overlap; every baseline in the table with its interval, kind and sampled
    metrics. Measured before the baselines: No-Tuning 45.3% [39.7-51.0], Static 45.6%
    [39.7-51.4], Full 99.8% [99.1-100.0]."""
    out = tmp_path / "demo"
    result = CliRunner().invoke(cli, ["demo", "--output", str(out), "--work-dir", str(tmp_path / "w"), "--train", "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    results = _check_results_file(out, seeds=3, problems=300, sampled=100)
    rows = {a["arm"]: a["train_rows"] for a in results["arms"]}
    assert rows["static"] == 64 and all(1 <= rows[arm] <= 64 for arm in ("first", "gap", "full", "rft", "fixed-cut", "random-cut"))
    arms = {a["arm"]: a for a in results["arms"]}
    assert arms["full"]["ci_low"] > arms["no-tuning"]["ci_high"] + 0.2  # measured 99.1% > 51.0%
    assert arms["full"]["ci_low"] > arms["static"]["ci_high"] + 0.2  # measured 99.1% > 51.4%
    assert min(arms[arm]["mean"] for arm in ("first", "gap")) > arms["no-tuning"]["ci_high"]  # 99.4%, 99.8%
    # the deciding token: fine-tuning on Full's rows pushes `x` past even odds (untuned about 0.40)
    assert arms["no-tuning"]["deciding_token"]["mean"] < 0.5 < arms["full"]["deciding_token"]["mean"]


def test_sft_sweep_validation_set_is_neither_expert_nor_heldout():
    """benchmarks/toy_sft_sweep.py chooses settings on problems the demo table never reports."""
    import importlib.util
    from pathlib import Path

    from dart_hub.toy import expert_dataset_path, heldout_dataset_path
    from dart_hub.toy.datasets import read_jsonl

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "toy_sft_sweep.py"
    spec = importlib.util.spec_from_file_location("toy_sft_sweep", path)
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    problems = sweep.validation_problems(150)
    questions = [p.question for p in problems]
    shipped = {r["question"] for r in read_jsonl(expert_dataset_path())} | {r["question"] for r in read_jsonl(heldout_dataset_path())}
    assert len(set(questions)) == 150 and not shipped & set(questions)
    assert {p.split for p in problems} == {"expert"}
    assert questions == [p.question for p in sweep.validation_problems(150)]  # deterministic


@pytest.mark.slow
def test_the_dail_arm_trains_with_the_contrastive_objective(tmp_path):
    """compare.train_arm with objective dail runs `train --objective dail` on rows carrying the
    privileged and negative contexts, and the training summary names DAIL's contrastive loss."""
    from dart_hub.prompts import default_prompts
    from dart_hub.toy.compare import train_arm

    solve = default_prompts().render("solve", "Start with 4x3. Apply the operations in the order of their labels: (A) add 5. What is the result?")
    answer = {"role": "assistant", "content": "Start: 4x3 = 12\n\nStep 1: 12 + 5 = 17\n\nThe answer is \\boxed{17}"}
    row = {"messages": [{"role": "user", "content": solve}, answer], "answer": "17",
           "privileged_messages": [{"role": "user", "content": "Reference: 4x3 = 12, 12 + 5 = 17. " + solve}, answer],
           "negative_messages": [{"role": "user", "content": "the final answer is 17. " + solve}, answer]}  # fmt: skip
    data = tmp_path / "dail.jsonl"
    data.write_text("\n".join(json.dumps(row) for _ in range(4)) + "\n")
    model, objective = train_arm(data, tmp_path / "dail-seed0", 0, "dail")
    assert objective["name"] == "dail" and "lambda * KL(p_t || N_t)" in objective["formula"]
    assert (tmp_path / "dail-seed0" / "demo-train.json").exists()
    assert train_arm(data, tmp_path / "dail-seed0", 0, "dail") == (model, objective)  # reused, not retrained
