"""The miniature world: toy domain, expert style, shipped datasets and the shipped toy student."""

from __future__ import annotations

import random
import re

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
    MIN_STEP_CHARS,
    expert_layout,
    expert_solution,
    expert_steps,
    literal_start_solution,
    student_solution,
    student_steps,
)

# Floors for the shipped student: measurements on this repository's machine (docs/toy-world.md)
# with a margin for other CPUs / library versions.
HELDOUT_CHECKED = 60
ACCURACY_BAND = (0.30, 0.60)  # untuned greedy accuracy: measured 0.50 on the first 60 (0.47 on 100)
PLAIN_FLOOR = 0.85  # the 30 of them with multiplier 1 (starting from the first number is right): 1.00
PRODUCT_CEILING = 0.15  # the 30 with a multiplier above 1: measured 0.00
FOLLOW_FLOOR = 0.80  # those 30 with the expert's worked-out start shown: measured 1.00
CHOICE_FLOOR = 0.90  # share of the 60 with P(x after `Start: b`) < 0.5: measured 1.00 (P 0.36-0.45)
COPY_FLOOR = 0.90  # share of the 60 where `Start: bx` is followed by the right multiplier: 1.00
CURVE_PROBLEMS = 12  # expert traces with a multiplier above 1, probed
RISE_MARGIN = 0.60  # mean f(intro) - its own accuracy at temperature 0.1: measured 1.00 - 0.00
PEAK_FLOOR = 0.80  # mean of each trace's best f before its last fold: measured 1.00
COLLAPSE_MARGIN = 0.60  # that peak minus f at the last folded step: measured 1.00 - 0.08


def _evaluate(question: str) -> tuple[int, list[int]]:
    """Independent recomputation of a toy question: (answer, values after each operation in
    label order)."""
    head, listed = question.removesuffix(". What is the result?").split(": ", 1)
    value = 1
    for factor in head.removeprefix("Start with ").split(".")[0].split("x"):
        value *= int(factor)
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
        listings.append(problem.twisted)
        # every start is stated as a product; the twist is a multiplier above 1
        assert re.match(r"Start with \d+x[1-5]\. ", problem.question)
        assert ("x1. " not in problem.question) == problem.twisted
    # about half of the problems have a multiplier above 1
    assert 0.4 <= sum(listings) / len(listings) <= 0.6


def test_solution_checker_catches_wrong_arithmetic_answers_and_starts():
    problem = next(p for p in generate_problems(20, seed=0, split="expert") if p.twisted)
    solution = expert_solution(problem)
    assert solution_errors(problem.question, solution) == []
    first = student_steps(problem)[0]
    wrong_value = first.rsplit(" ", 1)[0] + f" {problem.values[1] + 1}"
    assert solution_errors(problem.question, student_solution(problem).replace(first, wrong_value))
    assert solution_errors(problem.question, solution.replace("\\boxed{", "\\boxed{1"))
    b, a = problem.factors
    assert solution_errors(problem.question, solution.replace(f"Start: {b}x{a} = ", f"Start: {b}x{a} = 1"))
    assert solution_errors(problem.question, "no answer here") == ["no boxed answer"]
    # starting from the first number is wrong with a multiplier above 1 (what the untuned student
    # mostly does), right with a multiplier of 1
    assert solution_errors(problem.question, literal_start_solution(problem))
    one = next(p for p in generate_problems(20, seed=0, split="expert") if not p.twisted)
    assert one.factors[1] == 1 and solution_errors(one.question, literal_start_solution(one)) == []
    with pytest.raises(ValueError, match="do not multiply"):
        ToyProblem(12, problem.ops, (5, 3))
    with pytest.raises(ValueError, match="in order"):
        parse_question(problem.question.replace("(A)", "(X)").replace("(B)", "(A)").replace("(X)", "(B)"))


def test_expert_traces_are_correct_long_and_shaped_as_designed():
    problems = generate_problems(200, seed=0, split="expert")
    lengths, early = [], 0
    for problem in problems:
        solution = expert_solution(problem)
        assert solution_errors(problem.question, solution) == [], solution  # the domain's evaluator
        steps = split_steps(solution, min_chars=MIN_STEP_CHARS)
        assert steps == solution.split("\n\n")  # every paragraph is one dart-hub step
        kinds = expert_layout(problem).kinds(len(problem.ops))
        assert len(kinds) == len(steps)
        assert kinds[0] == "intro" and kinds[-1] == "answer" and "folded" in kinds
        # the intro works the stated product out (the learnable idea),
        # then the single steps are written exactly as the student writes them
        assert steps[0] == f"Start: {problem.factors[0]}x{problem.factors[1]} = {problem.start}"
        assert steps[1] == student_steps(problem)[0]
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


def test_shipped_student_is_far_from_ceiling_because_it_starts_from_the_first_number(student):
    from dart_hub.toy.model import follow_accuracy, solve_accuracy

    model, tokenizer = student
    problems = [parse_question(r["question"]) for r in read_jsonl(heldout_dataset_path())[:HELDOUT_CHECKED]]
    plain = [p for p in problems if not p.twisted]
    twisted = [p for p in problems if p.twisted]
    overall = solve_accuracy(model, tokenizer, problems, temperature=0.0)
    assert ACCURACY_BAND[0] <= overall <= ACCURACY_BAND[1]
    assert solve_accuracy(model, tokenizer, plain) >= PLAIN_FLOOR  # it is not broken
    assert solve_accuracy(model, tokenizer, twisted) <= PRODUCT_CEILING  # it lacks the idea
    assert follow_accuracy(model, tokenizer, twisted) >= FOLLOW_FLOOR  # and follows it when shown


def test_shipped_student_can_work_the_product_out_but_does_not_choose_to(student):
    """What makes the idea learnable from a few dozen rows: after `Start: 4` the student puts
    less than even odds on `x` (so greedy decoding starts from the first factor), and once it
    writes `Start: 4x` it copies the multiplier from the question (teacher-forced, greedy next
    token), whatever the multiplier."""
    torch = pytest.importorskip("torch")
    from dart_hub.prompts import default_prompts

    model, tokenizer = student
    prompts = default_prompts()
    problems = [parse_question(r["question"]) for r in read_jsonl(heldout_dataset_path())[:HELDOUT_CHECKED]]
    (x_id,) = tokenizer.encode("x", add_special_tokens=False)

    def next_token(text: str):
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            return torch.softmax(model(ids).logits[0, -1], -1)

    chooses, copies = [], []
    for problem in problems:
        b, a = problem.factors
        head = tokenizer.apply_chat_template(prompts.messages("solve", problem.question), add_generation_prompt=True, tokenize=False)
        chooses.append(next_token(f"{head}Start: {b}")[x_id].item())
        copies.append(tokenizer.decode([int(next_token(f"{head}Start: {b}x").argmax())]) == str(a))
    assert sum(p < 0.5 for p in chooses) / len(chooses) >= CHOICE_FLOOR  # it rarely chooses the idea
    assert sum(copies) / len(copies) >= COPY_FLOOR  # but can carry it out


def test_shipped_student_records_its_training_and_was_trained_on_the_current_prompts():
    """...and with the trainer's defaults, from scratch: `python -m dart_hub.toy.train_student
    --output dart_hub/resources/toy_student` rebuilds it (the command the docs give)."""
    import json
    from dataclasses import asdict

    from dart_hub.prompts import default_prompts
    from dart_hub.toy.train_student import TrainConfig

    info = json.loads((toy_student_path() / "training.json").read_text(encoding="utf-8"))
    assert info["config"] == asdict(TrainConfig())
    assert ACCURACY_BAND[0] <= info["heldout_accuracy_greedy"] <= ACCURACY_BAND[1]
    assert info["prompts_fingerprint"] == default_prompts().fingerprint(), (
        "dart_hub/resources/prompts.yaml changed since the toy student was trained on it; retrain "
        "it: python -m dart_hub.toy.train_student --output dart_hub/resources/toy_student"
    )


def test_adaptability_rises_with_the_intro_then_collapses_on_folded_steps(student):
    """A real measurement of DART's Eq. 3 on the shipped student, on expert traces whose start
    is a product, probed from the intro to their last folded step: f after the intro (which works
    the product out) is far above the student's own accuracy on those problems, and the last
    folded step falls well below the best step before it."""
    from dart_hub.toy.model import adaptability, solve_accuracy, step_kinds

    model, tokenizer = student
    rows = [r for r in read_jsonl(expert_dataset_path()) if parse_question(r["question"]).twisted][:CURVE_PROBLEMS]
    items = []
    for row in rows:
        kinds = step_kinds(parse_question(row["question"]))
        last_fold = max(t for t, kind in enumerate(kinds) if kind == "folded")
        assert kinds[0] == "intro"
        items.append((row["question"], split_steps(row["solution"], min_chars=MIN_STEP_CHARS)[: last_fold + 1], row["answer"]))
    curve = adaptability(model, tokenizer, items, n_sim=4, temperature=0.1, seed=0)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    alone = solve_accuracy(model, tokenizer, [parse_question(r["question"]) for r in rows], temperature=0.1)
    intro = mean([f[0] for f in curve.per_problem])
    peak = mean([max(f[:-1]) for f in curve.per_problem])  # best step before the last fold
    last_fold = mean([f[-1] for f in curve.per_problem])
    assert intro - alone >= RISE_MARGIN  # rises: the worked-out start is what the student lacks
    assert peak >= PEAK_FLOOR
    assert peak - last_fold >= COLLAPSE_MARGIN  # and collapses on the folds


def test_training_mix_mostly_starts_from_the_first_factor_and_trains_the_turn_end():
    """The student's `solve` answers start from the first factor (its misconception) except in
    --share-work-out of them, which work the product out; every continuation prompt shows the
    worked-out start; the loss covers `<|im_end|>` and the newline after it, as TRL's does."""
    from dataclasses import replace
    from itertools import islice

    from dart_hub.prompts import default_prompts
    from dart_hub.toy.train_student import TrainConfig, encode, example_stream

    prompts = default_prompts()
    for share in (0.1, 0.5):
        examples = list(islice(example_stream(replace(TrainConfig(seed=3), share_work_out=share), prompts), 2000))
        solve = [a for n, _, a in examples if n == "solve"]
        worked = [a for a in solve if re.match(r"Start: \d+x\d+ = ", a)]
        assert abs(len(worked) / len(solve) - share) < 0.06
        for name, messages, _ in examples:
            if name in ("simulation", "exploration"):
                b, a = map(int, re.search(r"Start with (\d+)x(\d+)\.", messages[-1]["content"]).groups())
                assert f"Start: {b}x{a} = {b * a}" in messages[-1]["content"]
    tokenizer = pytest.importorskip("transformers").AutoTokenizer.from_pretrained(str(toy_student_path()))
    ids, labels = encode(tokenizer, [{"role": "user", "content": "Start with 2x1."}], "Start: 2")
    assert tokenizer.decode(labels[-2:]) == "<|im_end|>\n" and labels[-2:] == ids[-2:]
