"""Sources: presets, column mapping, local files (for real) and the Hub path (monkeypatched)."""

from __future__ import annotations

import hashlib
import json
import shutil
import unicodedata
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import datasets
import huggingface_hub
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq
import pytest
from huggingface_hub import constants as hub_constants
from huggingface_hub import errors as hub_errors

from dart_hub.boxed import last_boxed
from dart_hub.errors import DartHubError
from dart_hub.sources import PRESETS, SourceSpec, load_source, normalize_question, problem_id

DATA = Path(__file__).parent / "data"
LIMO = DATA / "limo_sample.jsonl"
QWQ = DATA / "qwq_sample.jsonl"
CUSTOM = DATA / "custom_sample.jsonl"
SHA = "0123456789abcdef0123456789abcdef01234567"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def to_parquet(source: Path, target: Path) -> Path:
    pq.write_table(pa_json.read_json(source), target)
    return target


# -- a fake Hub: the real `datasets` / `huggingface_hub` entry points, monkeypatched -------------


class FakeHub:
    """Stands in for HfApi().dataset_info and datasets.load_dataset; records the calls."""

    def __init__(self) -> None:
        self.repos: dict[str, list[dict[str, Any]]] = {}
        self.licenses: dict[str, str | None] = {}
        self.info_calls: list[tuple[str, str | None]] = []
        self.load_calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []
        self.info_error: Exception | None = None
        self.load_error: Exception | None = None
        self.real_load_dataset = datasets.load_dataset

    def add(self, repo_id: str, rows: list[dict[str, Any]], license: str | None = None) -> None:
        self.repos[repo_id] = rows
        self.licenses[repo_id] = license

    def hf_api(self, *args: Any, **kwargs: Any) -> Any:
        assert not args and not kwargs, "HfApi must be built with the library's defaults"
        hub = self

        class Api:
            def dataset_info(self, repo_id: str, revision: str | None = None, timeout: float | None = None) -> Any:
                hub.info_calls.append((repo_id, revision))
                if hub.info_error is not None:
                    raise hub.info_error
                if repo_id not in hub.repos:
                    raise hub_errors.RepositoryNotFoundError(
                        f"404 Repository Not Found for url: {hub_constants.ENDPOINT}/{repo_id}",
                        response=SimpleNamespace(headers={}, request=None, status_code=404),
                    )
                license = hub.licenses[repo_id]
                card = {"license": license} if license else None
                return SimpleNamespace(sha=SHA, card_data=card)

        return Api()

    def load_dataset(self, *args: Any, **kwargs: Any) -> datasets.Dataset:
        if args[0] in ("json", "parquet"):  # local files: the real thing
            return self.real_load_dataset(*args, **kwargs)
        self.load_calls.append((args, kwargs))
        if self.load_error is not None:
            raise self.load_error
        return datasets.Dataset.from_list(self.repos[args[0]])


@pytest.fixture
def fake_hub(monkeypatch: pytest.MonkeyPatch) -> FakeHub:
    hub = FakeHub()
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "HfApi", hub.hf_api)
    monkeypatch.setattr(datasets, "load_dataset", hub.load_dataset)
    hub.add("GAIR/LIMO", read_jsonl(LIMO), license=None)
    hub.add("UWNSL/MATH_training_split_long_cot", read_jsonl(QWQ), license="mit")
    return hub


# -- ids ----------------------------------------------------------------------------------------


def test_problem_id_is_sha256_of_the_normalized_question() -> None:
    question = "  What is\t$1 + 1$?\n "
    expected = hashlib.sha256(b"What is $1 + 1$?").hexdigest()[:16]
    assert problem_id(question) == expected
    assert len(expected) == 16


def test_problem_id_ignores_unicode_form_and_whitespace_only() -> None:
    fullwidth = "Ｆｉｎｄ  ｘ\u00a0²"
    assert normalize_question(fullwidth) == unicodedata.normalize("NFKC", "Find x 2")
    assert problem_id(fullwidth) == problem_id("Find x 2")
    assert problem_id("Find x") != problem_id("Find y")
    assert problem_id("Find x") != problem_id("find x")  # case is meaning, not form


# -- local files --------------------------------------------------------------------------------


def test_limo_sample_problems_skips_and_provenance() -> None:
    source = load_source(SourceSpec(str(LIMO)))
    assert source.kind == "local"
    assert source.columns == ["question", "solution", "answer"]
    assert (source.question_column, source.solution_column, source.answer_column) == (
        "question",
        "solution",
        "answer",
    )
    assert [p.provenance.row_index for p in source.problems] == [0, 1, 3, 5]
    assert [(s.row_index, s.reason) for s in source.skipped] == [
        (2, "empty_solution"),
        (4, "no_gold_answer"),
    ]
    assert source.skipped_by_reason() == {"empty_solution": 1, "no_gold_answer": 1}
    assert source.num_rows == source.rows_read == 6
    first = source.problems[0]
    assert first.provenance.source == str(LIMO)
    assert first.provenance.repo_id is None and first.provenance.revision is None
    assert first.provenance.split == "train"
    rows = read_jsonl(LIMO)
    assert first.question == rows[0]["question"] and first.solution == rows[0]["solution"]
    assert first.id == problem_id(rows[0]["question"])


def test_answer_column_wins_over_the_box_and_empty_answer_column_means_box() -> None:
    # LIMO has a row with answer "25" and boxed "025": the gold answer is the column's.
    source = load_source(SourceSpec(str(LIMO)))
    row1 = source.problems[1]
    assert row1.answer == "25"
    assert last_boxed(row1.solution) == "025"
    boxed = load_source(SourceSpec(str(LIMO), answer_column=""))
    assert boxed.answer_column is None
    assert boxed.problems[1].answer == "025"
    assert boxed.problems[3].answer == "\\frac{3}{4}"


def test_empty_answer_cell_falls_back_to_the_box(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "a.jsonl",
        [{"question": "q one", "solution": "so \\boxed{7}", "answer": ""}],
    )
    assert load_source(SourceSpec(str(path))).problems[0].answer == "7"


def test_qwq_sample_with_preset_takes_gold_from_the_last_box() -> None:
    source = load_source(SourceSpec(str(QWQ), preset="math-qwq-32b"))
    assert source.answer_column is None
    assert source.question_column == "problem"
    assert [p.answer for p in source.problems] == ["12", "5", "\\frac{3}{28}", "42", "9"]
    # The third solution boxes a wrong answer first; the gold answer is the last box.
    assert "\\boxed{\\frac{9}{64}}" in source.problems[2].solution
    assert source.license is None  # no license assumed for a local copy


def test_column_override_and_extra_columns_kept() -> None:
    source = load_source(
        SourceSpec(str(CUSTOM), question_column="prompt", solution_column="response")
    )
    assert [p.answer for p in source.problems] == ["50", "12", "5\\sqrt{2}"]
    assert source.answer_column is None  # no 'answer' column in the data: boxes
    assert all(p.extra == {"origin": "handwritten"} for p in source.problems)


def test_missing_column_error_names_columns_and_flag() -> None:
    with pytest.raises(DartHubError) as caught:
        load_source(SourceSpec(str(CUSTOM)))
    message = str(caught.value)
    assert "column 'question' not found in" in message
    assert "columns are: prompt, response, origin" in message
    assert "--question-column" in message
    assert "\n" not in message


def test_missing_column_error_suggests_a_matching_preset() -> None:
    with pytest.raises(DartHubError, match=r"--preset math-qwq-32b"):
        load_source(SourceSpec(str(QWQ)))


def test_explicit_answer_column_must_exist() -> None:
    with pytest.raises(DartHubError, match=r"column 'gold' not found.*--answer-column"):
        load_source(SourceSpec(str(LIMO), answer_column="gold"))


def test_limit_counts_valid_problems_and_stops_reading() -> None:
    two = load_source(SourceSpec(str(LIMO), limit=2))
    assert len(two.problems) == 2 and two.rows_read == 2 and two.skipped == []
    three = load_source(SourceSpec(str(LIMO), limit=3))
    assert [p.provenance.row_index for p in three.problems] == [0, 1, 3]
    assert three.rows_read == 4
    assert [s.reason for s in three.skipped] == ["empty_solution"]
    with pytest.raises(DartHubError, match="limit"):
        load_source(SourceSpec(str(LIMO), limit=0))


def test_duplicates_keep_the_first_valid_row(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "dups.jsonl",
        [
            {"question": "Same  question?", "solution": "", "answer": "1"},
            {"question": "Same question?", "solution": "s \\boxed{1}", "answer": "1"},
            {"question": "Other question?", "solution": "s \\boxed{2}", "answer": "2"},
            {"question": " Same question? ", "solution": "t \\boxed{3}", "answer": "3"},
            {"question": "   ", "solution": "t \\boxed{3}", "answer": "3"},
            {"question": ["not", "text"], "solution": "t", "answer": "3"},
        ],
    )
    source = load_source(SourceSpec(str(path)))
    assert [(p.provenance.row_index, p.answer) for p in source.problems] == [(1, "1"), (2, "2")]
    assert [(s.row_index, s.reason) for s in source.skipped] == [
        (0, "empty_solution"),
        (3, "duplicate_question"),
        (4, "empty_question"),
        (5, "non_text_question"),
    ]
    assert source.skipped[1].detail == "same question as row 1"


def test_numbers_in_text_columns_become_text_and_lists_are_skipped(tmp_path: Path) -> None:
    path = tmp_path / "typed.parquet"
    pq.write_table(
        pa.table(
            {
                "question": [["a", "list"], ["q", "two"]],
                "solution": ["s \\boxed{1}", "s"],
                "answer": [4, 5],
            }
        ),
        path,
    )
    source = load_source(SourceSpec(str(path)))
    assert [s.reason for s in source.skipped] == ["non_text_question", "non_text_question"]
    path2 = tmp_path / "numbers.parquet"
    pq.write_table(pa.table({"question": ["q"], "solution": ["s"], "answer": [4]}), path2)
    assert load_source(SourceSpec(str(path2))).problems[0].answer == "4"


def test_parquet_file_and_folder_give_the_same_problems(tmp_path: Path) -> None:
    from_jsonl = load_source(SourceSpec(str(LIMO)))
    single = to_parquet(LIMO, tmp_path / "limo.parquet")
    from_parquet = load_source(SourceSpec(str(single)))
    assert [p.id for p in from_parquet.problems] == [p.id for p in from_jsonl.problems]
    assert [p.answer for p in from_parquet.problems] == [p.answer for p in from_jsonl.problems]
    assert from_parquet.skipped_by_reason() == from_jsonl.skipped_by_reason()

    folder = tmp_path / "shards"
    folder.mkdir()
    rows = read_jsonl(LIMO)
    for index, part in enumerate((rows[:3], rows[3:])):
        pq.write_table(pa.Table.from_pylist(part), folder / f"part-{index:05d}.parquet")
    from_folder = load_source(SourceSpec(str(folder)))
    assert [p.id for p in from_folder.problems] == [p.id for p in from_jsonl.problems]
    assert len(from_folder.data_files) == 2


def test_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "limo.json"
    path.write_text(json.dumps(read_jsonl(LIMO)), encoding="utf-8")
    assert [p.id for p in load_source(SourceSpec(str(path))).problems] == [
        p.id for p in load_source(SourceSpec(str(LIMO))).problems
    ]


def test_folder_splits_follow_file_names(tmp_path: Path) -> None:
    shutil.copy(LIMO, tmp_path / "train.jsonl")
    shutil.copy(CUSTOM, tmp_path / "test.jsonl")
    test = load_source(
        SourceSpec(
            str(tmp_path), split="test", question_column="prompt", solution_column="response"
        )
    )
    assert len(test.problems) == 3 and test.split == "test"
    assert len(load_source(SourceSpec(str(tmp_path))).problems) == 4
    with pytest.raises(
        DartHubError, match=r"split 'validation' not found.*train, test|test, train"
    ):
        load_source(SourceSpec(str(tmp_path), split="validation"))


def test_unknown_split_of_a_file_names_train() -> None:
    with pytest.raises(
        DartHubError, match=r"split 'test' not found in .*available splits: train\. Use --split"
    ):
        load_source(SourceSpec(str(LIMO), split="test"))


def test_folder_mixing_formats_or_without_data_is_an_error(tmp_path: Path) -> None:
    shutil.copy(LIMO, tmp_path / "a.jsonl")
    to_parquet(LIMO, tmp_path / "b.parquet")
    with pytest.raises(DartHubError, match=r"mixes \.jsonl and \.parquet"):
        load_source(SourceSpec(str(tmp_path)))
    empty = tmp_path / "nothing"
    empty.mkdir()
    (empty / "notes.txt").write_text("hello")
    with pytest.raises(DartHubError, match="holds no .jsonl, .json or .parquet files"):
        load_source(SourceSpec(str(empty)))


def test_empty_split_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(DartHubError, match="is empty"):
        load_source(SourceSpec(str(tmp_path / "empty.jsonl")))
    pq.write_table(pa.table({"question": pa.array([], pa.string())}), tmp_path / "e.parquet")
    with pytest.raises(DartHubError, match="is empty"):
        load_source(SourceSpec(str(tmp_path / "e.parquet")))


def test_empty_shards_are_left_out(tmp_path: Path) -> None:
    shutil.copy(LIMO, tmp_path / "part-0.jsonl")
    (tmp_path / "part-1.jsonl").write_text("")
    assert len(load_source(SourceSpec(str(tmp_path))).problems) == 4


def test_missing_path_and_bad_file_errors(tmp_path: Path) -> None:
    with pytest.raises(DartHubError, match="no such file or folder: .*nope.jsonl"):
        load_source(SourceSpec(str(tmp_path / "nope.jsonl")))
    with pytest.raises(DartHubError, match="no such file or folder"):
        load_source(SourceSpec("./data/missing"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "solution": \n')
    with pytest.raises(DartHubError, match="no readable row in .*bad.jsonl: all 1 lines were skipped .invalid_json, line 1"):
        load_source(SourceSpec(str(bad)))
    csv = tmp_path / "x.csv"
    csv.write_text("a,b\n")
    with pytest.raises(DartHubError, match="not a .jsonl, .json or .parquet file"):
        load_source(SourceSpec(str(csv)))


def test_hub_only_options_are_rejected_for_local_files() -> None:
    with pytest.raises(DartHubError, match="--revision only applies to Hub datasets"):
        load_source(SourceSpec(str(LIMO), revision="main"))
    with pytest.raises(DartHubError, match="--config only applies to Hub datasets"):
        load_source(SourceSpec(str(LIMO), config="default"))


def test_fingerprint_follows_content_and_mapping_not_path(tmp_path: Path) -> None:
    base = load_source(SourceSpec(str(LIMO))).fingerprint()
    assert base == load_source(SourceSpec(str(LIMO))).fingerprint()
    assert len(base) == 64
    copy = tmp_path / "copy.jsonl"
    shutil.copy(LIMO, copy)
    assert load_source(SourceSpec(str(copy))).fingerprint() == base
    assert load_source(SourceSpec(str(LIMO), limit=2)).fingerprint() == base
    assert load_source(SourceSpec(str(LIMO), answer_column="")).fingerprint() != base
    copy.write_text(copy.read_text() + copy.read_text().splitlines()[0] + "\n")
    assert load_source(SourceSpec(str(copy))).fingerprint() != base


def test_same_question_in_two_files_has_the_same_id() -> None:
    limo = load_source(SourceSpec(str(LIMO)))
    custom = load_source(
        SourceSpec(str(CUSTOM), question_column="prompt", solution_column="response")
    )
    # The custom file writes the rectangle question with other whitespace.
    assert custom.problems[0].question != limo.problems[0].question
    assert custom.problems[0].id == limo.problems[0].id


# -- Hub (monkeypatched) ------------------------------------------------------------------------


def test_presets_map_to_repo_ids_and_columns() -> None:
    assert PRESETS["limo"].repo_id == "GAIR/LIMO"
    assert PRESETS["math-qwq-32b"].repo_id == "UWNSL/MATH_training_split_long_cot"


def test_limo_preset_loads_the_hub_repo_at_the_resolved_commit(fake_hub: FakeHub) -> None:
    source = load_source(SourceSpec("limo"))
    assert fake_hub.info_calls == [("GAIR/LIMO", None)]
    assert fake_hub.load_calls == [
        (("GAIR/LIMO",), {"name": None, "split": "train", "revision": SHA})
    ]
    assert source.kind == "hub" and source.repo_id == "GAIR/LIMO" and source.revision == SHA
    assert source.preset == "limo"
    assert source.answer_column == "answer"
    assert source.license == "apache-2.0"  # the card has none here: the preset's
    assert len(source.problems) == 4
    provenance = source.problems[0].provenance
    assert (provenance.source, provenance.repo_id, provenance.revision) == (
        "limo",
        "GAIR/LIMO",
        SHA,
    )


def test_qwq_preset_columns_gold_from_box_and_card_license(fake_hub: FakeHub) -> None:
    source = load_source(SourceSpec("math-qwq-32b", revision="v1", limit=2))
    assert fake_hub.info_calls == [("UWNSL/MATH_training_split_long_cot", "v1")]
    assert fake_hub.load_calls[0][1]["revision"] == SHA
    assert (source.question_column, source.solution_column, source.answer_column) == (
        "problem",
        "solution",
        None,
    )
    assert [p.answer for p in source.problems] == ["12", "5"]
    assert source.license == "mit"


def test_preset_on_a_mirror_with_column_override(fake_hub: FakeHub) -> None:
    rows = [{"prompt": r["problem"], "solution": r["solution"]} for r in read_jsonl(QWQ)]
    fake_hub.add("me/qwq-mirror", rows)
    source = load_source(
        SourceSpec("me/qwq-mirror", preset="math-qwq-32b", question_column="prompt", config="c")
    )
    assert fake_hub.load_calls[0] == (
        ("me/qwq-mirror",),
        {"name": "c", "split": "train", "revision": SHA},
    )
    assert len(source.problems) == 5
    assert source.license is None  # the preset's license is not assumed for another repo
    assert source.problems[0].provenance.config == "c"


def test_hub_fingerprint_uses_repo_and_resolved_commit(fake_hub: FakeHub) -> None:
    a = load_source(SourceSpec("limo"))
    b = load_source(SourceSpec("GAIR/LIMO", preset="limo"))
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != load_source(SourceSpec(str(LIMO))).fingerprint()


def test_hub_not_found_is_rewrapped(fake_hub: FakeHub) -> None:
    with pytest.raises(DartHubError) as caught:
        load_source(SourceSpec("nobody/nothing"))
    message = str(caught.value)
    assert "dataset 'nobody/nothing' not found on the Hub" in message
    assert "limo, math-qwq-32b" in message
    fake_hub.add("nobody/nothing", [])
    fake_hub.load_error = datasets.exceptions.DatasetNotFoundError("Dataset 'x' doesn't exist")
    with pytest.raises(DartHubError, match="not found on the Hub"):
        load_source(SourceSpec("nobody/nothing"))


def test_gated_error_says_how_to_log_in_without_the_token(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "hf_" + "abcdefghijklmnopqrstuvwxyz123456"  # built, so the source holds no token-shaped string
    monkeypatch.setenv("HF_TOKEN", secret)
    fake_hub.info_error = hub_errors.GatedRepoError(
        f"403 gated, token {secret}",
        response=SimpleNamespace(headers={}, request=None, status_code=403),
    )
    with pytest.raises(DartHubError) as caught:
        load_source(SourceSpec("limo"))
    message = str(caught.value)
    assert "hf auth login" in message and "HF_TOKEN" in message
    assert secret not in message


def test_other_hub_errors_never_show_a_token(fake_hub: FakeHub) -> None:
    fake_hub.load_error = RuntimeError("server said no to hf_abcdefghijklmnop1234")
    with pytest.raises(DartHubError) as caught:
        load_source(SourceSpec("limo"))
    assert "hf_abcdefghijklmnop1234" not in str(caught.value)
    assert "hf_***" in str(caught.value)


def test_hub_unknown_split_names_the_available_ones(fake_hub: FakeHub) -> None:
    fake_hub.load_error = ValueError("Unknown split \"test\". Should be one of ['train'].")
    with pytest.raises(
        DartHubError,
        match=r"split 'test' not found in GAIR/LIMO; available splits: train\. Use --split",
    ):
        load_source(SourceSpec("limo", split="test"))


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            "Config name is missing.\nPlease pick one among the available configs: ['a', 'b']"
            "\nExample of usage:\n\t`load_dataset('x', 'a')`",
            "dataset GAIR/LIMO has several configs: a, b. Pick one with --config",
        ),
        (
            "BuilderConfig 'zz' not found. Available: ['default']",
            "config 'zz' not found in GAIR/LIMO; available configs: default. Use --config",
        ),
    ],
)
def test_hub_config_errors_name_the_configs(fake_hub: FakeHub, message: str, expected: str) -> None:
    fake_hub.load_error = ValueError(message)
    with pytest.raises(DartHubError) as caught:
        load_source(SourceSpec("limo", config="zz"))
    assert str(caught.value) == expected


def test_hub_unknown_revision(fake_hub: FakeHub) -> None:
    fake_hub.info_error = hub_errors.RevisionNotFoundError(
        "404 Revision Not Found",
        response=SimpleNamespace(headers={}, request=None, status_code=404),
    )
    with pytest.raises(
        DartHubError, match="revision 'v9' not found in dataset GAIR/LIMO; use --revision"
    ):
        load_source(SourceSpec("limo", revision="v9"))


def test_offline_cache_miss_says_offline(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    fake_hub.load_error = datasets.exceptions.DatasetNotFoundError("not cached")
    with pytest.raises(DartHubError, match="offline mode.*Unset HF_HUB_OFFLINE"):
        load_source(SourceSpec("limo"))


def test_hub_empty_split_is_an_error(fake_hub: FakeHub) -> None:
    fake_hub.repos["GAIR/LIMO"] = []
    fake_hub.load_dataset = lambda *a, **k: datasets.Dataset.from_dict({"question": []})  # type: ignore[method-assign]
    with pytest.raises(DartHubError, match="split 'train' of GAIR/LIMO is empty"):
        load_source(SourceSpec("limo"))


def test_offline_mode_skips_commit_resolution(
    fake_hub: FakeHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    source = load_source(SourceSpec("limo"))
    assert fake_hub.info_calls == []
    assert fake_hub.load_calls[0][1]["revision"] is None
    assert source.revision is None and source.license == "apache-2.0"


def test_hf_endpoint_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real HfApi, pointed by the library's own setting at a closed local port.
    monkeypatch.setattr(hub_constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", False)
    with pytest.raises(DartHubError, match=r"http://127\.0\.0\.1:9"):
        load_source(SourceSpec("nobody/nothing"))


def test_invalid_names_are_neither_hub_ids_nor_paths() -> None:
    with pytest.raises(DartHubError, match="no such file or folder: a/b/c"):
        load_source(SourceSpec("a/b/c"))
    with pytest.raises(DartHubError, match="unknown preset 'nope'"):
        load_source(SourceSpec(str(LIMO), preset="nope"))


# -- Hub, for real: the real clients against the local Hub emulator (tests/fixtures_hub.py) -----


def limo_repo_files(rows: list[dict[str, Any]] | None = None) -> dict[str, str]:
    rows = read_jsonl(LIMO) if rows is None else rows
    return {
        "README.md": "---\nlicense: apache-2.0\n---\n# A LIMO-shaped sample\n",
        "limo.jsonl": "".join(json.dumps(r) + "\n" for r in rows),
    }


def test_emulated_hub_limo_preset_at_a_pinned_commit(hub: Any) -> None:
    first = hub.create_dataset("GAIR/LIMO", limo_repo_files(read_jsonl(LIMO)[:2]))
    second = hub.create_dataset("GAIR/LIMO", limo_repo_files())
    latest = load_source(SourceSpec("limo"))
    assert latest.kind == "hub" and latest.revision == second
    assert latest.license == "apache-2.0"
    assert [p.answer for p in latest.problems] == ["50", "25", "100", "\\frac{3}{4}"]
    assert latest.problems[0].provenance.revision == second
    pinned = load_source(SourceSpec("limo", revision=first))
    assert pinned.revision == first and len(pinned.problems) == 2
    assert pinned.fingerprint() != latest.fingerprint()


def test_emulated_hub_qwq_parquet_and_errors(hub: Any, tmp_path: Path) -> None:
    parquet = to_parquet(QWQ, tmp_path / "train.parquet")
    sha = hub.create_dataset(
        "UWNSL/MATH_training_split_long_cot",
        {"data/train-00000-of-00001.parquet": parquet.read_bytes()},
    )
    source = load_source(SourceSpec("math-qwq-32b"))
    assert source.revision == sha and source.license is None
    assert [p.answer for p in source.problems] == ["12", "5", "\\frac{3}{28}", "42", "9"]
    with pytest.raises(DartHubError, match="split 'test' not found .*available splits: train"):
        load_source(SourceSpec("math-qwq-32b", split="test"))
    with pytest.raises(DartHubError, match="dataset 'nobody/nothing' not found on the Hub"):
        load_source(SourceSpec("nobody/nothing"))
    with pytest.raises(DartHubError, match="revision 'v9' not found"):
        load_source(SourceSpec("math-qwq-32b", revision="v9"))


def test_emulated_hub_private_dataset_without_token(
    hub: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub.create_dataset("someone/secret", limo_repo_files(), private=True)
    assert len(load_source(SourceSpec("someone/secret")).problems) == 4  # with the token
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(DartHubError) as caught:
        load_source(SourceSpec("someone/secret"))
    message = str(caught.value)
    assert "hf auth login" in message and "HF_TOKEN" in message
    assert hub.token not in message
