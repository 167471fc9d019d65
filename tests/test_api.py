"""dart_hub.api used directly, stage by stage, against the command line on the same inputs; and
a work dir written by the code before the API existed (main 390ea48) resuming with it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dart_hub.api import (
    AdaptSpec,
    EvalSpec,
    TrainSpec,
    adapt,
    compare,
    evaluate,
    push,
    run_recipe,
    train,
)
from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.publish.layout import DATA_FILE, STEPS_FILE
from tests.scripted_engine import ScriptedEngine
from tests.test_passk import sampled

DATA = Path(__file__).parent / "data"
BEFORE = DATA / "work_dir_before_api"  # written by `dart-hub adapt` at main 390ea48 (see its README)
# the command that wrote it, run in a folder with `student` (the toy student) and `expert.jsonl`
BEFORE_ARGS = [
    "--student", "student", "--dataset", "expert.jsonl", "--engine", "transformers", "--device", "cpu",
    "--dtype", "float32", "--n-sim", "2", "--sim-max-tokens", "256", "--n-explore", "2",
    "--explore-max-tokens", "256", "--min-step-chars", "5", "--work-dir", "work", "--probe-cache", "probes",
    # the rules that code ran (issue 25 made `paper` the default): robust without confirmation
    "--rules", "robust", "--confirm", "0",
]  # fmt: skip
VARYING = {"seconds", "output", "work_dir", "report"}


def rows(folder: Path, relative: str) -> list[dict]:
    table = pq.read_table(folder / relative)
    return table.to_pylist()


@pytest.fixture
def before(tmp_path, monkeypatch):
    """The old work dir, probe cache and data in a fresh folder; generating anything fails."""
    from dart_hub.toy import toy_student_path

    for name in ("work", "probes", "expert.jsonl"):
        source = BEFORE / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, tmp_path / name)
    (tmp_path / "student").symlink_to(toy_student_path())
    monkeypatch.chdir(tmp_path)

    def no_model(*args, **kwargs):
        raise AssertionError("a resumed run must not load the model")

    monkeypatch.setattr("dart_hub.engines.factory.create_engine", no_model)
    return tmp_path


def test_a_work_dir_written_before_the_api_resumes_with_the_same_result(before):
    """Same fingerprint (the old work dir is accepted, nothing is generated), same summary and
    same rows as the old code wrote; the command line and adapt() agree."""
    result = CliRunner().invoke(cli, ["adapt", *BEFORE_ARGS, "--output", "out-cli", "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    cli_summary = json.loads(result.stdout.strip().splitlines()[-1])
    old_summary = json.loads((BEFORE / "summary.json").read_text())
    # every figure the old code reported is the same (newer versions report more: rules, keep/T)
    assert {k: cli_summary.get(k) for k in old_summary if k not in VARYING} == {k: v for k, v in old_summary.items() if k not in VARYING}

    spec = AdaptSpec(student="student", dataset="expert.jsonl", engine="transformers", device="cpu", dtype="float32",
                     n_sim=2, sim_max_tokens=256, n_explore=2, explore_max_tokens=256, min_step_chars=5,
                     work_dir="work", probe_cache="probes", output="out-api", quiet=True,
                     rules="robust", confirm=0)  # fmt: skip
    api_result = adapt(spec)
    assert {k: v for k, v in api_result.summary.items() if k not in VARYING} == {k: v for k, v in cli_summary.items() if k not in VARYING}
    assert api_result.output == Path("out-api") and api_result.work_dir == Path("work") and not api_result.dry_run
    for relative in (DATA_FILE, STEPS_FILE):
        old = rows(BEFORE / "out", relative)
        assert rows(before / "out-cli", relative) == old
        assert rows(before / "out-api", relative) == old
    old_config = json.loads((BEFORE / "out" / "dart_config.json").read_text())
    new_config = json.loads((before / "out-api" / "dart_config.json").read_text())
    assert new_config["fingerprint"] == old_config["fingerprint"]
    assert new_config["source"] == old_config["source"]
    # every setting the old code recorded is the same; newer versions may record more (rules)
    assert {k: new_config["adapt"].get(k) for k in old_config["adapt"]} == old_config["adapt"]


def test_adapt_dry_run_and_errors_match_the_command_line(tmp_path):
    dataset = str(DATA / "limo_sample.jsonl")
    result = CliRunner().invoke(cli, ["adapt", "--student", "any/model", "--dataset", dataset, "--dry-run", "--json", "--no-admission"])
    assert result.exit_code == 0, result.output
    planned = adapt(AdaptSpec(student="any/model", dataset=dataset, dry_run=True, admission=False))
    assert planned.dry_run and planned.output is None and planned.summary == json.loads(result.stdout)
    # the same one-line message as the CLI's "Error: ..."
    bad = CliRunner().invoke(cli, ["adapt", "--student", "m", "--dataset", str(tmp_path / "none.jsonl"), "--dry-run"])
    assert bad.exit_code == 1
    with pytest.raises(DartHubError) as error:
        adapt(AdaptSpec(student="m", dataset=str(tmp_path / "none.jsonl"), dry_run=True))
    assert bad.stderr.strip() == f"Error: {' '.join(str(error.value).split())}"
    with pytest.raises(DartHubError, match="expected a AdaptSpec"):
        adapt({"student": "m"})


def test_adapt_push_and_load_dataset_as_the_readme_shows(hub, tmp_path):
    """The README's Python example: adapt a local file (static: no model needed), push it to the
    (emulated) Hub, load it with datasets."""
    import datasets

    result = adapt(AdaptSpec(student="my-student", dataset=str(DATA / "limo_sample.jsonl"), strategy="static",
                             output=tmp_path / "out", work_dir=tmp_path / "w", quiet=True))  # fmt: skip
    by_cli = CliRunner().invoke(cli, ["adapt", "--student", "my-student", "--dataset", str(DATA / "limo_sample.jsonl"),
                                          "--strategy", "static", "--output", str(tmp_path / "out-cli"), "--work-dir", str(tmp_path / "w2"), "--quiet", "--json"])  # fmt: skip
    assert by_cli.exit_code == 0, by_cli.output
    assert {k: v for k, v in json.loads(by_cli.stdout).items() if k not in VARYING} == {k: v for k, v in result.summary.items() if k not in VARYING}
    pushed = push(result.output, f"{hub.user}/static-set")
    assert pushed.repo_id == f"{hub.user}/static-set" and pushed.commit_url
    loaded = datasets.load_dataset(f"{hub.user}/static-set", split="train")
    assert len(loaded) == result.summary["kept"] and loaded[0]["messages"][-1]["role"] == "assistant"
    with pytest.raises(DartHubError, match="is not a folder"):
        push(tmp_path / "missing", f"{hub.user}/x")


def test_evaluate_and_compare_match_the_command_line(tmp_path, monkeypatch):
    from dart_hub.evaluation import stage as eval_stage
    from tests.test_evaluation import write_local

    monkeypatch.setattr(eval_stage, "engine_for", lambda o, model, revision: ScriptedEngine(sampled, model))
    source = write_local(tmp_path)["gsm8k"]
    common = ["--benchmarks", "gsm8k", "--benchmark-source", f"gsm8k={source}", "--samples", "4"]
    result = CliRunner().invoke(cli, ["eval", "--model", "test/a", *common, "--output", str(tmp_path / "cli"), "--json"])
    assert result.exit_code == 0, result.output
    spec = EvalSpec(model="test/a", benchmarks="gsm8k", benchmark_sources=[f"gsm8k={source}"], samples=4, output=tmp_path / "api", quiet=True)
    run = evaluate(spec)
    cli_results = json.loads(result.stdout)
    assert run.benchmarks == ["gsm8k"] and run.output == tmp_path / "api"
    assert run.results["benchmarks"]["gsm8k"] == cli_results["benchmarks"]["gsm8k"]
    assert json.loads((tmp_path / "api" / "results.json").read_text())["average"] == run.average == cli_results["average"]

    evaluate(spec.replace(model="test/b", output=tmp_path / "b"))
    shown = CliRunner().invoke(cli, ["compare", str(tmp_path / "api"), str(tmp_path / "b"), "--label", f"{tmp_path / 'b'}=B"])
    assert shown.exit_code == 0, shown.output
    table = compare([tmp_path / "api", tmp_path / "b"], labels={str(tmp_path / "b"): "B"})
    assert table.kind == "runs" and table.text == shown.stdout.rstrip("\n")
    with pytest.raises(DartHubError, match="--table lays out"):
        compare([tmp_path / "api"], table=1)


def test_train_dry_run_matches_the_command_line_and_prints_nothing(tmp_path, capsys):
    from dart_hub.toy import expert_dataset_path, toy_student_path

    args = ["train", "--student", str(toy_student_path()), "--data", str(expert_dataset_path()), "--static",
            "--output", str(tmp_path / "run"), "--epochs", "1", "--dry-run", "--json"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    capsys.readouterr()
    spec = TrainSpec(student=str(toy_student_path()), data=str(expert_dataset_path()), static=True, output=tmp_path / "run", epochs=1, dry_run=True)
    planned = train(spec)
    assert capsys.readouterr().out == ""  # from Python the plan is returned, not printed
    assert json.loads(json.dumps(planned.summary, sort_keys=True, default=str)) == json.loads(result.stdout)
    assert planned.model_path is None and planned.output == tmp_path / "run"


@pytest.mark.slow
def test_train_trains_the_toy_student_like_the_command_line(tmp_path):
    from dart_hub.toy import expert_dataset_path, toy_student_path

    settings = {"epochs": 1, "learning_rate": 1e-4, "max_length": 512, "batch_size": 8, "seed": 3}
    spec = TrainSpec(student=str(toy_student_path()), data=str(expert_dataset_path()), static=True, output=tmp_path / "api",
                     validation_size=0.0, select_best=False, quiet=True, **settings)  # fmt: skip
    done = train(spec)
    assert done.model_path is not None and (done.model_path / "config.json").exists()
    flags = [f"--{k.replace('_', '-')}={v}" for k, v in settings.items()]
    args = ["train", "--student", str(toy_student_path()), "--data", str(expert_dataset_path()), "--static", "--output", str(tmp_path / "cli"),
            "--validation-size", "0", "--no-select-best", "--quiet", "--json", *flags]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    cli_summary = json.loads(result.stdout.strip().splitlines()[-1])
    losses = [e.get("train_loss") for e in done.summary["epochs"]]
    assert losses == [e.get("train_loss") for e in cli_summary["epochs"]]  # same seed, same data: same loss


def test_run_recipe_runs_and_resumes_like_the_command_line(tmp_path, capsys):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"source:\n  dataset: {DATA / 'limo_sample.jsonl'}\nstudent:\n  model: any/model\n"
        f"adapt:\n  strategy: static\n  work_dir: {tmp_path / 'w'}\noutput: {tmp_path / 'run'}\n"
    )
    runs = run_recipe(recipe, quiet=True)
    assert capsys.readouterr().out == ""  # from Python nothing is printed on stdout
    assert [r.stages for r in runs] == [["adapt"]] and runs[0].output == tmp_path / "run"
    assert runs[0].summary["stages"]["adapt"]["summary"]["kept"] >= 3
    again = CliRunner().invoke(cli, ["run", str(recipe)])
    assert again.exit_code == 0 and "adapt: done, skipped" in again.stderr
    assert again.stdout == f"summary: {tmp_path / 'run' / 'run-summary.json'}\n"
    with pytest.raises(DartHubError, match="--only train: the recipe has no train stage"):
        run_recipe(recipe, only=["train"])
