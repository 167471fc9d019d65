"""Can a toy student write the expert's plan? The skill DART's kept prefixes would teach.

    python benchmarks/toy_plan_skill.py                          # the shipped toy student
    python benchmarks/toy_plan_skill.py --student DIR --problems 60 --examples 40

The expert's first steps sort the operations by label ("Sorted by label, the operations are:
(A) add 5, (B) multiply by 3, ..."). The student follows such a plan when shown it (f rises);
SFT on DART's rows can only help if the student can also *write* one. Reported, greedy, on the
first N held-out problems:

- `solve_writes_plan`: share of `solve` answers that write a plan at all, and `solve_plan_sorted`:
  share whose plan is the right one (problems listed out of order);
- `finishes_plan_after_one`: shown the intro and a plan cut after its first operation (the
  `simulation` prompt, exactly as in the student's training mix), share that write the rest of
  the plan exactly, on problems listed in label order (a copy) and out of order (a lookup);
- `token_loss`: the student's mean loss (nats) per token kind of the plan it is asked to finish,
  on training-mix examples: labels, operation words and operands. ln 3 = 1.10 nats is chance
  among add / subtract / multiply.

Deterministic for a given student and seed.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

VERBS = {" add", " subtract", " multiply"}


def plan_token_loss(model, tokenizer, examples: int, seed: int) -> dict:
    """Mean loss per token kind over the answer's plan part of `examples` partial-plan examples."""
    import torch

    from dart_hub.prompts import default_prompts
    from dart_hub.toy.domain import generate_problems
    from dart_hub.toy.train_student import TrainConfig, encode, make_example

    # a mix made only of "finish this plan" examples, drawn from the student's `train` split
    config = TrainConfig(share_solve=0.0, share_own_prefix=0.0, share_expert_prefix=0.0, share_partial_plan=1.0)
    prompts, rng = default_prompts(), random.Random(seed)
    sums: dict[str, list[float]] = {"label": [], "operation word": [], "operand": []}
    for problem in generate_problems(examples, seed=seed, split="train"):
        _, messages, answer = make_example(problem, rng, config, prompts)
        ids, labels = encode(tokenizer, messages, answer)
        with torch.no_grad():
            logprobs = torch.log_softmax(model(torch.tensor([ids])).logits[0].float(), dim=-1)
        start = labels.index(next(x for x in labels if x != -100))
        plan_end = start
        while plan_end < len(ids) and ".\n\n" not in tokenizer.decode([ids[plan_end]]):
            plan_end += 1
        previous = ""
        for i in range(start, plan_end):
            token = tokenizer.decode([ids[i]])
            loss = -float(logprobs[i - 1, ids[i]])
            if token in VERBS:
                sums["operation word"].append(loss)
            elif token.isdigit() and previous == " ":  # operands are single digits
                sums["operand"].append(loss)
            elif len(token.strip()) == 1 and token.strip().isalpha() and previous.endswith("("):
                sums["label"].append(loss)
            previous = token
    return {kind: round(sum(v) / len(v), 3) if v else None for kind, v in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", default=None, help="toy student folder (default: the shipped one)")
    parser.add_argument("--problems", type=int, default=60, help="first N held-out problems")
    parser.add_argument("--examples", type=int, default=40, help="training-mix examples for the token losses")
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()

    import torch

    from dart_hub.toy import heldout_dataset_path
    from dart_hub.toy.datasets import read_jsonl
    from dart_hub.toy.domain import parse_question
    from dart_hub.toy.model import load_student, plan_completion, plan_usage

    torch.set_num_threads(1)
    model, tokenizer = load_student(args.student)
    problems = [parse_question(r["question"]) for r in read_jsonl(heldout_dataset_path())[: args.problems]]
    in_order = [p for p in problems if p.in_order]
    scrambled = [p for p in problems if not p.in_order]
    usage = plan_usage(model, tokenizer, scrambled)
    result = {
        "student": args.student or "shipped",
        "problems": {"in_order": len(in_order), "out_of_order": len(scrambled)},
        "solve_writes_plan": usage["writes_plan"],
        "solve_plan_sorted": usage["plan_sorted"],
        "finishes_plan_after_one": {
            "in_order": round(plan_completion(model, tokenizer, in_order, given=1), 3),
            "out_of_order": round(plan_completion(model, tokenizer, scrambled, given=1), 3),
        },
        "token_loss": plan_token_loss(model, tokenizer, args.examples, args.seed),
    }
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
