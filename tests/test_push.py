"""Publishing on the Hub, against the local emulator (tests/hub_emulator.py): one commit,
loadable with one line, private repos, branches, pull requests, errors without tokens."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.publish.figures import FIGURE_FILE
from dart_hub.publish.folder import DATA_FILE, STEPS_FILE
from dart_hub.publish.hub import push_folder, redact
from tests.test_publish_folder import adapted_examples, write

REPO = "test-user/limo-dart"
FOLDER_FILES = ["README.md", "dart_config.json", DATA_FILE, FIGURE_FILE, STEPS_FILE]
DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def adapted():
    return adapted_examples()


@pytest.fixture
def folder(adapted, tmp_path) -> Path:
    examples, config = adapted
    return write(tmp_path / "out", examples, config)


def our_commits(hub, repo_id=REPO, revision="main"):
    """Commits after the emulator's repo creation ("initial commit")."""
    return [c for c in hub.commits(repo_id, revision=revision) if c.title != "initial commit"]


def test_push_is_one_commit_that_datasets_loads(hub, folder):
    result = push_folder(folder, REPO)

    [commit] = our_commits(hub)
    assert commit.oid == result.commit_oid and result.commit_url.endswith(result.commit_oid)
    assert sorted(set(commit.changed)) == sorted(FOLDER_FILES)
    assert commit.title == "DART-adapt GAIR/LIMO for Qwen/Qwen2.5-1.5B-Instruct (dart-hub 0.1.0)"
    assert hub.count_requests("POST", "/commit/") == 1
    assert result.pr_url is None and result.private is False

    train = datasets.load_dataset(REPO, split="train")
    assert train["id"] == ["a", "c", "d", "e"]
    assert train[0]["messages"][-1]["content"] == train[0]["solution"]
    steps = datasets.load_dataset(REPO, "steps", split="train")
    assert steps["id"] == list("abcde") and steps["cut_reason"][0] == "gap"

    # the generated card now names the repo, identically on the Hub and in the folder
    card = hub.read_file(REPO, "README.md").decode()
    assert f'load_dataset("{REPO}", split="train")' in card and f"--dataset_name {REPO}" in card
    assert (folder / "README.md").read_text() == card
    assert json.loads(hub.read_file(REPO, "dart_config.json"))["hub"] == {"repo_id": REPO}
    assert hub.read_file(REPO, FIGURE_FILE) == (folder / FIGURE_FILE).read_bytes()
    assert CliRunner().invoke(cli, ["card", str(folder), "--check"]).exit_code == 0


def test_hidden_files_and_nested_outputs_are_not_pushed(hub, folder, adapted):
    examples, config = adapted
    write(folder / "shard-00000-of-00002", examples[:2], config)
    (folder / "data" / ".train.parquet.tmp").write_bytes(b"partial")
    result = push_folder(folder, REPO)
    assert sorted(result.files) == sorted(FOLDER_FILES)
    assert sorted(hub.list_files(REPO)) == sorted([".gitattributes", *FOLDER_FILES])


def test_a_second_push_is_one_more_commit_and_mirrors_the_folder(hub, folder, adapted):
    push_folder(folder, REPO)
    hub.commit_files(REPO, {"data/old-shard.parquet": b"PAR1", "notes.md": "kept"}, message="manual")
    static, config = adapted_examples(strategy="static")
    write(folder, static, config)  # no figure any more
    push_folder(folder, REPO, commit_message="Static baseline")
    assert [c.title for c in our_commits(hub)] == [
        "Static baseline", "manual", "DART-adapt GAIR/LIMO for Qwen/Qwen2.5-1.5B-Instruct (dart-hub 0.1.0)",
    ]  # fmt: skip
    files = hub.list_files(REPO)
    assert FIGURE_FILE not in files and "data/old-shard.parquet" not in files
    assert "notes.md" in files  # files outside data/, steps/, figures/ are left alone
    assert len(datasets.load_dataset(REPO, split="train")) == 5


def test_private_repo(hub, folder):
    result = push_folder(folder, "test-user/secret-dart", private=True)
    assert hub.is_private("test-user/secret-dart") and result.private is True
    assert len(datasets.load_dataset("test-user/secret-dart", split="train")) == 4


def test_create_pr_leaves_main_untouched(hub, folder):
    hub.create_repo(REPO)
    main_before = hub.head(REPO)
    result = push_folder(folder, REPO, create_pr=True)
    assert hub.head(REPO) == main_before and hub.list_files(REPO) == [".gitattributes"]
    [pr] = hub.pull_requests(REPO)
    assert result.pr_url and result.pr_url.endswith(f"/discussions/{pr.num}")
    assert sorted(hub.list_files(REPO, revision=f"refs/pr/{pr.num}")) == sorted([".gitattributes", *FOLDER_FILES])


def test_branch(hub, folder):
    result = push_folder(folder, REPO, branch="epsilon-0.3")
    assert result.branch == "epsilon-0.3"
    assert hub.list_files(REPO) == [".gitattributes"]
    assert "README.md" in hub.list_files(REPO, revision="epsilon-0.3")
    rows = datasets.load_dataset(REPO, split="train", revision="epsilon-0.3")
    assert len(rows) == 4


def test_push_command(hub, folder):
    result = CliRunner().invoke(cli, ["push", str(folder), REPO, "--private", "--commit-message", "first"])
    assert result.exit_code == 0, result.output
    assert f'load_dataset("{REPO}", split="train")' in result.stdout and "private" in result.stdout
    assert [c.title for c in our_commits(hub)] == ["first"] and hub.is_private(REPO)
    assert hub.token not in result.output


def test_push_without_a_token_is_a_one_line_error(hub, folder, monkeypatch):
    monkeypatch.delenv("HF_TOKEN")
    result = CliRunner().invoke(cli, ["push", str(folder), REPO])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()]
    assert "hf auth login" in result.stderr and "HF_TOKEN" in result.stderr and "Traceback" not in result.output
    assert not hub.repo_exists(REPO)


def test_read_only_token_names_the_namespace_and_never_shows_the_token(hub, folder, monkeypatch):
    token = "hf_" + "readOnlyToken1234567890abcdefghijklmn"  # built, so the source holds no token-shaped string
    hub.add_token(token, "test-user", write=False)
    monkeypatch.setenv("MY_RO_TOKEN", token)
    result = CliRunner().invoke(cli, ["push", str(folder), REPO, "--token-env", "MY_RO_TOKEN"])
    assert result.exit_code == 1
    assert "token is read-only" in result.stderr and not hub.repo_exists(REPO)
    assert token not in result.output and len(result.stderr.strip().splitlines()) == 1


def test_rejected_token(hub, folder):
    with pytest.raises(DartHubError, match="rejected") as info:
        push_folder(folder, REPO, token="hf_" + "unknownToken000000000000000000000000")
    assert "hf_unknown" not in str(info.value)


@pytest.mark.parametrize("repo_id", ["no-namespace", "a/b/c", "me/bad name", "me/--x"])
def test_invalid_repo_id(hub, folder, repo_id):
    result = CliRunner().invoke(cli, ["push", str(folder), repo_id])
    assert result.exit_code == 1 and "NAMESPACE/NAME" in result.stderr
    assert hub.count_requests() == 0


def test_push_refuses_a_folder_that_is_not_an_adapt_output(hub, tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "README.md").write_text("hi")
    result = CliRunner().invoke(cli, ["push", str(tmp_path / "x"), REPO])
    assert result.exit_code == 1 and "dart_config.json" in result.stderr
    assert hub.count_requests() == 0


def test_nothing_kept_is_refused_unless_allowed(hub, tmp_path):
    examples, config = adapted_examples("ab", keep_nothing=True)
    out = write(tmp_path / "out", examples, config)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    with pytest.raises(DartHubError, match="no trajectory was kept.*--allow-empty"):
        push_folder(out, REPO)
    assert not hub.repo_exists(REPO)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing touched
    push_folder(out, REPO, allow_empty=True)
    rows = datasets.load_dataset(REPO, split="train")  # the steps config is the default
    assert rows["id"] == ["a", "b"] and "No example was kept" in hub.read_file(REPO, "README.md").decode()


def test_a_hand_edited_card_is_published_as_it_is(hub, folder):
    text = (folder / "README.md").read_text().replace("## Quick start", "## Quick start\n\nHand-written note.")
    (folder / "README.md").write_text(text)
    push_folder(folder, REPO)
    assert hub.read_file(REPO, "README.md").decode() == text
    assert "hub" not in json.loads((folder / "dart_config.json").read_text())


def test_redact():
    token = "hf_" + "x1" * 17
    assert redact(f"bad {token} and hf_test_token_not_real", token) == "bad hf_*** and hf_***"
    assert redact("run `hf auth login`") == "run `hf auth login`"


def test_adapt_push_to_hub_end_to_end(hub, tmp_path):
    """`dart-hub adapt --strategy static --push-to-hub` (static loads no model): written to the
    work dir's hub-folder, pushed in one commit, loadable."""
    args = [
        "adapt", "--student", "Qwen/Qwen2.5-0.5B-Instruct", "--dataset", str(DATA / "limo_sample.jsonl"),
        "--strategy", "static", "--work-dir", str(tmp_path / "w"), "--quiet", "--json",
        "--push-to-hub", REPO, "--private",
    ]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["pushed"] == REPO and summary["output"] == str(tmp_path / "w" / "hub-folder")
    [commit] = our_commits(hub)
    assert sorted(set(commit.changed)) == sorted(["README.md", "dart_config.json", DATA_FILE, STEPS_FILE])  # static: no figure
    assert hub.is_private(REPO)
    train = datasets.load_dataset(REPO, split="train")
    assert len(train) == summary["trajectories"] >= 3


def test_adapt_push_checks_token_and_shard_before_running(hub, tmp_path, monkeypatch):
    base = ["adapt", "--student", "m", "--dataset", str(DATA / "limo_sample.jsonl"), "--strategy", "static",
            "--work-dir", str(tmp_path / "w"), "--quiet"]  # fmt: skip
    runner = CliRunner()
    result = runner.invoke(cli, [*base, "--push-to-hub", REPO, "--shard", "0/2"])
    assert result.exit_code == 1 and "dart-hub merge" in result.stderr
    result = runner.invoke(cli, [*base, "--push-to-hub", "not a repo"])
    assert result.exit_code == 1 and "NAMESPACE/NAME" in result.stderr
    result = runner.invoke(cli, [*base, "--private"])
    assert result.exit_code == 1 and "--push-to-hub" in result.stderr
    monkeypatch.delenv("HF_TOKEN")
    result = runner.invoke(cli, [*base, "--push-to-hub", REPO])
    assert result.exit_code == 1 and "hf auth login" in result.stderr
    assert not (tmp_path / "w" / "chunks").exists() or not any((tmp_path / "w" / "chunks").iterdir())
    assert hub.count_requests() == 0
