"""`dart-hub report`: the data behind the HTML report (the same numbers as the run's summary), its
escaping, the command, the adapt and push hooks. The browser suite is tests/test_report_browser.py."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.adaptation.rules import rules_label
from dart_hub.cli import cli
from dart_hub.publish import figures
from dart_hub.records import Candidate
from dart_hub.report.dataset import candidate_verdict, dataset_report, student_part
from dart_hub.report.render import script_hash, tex, write_dataset_report
from tests.test_publish_folder import adapted_examples, run_config, write

INJECTED = '<script>window.__dart_hub_injected = 1; document.title = "pwned"</script>'
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def adapted():
    return adapted_examples()


@pytest.fixture
def folder(adapted, tmp_path) -> Path:
    examples, config = adapted
    return write(tmp_path / "out", examples, config)


def test_overview_has_the_summary_numbers(adapted, folder):
    examples, config = adapted
    summary = run_config(examples, config)["summary"]
    overview = dataset_report(folder)["overview"]
    counts = overview["counts"]
    assert {k: counts[k] for k in ("problems", "kept", "discarded", "trajectories", "candidates")} == {
        k: summary[k] for k in ("problems", "kept", "discarded", "trajectories", "candidates")
    }
    assert {k: v for k, v, _ in overview["cut_reasons"]} == summary["cut_reasons"]
    assert {k: v for k, v, _ in overview["discard_reasons"]} == summary["discard_reasons"] == {"no_consistent_continuation": 1}
    cost = overview["cost"]
    assert (cost["rollouts"], cost["prompt_tokens"], cost["completion_tokens"], cost["seconds"]) == (
        summary["rollouts"], summary["prompt_tokens"], summary["completion_tokens"], 12.5,
    )  # fmt: skip
    assert cost["gpu_hours"] is None and "not recorded" in cost["gpu_hours_note"]  # the scripted engine names no device
    # keep/T of the cut problems: the summary's mean, and a histogram that counts each once
    cut = [e.relative_gap for e in examples if e.relative_gap is not None]
    assert overview["cut_positions"]["n"] == len(cut) == sum(b["count"] for b in overview["cut_histogram"])
    assert round(overview["cut_positions"]["mean"], 4) == summary["mean_relative_gap"]
    # the curve: the card figure's quartiles per bin, plus the mean
    card = figures.curves(examples)["relative"]
    assert [(round((b["lo"] + b["hi"]) / 2, 6), b["q1"], b["median"], b["q3"], b["n"]) for b in overview["curve"]] == [
        (round(c, 6), q1, m, q3, n) for c, q1, m, q3, n in card
    ]
    rules = {r["name"]: r["value"] for r in overview["rules"]}
    assert (rules["rules"], rules["peak"], rules["min_follow"], rules["epsilon"], rules["strategy"]) == (
        rules_label(run_config(examples, config)["adapt"]), "local", "0.5", "0.3", "full",
    )  # fmt: skip
    assert rules["rules"].startswith(config.rules)
    assert [m["value"] for m in overview["table6_marks"]] == [0.7707, 0.6985, 0.5983, 0.5244, 0.3664, 0.3239]  # the Gap column


def test_the_rules_that_ran_and_their_deviations_are_shown(adapted, tmp_path):
    from dart_hub.adaptation.rules import deviations

    examples, config = adapted
    folder = write(tmp_path / "out", examples, config)
    settings = run_config(examples, config)["adapt"]
    overview = dataset_report(folder)["overview"]
    rules = {r["name"]: r["value"] for r in overview["rules"]}
    assert rules["rules"] == rules_label(settings) and rules["rules"].startswith(config.rules)
    expected = [d["name"] for d in deviations(settings)]
    assert [line.split(" (")[0] for line in overview["deviations"]] == expected
    assert (config.rules == "paper") == (expected == [])
    html = write_dataset_report(folder).read_text(encoding="utf-8")
    for name in expected:
        assert name in html


def test_problem_records(adapted, folder):
    examples, _ = adapted
    problems = dataset_report(folder)["problems"]
    a = problems[0]
    assert (a["id"], a["cut_reason"], a["peak"], a["gap"], a["keep_steps"], a["steps"]) == ("a", "gap", 0, 2, 2, 5)
    assert a["probed_steps"] == [0, 1, 2, 3] and a["reveal_step"] == 4  # the boxed last step is not probed
    assert [c["verdict"] for c in a["candidates"]] == ["chosen", "wrong answer"]
    assert [c["answer"] for c in a["candidates"]] == ["42", "41"]
    [trajectory] = a["trajectories"]
    assert trajectory["expert"] + "\n\n" + trajectory["student"] == examples[0].trajectories[0]
    assert trajectory["student"] == "Anchor: part 2. A short finish. \\boxed{42}"
    c = problems[2]  # no drop: the expert trace whole, no student part
    assert c["cut_reason"] == "no_drop" and c["trajectories"] == [{"expert": examples[2].trajectories[0], "student": ""}]
    e = problems[4]  # all zero: the student solved from the question alone
    assert e["keep_steps"] == 0 and e["trajectories"][0]["expert"] == "" and e["relative_cut"] == 0.0
    assert problems[1]["outcome"] == "discarded" and problems[1]["trajectories"] == []
    assert len({p["file"] for p in problems}) == 5


def test_candidate_verdicts():
    base = Candidate(text="t", answer="1", correct=True, repetition=0.1, completion_tokens=5, finish_reason="stop", origin="explore")
    assert candidate_verdict(dataclasses.replace(base, kept=True), 0.3) == "chosen"
    assert candidate_verdict(base, 0.3) == "correct"
    assert candidate_verdict(dataclasses.replace(base, correct=False), 0.3) == "wrong answer"
    assert candidate_verdict(dataclasses.replace(base, finish_reason="length"), 0.3) == "unfinished"
    assert candidate_verdict(dataclasses.replace(base, repetition=0.5), 0.3) == "repetitive"
    assert candidate_verdict(dataclasses.replace(base, repetition=0.5), 0.3, cleaning="raw") == "correct"


def test_other_methods_have_the_student_part_whole(adapted):
    from dart_hub.report.dataset import problem_record
    from dart_hub.report.render import _step_rows

    example = dataclasses.replace(adapted[0][0], method="dail", cut_reason="rewrite", keep_steps=0)
    assert student_part(example, "my own words") == ("", "my own words")
    rows = _step_rows(problem_record(0, example, {}))
    assert {r["state"] for r in rows} == {"rewritten"}  # not "cut": DAIL replaces the whole trace


def test_tex_marks_math_and_boxed_answers_and_escapes():
    html = str(tex("Let $x<1$ and \\[a&b\\]; so \\boxed{\\frac{1}{2}} <b>"))
    assert '<span class="math">$x&lt;1$</span>' in html and '<span class="math">\\[a&amp;b\\]</span>' in html
    assert '<mark class="boxed">\\boxed{\\frac{1}{2}}</mark>' in html and html.endswith("&lt;b&gt;")
    assert str(tex("\\boxed{unclosed")) == "\\boxed{unclosed"


def injected_folder(adapted, tmp_path) -> Path:
    """A folder whose question, expert steps, candidates and solutions carry a <script>."""
    examples, config = adapted
    first = examples[0]
    candidates = [dataclasses.replace(c, text=c.text + INJECTED, answer=INJECTED if not c.kept else c.answer) for c in first.candidates]
    poisoned = dataclasses.replace(
        first,
        question=first.question + INJECTED,
        expert_steps=[s + INJECTED for s in first.expert_steps],
        candidates=candidates,
        trajectories=[t + INJECTED for t in first.trajectories],
        gold=first.gold,
    )
    return write(tmp_path / "poisoned", [poisoned, *examples[1:]], config)


def test_everything_from_data_is_escaped(adapted, tmp_path):
    folder = injected_folder(adapted, tmp_path)
    index = write_dataset_report(folder)
    pages = [index, *sorted((index.parent / "problems").glob("*.html"))]
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert "<script>window.__dart_hub_injected" not in text
        assert 'http-equiv="Content-Security-Policy"' in text
    problem = pages[1].read_text(encoding="utf-8")
    assert problem.count("&lt;script&gt;window.__dart_hub_injected") >= 5  # question, steps, solution, candidates
    assert "script-src 'none'" in problem and "<script" not in problem
    # the index runs only its own script, allowed by hash
    html = index.read_text(encoding="utf-8")
    scripts = re.findall(r"<script>(.*?)</script>", html, re.S)
    assert len(scripts) == 1 and f"script-src '{script_hash(scripts[0])}'" in html
    data = re.search(r'<script type="application/json" id="problems-data">(.*?)</script>', html, re.S).group(1)
    assert "<" not in data and json.loads(data)[0]["q"].endswith(INJECTED)


def test_report_command(folder, tmp_path):
    result = CliRunner().invoke(cli, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    index = folder / "report" / "index.html"
    assert f"report: {index}" in result.output and index.is_file()
    assert len(list((folder / "report" / "problems").glob("*.html"))) == 5
    html = index.read_text(encoding="utf-8")
    assert 'href="../README.md"' in html and 'href="../steps/train-00000-of-00001.parquet"' in html
    assert 'href="problems/00000-a.html"' in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing from the network

    other = CliRunner().invoke(cli, ["report", str(folder), "--output", str(tmp_path / "elsewhere"), "--json"])
    assert other.exit_code == 0, other.output
    info = json.loads(other.stdout)
    assert info["files"] == 6 and Path(info["index"]) == tmp_path / "elsewhere" / "index.html"
    assert 'href="../out/README.md"' in (tmp_path / "elsewhere" / "index.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing", "does not exist"),
    (lambda p: p, "holds no run-summary.json"),
])  # fmt: skip
def test_report_bad_input_is_one_line_error(tmp_path, make, message):
    result = CliRunner().invoke(cli, ["report", str(make(tmp_path))])
    assert result.exit_code == 1 and message in result.output and len(result.output.strip().splitlines()) == 1


def test_report_refuses_a_mixed_folder(adapted, folder, tmp_path):
    other = write(tmp_path / "other", adapted[0][:2], adapted[1])
    (folder / "steps" / "train-00000-of-00001.parquet").write_bytes((other / "steps" / "train-00000-of-00001.parquet").read_bytes())
    result = CliRunner().invoke(cli, ["report", str(folder)])
    assert result.exit_code == 1 and "mixes parts of different runs" in result.output


def test_adapt_writes_the_report_unless_told_not_to(tmp_path):
    """`adapt --strategy static` loads no model: the quickest real adapt run."""
    base = ["adapt", "--student", str(tmp_path / "no-model"), "--dataset", str(DATA / "limo_sample.jsonl"), "--strategy", "static", "--quiet", "--json"]
    result = CliRunner().invoke(cli, [*base, "--output", str(tmp_path / "out"), "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["report"] == str(tmp_path / "out" / "report" / "index.html")
    assert (tmp_path / "out" / "report" / "index.html").is_file()
    quiet = CliRunner().invoke(cli, [*base, "--output", str(tmp_path / "bare"), "--work-dir", str(tmp_path / "w2"), "--no-report"])
    assert quiet.exit_code == 0, quiet.output
    assert "report" not in json.loads(quiet.stdout.strip().splitlines()[-1]) and not (tmp_path / "bare" / "report").exists()
    # a rerun over the folder keeps the folder whole and rewrites the report; without one, the
    # old report (of other data) goes
    again = CliRunner().invoke(cli, [*base, "--output", str(tmp_path / "out"), "--work-dir", str(tmp_path / "w"), "--limit", "2"])
    assert again.exit_code == 0, again.output
    assert CliRunner().invoke(cli, ["card", str(tmp_path / "out"), "--check"]).exit_code == 0
    assert len(list((tmp_path / "out" / "report" / "problems").glob("*.html"))) == 2
    bare = CliRunner().invoke(cli, [*base, "--output", str(tmp_path / "out"), "--work-dir", str(tmp_path / "w"), "--no-report"])
    assert bare.exit_code == 0, bare.output
    assert not (tmp_path / "out" / "report").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bare", "out", "w", "w2"]  # nothing left beside it


def test_push_with_report_commits_it_and_links_it_from_the_card(hub, folder):
    from tests.test_push import REPO, our_commits

    write_dataset_report(folder)  # as adapt leaves it
    plain = CliRunner().invoke(cli, ["push", str(folder), REPO])
    assert plain.exit_code == 0, plain.output
    assert not any(p.startswith("report/") for p in our_commits(hub)[0].changed)
    assert "report/" not in hub.read_file(REPO, "README.md").decode()

    result = CliRunner().invoke(cli, ["push", str(folder), REPO, "--with-report"])
    assert result.exit_code == 0, result.output
    changed = set(our_commits(hub)[0].changed)
    assert {"report/index.html", "report/problems/00000-a.html"} <= changed
    card = hub.read_file(REPO, "README.md").decode()
    assert "[`report/`](report/index.html)" in card and (folder / "README.md").read_text() == card
    assert hub.read_file(REPO, "report/index.html") == (folder / "report" / "index.html").read_bytes()
    assert CliRunner().invoke(cli, ["card", str(folder), "--check"]).exit_code == 0

    # without it again: the report leaves the repo and the card
    CliRunner().invoke(cli, ["push", str(folder), REPO])
    last = our_commits(hub)[0]
    assert "report/index.html" in last.changed  # deleted
    assert "report/" not in hub.read_file(REPO, "README.md").decode()


# --------------------------------------------------------------------------------------------
# Training / eval runs
# --------------------------------------------------------------------------------------------

from tests.test_compare_grid import runs  # noqa: E402,F401 - the `dart-hub run` folders fixture


def table_rows(html: str, role: str) -> list[list[str]]:
    import html as html_lib

    table = re.search(rf'<table data-role="{role}">(.*?)</table>', html, re.S).group(1)
    rows = []
    for row in re.findall(r"<tr>(.*?)</tr>", table, re.S):
        cells = [html_lib.unescape(re.sub(r"<.*?>", "", c)).strip() for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.S)]
        rows.append(cells)
    return rows


def test_runs_report_has_the_compare_grid_bars_and_epochs(runs, tmp_path):  # noqa: F811
    from dart_hub.report.runs import wilson

    full = runs / "qwen2.5-0.5b-instruct" / "limo"
    (full / "train").mkdir(parents=True)
    training = {  # the fields dart_hub.training.run writes
        "student": "Qwen/Qwen2.5-0.5B-Instruct", "rows": {"train": 40},
        "epochs": [{"epoch": e, "step": 10 * e, "checkpoint": f"checkpoint-{10 * e}", "train_loss": 1.0 / e,
                    "validation": {"correct": c, "total": 20, "accuracy": c / 20}} for e, c in ((1, 8), (2, 12), (3, 11))],
        "selection": {"enabled": True, "best_epoch": 2}, "chosen_epoch": 2, "gpu_hours": 0.0,
    }  # fmt: skip
    (full / "train" / "training_summary.json").write_text(json.dumps(training))
    result = CliRunner().invoke(cli, ["report", str(runs), "--output", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    html = (tmp_path / "r" / "index.html").read_text(encoding="utf-8")

    compare = CliRunner().invoke(cli, ["compare", str(runs)]).output.splitlines()
    printed = [[c.strip().strip("*") for c in line.strip("|").split("|")] for line in compare[2:] if line.startswith("|")]
    shown = table_rows(html, "grid-table")[1:]
    assert [[c for c in row if c] for row in shown] == [[c for c in row if c] for row in printed]

    # one section per run: bars with Wilson intervals over the benchmark's problems
    # 6 evaluated runs x 2 benchmarks, per run and again per benchmark
    assert html.count('data-role="run"') == 7 and html.count('data-role="score-bar"') == 2 * (2 * 6)
    assert html.count('<figure data-benchmark=') == 2
    low, high = wilson(7, 10)
    assert f"{100 * low:.1f} - {100 * high:.1f}" in html  # LIMO run, GSM8K 7/10
    # the run's training: loss and validation per epoch, the chosen epoch marked
    assert html.count('data-role="loss-chart"') == 1 and html.count('data-role="validation-chart"') == 1
    assert html.count('data-role="chosen-epoch" data-epoch="2"') == 2
    epochs = table_rows(html, "epochs")
    assert epochs[2][:4] == ["2", "0.5000", "-", "60.0% (12/20)"] and epochs[2][4] == "chosen"


def test_wilson_interval():
    from dart_hub.report.runs import wilson

    low, high = wilson(5, 10)
    assert round(low, 4) == 0.2366 and round(high, 4) == 0.7634  # the textbook values
    assert wilson(0, 0) is None and wilson(10, 10)[1] == 1.0


def test_demo_arms_report(tmp_path):
    """`demo --train`'s report: the arms with their bootstrap intervals (demo-results.json, by the
    demo's own writer) and each trained model's loss per epoch (no validation in the demo)."""
    from dart_hub.toy.compare import summarize_arm, write_results
    from dart_hub.toy.demo import write_arms_report

    arms = [summarize_arm("no-tuning", [[1, 0, 0, 1]], None), summarize_arm("static", [[1, 0, 1, 1], [0, 0, 1, 1]], 4),
            summarize_arm("full", [[1, 1, 1, 1], [1, 1, 0, 1]], 3)]  # fmt: skip
    output, training = tmp_path / "demo", tmp_path / "demo-training"
    write_results({"arms": arms, "skipped_arms": [], "settings": {}, "seconds": 1.0}, output)
    for arm in ("static", "full"):
        for seed in (0, 1):
            folder = training / f"{arm}-seed{seed}"
            folder.mkdir(parents=True)
            epochs = [{"epoch": e, "step": e, "checkpoint": f"checkpoint-{e}", "train_loss": 2.0 / e} for e in (1, 2, 3)]
            summary = {"epochs": epochs, "chosen_epoch": 3, "selection": {"enabled": False}, "rows": {"train": 4}}
            (folder / "training_summary.json").write_text(json.dumps(summary))
    index = write_arms_report(output, training)
    assert index == training / "report" / "index.html"
    html = index.read_text(encoding="utf-8")
    assert html.count('data-role="score-bar"') == 3 and html.count('data-role="interval"') == 3
    assert html.count('data-role="loss-chart"') == 4 and 'data-role="validation-chart"' not in html
    assert html.count("no validation: the last epoch is used") == 4
    static = next(a for a in arms if a["arm"] == "static")
    assert f"{100 * static['ci_low']:.1f} - {100 * static['ci_high']:.1f}" in html
