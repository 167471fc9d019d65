"""The skeptic's arms of `dart-hub demo --train` (dart_hub.toy.baselines) and the demo's
validation split: fast unit tests, no training."""

from __future__ import annotations

import json
from collections import Counter

from dart_hub.adaptation.judge import request_seed
from dart_hub.config import AdaptConfig
from dart_hub.records import AdaptedExample
from dart_hub.toy.baselines import (
    baseline_cuts,
    cut_limit,
    dart_settings,
    explore_from_cuts,
    median_cut,
    random_keep,
)
from tests.scripted_engine import ScriptedEngine, user_text


def example(pid: str, keep: int, steps: int = 8, reveal: int | None = 6) -> AdaptedExample:
    return AdaptedExample(
        id=pid, question=f"Q {pid}", gold="42", expert_solution="", expert_steps=[f"step {i} of {pid}" for i in range(steps)],
        provenance={}, extra={}, strategy="full", scores=[], successes=[], peak=None, gap=None, cut_reason="gap",
        keep_steps=keep, candidates=[], trajectories=[], outcome="kept", discard_reason=None, rollouts=0,
        prompt_tokens=0, completion_tokens=0, reveal_step=reveal,
    )  # fmt: skip


class Equal:
    def equivalent_many(self, pairs):
        return [pred is not None and gold == pred for gold, pred in pairs]


def test_fixed_cut_keeps_the_median_dart_cut_on_every_problem():
    examples = [example(f"p{i}", keep) for i, keep in enumerate([2, 3, 3, 3, 4, 1, 3, 4])]
    assert median_cut(examples) == 3  # the median of DART's kept steps
    assert baseline_cuts("fixed-cut", examples, seed=0) == [3] * 8
    # never an answer-revealing step, never the whole trace
    short = [example("a", 3, steps=8, reveal=2), example("b", 3, steps=3, reveal=None), *examples[:3]]
    assert cut_limit(short[0]) == 2 and cut_limit(short[1]) == 2
    assert baseline_cuts("fixed-cut", short, seed=0)[:2] == [2, 2]


def test_random_cut_is_seeded_per_problem_and_uniform():
    examples = [example(f"p{i}", 3, steps=8, reveal=6) for i in range(3000)]
    cuts = baseline_cuts("random-cut", examples, seed=0)
    assert cuts == baseline_cuts("random-cut", examples, seed=0)  # reproducible
    assert cuts != baseline_cuts("random-cut", examples, seed=1)  # the seed matters
    assert random_keep(examples[5], 0) == cuts[5] == baseline_cuts("random-cut", examples[5:6], seed=0)[0]  # per problem, not per position
    counts = Counter(cuts)
    assert set(counts) == set(range(7))  # 0..cut_limit = 6, every cut possible
    assert all(abs(n / len(cuts) - 1 / 7) < 0.03 for n in counts.values()), counts  # uniform


def test_rft_samples_from_the_question_alone_and_keeps_only_answer_checked_solutions():
    examples = [example("p0", 3), example("p1", 2)]
    assert baseline_cuts("rft", examples, seed=0) == [0, 0]

    def respond(request, i):
        assert "step 0" not in user_text(request)  # no expert step shown
        if "p0" in user_text(request):
            return ["wrong \\boxed{41}", "right \\boxed{42}", ("cut off \\boxed{42} and", "length")][i % 3]
        return "still wrong \\boxed{7}"

    config = AdaptConfig(n_explore=3, explore_max_tokens=64, seed=5)
    engine = ScriptedEngine(respond)
    records = explore_from_cuts(examples, [0, 0], engine, config, Equal())
    request = engine.calls[0][0]
    # exploration's budget and settings, and its per-request seed for "nothing kept"
    assert (request.n, request.temperature, request.max_tokens) == (3, 0.7, 64)
    assert request.seed == request_seed(5, "p0", "exploration", 0)
    assert records[0]["solution"] == "right \\boxed{42}" and records[0]["discard_reason"] is None
    assert records[1]["solution"] is None and records[1]["discard_reason"] == "no_consistent_continuation"


def test_a_cut_baseline_explores_after_the_kept_expert_steps(tmp_path):
    examples = [example("p0", 3)]
    engine = ScriptedEngine(lambda request, i: "then \\boxed{42}")
    [record] = explore_from_cuts(examples, [2], engine, AdaptConfig(n_explore=2), Equal())
    assert "step 0 of p0\n\nstep 1 of p0" in user_text(engine.calls[0][0]) and "step 2" not in user_text(engine.calls[0][0])
    assert record["solution"] == "step 0 of p0\n\nstep 1 of p0\n\nthen \\boxed{42}" and record["keep_steps"] == 2
    (tmp_path / "dart_config.json").write_text(json.dumps({"adapt": {"n_explore": 5, "explore_max_tokens": 256, "rules": "robust"}}))
    settings = dart_settings(tmp_path)  # the DART run's exploration settings; unknown keys ignored
    assert (settings.n_explore, settings.explore_max_tokens) == (5, 256)


def test_validation_split_is_disjoint_from_the_heldout_problems():
    from dart_hub.toy import expert_dataset_path, heldout_dataset_path
    from dart_hub.toy.compare import validation_items, validation_problems
    from dart_hub.toy.datasets import read_jsonl
    from dart_hub.toy.domain import parse_question

    problems = validation_problems(150)
    heldout_ids = {parse_question(r["question"]).id for r in read_jsonl(heldout_dataset_path())}
    expert_ids = {parse_question(r["question"]).id for r in read_jsonl(expert_dataset_path())}
    ids = [item.id for item in validation_items(150)]
    assert ids == [p.id for p in problems] and len(set(ids)) == 150
    assert not set(ids) & heldout_ids and not set(ids) & expert_ids
    assert {p.split for p in problems} == {"expert"}


def test_every_arm_has_a_kind_an_objective_and_a_label_that_names_baselines():
    from dart_hub.toy.compare import ARMS, KINDS, LABELS, OBJECTIVES, summarize_arm

    assert {KINDS[a] for a in ("rft", "fixed-cut", "random-cut")} == {"baseline"}
    assert all(LABELS[a].startswith("[baseline]") for a in ("rft", "fixed-cut", "random-cut"))
    assert {KINDS[a] for a in ("no-tuning", "static", "first", "gap", "full")} == {"paper"}
    assert KINDS["dail"] == KINDS["mapper"] == "method" and OBJECTIVES["dail"] == "dail" and OBJECTIVES["dail-sft"] == "sft"
    assert set(ARMS) == set(KINDS) == set(OBJECTIVES) == set(LABELS)
    arm = summarize_arm("rft", [[1, 0]], 3)
    assert arm["kind"] == "baseline" and arm["objective"] == "sft"


def test_tuning_picks_each_arms_best_setting_on_validation_and_grades_it_on_heldout(monkeypatch, tmp_path):
    """`demo --train --tune` (compare.tune_arms) with the training and grading stubbed: the grid
    is scored on validation problems only, the best setting is retrained for every seed and
    graded on held-out, and the toy setting's models are reused where it is the best."""
    from dart_hub.toy import compare

    trained, graded = [], []
    best_of = {"static": (3e-5, 8.0), "full": (1e-4, 3.0)}  # full's best is the toy setting

    def fake_train(data, output, seed, objective="sft", settings=None, student=None):
        assert student == "the-hard-student"  # every tuning run starts from the world's student
        trained.append((data.name, seed, settings["learning_rate"], settings["epochs"]))
        return f"{data.stem}|{settings['learning_rate']}|{settings['epochs']}|{seed}", {"name": objective}

    def fake_correctness(model, items, checker):
        arm, lr, epochs, seed = model.split("|")
        graded.append((items[0].benchmark, model))
        good = (float(lr), float(epochs)) == best_of[arm]
        return [1 if good else 0] * len(items)

    monkeypatch.setattr(compare, "train_arm", fake_train)
    monkeypatch.setattr(compare, "correctness", fake_correctness)
    files = {arm: tmp_path / f"{arm}.jsonl" for arm in best_of}
    for arm, path in files.items():
        path.write_text(f'{{"rows of": "{arm}"}}\n')
    heldout = compare.heldout_items(5)
    fixed = {"full": [[1, 1, 1, 1, 1]] * 2}
    tuned = compare.tune_arms(["static", "full"], files, {"static": 4, "full": 4}, tmp_path, heldout, None, 2, 0, fixed, lambda m: None,
                              "the-hard-student")  # fmt: skip
    assert tuned["arms"]["static"]["best"] == {"learning_rate": 3e-5, "epochs": 8.0}
    assert tuned["arms"]["full"]["best"] == {"learning_rate": 1e-4, "epochs": 3.0}
    assert len(tuned["arms"]["static"]["grid"]) == 6 and tuned["validation_problems"] == 150
    # the grid runs on the first seed and is graded on validation; static's best is retrained for 2 seeds
    assert sum(1 for name, seed, *_ in trained if name == "static.jsonl" and seed == 0) == 7
    assert [t for t in trained if t[1] == 1] == [("static.jsonl", 1, 3e-5, 8.0)]  # full reuses the fixed-setting models
    assert {b for b, m in graded if m.endswith("|0") and "static" in m} >= {"toy-validation"}
    table = {a["arm"]: a for a in tuned["heldout"]}
    assert table["static"]["mean"] == 1.0 and table["static"]["seeds"] == 2 and table["static"]["settings"]["epochs"] == 8.0
    assert table["full"]["per_seed"] == [1.0, 1.0]


def test_arms_with_the_same_rows_are_tuned_once_and_a_resumed_grid_is_not_graded_again(monkeypatch, tmp_path):
    """First, Gap and Full often keep the same rows (every cut at the same step): the grid and
    the held-out models of the first of them serve the others, marked `same_rows_as`; a second
    `--tune` over the same work dir grades nothing again."""
    from dart_hub.toy import compare

    trained, graded = [], []

    def fake_train(data, output, seed, objective="sft", settings=None, student=None):
        output.mkdir(parents=True, exist_ok=True)
        trained.append((data.name, seed, settings["learning_rate"], settings["epochs"]))
        return f"{data.stem}|{settings['learning_rate']}|{settings['epochs']}|{seed}", {"name": objective}

    def fake_correctness(model, items, checker):
        graded.append(model)
        return [1 if float(model.split("|")[1]) == 3e-4 else 0] * len(items)

    monkeypatch.setattr(compare, "train_arm", fake_train)
    monkeypatch.setattr(compare, "correctness", fake_correctness)
    files = {arm: tmp_path / f"{arm}.jsonl" for arm in ("first", "gap", "static")}
    files["first"].write_text('{"row": 1}\n')
    files["gap"].write_text('{"row": 1}\n')
    files["static"].write_text('{"row": 2}\n')
    heldout = compare.heldout_items(4)

    measured = []

    def fake_deciding(model, questions):
        measured.append(("P(x)", model))
        return [0.25, 0.75]

    def fake_pass1(model, items, checker, **kw):
        measured.append(("pass@1", model))
        return [0.5] * len(items)

    import dart_hub.toy.sampled
    from dart_hub.toy import heldout_dataset_path
    from dart_hub.toy.datasets import read_jsonl

    monkeypatch.setattr(dart_hub.toy.sampled, "deciding_token", fake_deciding)
    monkeypatch.setattr(dart_hub.toy.sampled, "pass_at_1", fake_pass1)
    questions = [row["question"] for row in read_jsonl(heldout_dataset_path())[:4]]

    def tune():
        return compare.tune_arms(list(files), files, dict.fromkeys(files, 1), tmp_path, heldout, None, 2, 0, {}, lambda m: None,
                                 questions=questions, sampled=3)  # fmt: skip

    tuned = tune()
    assert {name for name, *_ in trained} == {"first.jsonl", "static.jsonl"}
    assert tuned["arms"]["gap"]["same_rows_as"] == "first" and tuned["arms"]["gap"]["grid"] == tuned["arms"]["first"]["grid"]
    table = {a["arm"]: a for a in tuned["heldout"]}
    assert table["gap"]["same_rows_as"] == "first" and table["gap"]["per_seed"] == table["first"]["per_seed"] == [1.0, 1.0]
    assert table["gap"]["kind"] == "paper" and "same_rows_as" not in table["first"]
    count = len(graded)
    assert count == 2 * (6 + 2)  # two distinct arms: 6 settings on validation, the best on held-out for 2 seeds
    # the best setting's models get the sampled metrics too: P(x) of every seed, pass@1 of the first
    assert table["first"]["deciding_token"]["per_seed"] == [0.5, 0.5] and table["first"]["pass1_t07"]["mean"] == 0.5
    assert table["gap"]["deciding_token"] == table["first"]["deciding_token"]
    assert sorted(m for what, m in measured if what == "pass@1") == ["first|0.0003|3.0|0", "static|0.0003|3.0|0"]
    seen = len(measured)
    assert tune() == tuned and len(graded) == count and len(measured) == seen  # resumed: every figure read back


def test_a_trained_arm_and_a_baseline_are_not_reused_across_worlds(monkeypatch, tmp_path):
    """`demo --world hard` fine-tunes and samples the hard student: a model or baseline file
    finished for the default student is not reused for it (and the default world's cache keys
    stay what they were, so its finished runs are still reused)."""
    from types import SimpleNamespace

    import dart_hub.engines.factory
    import dart_hub.publish.folder
    import dart_hub.training.stage
    from dart_hub.toy import baselines, compare, toy_student_path

    trainings = []

    def fake_train(**options):  # the train stage train_arm runs (what api.train runs)
        trainings.append(options["student"])
        options["output"].mkdir(parents=True)  # as the trainer does
        return {"model_path": str(tmp_path), "objective": {"name": options["objective"]}}

    monkeypatch.setattr(dart_hub.training.stage, "run", fake_train)
    data = tmp_path / "rows.jsonl"
    data.write_text('{"messages": []}\n')
    hard = str(toy_student_path("hard"))
    compare.train_arm(data, tmp_path / "arm", 0)
    compare.train_arm(data, tmp_path / "arm", 0)  # reused
    assert "student" not in json.loads((tmp_path / "arm" / "demo-train.json").read_text())["key"]
    compare.train_arm(data, tmp_path / "arm", 0, student=hard)
    compare.train_arm(data, tmp_path / "arm", 0, student=hard)  # reused
    assert trainings == [str(toy_student_path()), hard]

    sampled = []
    monkeypatch.setattr(dart_hub.publish.folder, "read_examples", lambda folder: [example("p0", 2)])
    monkeypatch.setattr(baselines, "dart_settings", lambda folder: AdaptConfig(n_explore=1))
    monkeypatch.setattr(dart_hub.engines.factory, "create_engine", lambda kind, model, **k: SimpleNamespace(close=lambda: None, model=model))

    def fake_explore(examples, keeps, engine, config, checker):
        sampled.append(engine.model)
        return [{"id": "p0", "question": "Q", "answer": "42", "keep_steps": 0, "solution": "\\boxed{42}",
                 "discard_reason": None, "rollouts": 1, "completion_tokens": 3}]  # fmt: skip

    monkeypatch.setattr(baselines, "explore_from_cuts", fake_explore)
    out = tmp_path / "baseline-rft.jsonl"
    for student in (str(toy_student_path()), str(toy_student_path()), hard, hard):
        baselines.build_baseline("rft", tmp_path, out, student, Equal())
    assert sampled == [str(toy_student_path()), hard]


def test_the_fixed_setting_table_trains_arms_with_the_same_rows_once(monkeypatch, tmp_path):
    """compare_training (the fixed-setting table of `demo --train`): Gap with Full's rows and
    objective reuses Full's models, grades and sampled figures, marked `same_rows_as`; First,
    with other rows, is trained on its own."""
    import contextlib

    import dart_hub.answers
    from dart_hub.toy import compare

    files = {arm: tmp_path / f"{arm}.jsonl" for arm in ("static", "first", "gap", "full")}
    for arm, path in files.items():
        path.write_text('{"rows of": "full"}\n' if arm in ("gap", "full") else f'{{"rows of": "{arm}"}}\n')
    trained = []

    def fake_train(data, output, seed, objective="sft", settings=None, student=None):
        trained.append((data.name, seed))
        return f"{data.stem}|{seed}", {"name": objective}

    monkeypatch.setattr(compare, "write_training_files", lambda adapted, work: files)
    monkeypatch.setattr(compare, "train_arm", fake_train)
    monkeypatch.setattr(compare, "correctness", lambda model, items, checker: [int(model.startswith("gap"))] * len(items))
    monkeypatch.setattr(compare, "sampled_metrics", lambda models, *a, **k: {"deciding_token": {"mean": 0.5, "models": models}})
    monkeypatch.setattr(dart_hub.answers, "AnswerChecker", contextlib.nullcontext)
    result = compare.compare_training({}, tmp_path / "training", seeds=2, heldout=5, sampled=0)
    assert sorted(trained) == [("first.jsonl", 0), ("first.jsonl", 1), ("gap.jsonl", 0), ("gap.jsonl", 1), ("static.jsonl", 0), ("static.jsonl", 1)]
    arms = {a["arm"]: a for a in result["arms"]}
    assert arms["full"]["same_rows_as"] == "gap" and "same_rows_as" not in arms["gap"] and "same_rows_as" not in arms["first"]
    assert arms["full"]["per_seed"] == arms["gap"]["per_seed"] == [1.0, 1.0] and arms["first"]["per_seed"] == [0.0, 0.0]
    assert arms["full"]["deciding_token"]["models"] == ["gap|0", "gap|1"]
