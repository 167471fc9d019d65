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
    generate_problems,
    iter_problems,
    parse_question,
    split_of,
)
from dart_hub.toy.styles import expert_solution, expert_steps, student_solution

# Floors for the shipped student: measurements on this repository's machine (docs/toy-world.md)
# minus a margin for other CPUs / library versions.
ACCURACY_FLOOR = 0.80  # measured 0.93 greedy and 0.93 at temperature 0.1 on the first 30 held-out
FIRST_STEP_FLOOR = 0.6  # mean f_0 on the first 16 expert traces: measured 0.89
FOLDED_CEILING = 0.4  # mean f on their first folded step: measured 0.17
EARLY_LATE_MARGIN = 0.4  # the difference of the two: measured 0.72


def _evaluate(question: str) -> tuple[int, list[int]]:
    """Independent recomputation of a toy question: (answer, intermediate values)."""
    words = question.removeprefix("Start with ").removesuffix(" What is the result?")
    start, actions = words.split(". ", 1)
    value, values = int(start), [int(start)]
    for action in actions.rstrip(".").split(", "):
        action = action.lower()
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
    for _ in range(500):
        problem = next(stream)
        answer, values = _evaluate(problem.question)
        assert answer == problem.answer
        assert values == problem.values
        assert MIN_OPS <= len(problem.ops) <= MAX_OPS
        assert all(MIN_VALUE <= v <= MAX_VALUE for v in values)
        assert parse_question(problem.question) == problem
        assert last_boxed(student_solution(problem)) == str(answer)


def test_expert_solutions_have_paragraph_steps_and_the_boxed_answer():
    for problem in generate_problems(200, seed=0, split="expert"):
        solution = expert_solution(problem)
        steps = split_steps(solution)
        assert len(steps) >= 3
        assert steps == solution.split("\n\n")  # every paragraph is one dart-hub step
        assert last_boxed(steps[-1]) == str(problem.answer)
        assert "\\boxed" not in "".join(steps[:-1])
        # at least one folded paragraph: fewer paragraphs than operations + answer
        assert len(steps) < len(problem.ops) + 1
    assert expert_steps(problem, random.Random(1)) == expert_steps(problem, random.Random(1))


# -- shipped datasets ------------------------------------------------------------------------


def test_shipped_datasets_match_the_generator():
    expert = read_jsonl(expert_dataset_path())
    heldout = read_jsonl(heldout_dataset_path())
    assert expert == expert_rows()
    assert heldout == heldout_rows()
    assert len(expert) == 64 and len(heldout) == 100
    for row in expert + heldout:
        assert set(row) == {"question", "solution", "answer"}
        assert _evaluate(row["question"])[0] == int(row["answer"])
        assert last_boxed(row["solution"]) == row["answer"]
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


def test_shipped_student_solves_heldout_problems_in_its_own_style(student):
    from dart_hub.toy.model import solve_accuracy

    model, tokenizer = student
    problems = [parse_question(r["question"]) for r in read_jsonl(heldout_dataset_path())[:30]]
    assert solve_accuracy(model, tokenizer, problems, temperature=0.0) >= ACCURACY_FLOOR
    assert solve_accuracy(model, tokenizer, problems, temperature=0.1, seed=3) >= ACCURACY_FLOOR


def test_shipped_student_records_its_training_and_was_trained_on_the_current_prompts():
    import json

    from dart_hub.prompts import default_prompts

    info = json.loads((toy_student_path() / "training.json").read_text(encoding="utf-8"))
    assert info["heldout_accuracy_greedy"] >= ACCURACY_FLOOR
    assert info["heldout_accuracy_t0.1"] >= ACCURACY_FLOOR
    assert info["prompts_fingerprint"] == default_prompts().fingerprint(), (
        "dart_hub/resources/prompts.yaml changed since the toy student was trained on it; retrain "
        "it: python -m dart_hub.toy.train_student --output dart_hub/resources/toy_student"
    )


def test_adaptability_is_high_on_early_expert_steps_and_collapses_on_folded_ones(student):
    from dart_hub.toy.model import adaptability
    from dart_hub.toy.styles import expert_layout

    model, tokenizer = student
    rows = read_jsonl(expert_dataset_path())[:16]
    items = [(r["question"], split_steps(r["solution"]), r["answer"]) for r in rows]
    curve = adaptability(model, tokenizer, items, n_sim=4, temperature=0.1, seed=0)
    first = [f[0] for f in curve.per_problem]
    folded = []
    for row, f in zip(rows, curve.per_problem, strict=True):
        problem = parse_question(row["question"])
        folded.append(f[expert_layout(problem).easy])  # the first folded paragraph
    early, late = sum(first) / len(first), sum(folded) / len(folded)
    assert early >= FIRST_STEP_FLOOR
    assert late <= FOLDED_CEILING
    assert early - late >= EARLY_LATE_MARGIN
