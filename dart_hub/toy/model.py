"""Load the toy student and measure it: batched generation, accuracy, adaptability curves.

Plain transformers (`AutoModelForCausalLM` / `AutoTokenizer`), no dart-hub engine, so these
checks measure the model itself. The prompts are dart-hub's default templates
(`dart_hub.prompts.default_prompts`), rendered with the student's chat template, exactly what
`dart-hub adapt` sends.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from dart_hub.boxed import last_boxed
from dart_hub.prompts import Prompts, default_prompts
from dart_hub.steps import join_steps, split_steps
from dart_hub.toy.domain import ToyProblem
from dart_hub.toy.styles import MIN_STEP_CHARS, expert_intro, expert_solution


def load_student(path: str | Path | None = None):
    """(model, tokenizer) of the toy student (default: the shipped one), float32, eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if path is None:
        from dart_hub.toy import toy_student_path

        path = toy_student_path()
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    model.eval()
    return model, tokenizer


def render(tokenizer, messages: list[dict[str, str]]) -> str:
    return tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)


@torch.inference_mode()
def generate(
    model,
    tokenizer,
    conversations: Sequence[list[dict[str, str]]],
    *,
    temperature: float = 0.0,
    max_new_tokens: int = 256,
    seed: int = 0,
    batch_size: int = 64,
) -> list[str]:
    """One completion per conversation: greedy when temperature is 0, else sampled (top_p 1).

    Batches are left-padded; the torch RNG is reseeded per batch (seed + batch index), so a
    call is reproducible for the same inputs and batch size.
    """
    texts = [render(tokenizer, messages) for messages in conversations]
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    pad = tokenizer.pad_token_id
    out: list[str] = []
    tokenizer.padding_side = "left"
    for batch_index, start in enumerate(range(0, len(texts), batch_size)):
        batch = tokenizer(texts[start : start + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        kwargs = {"do_sample": False} if temperature <= 0 else {
            "do_sample": True, "temperature": temperature, "top_k": None, "top_p": None,
        }
        torch.manual_seed(seed + batch_index)
        generated = model.generate(
            **batch, max_new_tokens=max_new_tokens, eos_token_id=eos, pad_token_id=pad, **kwargs
        )
        new = generated[:, batch["input_ids"].shape[1] :]
        out.extend(tokenizer.batch_decode(new, skip_special_tokens=True))
    return out


def is_correct(text: str, answer: int | str) -> bool:
    boxed = last_boxed(text)
    return boxed is not None and boxed.strip() == str(answer).strip()


def solve_accuracy(model, tokenizer, problems: Sequence[ToyProblem], *, temperature: float = 0.0,
                   seed: int = 0, prompts: Prompts | None = None) -> float:
    """Share of `problems` solved from scratch with the `solve` prompt."""
    prompts = prompts or default_prompts()
    conversations = [prompts.messages("solve", p.question) for p in problems]
    texts = generate(model, tokenizer, conversations, temperature=temperature, seed=seed)
    return sum(is_correct(t, p.answer) for t, p in zip(texts, problems, strict=True)) / len(problems)


def works_out_start(texts: Sequence[str], problems: Sequence[ToyProblem]) -> float:
    """Share of answers to problems with a multiplier above 1 whose first paragraph works the
    product out (`Start: 4x3 = 12`): whether the student makes the expert's first step itself."""
    twisted = [(t, p) for t, p in zip(texts, problems, strict=True) if p.twisted]
    if not twisted:
        return 0.0
    hits = 0
    for text, problem in twisted:
        first = text.strip().split("\n\n")[0]
        b, a = problem.factors
        hits += any(f"{b}{sign}{a} = {problem.start}" in first for sign in ("x", " x ", " times ", " \u00d7 ", "*", " * "))
    return hits / len(twisted)


def follow_accuracy(model, tokenizer, problems: Sequence[ToyProblem], prompts: Prompts | None = None) -> float:
    """Share of `problems` solved (greedy) when the expert's intro is shown as the reasoning so
    far (`simulation` prompt): whether the student follows a worked-out start it is shown."""
    prompts = prompts or default_prompts()
    conversations = [prompts.messages("simulation", p.question, join_steps([expert_intro(p)])) for p in problems]
    texts = generate(model, tokenizer, conversations)
    return sum(is_correct(t, p.answer) for t, p in zip(texts, problems, strict=True)) / len(problems)


@dataclass(frozen=True)
class Curve:
    """Adaptability f_t of each problem, and the mean by step position."""

    per_problem: list[list[float]]

    @property
    def mean_by_step(self) -> list[float]:
        length = max(len(f) for f in self.per_problem)
        means = []
        for t in range(length):
            column = [f[t] for f in self.per_problem if len(f) > t]
            means.append(sum(column) / len(column))
        return means

    def counts_by_step(self) -> list[int]:
        length = max(len(f) for f in self.per_problem)
        return [sum(len(f) > t for f in self.per_problem) for t in range(length)]


def adaptability(
    model,
    tokenizer,
    items: Sequence[tuple[str, list[str], int | str]],
    *,
    n_sim: int = 4,
    temperature: float = 0.1,
    max_new_tokens: int = 256,
    seed: int = 0,
    prompts: Prompts | None = None,
) -> Curve:
    """DART's f_t for each (question, steps, answer): share of `n_sim` rollouts from the
    simulation prompt with prefix s_0..s_t whose last \\boxed{} equals the answer."""
    prompts = prompts or default_prompts()
    conversations, owners = [], []
    for index, (question, steps, _) in enumerate(items):
        for t in range(len(steps)):
            messages = prompts.messages("simulation", question, join_steps(steps[: t + 1]))
            conversations.extend([messages] * n_sim)
            owners.append((index, t))
    texts = generate(model, tokenizer, conversations, temperature=temperature,
                     max_new_tokens=max_new_tokens, seed=seed)
    per_problem = [[0.0] * len(steps) for _, steps, _ in items]
    for position, (index, t) in enumerate(owners):
        rollouts = texts[position * n_sim : (position + 1) * n_sim]
        answer = items[index][2]
        per_problem[index][t] = sum(is_correct(r, answer) for r in rollouts) / n_sim
    return Curve(per_problem)


def expert_items(problems: Sequence[ToyProblem], seed: int = 0) -> list[tuple[str, list[str], int]]:
    """(question, expert steps as dart-hub splits them, answer) for `adaptability`."""
    return [(p.question, split_steps(expert_solution(p, seed), min_chars=MIN_STEP_CHARS), p.answer) for p in problems]


def step_kinds(problem: ToyProblem, seed: int = 0) -> list[str]:
    """The kind of each step of `expert_solution(problem, seed)`: intro, single, folded,
    reveal, check or answer (see `dart_hub.toy.styles`)."""
    from dart_hub.toy.styles import expert_layout

    return expert_layout(problem, seed).kinds(len(problem.ops))


def _means(groups: dict) -> dict:
    return {k: round(sum(v) / len(v), 3) for k, v in sorted(groups.items(), key=lambda kv: str(kv[0]))}


def report(path: str | Path | None = None, problems: int = 20, heldout: int = 100, seed: int = 0) -> dict:
    """Held-out accuracy and the adaptability curve of a toy student (default: the shipped one)."""
    from dart_hub.toy import expert_dataset_path, heldout_dataset_path
    from dart_hub.toy.datasets import read_jsonl
    from dart_hub.toy.domain import parse_question

    model, tokenizer = load_student(path)
    held = [parse_question(r["question"]) for r in read_jsonl(heldout_dataset_path())[:heldout]]
    rows = read_jsonl(expert_dataset_path())[:problems]
    experts = [parse_question(r["question"]) for r in rows]
    curve = adaptability(model, tokenizer, [(r["question"], split_steps(r["solution"], min_chars=MIN_STEP_CHARS), r["answer"]) for r in rows],
                         n_sim=4, temperature=0.1, seed=seed)
    by_kind: dict[str, list[float]] = {}
    by_offset: dict[int, list[float]] = {}  # step index minus the index of the first folded step
    for problem, scores in zip(experts, curve.per_problem, strict=True):
        kinds = step_kinds(problem)
        first_fold = kinds.index("folded")
        for t, (kind, score) in enumerate(zip(kinds, scores, strict=True)):
            label = "first folded" if t == first_fold else ("later folded" if kind == "folded" else kind)
            twist = "multiplier > 1" if problem.twisted else "multiplier 1"
            by_kind.setdefault(f"{label} ({twist})", []).append(score)
            by_kind.setdefault(label, []).append(score)
            if kind not in ("reveal", "check", "answer"):
                by_offset.setdefault(t - first_fold, []).append(score)
    plain = [p for p in held if not p.twisted]
    twisted = [p for p in held if p.twisted]
    prompts = default_prompts()
    greedy = generate(model, tokenizer, [prompts.messages("solve", p.question) for p in held])
    return {
        "heldout_accuracy_greedy": sum(is_correct(t, p.answer) for t, p in zip(greedy, held, strict=True)) / len(held),
        "heldout_accuracy_t0.1": solve_accuracy(model, tokenizer, held, temperature=0.1, seed=seed + 1),
        "heldout_multiplier_1_accuracy_greedy": solve_accuracy(model, tokenizer, plain) if plain else None,
        "heldout_multiplier_above_1_accuracy_greedy": solve_accuracy(model, tokenizer, twisted) if twisted else None,
        "heldout_multiplier_above_1_worked_out": works_out_start(greedy, held),
        "heldout_multiplier_above_1_accuracy_intro_shown": follow_accuracy(model, tokenizer, twisted) if twisted else None,
        "expert_problems": len(rows),
        "f_mean_by_step": [round(x, 3) for x in curve.mean_by_step],
        "problems_by_step": curve.counts_by_step(),
        "f_mean_by_kind": _means(by_kind),
        "steps_by_kind": {k: len(v) for k, v in sorted(by_kind.items())},
        "f_mean_by_offset_from_first_folded": _means(by_offset),
        "steps_by_offset": {k: len(v) for k, v in sorted(by_offset.items())},
        "f_per_problem": curve.per_problem,
    }


if __name__ == "__main__":
    import argparse
    import json

    parser = argparse.ArgumentParser(description="Accuracy and adaptability curve of the toy student")
    parser.add_argument("--student", default=None, help="model folder (default: the shipped one)")
    parser.add_argument("--problems", type=int, default=20, help="expert problems to probe")
    parser.add_argument("--heldout", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    torch.set_num_threads(1)  # fastest on a busy 2-core machine
    print(json.dumps(report(arguments.student, arguments.problems, arguments.heldout, arguments.seed), indent=1))
