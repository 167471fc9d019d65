"""The Hub-ready folder: datasets reads it as the Hub would, records round-trip, the figure.

Examples are made by the real pipeline (`adapt_chunk`) with a scripted student, no model.
The helpers here (`adapted_examples`, `run_config`, `write`) are shared with test_cards.py and
test_push.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pytest

from dart_hub.adaptation.pipeline import adapt_chunk, summarize
from dart_hub.config import AdaptConfig
from dart_hub.errors import DartHubError
from dart_hub.prompts import default_prompts
from dart_hub.publish import figures
from dart_hub.publish.folder import DATA_FILE, STEPS_FILE, read_examples, write_folder
from dart_hub.records import AdaptedExample, Problem, Provenance
from tests.scripted_engine import ScriptedEngine, kind_of, steps_in_prompt

PROMPTS = default_prompts()
COLUMNS = {"question": "question", "solution": "solution", "answer": "answer"}


def make_problem(pid: str, n_steps: int, question: str | None = None, gold: str = "42") -> Problem:
    steps = [f"Step {k}: we work out part {k} of the argument carefully here." for k in range(1, n_steps)]
    steps.append(f"Step {n_steps}: so the result is \\boxed{{{gold}}}.")
    return Problem(
        id=pid,
        question=question or f"Problem {pid}: compute the value described in the statement.",
        solution="\n\n".join(steps),
        answer=gold,
        provenance=Provenance(source="limo", repo_id="GAIR/LIMO", revision="0123abcd", config=None, split="train", row_index=int(pid, 36) % 97),
        extra={"topic": "algebra", "difficulty": 3},
    )


# successes[t] of n_sim rollouts from s_0..s_t; exploration texts per problem
SCRIPT = {
    "a": ([4, 4, 1, 0, 0], ["Anchor: part 2. A short finish. \\boxed{42}", "wrong \\boxed{41}"]),
    "b": ([4, 0, 0, 0], ["no luck \\boxed{1}", "again \\boxed{2}"]),  # discarded
    "c": ([4, 4, 4], ["unused"]),  # no drop: the expert trace is kept
    "d": ([2, 4, 4, 4, 0, 0], ["Going on. \\boxed{42}", "Also fine, longer text here. \\boxed{42}"]),
    "e": ([0, 0, 0], ["Solved alone. \\boxed{42}"]),  # all zero: solves from the question
}


def adapted_examples(
    ids: str = "abcde", *, questions: dict[str, str] | None = None, keep_nothing: bool = False, **config_kw
) -> tuple[list[AdaptedExample], AdaptConfig]:
    questions = questions or {}
    problems = [make_problem(pid, len(SCRIPT[pid][0]), questions.get(pid)) for pid in ids]
    by_question = {p.question: p.id for p in problems}

    def respond(request, i):
        user = request.messages[-1][1]
        pid = next(by_question[q] for q in by_question if q in user)
        successes, explore = SCRIPT[pid]
        if kind_of(request) == "simulation":
            t = steps_in_prompt(request) - 1
            return f"Continuing from step {t + 1}. " + ("\\boxed{42}" if i < successes[t] else "\\boxed{7}")
        return "nothing works \\boxed{0}" if keep_nothing else explore[i % len(explore)]

    base = dict(n_sim=4, n_explore=2, sim_max_tokens=64, explore_max_tokens=64, min_step_chars=1, rules="robust", confirm=0)
    config = AdaptConfig(**{**base, **config_kw})
    engine = ScriptedEngine(respond, model_id="Qwen/Qwen2.5-1.5B-Instruct")
    return adapt_chunk(engine, problems, config, PROMPTS, _Equal()), config


class _Equal:
    def equivalent_many(self, pairs):
        return [pred is not None and gold == pred for gold, pred in pairs]


def run_config(examples, config: AdaptConfig, **over) -> dict:
    source = {
        "dataset": "limo",
        "preset": "limo",
        "kind": "hub",
        "repo_id": "GAIR/LIMO",
        "revision": "0123abcd0123abcd0123abcd0123abcd0123abcd",
        "config": None,
        "split": "train",
        "license": "apache-2.0",
        "columns": dict(COLUMNS),
        "rows": 817,
        "skipped": {"empty_solution": 1},
        "fingerprint": "f" * 16,
    }
    source.update(over.pop("source", {}))
    out = {
        "dart_hub_version": "0.1.0",
        "fingerprint": "1234abcd",
        "student": "Qwen/Qwen2.5-1.5B-Instruct",
        "student_revision": None,
        "engine": {"engine": "scripted", "model": "Qwen/Qwen2.5-1.5B-Instruct"},
        "source": source,
        "adapt": config.to_dict(),
        "prompts": PROMPTS.to_dict(),
        "summary": {**summarize(examples, config), "seconds": 12.5, "work_dir": "/tmp/somewhere"},
        "shard": None,
        "versions": {"dart-hub": "0.1.0", "datasets": "5.2.0", "huggingface_hub": "2.4.0"},
    }
    out.update(over)
    return out


def write(out: Path, examples, config: AdaptConfig, columns=None, **over) -> Path:
    return write_folder(out, examples, run_config(examples, config, **over), columns or COLUMNS, PROMPTS.sft_system)


def load(folder: Path, *args, **kw):
    """load_dataset on a local folder, with a cache of its own: datasets keys the cache of a
    local folder by its name and YAML metadata, so equal-looking folders could share one."""
    return datasets.load_dataset(str(folder), *args, cache_dir=str(folder.parent / f".cache-{folder.name}"), **kw)


@pytest.fixture(scope="module")
def adapted():
    return adapted_examples()


def test_datasets_reads_the_folder_as_the_hub_would(adapted, tmp_path):
    examples, config = adapted
    assert [e.outcome for e in examples] == ["kept", "discarded", "kept", "kept", "kept"]
    out = write(tmp_path / "out", examples, config)

    train = load(out, split="train")
    kept = [e for e in examples if e.trajectories]
    assert train["id"] == [e.id for e in kept]
    assert train["solution"] == [e.trajectories[0] for e in kept]
    for row in train:
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
        assert row["messages"][-1]["content"] == row["solution"]
        assert row["topic"] == "algebra"  # the source's other columns are carried over
    steps = load(out, "steps", split="train")
    assert steps["id"] == list("abcde")
    assert steps["cut_reason"] == ["gap", "gap", "no_drop", "gap", "all_zero"]
    assert steps["discard_reason"] == [None, "no_consistent_continuation", None, None, None]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == sorted(
        ["README.md", "dart_config.json", DATA_FILE, STEPS_FILE, figures.FIGURE_FILE]
    )
    config_on_disk = json.loads((out / "dart_config.json").read_text())
    assert config_on_disk["adapt"]["n_sim"] == 4 and config_on_disk["versions"]["datasets"] == "5.2.0"


def test_source_column_names_are_kept(adapted, tmp_path):
    examples, config = adapted
    columns = {"question": "problem", "solution": "response", "answer": None}
    out = write(tmp_path / "out", examples, config, columns=columns)
    train = load(out, split="train")
    assert {"problem", "response", "answer", "messages"} <= set(train.column_names)
    assert "question" not in train.column_names
    assert "problem" in (out / "README.md").read_text()  # the card names the real columns


def test_read_examples_round_trips(adapted, tmp_path):
    examples, config = adapted
    out = write(tmp_path / "out", examples, config)
    assert read_examples(out) == examples


def test_read_examples_of_an_empty_run(tmp_path):
    _, config = adapted_examples("a")
    out = write(tmp_path / "out", [], config)
    assert read_examples(out) == []


def test_identical_runs_give_identical_bytes(adapted, tmp_path):
    examples, config = adapted
    one = write(tmp_path / "one", examples, config)
    two = write(tmp_path / "two", examples, config)
    for name in ("README.md", figures.FIGURE_FILE, "dart_config.json"):
        assert (one / name).read_bytes() == (two / name).read_bytes(), name
    png = (one / figures.FIGURE_FILE).read_bytes()
    assert png.startswith(b"\x89PNG") and b"Software" not in png and b"matplotlib" not in png


def test_curves_are_median_and_quartiles_over_relative_position():
    def example(pid, scores, gap=None):
        return AdaptedExample(
            id=pid, question="q", gold="1", expert_solution="s", expert_steps=["s"] * len(scores), provenance={}, extra={},
            strategy="full", scores=scores, successes=[], peak=0, gap=gap, cut_reason="gap" if gap is not None else "no_drop",
            keep_steps=gap or len(scores), candidates=[], trajectories=[], outcome="discarded", discard_reason="x",
            rollouts=0, prompt_tokens=0, completion_tokens=0,
        )  # fmt: skip

    # two steps each: positions 0.5 and 1.0
    examples = [example("a", [1.0, 0.0], gap=1), example("b", [0.5, 0.25]), example("c", [0.0, 1.0]), example("s", [])]
    data = figures.curves(examples)
    assert data["examples"] == 3 and data["gap_examples"] == 1
    by_centre = {round(c, 2): (q1, med, q3, n) for c, q1, med, q3, n in data["relative"]}
    assert by_centre[0.45] == (0.25, 0.5, 0.75, 3)  # values 1.0, 0.5, 0.0
    assert by_centre[0.95] == (0.125, 0.25, 0.625, 3)  # values 0.0, 0.25, 1.0
    # aligned on the gap: step 0 at -0.5, the gap step at 0
    gap = {round(c, 2): med for c, _, med, _, _ in data["gap"]}
    assert gap == {-0.45: 1.0, 0.05: 0.0}


def test_static_run_has_no_figure_and_a_stale_one_is_removed(adapted, tmp_path):
    examples, config = adapted
    out = write(tmp_path / "out", examples, config)
    assert (out / figures.FIGURE_FILE).exists()
    static, static_config = adapted_examples(strategy="static")
    write(out, static, static_config)
    assert not (out / figures.FIGURE_FILE).exists()
    card = (out / "README.md").read_text()
    assert "figures/" not in card and "Static" in card
    assert len(load(out, split="train")) == 5


def test_nothing_kept_declares_steps_as_the_default(tmp_path):
    examples, config = adapted_examples("abd", keep_nothing=True)
    assert all(e.outcome == "discarded" for e in examples)
    out = write(tmp_path / "out", examples, config)
    card = (out / "README.md").read_text()
    assert "No example was kept" in card
    # datasets cannot load a zero-row split: only `steps` is declared, and it is the default
    rows = load(out, split="train")
    assert rows["id"] == list("abd") and "scores" in rows.column_names
    assert (out / DATA_FILE).exists()  # the (empty) training file is still written


def test_a_given_card_is_written_verbatim(adapted, tmp_path):
    examples, config = adapted
    card = "---\nlicense: mit\n---\n# merged by hand\n"
    out = write_folder(tmp_path / "out", examples, run_config(examples, config), COLUMNS, "", card=card)
    assert (out / "README.md").read_text() == card


def test_a_token_in_the_run_config_is_refused(adapted, tmp_path):
    examples, config = adapted
    token = "hf_" + "A1b2C3d4" * 5
    with pytest.raises(DartHubError, match="looks like a Hugging Face token") as info:
        write(tmp_path / "out", examples, config, engine={"engine": "openai", "base_url": f"http://x/?t={token}"})
    assert token not in str(info.value)
    assert not (tmp_path / "out" / "dart_config.json").exists()
