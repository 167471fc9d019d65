"""A miniature world for DART on CPU: toy arithmetic problems, a tiny student, expert traces.

- `domain`: seedable generator of multi-step arithmetic problems, split by hash into
  train / expert / heldout.
- `styles`: the student's one-operation-per-step style and the expert's folded style.
- `train_student`: the script that trains the shipped toy student from scratch
  (`python -m dart_hub.toy.train_student --output DIR`).
- `datasets`: writes the shipped expert and held-out jsonl files.
- `long`: long expert traces (16 to 64 paragraphs) for the probing benchmark
  (`python -m dart_hub.toy.long --output FILE`).
- `model`: load the student, generate, accuracy and adaptability (f_t) curves.
- `compare`: `dart-hub demo --train`'s arms, training, grading, tables (and `--tune`).
- `baselines`: the skeptic's arms of that table (RFT, fixed cut, random cut; ours).
- `sampled`: pass@1 at temperature 0.7 and the deciding token's probability per model.
- `world_checks`: the checks a toy student must pass before a world's arms are run
  (`python -m dart_hub.toy.world_checks --student DIR`).

See docs/toy-world.md.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def _resource(relative: str) -> Path:
    return Path(str(resources.files("dart_hub").joinpath("resources", relative)))


# The toy worlds: the same domain and expert set, a different student each (docs/toy-world.md).
# default: the student works the stated product out in 40% of its own solve examples (its
# samples find the idea often); hard: continued from it with 5%, so that at temperature 0.7 its
# samples on twisted problems rarely write the product, while it still follows the idea when shown.
WORLDS = {"default": "toy_student", "hard": "toy_student_hard"}


def toy_student_path(world: str = "default") -> Path:
    """Folder of the shipped toy student of `world` (transformers layout: config, safetensors,
    tokenizer): `default` or `hard` (WORLDS)."""
    if world not in WORLDS:
        raise ValueError(f"unknown toy world {world!r}; known: {', '.join(WORLDS)}")
    return _resource(WORLDS[world])


def expert_dataset_path() -> Path:
    """The toy expert dataset (jsonl, LIMO columns: question, solution, answer)."""
    return _resource("toy/expert.jsonl")


def heldout_dataset_path() -> Path:
    """Held-out toy problems (jsonl: question, solution in the student's style, answer)."""
    return _resource("toy/heldout.jsonl")


def method_prompts_path(method: str) -> Path:
    """Prompt file (`--method-prompts`) that gives a method the toy student's own `rewrite`
    wording: `dail` or `mapper`."""
    return _resource(f"toy/{method}_prompts.yaml")


__all__ = ["WORLDS", "expert_dataset_path", "heldout_dataset_path", "method_prompts_path", "toy_student_path"]
