"""The API functions behind inspect, merge, card, report, prefetch, mapper train and demo, called
directly, give what the command line gives on the same inputs (and the same one-line errors)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from dart_hub import api
from dart_hub.api import DemoSpec, InspectSpec, MapperTrainSpec
from dart_hub.cli import cli
from dart_hub.errors import DartHubError

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "limo_sample.jsonl"


def invoke(*args: str, code: int = 0):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, result.output
    return result


def same_error(cli_result, error: pytest.ExceptionInfo) -> None:
    """The API raises the message the command prints as its one-line "Error: ..."."""
    assert cli_result.exit_code == 1
    assert cli_result.stderr.strip().splitlines()[-1] == f"Error: {' '.join(str(error.value).split())}"


def adapt_static(output: Path, work: Path, *extra: str) -> None:
    """A real adapt output without a model: the Static strategy keeps the expert traces."""
    invoke("adapt", "--student", "any/student", "--dataset", SAMPLE, "--strategy", "static", "--work-dir", work, "--output", output, "--quiet", *extra)


def parquet_rows(folder: Path, sub: str) -> list[dict]:
    return pq.read_table(folder / sub / "train-00000-of-00001.parquet").to_pylist()


def test_inspect_gives_the_json_lines_of_the_command(capsys):
    lines = [json.loads(line) for line in invoke("inspect", SAMPLE, "--limit", "0", "--min-step-chars", "10", "--json").stdout.splitlines()]
    capsys.readouterr()
    inspection = api.inspect(InspectSpec(dataset=str(SAMPLE), limit=0, min_step_chars=10), progress_bars=False)
    assert capsys.readouterr().out == ""  # from Python nothing is printed
    assert json.loads(json.dumps(list(inspection.records()), default=str)) == lines
    assert {"type": "summary", **inspection.summary} == lines[-1]
    assert len(inspection.problems) == len(inspection.steps) == lines[-1]["problems"] > 0
    # the default limit (3) is the command's
    assert len(api.inspect(InspectSpec(dataset=str(SAMPLE))).problems) == 3


def test_inspect_errors_are_the_commands_one_line(tmp_path):
    missing = invoke("inspect", SAMPLE, "--question-column", "nope", code=1)
    with pytest.raises(DartHubError) as error:
        api.inspect(InspectSpec(dataset=str(SAMPLE), question_column="nope"))
    same_error(missing, error)
    with pytest.raises(DartHubError, match=r"^Invalid value for '--limit': -1 is not in the range x>=0.$"):
        InspectSpec(dataset=str(SAMPLE), limit=-1)
    with pytest.raises(DartHubError, match="expected a InspectSpec"):
        api.inspect(str(SAMPLE))


def test_merge_gives_the_commands_folder_and_summary(tmp_path, capsys):
    for i in range(2):
        adapt_static(tmp_path / "shards", tmp_path / "work", "--shard", f"{i}/2")
    summary = json.loads(invoke("merge", tmp_path / "shards", "--output", tmp_path / "cli", "--json").stdout)
    capsys.readouterr()
    merged = api.merge(tmp_path / "shards", tmp_path / "api")
    assert capsys.readouterr().out == ""
    assert merged.output == tmp_path / "api" and merged.shards == ["shard-00000-of-00002", "shard-00001-of-00002"]
    assert merged.warnings == [] and merged.engine_by_shard == {}
    varying = {"output"}
    assert {k: v for k, v in merged.summary.items() if k not in varying} == {k: v for k, v in summary.items() if k not in varying}
    for sub in ("data", "steps"):
        assert parquet_rows(tmp_path / "api", sub) == parquet_rows(tmp_path / "cli", sub)

    shutil.rmtree(tmp_path / "shards" / "shard-00001-of-00002")
    refused = invoke("merge", tmp_path / "shards", "--output", tmp_path / "m", code=1)
    with pytest.raises(DartHubError) as error:
        api.merge(tmp_path / "shards", tmp_path / "m")
    same_error(refused, error)
    assert api.merge(tmp_path / "shards", tmp_path / "m", allow_missing=True).summary["missing_shards"] == [1]


def test_card_rewrites_and_checks_like_the_command(tmp_path, capsys):
    folder = tmp_path / "out"
    adapt_static(folder, tmp_path / "work")
    readme = folder / "README.md"
    original = readme.read_text()
    readme.write_text("edited\n")
    assert api.card(folder, check=True).stale == ["README.md"]  # check writes nothing
    assert readme.read_text() == "edited\n"
    checked = invoke("card", folder, "--check", code=1)
    assert "out of date in" in checked.stderr and "README.md" in checked.stderr

    capsys.readouterr()
    written = api.card(folder)
    assert capsys.readouterr().out == ""
    assert written.readme == readme and not written.checked and readme.read_text() == original
    assert invoke("card", folder).stdout.strip() == str(readme) and readme.read_text() == original
    again = api.card(folder, check=True)
    assert again.up_to_date and invoke("card", folder, "--check").stdout.strip() == f"{readme} is up to date"

    not_adapted = invoke("card", tmp_path, code=1)
    with pytest.raises(DartHubError) as error:
        api.card(tmp_path)
    same_error(not_adapted, error)


def test_report_writes_the_commands_report(tmp_path, capsys):
    folder = tmp_path / "out"
    adapt_static(folder, tmp_path / "work", "--no-report")
    shown = json.loads(invoke("report", folder, "--output", tmp_path / "cli", "--json").stdout)
    capsys.readouterr()
    written = api.report(folder, output=tmp_path / "api")
    assert capsys.readouterr().out == ""
    assert written.index == tmp_path / "api" / "index.html" and written.index.is_file()
    assert (written.files, written.bytes) == (shown["files"], shown["bytes"])
    assert written.index.read_text() == Path(shown["index"]).read_text()

    missing = invoke("report", tmp_path / "nope", code=1)
    with pytest.raises(DartHubError) as error:
        api.report([tmp_path / "nope"])
    same_error(missing, error)


def test_prefetch_fetches_what_the_command_fetches(tmp_path, capsys):
    from dart_hub.toy import toy_student_path

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: p\noutput: {tmp_path / 'run'}\nsource:\n  dataset: {SAMPLE}\nstudent:\n  model: {toy_student_path()}\n")
    printed = invoke("prefetch", recipe, recipe, "--no-eval").stdout.splitlines()
    seen = []
    capsys.readouterr()
    fetched = api.prefetch([recipe, recipe], with_eval=False, on_fetch=seen.append)
    assert capsys.readouterr().out == ""
    assert seen == fetched
    assert [f"{f.recipe.name}: {f.kind} {f.name}: {f.where}" for f in fetched] == printed
    assert [(f.kind, f.where) for f in fetched] == [("model", "local folder"), ("dataset", fetched[1].where)]
    assert invoke("prefetch", recipe, "--no-eval", "--quiet").stdout == ""

    recipe.write_text(f"name: p\noutput: {tmp_path / 'run'}\nstudent:\n  model: {tmp_path / 'no-model'}\n")
    failed = invoke("prefetch", recipe, code=1)
    with pytest.raises(DartHubError) as error:
        api.prefetch(recipe)
    same_error(failed, error)


def mapper_args(output: Path, *extra: str) -> list[str]:
    from dart_hub.toy import expert_dataset_path, method_prompts_path, toy_student_path

    return [
        "mapper", "train", "--student", str(toy_student_path()), "--dataset", str(expert_dataset_path()),
        "--mapper-prompts", str(method_prompts_path("mapper")), "--output", str(output), "--scorer-device", "cpu",
        "--scorer-dtype", "float32", "--beta", "0", "--quiet", *extra,
    ]  # fmt: skip


def mapper_spec(output: Path, **extra) -> MapperTrainSpec:
    from dart_hub.toy import expert_dataset_path, method_prompts_path, toy_student_path

    settings = dict(student=str(toy_student_path()), dataset=str(expert_dataset_path()), mapper_prompts=method_prompts_path("mapper"),
                    output=output, scorer_device="cpu", scorer_dtype="float32", beta=0, quiet=True)  # fmt: skip
    return MapperTrainSpec(**{**settings, **extra})


def test_mapper_train_errors_are_the_commands_one_line(tmp_path):
    bad = invoke(*mapper_args(tmp_path / "x", "--rewards", "style=1"), code=1)
    with pytest.raises(DartHubError) as error:
        api.mapper_train(mapper_spec(tmp_path / "x", reward_weights="style=1"))
    same_error(bad, error)
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({"question": "q", "solution": "", "answer": "1"}) + "\n")
    none_usable = invoke(*mapper_args(tmp_path / "y", "--dataset", str(empty)), code=1)
    with pytest.raises(DartHubError) as error:
        api.mapper_train(mapper_spec(tmp_path / "y", dataset=str(empty)))
    same_error(none_usable, error)


@pytest.mark.slow
def test_mapper_train_trains_like_the_command(tmp_path):
    settings = ["--limit", "1", "--num-generations", "2", "--max-completion-length", "16", "--max-steps", "1", "--save-steps", "1"]
    summary = json.loads(invoke(*mapper_args(tmp_path / "cli", *settings, "--json")).stdout.strip().splitlines()[-1])
    done = api.mapper_train(mapper_spec(tmp_path / "api", limit=1, num_generations=2, max_completion_length=16, max_steps=1, save_steps=1))
    assert done.final == tmp_path / "api" / "final" and (done.final / "model.safetensors").is_file()
    assert done.run_file == tmp_path / "api" / "mapper_run.json" and done.run_file.is_file()
    same = ("steps", "scorer", "device", "gpu_hours")
    assert {k: done.summary[k] for k in same} == {k: summary[k] for k in same}
    assert set(done.summary) == set(summary)


@pytest.mark.slow
def test_demo_gives_the_commands_data_and_report(tmp_path):
    """The demo through the API, then the command on the same work dir: it resumes everything
    and reports the same adaptation."""
    spec = DemoSpec(output=tmp_path / "demo", work_dir=tmp_path / "w", limit=2, n_sim=1, quiet=True)
    done = api.demo(spec)
    assert done.output == tmp_path / "demo" and (done.output / "README.md").is_file()
    shown = json.loads(invoke("demo", "--output", tmp_path / "demo", "--work-dir", tmp_path / "w", "--limit", "2", "--n-sim", "1", "--quiet", "--json").stdout)
    varying = {"seconds", "report", "output", "work_dir"}
    assert {k: v for k, v in done.data["adapt"].items() if k not in varying} == {k: v for k, v in shown["adapt"].items() if k not in varying}
    text = invoke("demo", "--output", tmp_path / "demo", "--work-dir", tmp_path / "w", "--limit", "2", "--n-sim", "1", "--quiet").stdout
    assert text.splitlines()[:4] == done.text.splitlines()[:4]
    with pytest.raises(DartHubError, match="expected a DemoSpec"):
        api.demo({"limit": 2})
