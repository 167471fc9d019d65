"""The local Hub emulator, driven by the real huggingface_hub and datasets clients."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

REPO = "test-user/limo-mini"

README = """\
---
license: apache-2.0
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
- config_name: second_config
  data_files:
  - split: train
    path: second/train-*
---
# A tiny dataset
"""

TRAIN_ROWS = [
    {"question": "1+1?", "solution": "2. \\boxed{2}", "answer": "2"},
    {"question": "2+3?", "solution": "5. \\boxed{5}", "answer": "5"},
]
SECOND_ROWS = [{"problem": "3*3?", "solution": "\\boxed{9}"}]


def parquet_bytes(rows: list[dict]) -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


def make_folder(root: Path, train_rows: list[dict] = TRAIN_ROWS) -> Path:
    (root / "data").mkdir(parents=True)
    (root / "second").mkdir()
    (root / "README.md").write_text(README)
    (root / "data" / "train-00000-of-00001.parquet").write_bytes(parquet_bytes(train_rows))
    (root / "second" / "train-00000-of-00001.parquet").write_bytes(parquet_bytes(SECOND_ROWS))
    return root


@pytest.fixture
def uploaded(hub, tmp_path):
    """REPO created and filled through HfApi.upload_folder; returns the CommitInfo."""
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_repo(REPO, repo_type="dataset", exist_ok=True)
    return api.upload_folder(
        folder_path=make_folder(tmp_path / "upload"), repo_id=REPO, repo_type="dataset"
    )


def test_create_repo_exist_ok_and_conflict(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    url1 = api.create_repo(REPO, repo_type="dataset", exist_ok=True)
    url2 = api.create_repo(REPO, repo_type="dataset", exist_ok=True)
    assert url1 == url2 == f"{hub.url}/datasets/{REPO}"
    assert url1.repo_id == REPO and url1.repo_type == "dataset"
    with pytest.raises(HfHubHTTPError) as err:
        api.create_repo(REPO, repo_type="dataset")
    assert err.value.response.status_code == 409
    # A new repo holds the Hub's initial commit with its default .gitattributes.
    assert hub.list_files(REPO) == [".gitattributes"]
    assert [c.title for c in hub.commits(REPO)] == ["initial commit"]
    # Without a namespace the repo goes to the token's user.
    assert api.create_repo("bare-name").repo_id == f"{hub.user}/bare-name"


def test_upload_folder_info_and_files(hub, uploaded):
    from huggingface_hub import HfApi

    api = HfApi()
    assert hub.count_requests("POST", "/commit/") == 1
    info = api.dataset_info(REPO, files_metadata=True)
    assert info.sha == uploaded.oid == hub.head(REPO)
    assert info.private is False
    assert info.card_data["license"] == "apache-2.0"
    assert [c["config_name"] for c in info.card_data["configs"]] == ["default", "second_config"]
    files = {s.rfilename: s for s in info.siblings}
    assert files["data/train-00000-of-00001.parquet"].lfs is not None  # *.parquet is LFS on the Hub
    assert files["README.md"].lfs is None
    assert sorted(api.list_repo_files(REPO, repo_type="dataset")) == [
        ".gitattributes",
        "README.md",
        "data/train-00000-of-00001.parquet",
        "second/train-00000-of-00001.parquet",
    ]
    assert hub.read_file(REPO, "README.md").decode() == README
    assert api.repo_info(REPO, repo_type="dataset", revision=uploaded.oid).sha == uploaded.oid


def test_hf_hub_download_at_revision(hub, uploaded):
    from huggingface_hub import HfApi, hf_hub_download

    old = uploaded.oid
    HfApi().upload_file(
        path_or_fileobj=b"# new card\n", path_in_repo="README.md", repo_id=REPO, repo_type="dataset"
    )
    new_path = hf_hub_download(REPO, "README.md", repo_type="dataset")
    old_path = hf_hub_download(REPO, "README.md", repo_type="dataset", revision=old)
    assert Path(new_path).read_text() == "# new card\n"
    assert Path(old_path).read_text() == README
    parquet = hf_hub_download(REPO, "data/train-00000-of-00001.parquet", repo_type="dataset")
    assert pq.read_table(parquet).to_pylist() == TRAIN_ROWS
    assert str(hub.home) in new_path  # the cache lives under the test's HF_HOME


def test_load_dataset_default_and_second_config(hub, uploaded):
    import datasets

    train = datasets.load_dataset(REPO, split="train")
    assert train.to_list() == TRAIN_ROWS
    second = datasets.load_dataset(REPO, "second_config", split="train")
    assert second.to_list() == SECOND_ROWS


def test_load_dataset_old_revision(hub, uploaded, tmp_path):
    import datasets
    from huggingface_hub import HfApi

    new_rows = [*TRAIN_ROWS, {"question": "4-4?", "solution": "\\boxed{0}", "answer": "0"}]
    second = HfApi().upload_folder(
        folder_path=make_folder(tmp_path / "v2", new_rows), repo_id=REPO, repo_type="dataset"
    )
    assert second.oid != uploaded.oid
    assert datasets.load_dataset(REPO, split="train").to_list() == new_rows
    old = datasets.load_dataset(REPO, split="train", revision=uploaded.oid)
    assert old.to_list() == TRAIN_ROWS
    assert [c.oid for c in hub.commits(REPO)][:2] == [second.oid, uploaded.oid]


def test_not_found_errors(hub, uploaded):
    import datasets
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    api = HfApi()
    with pytest.raises(RepositoryNotFoundError):
        api.dataset_info("test-user/missing")
    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("test-user/missing", "README.md", repo_type="dataset")
    with pytest.raises(RevisionNotFoundError):
        api.dataset_info(REPO, revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download(REPO, "nope.txt", repo_type="dataset")
    with pytest.raises(datasets.exceptions.DatasetNotFoundError):
        datasets.load_dataset("test-user/missing", split="train")
    assert not api.repo_exists("test-user/missing", repo_type="dataset")
    assert api.file_exists(REPO, "README.md", repo_type="dataset")


def test_private_repo_needs_token(hub):
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError

    hub.create_dataset("test-user/secret", {"a.txt": "x"}, private=True)
    api = HfApi()
    assert api.dataset_info("test-user/secret").private is True
    with pytest.raises(RepositoryNotFoundError) as err:
        api.dataset_info("test-user/secret", token=False)
    assert err.value.response.status_code == 401
    with pytest.raises(HfHubHTTPError) as err:
        api.whoami(token="hf_wrong_token")
    assert err.value.response.status_code == 401
    assert api.whoami()["name"] == hub.user


def test_create_commit_pull_request(hub, uploaded):
    from huggingface_hub import CommitOperationAdd, HfApi

    api = HfApi()
    info = api.create_commit(
        REPO,
        [CommitOperationAdd("adapted/train.jsonl", b'{"x": 1}\n')],
        commit_message="Adapted data",
        repo_type="dataset",
        create_pr=True,
    )
    assert info.pr_revision == "refs/pr/1" and info.pr_num == 1
    assert info.pr_url == f"{hub.url}/datasets/{REPO}/discussions/1"
    assert hub.head(REPO) == uploaded.oid  # main untouched
    assert "adapted/train.jsonl" in hub.list_files(REPO, revision="refs/pr/1")
    refs = api.list_repo_refs(REPO, repo_type="dataset", include_pull_requests=True)
    assert [(r.ref, r.target_commit) for r in refs.pull_requests] == [("refs/pr/1", info.oid)]
    assert hub.pull_requests(REPO)[0].title == "Adapted data"


def test_stale_parent_commit_is_rejected(hub, uploaded):
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    api.upload_file(path_or_fileobj=b"1", path_in_repo="one.txt", repo_id=REPO, repo_type="dataset")
    with pytest.raises(HfHubHTTPError) as err:
        api.create_commit(
            REPO,
            [CommitOperationAdd("two.txt", b"2")],
            commit_message="late",
            repo_type="dataset",
            parent_commit=uploaded.oid,
        )
    assert err.value.response.status_code == 412


def test_branches_tags_commits_and_tree_paging(hub, uploaded):
    from huggingface_hub import HfApi

    api = HfApi()
    api.create_branch(REPO, branch="dev", repo_type="dataset")
    api.create_branch(REPO, branch="dev", repo_type="dataset", exist_ok=True)
    api.create_tag(REPO, tag="v1", repo_type="dataset")
    api.upload_file(
        path_or_fileobj=b"hi", path_in_repo="notes/hi.txt", repo_id=REPO, repo_type="dataset",
        revision="dev",
    )  # fmt: skip
    assert "notes/hi.txt" in api.list_repo_files(REPO, repo_type="dataset", revision="dev")
    assert "notes/hi.txt" not in api.list_repo_files(REPO, repo_type="dataset", revision="v1")
    titles = [c.title for c in api.list_repo_commits(REPO, repo_type="dataset", revision="dev")]
    assert titles == ["Upload notes/hi.txt with huggingface_hub", uploaded.commit_message,
                      "initial commit"]  # fmt: skip
    hub.tree_page_size = 2
    hub.clear_requests()
    files = api.list_repo_files(REPO, repo_type="dataset", revision="dev")
    assert len(files) == 5
    assert hub.count_requests("GET", "/tree/") > 1  # followed the Link header


def test_dataset_push_to_hub_round_trip(hub):
    import datasets

    ds = datasets.Dataset.from_dict({"question": ["a", "b"], "answer": ["1", "2"]})
    info = ds.push_to_hub("test-user/pushed")
    assert hub.head("test-user/pushed") == info.oid
    assert hub.count_requests("POST", "/commit/") == 1
    assert "data/train-00000-of-00001.parquet" in hub.list_files("test-user/pushed")
    assert datasets.load_dataset("test-user/pushed", split="train").to_list() == ds.to_list()


def test_seeded_jsonl_dataset_loads(hub):
    import datasets

    rows = [{"question": f"q{i}", "solution": f"s{i}", "answer": str(i)} for i in range(5)]
    sha = hub.create_dataset(
        "GAIR/LIMO", {"limo.jsonl": "".join(json.dumps(r) + "\n" for r in rows)}
    )
    assert hub.head("GAIR/LIMO") == sha
    assert datasets.load_dataset("GAIR/LIMO", split="train").to_list() == rows
    streamed = datasets.load_dataset("GAIR/LIMO", split="train", streaming=True)
    assert list(streamed.take(2)) == rows[:2]


def test_request_log_never_holds_tokens(hub, uploaded):
    from huggingface_hub import HfApi

    HfApi().whoami()
    assert hub.requests and not hub.server_errors
    assert all(hub.token not in str(r) for r in hub.requests)
    assert hub.count_requests("GET", "/api/whoami-v2") == 1


def test_subprocess_uses_env(hub, uploaded, tmp_path):
    code = textwrap.dedent(
        f"""
        import json, datasets, huggingface_hub
        info = huggingface_hub.HfApi().dataset_info({REPO!r})
        rows = datasets.load_dataset({REPO!r}, split="train").to_list()
        print(json.dumps({{"sha": info.sha, "rows": rows}}))
        """
    )
    env = {**os.environ, **hub.env(tmp_path / "child_home")}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out == {"sha": uploaded.oid, "rows": TRAIN_ROWS}
    assert (tmp_path / "child_home" / "hub").is_dir()  # the child used its own cache
