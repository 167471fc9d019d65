"""probe / cut / explore / pipeline with a scripted student whose success depends on the prefix."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from dart_hub.adaptation.pipeline import adapt_chunk, plan, run_adapt, summarize
from dart_hub.answers import AnswerChecker
from dart_hub.config import AdaptConfig
from dart_hub.prompts import default_prompts
from dart_hub.records import Problem, Provenance
from dart_hub.store import WorkDir, fingerprint
from tests.scripted_engine import ScriptedEngine, kind_of, reasoning_of, steps_in_prompt, user_text

PROMPTS = default_prompts()


def make_problem(pid: str, n_steps: int, gold: str = "42", boxed: bool = False) -> Problem:
    """An expert trace of n_steps paragraphs; the last one states the result, in a \\boxed{}
    (answer-revealing: not probed) when `boxed`."""
    steps = [f"Step {k}: we work out part {k} of the argument carefully here." for k in range(1, n_steps)]
    final = f"\\boxed{{{gold}}}" if boxed else gold
    steps.append(f"Step {n_steps}: so the result is {final}.")
    return Problem(
        id=pid,
        question=f"Problem {pid}: compute the value described in the statement.",
        solution="\n\n".join(steps),
        answer=gold,
        provenance=Provenance(source="test", repo_id=None, revision=None, config=None, split="train", row_index=0),
        extra={"topic": "algebra"},
    )


def student(successes: dict[str, list[int]], explore: dict[str, list[str]] | None = None, sim_answer="\\boxed{42}"):
    """successes[qid][t]: how many of the n simulation samples from s_0..s_t succeed.
    explore[qid][i]: the i-th exploration / solve sample's text."""

    def respond(request, i):
        question_id = next(q for q in successes if f"Problem {q}:" in request.messages[-1][1])
        kind = kind_of(request)
        if kind == "simulation":
            t = steps_in_prompt(request) - 1
            ok = i < successes[question_id][t]
            return f"Continuing from step {t + 1}, sample {i}. " + (sim_answer if ok else "\\boxed{7}")
        return explore[question_id][i % len(explore[question_id])]

    return respond


class EqualityChecker:
    """String equality stand-in where the test is not about equivalence."""

    def equivalent_many(self, pairs):
        return [pred is not None and gold == pred for gold, pred in pairs]


LOOP = " ".join(["so the value is forty two"] * 30) + " \\boxed{42}"


def config(**kw) -> AdaptConfig:
    # these tests pin dart-hub's robust rules as they were before --rules (no confirmation)
    base = dict(n_sim=4, n_explore=4, sim_max_tokens=64, explore_max_tokens=64, min_step_chars=1, rules="robust", confirm=0)
    return AdaptConfig(**{**base, **kw})


def test_full_cuts_at_gap_and_keeps_best_consistent_continuation():
    problem = make_problem("a", 5)
    explore = {
        "a": [
            "Anchor: part 2. We finish differently. \\boxed{41}",  # wrong answer
            LOOP,  # right answer but a loop
            "Anchor: part 2. Then a long but fine argument with many words to close it. \\boxed{42}",
            "Anchor: part 2. Short finish. \\boxed{42}",
        ]
    }
    engine = ScriptedEngine(student({"a": [4, 4, 1, 0, 0]}, explore))
    [example] = adapt_chunk(engine, [problem], config(), PROMPTS, EqualityChecker())

    assert example.scores == [1.0, 1.0, 0.25, 0.0, 0.0]
    assert (example.peak, example.gap, example.keep_steps, example.cut_reason) == (0, 2, 2, "gap")
    assert example.outcome == "kept" and example.discard_reason is None
    kept = [c for c in example.candidates if c.kept]
    assert [c.text for c in kept] == [explore["a"][3]]  # lowest repetition, then fewest tokens
    assert example.candidates[1].repetition > 0.3 and example.candidates[0].correct is False
    assert example.trajectories == ["\n\n".join([*example.expert_steps[:2], explore["a"][3]])]
    # exploration prompt carries exactly the kept prefix
    explore_request = engine.calls[1][0]
    assert kind_of(explore_request) == "exploration" and steps_in_prompt(explore_request) == 2
    assert explore_request.temperature == 0.7 and engine.calls[0][0].temperature == 0.1
    assert example.rollouts == 5 * 4 + 4


def test_one_engine_call_per_stage_for_a_whole_chunk():
    problems = [make_problem("a", 3), make_problem("b", 4), make_problem("c", 2)]
    ok = ["x \\boxed{42}"]
    engine = ScriptedEngine(student({"a": [4, 0, 0], "b": [4, 4, 4, 4], "c": [0, 0]}, {"a": ok, "c": ok}))
    examples = adapt_chunk(engine, problems, config(), PROMPTS, EqualityChecker())
    assert len(engine.calls) == 2
    assert len(engine.calls[0]) == 3 + 4 + 2  # every prefix of every problem in one call
    assert all(r.n == 4 for r in engine.calls[0])
    # b had no drop: not explored, expert trace kept unchanged
    assert [kind_of(r) for r in engine.calls[1]] == ["exploration", "solve"]
    by_id = {e.id: e for e in examples}
    assert by_id["b"].cut_reason == "no_drop" and by_id["b"].trajectories == [problems[1].solution]
    # c: every score zero -> the student solves alone, no expert step kept
    assert by_id["c"].cut_reason == "all_zero" and by_id["c"].keep_steps == 0
    assert by_id["c"].trajectories == ["x \\boxed{42}"]


@pytest.mark.parametrize(
    ("texts", "reason"),
    [(["nope \\boxed{1}", "no answer at all"], "no_consistent_continuation"), ([LOOP], "repetitive")],
)
def test_full_discards_with_reason(texts, reason):
    engine = ScriptedEngine(student({"a": [4, 0, 0]}, {"a": texts}))
    [example] = adapt_chunk(engine, [make_problem("a", 3)], config(), PROMPTS, EqualityChecker())
    assert example.outcome == "discarded" and example.discard_reason == reason
    assert example.trajectories == []


def test_gap_strategy_reuses_a_successful_simulation_rollout():
    engine = ScriptedEngine(student({"a": [2, 4, 0, 0]}))
    [example] = adapt_chunk(engine, [make_problem("a", 4)], config(strategy="gap"), PROMPTS, EqualityChecker())
    assert len(engine.calls) == 1  # no exploration
    assert (example.peak, example.gap, example.keep_steps) == (1, 2, 2)
    [kept] = [c for c in example.candidates if c.kept]
    assert kept.origin == "simulation" and kept.text.startswith("Continuing from step 2, sample 0")
    assert example.trajectories[0].endswith(kept.text)


def test_first_strategy_stops_at_first_feasible_step():
    engine = ScriptedEngine(student({"a": [0, 1, 4, 4]}))
    [example] = adapt_chunk(engine, [make_problem("a", 4)], config(strategy="first"), PROMPTS, EqualityChecker())
    assert (example.keep_steps, example.cut_reason) == (2, "first_feasible")
    assert "Continuing from step 2, sample 0" in example.trajectories[0]


def test_gap_and_first_discard_when_nothing_succeeds():
    for strategy in ("gap", "first"):
        engine = ScriptedEngine(student({"a": [0, 0]}))
        [example] = adapt_chunk(engine, [make_problem("a", 2)], config(strategy=strategy), PROMPTS, EqualityChecker())
        assert example.outcome == "discarded" and example.discard_reason == "no_successful_rollout"
        assert example.cut_reason == "all_zero" and example.trajectories == []


def test_static_generates_nothing():
    engine = ScriptedEngine(lambda request, i: pytest.fail("static must not generate"))
    [example] = adapt_chunk(engine, [make_problem("a", 3)], config(strategy="static"), PROMPTS, EqualityChecker())
    assert example.trajectories == [make_problem("a", 3).solution] and example.rollouts == 0


def test_keep_all_makes_one_trajectory_per_qualifying_continuation():
    texts = ["one \\boxed{42}", "two \\boxed{42}", "three \\boxed{9}", "four \\boxed{42}"]
    engine = ScriptedEngine(student({"a": [4, 0]}, {"a": texts}))
    [example] = adapt_chunk(engine, [make_problem("a", 2)], config(keep="all"), PROMPTS, EqualityChecker())
    assert [t.split("\n\n")[-1] for t in example.trajectories] == [texts[0], texts[1], texts[3]]


@pytest.fixture(scope="module")
def checker():
    with AnswerChecker(timeout=5, workers=1) as c:
        yield c


def test_outcome_consistency_is_equivalence_not_string_equality(checker):
    explore = {"a": ["so it is \\boxed{0.5}", "so it is \\boxed{\\dfrac{1}{2}}", "so it is \\boxed{2}"]}
    engine = ScriptedEngine(student({"a": [4, 0]}, explore, sim_answer="\\boxed{1/2}"))
    [example] = adapt_chunk(
        engine, [make_problem("a", 2, gold="\\frac{1}{2}")], config(keep="all", n_explore=3), PROMPTS, checker
    )
    assert example.successes == [4, 0]  # 1/2 == \frac{1}{2}
    assert [c.correct for c in example.candidates] == [True, True, False]


def test_run_adapt_resumes_from_stored_chunks(tmp_path):
    problems = [make_problem(str(k), 3) for k in range(5)]
    script = student({str(k): [4, k % 2 * 4, 0] for k in range(5)}, {str(k): ["fine \\boxed{42}"] for k in range(5)})
    cfg = config(chunk_size=2)
    inputs = {"config": cfg.to_dict()}
    key = fingerprint(inputs)

    first = ScriptedEngine(script)
    work = WorkDir(tmp_path / "w", key, inputs)
    done = run_adapt(first, problems, cfg, PROMPTS, EqualityChecker(), work)
    assert len(list(work.chunks.glob("chunk-*.jsonl"))) == 3

    # everything stored: a rerun generates nothing and returns the same records
    again = ScriptedEngine(lambda r, i: pytest.fail("should resume, not generate"))
    resumed = run_adapt(again, problems, cfg, PROMPTS, EqualityChecker(), WorkDir(tmp_path / "w", key, inputs))
    assert [e.to_dict() for e in resumed] == [e.to_dict() for e in done]

    # lose the middle chunk (as if killed while writing it): only it is recomputed
    middle = sorted(work.chunks.glob("chunk-00001-*.jsonl"))[0]
    middle.unlink()
    partial = ScriptedEngine(script)
    redo = run_adapt(partial, problems, cfg, PROMPTS, EqualityChecker(), WorkDir(tmp_path / "w", key, inputs))
    assert [e.to_dict() for e in redo] == [e.to_dict() for e in done]
    asked = {json.dumps(r.messages) for call in partial.calls for r in call}
    assert all("Problem 2:" in m or "Problem 3:" in m for m in asked)


def test_work_dir_refuses_other_settings(tmp_path):
    from dart_hub.errors import DartHubError

    WorkDir(tmp_path, "aaaa", {"x": 1})
    with pytest.raises(DartHubError, match="other settings"):
        WorkDir(tmp_path, "bbbb", {"x": 2})


def test_plan_and_summary():
    problems = [make_problem("a", 3), make_problem("b", 5)]
    cost = plan(problems, config(n_sim=4, n_explore=8, sim_max_tokens=100, explore_max_tokens=10)).to_dict()
    assert cost["simulation_rollouts"] == 8 * 4 and cost["exploration_rollouts_max"] == 16
    assert cost["new_tokens_max"] == 32 * 100 + 16 * 10
    engine = ScriptedEngine(student({"a": [4, 0, 0], "b": [4, 4, 4, 4, 4]}, {"a": ["nope \\boxed{1}"]}))
    examples = adapt_chunk(engine, problems, config(), PROMPTS, EqualityChecker())
    summary = summarize(examples, config())
    assert summary["kept"] == 1 and summary["discard_reasons"] == {"no_consistent_continuation": 1}
    assert summary["cut_reasons"] == {"gap": 1, "no_drop": 1}
    assert summary["mean_relative_gap"] == pytest.approx(1 / 3, abs=1e-3)
    assert summary["rollouts"] == 8 * 4 + 4


# -- real-trace behaviour (issue: answer-revealing steps, weak students, unfinished rows) ----


def revealing_problem(pid: str) -> Problem:
    """Six steps; step 3 (index 3) already states the boxed answer ("let me double-check"),
    and the last step states it again, as real expert traces do."""
    steps = [f"Step {k}: we work out part {k} of the argument carefully here." for k in range(1, 4)]
    steps.append("So the answer is \\boxed{42}; let me double-check the middle part once more.")
    steps.append("Step 5: the check of the middle part agrees with what we found before.")
    steps.append("Hence the final result is \\boxed{42}.")
    return replace(make_problem(pid, 6), solution="\n\n".join(steps))


def copying_student(successes: list[int], explore: list[str] | None = None):
    """A real-model-like student: shown a prefix that contains the boxed answer it restates it
    (f = 1 there); before that it succeeds successes[t] times out of n."""

    def respond(request, i):
        kind = kind_of(request)
        if kind == "simulation":
            prefix = reasoning_of(request)
            if "\\boxed{42}" in prefix:
                return "As stated, \\boxed{42}"
            t = steps_in_prompt(request) - 1
            return f"Continuing from step {t + 1}. " + ("\\boxed{42}" if i < successes[t] else "\\boxed{7}")
        return (explore or ["mine \\boxed{42}"])[i % len(explore or ["x"])]

    return respond


def test_answer_revealing_prefixes_are_not_probed_and_do_not_hide_the_collapse():
    problem = revealing_problem("r")
    engine = ScriptedEngine(copying_student([2, 1, 0, 4, 4, 4]))
    [example] = adapt_chunk(engine, [problem], config(), PROMPTS, EqualityChecker())
    simulation = engine.calls[0]
    assert [steps_in_prompt(r) for r in simulation] == [1, 2, 3]  # prefixes 4..6 contain the answer
    assert example.reveal_step == 3
    assert example.scores == [0.5, 0.25, 0.0, None, None, None]
    assert example.successes == [2, 1, 0, None, None, None]
    # collapse at step 2 (0 < 0.5 - 0.3): cut there, although the student "recovers" by copying
    assert (example.peak, example.gap, example.keep_steps, example.cut_reason) == (0, 2, 2, "gap")
    assert example.rollouts == 3 * 4 + 4


def test_global_peak_without_reveal_rule_would_have_kept_the_whole_trace():
    # what the issue describes: probe every prefix, global maximum at the copying step
    scores = [0.5, 0.25, 0.0, 1.0, 1.0, 1.0]
    from dart_hub.adaptation.cut import decide_cut

    assert decide_cut("full", scores, peak_rule="global").reason == "no_drop"
    assert decide_cut("full", scores[:3] + [None] * 3, peak_rule="global").reason == "gap"


def test_revealing_tail_is_kept_only_inside_a_prefix_kept_anyway():
    engine = ScriptedEngine(copying_student([4, 4, 4, 4, 4, 4]))
    [example] = adapt_chunk(engine, [revealing_problem("r")], config(), PROMPTS, EqualityChecker())
    assert example.cut_reason == "no_drop" and example.trajectories == [example.expert_solution]
    assert len(engine.calls) == 1  # nothing explored


def test_answer_in_first_step_is_explored_from_the_question_alone():
    problem = replace(make_problem("f", 2), solution="The answer is \\boxed{42} by inspection of it all.\n\nCheck: indeed it is right.")
    engine = ScriptedEngine(copying_student([4, 4]))
    [example] = adapt_chunk(engine, [problem], config(), PROMPTS, EqualityChecker())
    assert example.cut_reason == "answer_first" and example.scores == [None, None]
    assert [kind_of(r) for r in engine.calls[-1]] == ["solve"] and example.outcome == "kept"
    [gap] = adapt_chunk(ScriptedEngine(copying_student([4, 4])), [problem], config(strategy="gap"), PROMPTS, EqualityChecker())
    assert gap.outcome == "discarded" and gap.discard_reason == "answer_in_first_step"


@pytest.mark.parametrize(
    ("texts", "outcome", "reason"),
    [(["mine \\boxed{42}"], "kept", None), (["mine \\boxed{5}"], "discarded", "no_consistent_continuation")],
)
def test_weak_student_is_explored_from_its_best_prefix_not_kept_as_static(texts, outcome, reason):
    engine = ScriptedEngine(student({"w": [1, 0, 0, 0]}, {"w": texts}))
    [example] = adapt_chunk(engine, [make_problem("w", 4)], config(), PROMPTS, EqualityChecker())
    assert example.scores == [0.25, 0.0, 0.0, 0.0]
    assert (example.cut_reason, example.keep_steps, example.peak) == ("weak_follow", 1, 0)
    explore_request = engine.calls[1][0]
    assert kind_of(explore_request) == "exploration" and steps_in_prompt(explore_request) == 1
    assert example.outcome == outcome and example.discard_reason == reason
    assert example.expert_solution not in example.trajectories


def test_weak_follow_with_gap_strategy_reuses_the_peak_rollouts():
    engine = ScriptedEngine(student({"w": [0, 1, 0, 0]}))
    [example] = adapt_chunk(engine, [make_problem("w", 4)], config(strategy="gap"), PROMPTS, EqualityChecker())
    assert (example.cut_reason, example.keep_steps) == ("weak_follow", 2)
    [kept] = [c for c in example.candidates if c.kept]
    assert kept.origin == "simulation" and kept.text.startswith("Continuing from step 2, sample 0")


def test_reliable_student_keeps_the_expert_trace():
    engine = ScriptedEngine(student({"s": [2, 3, 2, 2]}))
    [example] = adapt_chunk(engine, [make_problem("s", 4)], config(), PROMPTS, EqualityChecker())
    assert example.cut_reason == "no_drop" and example.trajectories == [example.expert_solution]
    [strict] = adapt_chunk(ScriptedEngine(student({"s": [2, 3, 2, 2]}, {"s": ["x \\boxed{42}"]})), [make_problem("s", 4)], config(min_follow=0.75), PROMPTS, EqualityChecker())
    assert strict.cut_reason == "weak_follow" and strict.keep_steps == 2


def test_a_truncated_continuation_is_never_kept():
    cut_off = ("Anchor. Short. \\boxed{42}. Wait, but for n=3 we", "length")  # fewer tokens, no repetition
    finished = "Anchor. A longer finished argument that closes every case we opened. \\boxed{42}"
    engine = ScriptedEngine(student({"a": [4, 0, 0]}, {"a": [cut_off, finished]}))
    [example] = adapt_chunk(engine, [make_problem("a", 3)], config(n_explore=2), PROMPTS, EqualityChecker())
    [kept] = [c for c in example.candidates if c.kept]
    assert kept.text == finished and kept.finish_reason == "stop"
    assert example.candidates[0].correct and example.candidates[0].finish_reason == "length"

    only_cut = ScriptedEngine(student({"a": [4, 0, 0]}, {"a": [cut_off]}))
    [dropped] = adapt_chunk(only_cut, [make_problem("a", 3)], config(n_explore=2), PROMPTS, EqualityChecker())
    assert dropped.outcome == "discarded" and dropped.discard_reason == "truncated"


def test_gap_strategy_skips_truncated_simulation_rollouts():
    def respond(request, i):
        t = steps_in_prompt(request) - 1
        if t == 0 and i == 0:
            return ("Continuing, sample 0 \\boxed{42} and then more", "length")
        return f"Continuing from step {t + 1}, sample {i}. " + ("\\boxed{42}" if t == 0 and i < 3 else "\\boxed{7}")

    [example] = adapt_chunk(ScriptedEngine(respond), [make_problem("a", 3)], config(strategy="gap"), PROMPTS, EqualityChecker())
    [kept] = [c for c in example.candidates if c.kept]
    assert kept.text.startswith("Continuing from step 1, sample 1")


def test_raw_cleaning_disables_the_filter_and_the_low_repetition_preference():
    texts = [LOOP, "Anchor. Fine and short. \\boxed{42}"]
    cleaned = adapt_chunk(ScriptedEngine(student({"a": [4, 0, 0]}, {"a": texts})), [make_problem("a", 3)], config(n_explore=2), PROMPTS, EqualityChecker())[0]
    raw = adapt_chunk(ScriptedEngine(student({"a": [4, 0, 0]}, {"a": texts})), [make_problem("a", 3)], config(n_explore=2, cleaning="raw"), PROMPTS, EqualityChecker())[0]
    assert [c.kept for c in cleaned.candidates] == [False, True]
    assert [c.kept for c in raw.candidates] == [True, False]  # the repetitive one, first by index
    only_loop = adapt_chunk(ScriptedEngine(student({"a": [4, 0, 0]}, {"a": [LOOP]})), [make_problem("a", 3)], config(n_explore=1, cleaning="raw"), PROMPTS, EqualityChecker())[0]
    assert only_loop.outcome == "kept"


def test_probe_cache_is_shared_by_strategies(tmp_path):
    from dart_hub.store import ProbeStore

    problems = [make_problem(str(k), 4, boxed=True) for k in range(3)]
    script = student({str(k): [4, 2, 0, 0] for k in range(3)}, {str(k): ["fine \\boxed{42}"] for k in range(3)})
    store = ProbeStore(tmp_path / "probes", "key", {"x": 1})

    def run(strategy, engine, probe_store, where):
        cfg = config(strategy=strategy, chunk_size=2)
        inputs = {"config": cfg.to_dict()}
        return run_adapt(engine, problems, cfg, PROMPTS, EqualityChecker(), WorkDir(tmp_path / where, fingerprint(inputs), inputs), probe_store=probe_store)

    full = run("full", ScriptedEngine(script), store, "full")
    assert store.reused == 0 and len(list(store.path.glob("probes-*.jsonl.gz"))) == 2
    gap_engine = ScriptedEngine(lambda r, i: pytest.fail("gap must reuse the cached simulation"))
    gap = run("gap", gap_engine, ProbeStore(tmp_path / "probes", "key", {"x": 1}), "gap")
    fresh_gap = run("gap", ScriptedEngine(script), None, "gap-fresh")
    assert [e.to_dict() for e in gap] == [e.to_dict() for e in fresh_gap]
    assert gap_engine.calls == [] and [e.scores for e in gap] == [e.scores for e in full]
    assert full[0].scores == [1.0, 0.5, 0.0, None]  # the boxed last step is not probed


def test_probe_cache_is_reused_per_problem_when_the_chunks_differ(tmp_path):
    """Another strategy may admit other problems (the exploration budget counts only for full),
    so its chunks differ: cached problems are reused, only the new ones are probed."""
    from dart_hub.store import ProbeStore

    problems = [make_problem(str(k), 4, boxed=True) for k in range(4)]
    script = student({str(k): [4, 2, 0, 0] for k in range(4)}, {str(k): ["fine \\boxed{42}"] for k in range(4)})

    def run(strategy, engine, chunk, subset, where):
        cfg = config(strategy=strategy, chunk_size=chunk)
        inputs = {"config": cfg.to_dict()}
        store = ProbeStore(tmp_path / "probes", "key", {"x": 1})
        out = run_adapt(engine, subset, cfg, PROMPTS, EqualityChecker(), WorkDir(tmp_path / where, fingerprint(inputs), inputs), probe_store=store)
        return out, store

    full, _ = run("full", ScriptedEngine(script), 2, [problems[0], problems[2], problems[3]], "full")
    engine = ScriptedEngine(script)
    gap, store = run("gap", engine, 3, problems, "gap")  # chunks {0, 1, 2}, {3}: 1 was never probed
    sims = [user_text(r) for call in engine.calls for r in call if kind_of(r) == "simulation"]
    probed = {k for k in "0123" if any(f"Problem {k}:" in text for text in sims)}
    assert store.reused_problems == 3 and store.reused == 1  # chunk {3} entirely from the cache
    assert probed == {"1"}
    fresh, _ = run("gap", ScriptedEngine(script), 3, problems, "fresh")
    assert [e.to_dict() for e in gap] == [e.to_dict() for e in fresh]
    # the cache now has all four: a third run generates no simulation at all
    silent = ScriptedEngine(lambda r, i: pytest.fail("everything is cached"))
    again, store = run("first", silent, 4, problems, "first")
    assert silent.calls == [] and store.reused == 1 and store.reused_problems == 4


# -- adaptive probing (--probe adaptive) ----------------------------------------------------


def test_adaptive_probing_stays_within_its_budget_on_a_64_step_trace():
    from dart_hub.adaptation.search import adaptive_budget

    successes = [4] * 30 + [1] * 34
    adaptive_engine = ScriptedEngine(student({"L": successes}, {"L": ["mine \\boxed{42}"]}))
    [fast] = adapt_chunk(adaptive_engine, [make_problem("L", 64)], config(probe="adaptive"), PROMPTS, EqualityChecker())
    scan_engine = ScriptedEngine(student({"L": successes}, {"L": ["mine \\boxed{42}"]}))
    [full] = adapt_chunk(scan_engine, [make_problem("L", 64)], config(), PROMPTS, EqualityChecker())

    asked = sum(r.n for call in adaptive_engine.calls for r in call if kind_of(r) == "simulation")
    assert asked == sum(fast.samples) <= adaptive_budget(64, 4) == 44 < 64 * 4
    assert (fast.gap, fast.keep_steps, fast.cut_reason) == (full.gap, full.keep_steps, full.cut_reason) == (30, 30, "gap")
    assert fast.trajectories == full.trajectories
    # every probed prefix's rollouts are the first m of the scan's (same seeds, sample indices)
    for t, m in enumerate(fast.samples):
        if m:
            assert fast.successes[t] == min(successes[t], m)
    probed = [t for t, m in enumerate(fast.samples) if m]
    assert 0 in probed and 63 in probed and 29 in probed and 30 in probed
    assert all(fast.scores[t] is None for t in range(64) if t not in probed)
    assert len(adaptive_engine.calls) > 2  # rounds: one engine call each, the chunk batched together


def test_adaptive_probing_resumes_to_the_same_result(tmp_path):
    problems = [make_problem(str(k), 12) for k in range(5)]
    script = student({str(k): [4] * (k + 3) + [0] * (9 - k) for k in range(5)}, {str(k): ["fine \\boxed{42}"] for k in range(5)})
    cfg = config(chunk_size=2, probe="adaptive")
    inputs = {"config": cfg.to_dict()}
    key = fingerprint(inputs)
    done = run_adapt(ScriptedEngine(script), problems, cfg, PROMPTS, EqualityChecker(), WorkDir(tmp_path / "w", key, inputs))
    assert [e.gap for e in done] == [k + 3 for k in range(5)]
    middle = sorted((tmp_path / "w" / "chunks").glob("chunk-00001-*.jsonl"))[0]
    middle.unlink()  # as if killed while this chunk was in flight
    redo = run_adapt(ScriptedEngine(script), problems, cfg, PROMPTS, EqualityChecker(), WorkDir(tmp_path / "w", key, inputs))
    assert [e.to_dict() for e in redo] == [e.to_dict() for e in done]
