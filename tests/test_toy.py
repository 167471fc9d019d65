"""The miniature world: toy domain, expert style, shipped datasets and the shipped toy student."""

from __future__ import annotations

import random

import pytest

from dart_hub.boxed import last_boxed
from dart_hub.steps import split_steps
from dart_hub.toy import expert_dataset_path, heldout_dataset_path, toy_student_path
from dart_hub.toy.datasets import expert_rows, heldout_rows, read_jsonl
from dart_hub.toy.domain import (
    MAX_OPS,
    MAX_VALUE,
    MIN_OPS,
    MIN_VALUE,
    SPLITS,
    ToyProblem,
    evaluate_question,
    generate_problems,
    iter_problems,
    parse_question,
    solution_errors,
    split_of,
)
from dart_hub.toy.styles import (
    expert_layout,
    expert_solution,
    expert_steps,
    listed_order_solution,
    student_solution,
    student_steps,
)

# Floors for the shipped student: measurements on this repository's machine (docs/toy-world.md)
# with a margin for other CPUs / library versions.
HELDOUT_CHECKED = 60
ACCURACY_BAND = (0.25, 0.60)  # untuned greedy accuracy: measured 0.37 on the first 60 (0.32 on 100)
IN_ORDER_FLOOR = 0.45  # the 26 of them listed in label order: measured 0.62
OUT_OF_ORDER_CEILING = 0.35  # the 34 listed out of order: measured 0.18
CURVE_PROBLEMS = 12  # out-of-order expert traces probed
RISE_MARGIN = 0.15  # mean f(plan) - f(intro): measured 0.35 - 0.00
PEAK_FLOOR = 0.45  # mean of each trace's best f from the plan to before its last fold: measured 0.73
COLLAPSE_MARGIN = 0.10  # that peak minus f at the last folded step (0.46): measured 0.27


def _evaluate(question: str) -> tuple[int, list[int]]:
    """Independent recomputation of a toy question: (answer, values after each operation in
    label order)."""
    head, listed = question.removesuffix(". What is the result?").split(": ", 1)
    value = int(head.removeprefix("Start with ").split(".")[0])
    actions = {}
    for item in listed.split(", "):
        label, action = item[1], item[4:]
        actions[label] = action
    values = [value]
    for label in sorted(actions):
        action = actions[label]
        operand = int(action.rsplit(" ", 1)[1])
        if action.startswith("add"):
            value += operand
        elif action.startswith("subtract"):
            value -= operand
        elif action.startswith("multiply by"):
            value *= operand
        else:  # pragma: no cover - the test fails below
            raise AssertionError(action)
        values.append(value)
    return value, values


# -- domain ----------------------------------------------------------------------------------


def test_generator_is_deterministic_by_seed():
    for split in SPLITS:
        first = generate_problems(40, seed=3, split=split)
        assert first == generate_problems(40, seed=3, split=split)
        assert first != generate_problems(40, seed=4, split=split)
        assert len({p.key for p in first}) == 40
        assert all(p.split == split for p in first)
    assert generate_problems(10, 0, "expert") == generate_problems(64, 0, "expert")[:10]


def test_splits_are_disjoint_and_decided_by_the_problem():
    keys = {split: {p.key for p in generate_problems(400, seed=1, split=split)} for split in SPLITS}
    assert not keys["train"] & keys["heldout"]
    assert not keys["train"] & keys["expert"]
    assert not keys["expert"] & keys["heldout"]
    # a different seed draws other problems, but each lands in the same split
    other = generate_problems(400, seed=2, split="heldout")
    train_other = {p.key for p in generate_problems(2000, seed=5, split="train")}
    assert not {p.key for p in other} & train_other
    assert all(split_of(p) == "heldout" for p in other)


def test_every_answer_is_correct_and_values_stay_small():
    stream = iter_problems(seed=11)
    listings = []
    for _ in range(500):
        problem = next(stream)
        answer, values = _evaluate(problem.question)
        assert answer == problem.answer == evaluate_question(problem.question)
        assert values == problem.values
        assert MIN_OPS <= len(problem.ops) <= MAX_OPS
        assert all(MIN_VALUE <= v <= MAX_VALUE for v in values)
        assert parse_question(problem.question) == problem
        assert last_boxed(student_solution(problem)) == str(answer)
        assert solution_errors(problem.question, student_solution(problem)) == []
        listings.append(problem.in_order)
    # the twist: most problems list their operations out of label order, some do not
    assert 0.3 <= sum(listings) / len(listings) <= 0.5


def test_solution_checker_catches_wrong_arithmetic_answers_and_plans():
    problem = generate_problems(1, seed=0, split="expert")[0]
    solution = expert_solution(problem)
    assert solution_errors(problem.question, solution) == []
    first = student_steps(problem)[0]
    wrong_value = first.rsplit(" ", 1)[0] + f" {problem.values[1] + 1}"
    assert solution_errors(problem.question, student_solution(problem).replace(first, wrong_value))
    assert solution_errors(problem.question, solution.replace("\\boxed{", "\\boxed{1"))
    assert solution_errors(problem.question, solution.replace("are: (A)", "are: (B)"))
    assert solution_errors(problem.question, "no answer here") == ["no boxed answer"]
    # applying the operations as listed is wrong for a problem whose listing is out of order
    scrambled = next(p for p in generate_problems(50, seed=0, split="heldout") if not p.in_order
                     and _evaluate(p.question)[0] != ToyProblem(p.start, tuple(p.ops[i] for i in p.order)).answer)
    assert solution_errors(scrambled.question, listed_order_solution(scrambled))


def test_expert_traces_are_correct_long_and_shaped_as_designed():
    problems = generate_problems(200, seed=0, split="expert")
    lengths, early = [], 0
    for problem in problems:
        solution = expert_solution(problem)
        assert solution_errors(problem.question, solution) == [], solution  # the domain's evaluator
        steps = split_steps(solution)
        assert steps == solution.split("\n\n")  # every paragraph is one dart-hub step
        kinds = expert_layout(problem).kinds(len(problem.ops))
        assert len(kinds) == len(steps)
        assert kinds[:2] == ["intro", "plan"] and kinds[-1] == "answer" and "folded" in kinds
        assert last_boxed(steps[-1]) == str(problem.answer)
        boxed_at = [t for t, step in enumerate(steps) if "\\boxed" in step]
        assert boxed_at[0] == (kinds.index("reveal") if "reveal" in kinds else len(steps) - 1)
        early += len(boxed_at) > 1
        lengths.append(len(steps))
    assert sum(lengths) / len(lengths) >= 8
    assert sum(n >= 16 for n in lengths) >= 10
    assert 0.3 <= early / len(problems) <= 0.7  # about half state the answer before the end
    assert expert_steps(problem, random.Random(1)) == expert_steps(problem, random.Random(1))


# -- shipped datasets ------------------------------------------------------------------------


def test_shipped_datasets_match_the_generator_and_are_correct():
    expert = read_jsonl(expert_dataset_path())
    heldout = read_jsonl(heldout_dataset_path())
    assert expert == expert_rows()
    assert heldout == heldout_rows()
    assert len(expert) == 64 and len(heldout) == 300
    for row in expert + heldout:
        assert set(row) == {"question", "solution", "answer"}
        assert _evaluate(row["question"])[0] == int(row["answer"])
        assert solution_errors(row["question"], row["solution"]) == []
    train_keys = {p.key for p in generate_problems(3000, seed=0, split="train")}
    questions = {parse_question(r["question"]).key for r in expert + heldout}
    assert not questions & train_keys
    assert not {r["question"] for r in expert} & {r["question"] for r in heldout}


# -- the shipped student ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def student():
    torch = pytest.importorskip("torch")
    from dart_hub.toy.model import load_student

    # One thread: on a 2-core machine shared with other jobs, two OpenMP threads were several
    # times slower (they wait on each other). Restored afterwards for the other test modules.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield load_student(toy_student_path())
    finally:
        torch.set_num_threads(threads)


def test_shipped_student_loads_with_plain_transformers_and_its_template_renders(student):
    from transformers import AutoTokenizer

    model, _ = student
    folder = toy_student_path()
    assert (folder / "model.safetensors").is_file()
    assert model.config.model_type == "qwen2"
    assert model.config.hidden_size // model.config.num_attention_heads == 64
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token is not None
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Start with 7. Add 5, multiply by 3, subtract 4. What is the result?"}],
        add_generation_prompt=True, tokenize=False,
    )
    assert text.startswith("<|im_start|>system\n")
    assert "<|im_start|>user\nStart with 7." in text
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    ids = tokenizer.encode("Step 12: 34 * 2 = 68", add_special_tokens=False)
    digits = [tokenizer.decode([i]) for i in ids if tokenizer.decode([i]).strip().isdigit()]
    assert digits == ["1", "2", "3", "4", "2", "6", "8"]  # one token per digit


def test_shipped_student_is_far_from_ceiling_because_it_applies_operations_as_listed(student):
    from dart_hub.toy.model import solve_accuracy

    model, tokenizer = student
    problems = [parse_question(r["question"]) for r in read_jsonl(heldout_dataset_path())[:HELDOUT_CHECKED]]
    in_order = [p for p in problems if p.in_order]
    scrambled = [p for p in problems if not p.in_order]
    overall = solve_accuracy(model, tokenizer, problems, temperature=0.0)
    assert ACCURACY_BAND[0] <= overall <= ACCURACY_BAND[1]
    assert solve_accuracy(model, tokenizer, in_order) >= IN_ORDER_FLOOR  # it is not broken
    assert solve_accuracy(model, tokenizer, scrambled) <= OUT_OF_ORDER_CEILING  # it lacks the plan


def test_shipped_student_records_its_training_and_was_trained_on_the_current_prompts():
    import json

    from dart_hub.prompts import default_prompts

    info = json.loads((toy_student_path() / "training.json").read_text(encoding="utf-8"))
    assert ACCURACY_BAND[0] <= info["heldout_accuracy_greedy"] <= ACCURACY_BAND[1]
    assert info["prompts_fingerprint"] == default_prompts().fingerprint(), (
        "dart_hub/resources/prompts.yaml changed since the toy student was trained on it; retrain "
        "it: python -m dart_hub.toy.train_student --output dart_hub/resources/toy_student"
    )


def test_adaptability_rises_with_the_plan_then_collapses_on_folded_steps(student):
    """A real measurement of DART's Eq. 3 on the shipped student, on out-of-order expert traces
    probed from the intro to their last folded step: f rises from the intro to the plan, and
    the last folded step falls well below the best step before it."""
    from dart_hub.toy.model import adaptability, step_kinds

    model, tokenizer = student
    rows = [r for r in read_jsonl(expert_dataset_path()) if not parse_question(r["question"]).in_order][:CURVE_PROBLEMS]
    items = []
    for row in rows:
        kinds = step_kinds(parse_question(row["question"]))
        last_fold = max(t for t, kind in enumerate(kinds) if kind == "folded")
        assert kinds[:2] == ["intro", "plan"]
        items.append((row["question"], split_steps(row["solution"])[: last_fold + 1], row["answer"]))
    curve = adaptability(model, tokenizer, items, n_sim=4, temperature=0.1, seed=0)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    intro = mean([f[0] for f in curve.per_problem])
    plan = mean([f[1] for f in curve.per_problem])
    peak = mean([max(f[1:-1]) for f in curve.per_problem])  # best step from the plan on, before the last fold
    last_fold = mean([f[-1] for f in curve.per_problem])
    assert plan - intro >= RISE_MARGIN  # rises: the plan is what the student lacks
    assert peak >= PEAK_FLOOR
    assert peak - last_fold >= COLLAPSE_MARGIN  # and collapses on the folds


def test_planned_solve_answers_copy_the_list_and_leave_the_earlier_stream_unchanged():
    """The mix knob that teaches the student to *start* a plan: some `solve` answers (problems
    listed in label order) open with the intro and a plan that copies the list. At 0 the
    stream is the earlier stages' one, example for example, so their commands still reproduce."""
    import hashlib
    import json
    from dataclasses import replace
    from itertools import islice

    from dart_hub.prompts import default_prompts
    from dart_hub.toy.styles import PLAN_HEAD
    from dart_hub.toy.train_student import TrainConfig, example_stream

    prompts = default_prompts()
    base = TrainConfig(seed=3)
    zero = list(islice(example_stream(base, prompts), 300))
    # the digest of the same 300 examples drawn by the code before the knob existed (e30d363)
    assert hashlib.sha256(json.dumps(zero).encode()).hexdigest()[:16] == "a2dad3c4ddb69763"
    assert not any(a.startswith(("The operations", "Here the list")) for n, _, a in zero if n == "solve")

    planned = [(m, a) for n, m, a in islice(example_stream(replace(base, share_solve_planned=0.5), prompts), 600)
               if n == "solve"]
    opened = [(m, a) for m, a in planned if PLAN_HEAD in a]
    assert 0.3 <= len(opened) / len(planned) <= 0.7
    for messages, answer in opened:
        intro, plan, first = answer.split("\n\n")[:3]
        assert intro.startswith(("The operations are already listed", "Here the list is already"))
        assert plan.startswith(PLAN_HEAD) and first.startswith("Step 1: ")
        assert not solution_errors(_question_of(messages), answer)


def _question_of(messages) -> str:
    import re

    return re.search(r"Start with \d+\..*?What is the result\?", messages[-1]["content"], re.S).group(0)


@pytest.mark.slow
def test_plan_skill_benchmark_shows_the_shipped_student_cannot_look_up_an_operation_by_label():
    """benchmarks/toy_plan_skill.py as a user runs it. The measured limit that keeps the toy
    world from the paper's ordering (docs/toy-world.md, "Can the student write a plan?"): shown
    a plan cut after (A), the shipped student does not finish it, and its loss on the plan's
    operation words is chance among the three (ln 3 = 1.10; measured 1.12 on 40 examples). If
    this fails, the student has learned the lookup: rerun the demo table and update the docs."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "toy_plan_skill.py"
    done = subprocess.run([sys.executable, str(script), "--problems", "12", "--examples", "8"],
                          capture_output=True, text=True, timeout=600, check=True)
    result = json.loads(done.stdout)
    assert result["problems"]["in_order"] + result["problems"]["out_of_order"] == 12
    assert result["solve_writes_plan"] == 0.0  # it never starts a plan
    assert result["finishes_plan_after_one"] == {"in_order": 0.0, "out_of_order": 0.0}
    assert result["token_loss"]["operation word"] >= 0.8
