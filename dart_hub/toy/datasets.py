"""Write the shipped toy datasets (jsonl, LIMO column layout: question, solution, answer).

    python -m dart_hub.toy.datasets [--output dart_hub/resources/toy] [--seed 0]

- expert.jsonl: `--expert` problems of the `expert` split, solutions in the EXPERT style
  (early single-operation paragraphs, then folded ones; see `dart_hub.toy.styles`).
- heldout.jsonl: `--heldout` problems of the `heldout` split, solutions in the STUDENT style.

Both are deterministic in the seed; the splits are disjoint from each other and from the
student's training problems (hash split, `dart_hub.toy.domain`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from dart_hub.toy.domain import ToyProblem, generate_problems
from dart_hub.toy.styles import expert_solution, student_solution

DEFAULT_EXPERT = 64
DEFAULT_HELDOUT = 300


def expert_rows(count: int = DEFAULT_EXPERT, seed: int = 0) -> list[dict[str, str]]:
    return [_row(p, expert_solution(p, seed)) for p in generate_problems(count, seed, "expert")]


def heldout_rows(count: int = DEFAULT_HELDOUT, seed: int = 0) -> list[dict[str, str]]:
    return [_row(p, student_solution(p)) for p in generate_problems(count, seed, "heldout")]


def _row(problem: ToyProblem, solution: str) -> dict[str, str]:
    return {"question": problem.question, "solution": solution, "answer": str(problem.answer)}


def write_jsonl(rows: list[dict[str, str]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[dict[str, str]]:
    with Path(path).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path(__file__).resolve().parent.parent / "resources" / "toy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--expert", type=int, default=DEFAULT_EXPERT)
    parser.add_argument("--heldout", type=int, default=DEFAULT_HELDOUT)
    args = parser.parse_args(argv)
    write_jsonl(expert_rows(args.expert, args.seed), args.output / "expert.jsonl")
    write_jsonl(heldout_rows(args.heldout, args.seed), args.output / "heldout.jsonl")
    print(f"wrote {args.output / 'expert.jsonl'} and {args.output / 'heldout.jsonl'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
