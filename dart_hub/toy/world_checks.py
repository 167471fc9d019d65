"""The checks a toy student must pass before a world's arms are run (issue 29's harder world).

    python -m dart_hub.toy.world_checks --student DIR [--problems 300] [--output checks.json]

On the twisted held-out problems (multiplier above 1, among the first `problems` of
heldout.jsonl, the demo's held-out set), with dart-hub's `solve` prompt:

- `writes_product_t07`: the share of samples at temperature 0.7 (8 per problem, top-p 1) whose
  first paragraph works the stated product out (`Start: 4x3 = 12`): how often the student's own
  sampling finds the idea, which is what rejection sampling (RFT) can harvest. The harder world
  asks for fewer than 5%;
- `correct_t07`: the share of those samples that are correct;
- `deciding_token`: the mean probability of `x` right after `Start: b` (teacher-forced);
- `copies_multiplier`: after `Start: bx` (teacher-forced), the share of problems whose most
  likely next token is the question's multiplier (every held-out problem, as docs/toy-world.md
  counts it): it can carry the idea out;
- `carries_out_greedy`: greedy answers whose assistant turn is forced to begin with `Start: bx`,
  share correct: it finishes the idea once it has started it;
- `follows_shown_start`: the share solved (greedy) when the expert's worked-out start is shown
  as the reasoning so far (`simulation` prompt): it follows the idea when shown;
- `greedy_accuracy`, overall and on the twisted problems.

A world's settings are fixed by these numbers, measured and recorded before any arm runs.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch

# the first paragraph works the product out: `Start: 4x3 = 12` (any spacing around x)
_WORKS_OUT = re.compile(r"^\s*Start:\s*(\d+)\s*x\s*(\d+)\s*=")
CHECK_SAMPLES = 8
CHECK_TEMPERATURE = 0.7
# The harder world's criteria, fixed before any arm ran on it: its own samples rarely find the
# idea (issue 29: under 5% at temperature 0.7), greedy never, and it still carries the idea out
# and follows it when shown (the default student: 1.00 on each).
HARD_WORLD_CRITERIA = {
    "writes_product_t07": ("<", 0.05),
    "greedy_accuracy_twisted": ("<=", 0.05),
    "copies_multiplier": (">=", 0.95),
    "carries_out_greedy": (">=", 0.95),
    "follows_shown_start": (">=", 0.95),
}


def unmet(checks: dict, criteria: dict = HARD_WORLD_CRITERIA) -> list[str]:
    """The criteria `checks` (check_student's numbers) fail, as readable lines; [] when all hold."""
    failed = []
    for name, (op, bound) in criteria.items():
        value = checks[name]
        ok = value < bound if op == "<" else value <= bound if op == "<=" else value >= bound
        if not ok:
            failed.append(f"{name} = {value} (wanted {op} {bound})")
    return failed


def heldout_problems(count: int):
    from dart_hub.toy import heldout_dataset_path
    from dart_hub.toy.datasets import read_jsonl
    from dart_hub.toy.domain import parse_question

    return [parse_question(row["question"]) for row in read_jsonl(heldout_dataset_path())[:count]]


def writes_product(text: str) -> bool:
    return _WORKS_OUT.match(text) is not None


@torch.inference_mode()
def _copies_multiplier(model, tokenizer, problems, prompts) -> float:
    from dart_hub.toy.model import render

    hits = 0
    for problem in problems:
        b, a = problem.factors
        prompt = render(tokenizer, prompts.messages("solve", problem.question)) + f"Start: {b}x"
        ids = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"]
        best = int(model(input_ids=ids).logits[0, -1].argmax())
        hits += tokenizer.decode([best]) == str(a)[0]
    return hits / len(problems)


@torch.inference_mode()
def _forced_start_accuracy(model, tokenizer, problems, prompts, batch_size: int = 64) -> float:
    """Greedy completions of the solve prompt whose answer begins with `Start: bx`."""
    from dart_hub.toy.model import is_correct, render

    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    tokenizer.padding_side = "left"
    correct = 0
    for start in range(0, len(problems), batch_size):
        batch = problems[start : start + batch_size]
        heads = [f"Start: {p.factors[0]}x" for p in batch]
        texts = [render(tokenizer, prompts.messages("solve", p.question)) + h for p, h in zip(batch, heads, strict=True)]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        generated = model.generate(**encoded, max_new_tokens=256, do_sample=False, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
        new = tokenizer.batch_decode(generated[:, encoded["input_ids"].shape[1] :], skip_special_tokens=True)
        correct += sum(is_correct(h + t, p.answer) for h, t, p in zip(heads, new, batch, strict=True))
    return correct / len(problems)


def check_student(student: str | Path, problems: int = 300, samples: int = CHECK_SAMPLES, seed: int = 0) -> dict:
    """The numbers above for the toy student in `student` (a transformers folder)."""
    from dart_hub.prompts import default_prompts
    from dart_hub.toy.model import follow_accuracy, generate, is_correct, load_student
    from dart_hub.toy.sampled import deciding_token

    started = time.time()
    prompts = default_prompts()
    model, tokenizer = load_student(student)
    every = heldout_problems(problems)
    twisted = [p for p in every if p.twisted]
    conversations = [prompts.messages("solve", p.question) for p in twisted for _ in range(samples)]
    texts = generate(model, tokenizer, conversations, temperature=CHECK_TEMPERATURE, seed=seed)
    owners = [p for p in twisted for _ in range(samples)]
    product = [writes_product(t) for t in texts]
    correct = [is_correct(t, p.answer) for t, p in zip(texts, owners, strict=True)]
    greedy = generate(model, tokenizer, [prompts.messages("solve", p.question) for p in every])
    greedy_ok = [is_correct(t, p.answer) for t, p in zip(greedy, every, strict=True)]
    per_problem_found = [any(product[i * samples : (i + 1) * samples]) for i in range(len(twisted))]
    return {
        "student": str(student),
        "heldout_problems": len(every),
        "twisted_problems": len(twisted),
        "samples_per_problem": samples,
        "temperature": CHECK_TEMPERATURE,
        "writes_product_t07": round(sum(product) / len(product), 4),
        "problems_with_a_sample_writing_product": sum(per_problem_found),
        "correct_t07": round(sum(correct) / len(correct), 4),
        "deciding_token": round(sum(deciding_token(str(student), [p.question for p in twisted])) / len(twisted), 4),
        "copies_multiplier": round(_copies_multiplier(model, tokenizer, every, prompts), 4),
        "carries_out_greedy": round(_forced_start_accuracy(model, tokenizer, twisted, prompts), 4),
        "follows_shown_start": round(follow_accuracy(model, tokenizer, twisted, prompts), 4),
        "greedy_accuracy": round(sum(greedy_ok) / len(every), 4),
        "greedy_accuracy_twisted": round(sum(ok for ok, p in zip(greedy_ok, every, strict=True) if p.twisted) / len(twisted), 4),
        "seconds": round(time.time() - started, 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The toy world checks of a toy student (see the module docstring).")
    parser.add_argument("--student", required=True, help="toy student folder")
    parser.add_argument("--problems", type=int, default=300, help="first N held-out problems")
    parser.add_argument("--output", type=Path, default=None, help="also write the numbers to this json file")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    result = check_student(args.student, args.problems)
    result["hard_world_criteria"] = {name: f"{op} {bound}" for name, (op, bound) in HARD_WORLD_CRITERIA.items()}
    result["hard_world_unmet"] = unmet(result)
    text = json.dumps(result, indent=2) + "\n"
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    print(text, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
