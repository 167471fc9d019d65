"""How the toy student reacts to fine-tuning: one arm's rows, several training settings, graded
on a validation set that is neither the expert set nor the held-out set.

    dart-hub demo --output out --work-dir w                      # the adapted toy set (full)
    python benchmarks/toy_sft_sweep.py --adapted out --arm full --settings 1e-4x3,3e-5x3,3e-4x5
    python benchmarks/toy_sft_sweep.py --adapted out --arm full --settings 1e-3x3 --lora 16

Validation problems: the first N problems of the toy domain's `expert` split (seed 7) that are
not among the 64 shipped expert problems, so choosing settings here never looks at the held-out
problems the demo table reports. Per setting it prints accuracy overall, on problems whose
stated multiplier is 1 and above 1, and how many answers to the latter open by working the
product out ("4x3 = 12"), the idea DART's kept prefixes carry. Deterministic for a given seed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def validation_problems(count: int, seed: int = 7):
    from dart_hub.toy.compare import validation_problems as problems

    return problems(count, seed)


def grade(model: str, problems, checker) -> dict:
    from dart_hub.engines.factory import create_engine
    from dart_hub.evaluation.benchmarks import EvalItem
    from dart_hub.evaluation.run import evaluate_items
    from dart_hub.prompts import default_prompts
    from dart_hub.toy.compare import EVAL_BATCH, EVAL_MAX_TOKENS

    prompts = default_prompts()
    items = [EvalItem(benchmark="toy-validation", id=str(i), question=prompts.render("solve", p.question), gold=str(p.answer), choices=None)
             for i, p in enumerate(problems)]  # fmt: skip
    engine = create_engine("transformers", model, dtype="float32", device="cpu", batch_size=EVAL_BATCH)
    try:
        results = evaluate_items(engine, items, checker, EVAL_MAX_TOKENS, system_prompt="")
    finally:
        engine.close()
    from dart_hub.toy.model import works_out_start

    plain = [r.correct for r, p in zip(results, problems, strict=True) if not p.twisted]
    twisted = [r.correct for r, p in zip(results, problems, strict=True) if p.twisted]
    return {
        "accuracy": round(sum(r.correct for r in results) / len(results), 4),
        "multiplier_1": f"{sum(plain)}/{len(plain)}",
        "multiplier_above_1": f"{sum(twisted)}/{len(twisted)}",
        "works_out_product": round(works_out_start([r.output for r in results], problems), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--adapted", type=Path, required=True, help="the `dart-hub demo` output folder (strategy full)")
    parser.add_argument("--arm", default="full", choices=["full", "static"], help="train on the kept rows (full) or the expert traces (static)")
    parser.add_argument("--settings", default="1e-4x3", help="comma-separated LRxEPOCHS")
    parser.add_argument("--lora", type=int, default=0, help="LoRA rank (alpha = 2 x rank); 0 = full fine-tuning")
    parser.add_argument("--problems", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--work", type=Path, default=Path("toy-sft-sweep"))
    parser.add_argument("--no-tuning", action="store_true", help="also grade the untuned student")
    args = parser.parse_args()

    from dart_hub.answers import AnswerChecker
    from dart_hub.toy import compare, toy_student_path

    problems = validation_problems(args.problems)
    files = compare.write_training_files({"full": args.adapted}, args.work)
    rows = []
    with AnswerChecker() as checker:
        if args.no_tuning:
            rows.append({"settings": "no-tuning", **grade(str(toy_student_path()), problems, checker)})
            print(json.dumps(rows[-1]), flush=True)
        for setting in args.settings.split(","):
            lr, epochs = setting.split("x")
            compare.TOY_TRAIN.update(learning_rate=float(lr), epochs=float(epochs))
            if args.lora:
                compare.TOY_TRAIN.update(lora=True, lora_rank=args.lora, lora_alpha=2 * args.lora)
            started = time.monotonic()
            model = compare.train_arm(files[args.arm], args.work / f"{args.arm}-{setting}-lora{args.lora}-seed{args.seed}", args.seed)
            row = {"settings": setting, "arm": args.arm, "lora": args.lora, **grade(model, problems, checker),
                   "seconds": round(time.monotonic() - started, 1)}  # fmt: skip
            rows.append(row)
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
