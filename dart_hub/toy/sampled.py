"""Metrics of a toy model beside greedy accuracy (`dart-hub demo --train`):

- `pass_at_1`: pass@1 at temperature 0.7 (top-p 1) over `samples` samples per problem, the
  mean share of correct samples: how often the model's own sampling solves a problem, which is
  what rejection sampling (RFT) can harvest;
- `deciding_token`: on problems whose multiplier is above 1, the probability the model puts on
  `x` right after `Start: b` (solve prompt, teacher-forced): the one token that decides whether
  it works the stated product out (the idea DART's kept prefixes carry). Greedy decoding takes
  it when it is above the first factor's alternative, so it is the margin behind the greedy
  number.
"""

from __future__ import annotations

from collections.abc import Sequence

SAMPLED_TEMPERATURE = 0.7
SAMPLED_SAMPLES = 8


def pass_at_1(model: str, items, checker, *, samples: int = SAMPLED_SAMPLES, temperature: float = SAMPLED_TEMPERATURE,
              max_tokens: int = 768, batch_size: int = 100, seed: int = 0) -> list[float]:  # fmt: skip
    """Per item: the share of `samples` samples at `temperature` that are correct.

    Every item gets its own request seed (from `seed` and its id): with one seed for all, the
    engine draws the same random numbers for sample j of every problem, so with a deciding
    token at similar odds everywhere the 8 samples are 8 draws shared by all problems, not 8 per
    problem (`dart-hub eval --samples` seeds its requests per item too)."""
    from dart_hub.adaptation.judge import request_seed
    from dart_hub.answers import extract_answer
    from dart_hub.engines.base import GenerationRequest
    from dart_hub.engines.factory import create_engine

    requests = [
        GenerationRequest.chat([{"role": "user", "content": item.question}], n=samples, temperature=temperature, top_p=1.0,
                               max_tokens=max_tokens, seed=request_seed(seed, item.id, "pass1", 0))
        for item in items
    ]  # fmt: skip
    engine = create_engine("transformers", model, dtype="float32", device="cpu", batch_size=batch_size)
    try:
        outputs = engine.generate(requests)
    finally:
        engine.close()
    pairs = [(item.gold, extract_answer(c.text)) for item, group in zip(items, outputs, strict=True) for c in group[:samples]]
    verdicts = checker.equivalent_many(pairs)
    marks = [answer is not None and bool(v) for (_, answer), v in zip(pairs, verdicts, strict=True)]
    return [sum(marks[i * samples : (i + 1) * samples]) / samples for i in range(len(items))]


def deciding_token(model: str, questions: Sequence[str], batch_size: int = 64) -> list[float]:
    """Per twisted question (multiplier above 1; others are skipped): P(`x` | solve prompt,
    `Start: b`) under `model`."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from dart_hub.prompts import default_prompts
    from dart_hub.toy.domain import parse_question

    prompts = default_prompts()
    tokenizer = AutoTokenizer.from_pretrained(model)
    network = AutoModelForCausalLM.from_pretrained(model, dtype=torch.float32)
    network.eval()
    rows: list[tuple[list[int], int]] = []  # (prompt + "Start: b" ids, id of `x`)
    for question in questions:
        problem = parse_question(question)
        if not problem.twisted:
            continue
        messages = [{"role": "user", "content": prompts.render("solve", question)}]
        prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        prefix = tokenizer(prompt + f"Start: {problem.factors[0]}", add_special_tokens=False)["input_ids"]
        full = tokenizer(prompt + f"Start: {problem.factors[0]}x", add_special_tokens=False)["input_ids"]
        if full[: len(prefix)] != prefix or len(full) != len(prefix) + 1:
            raise ValueError(f"`x` after the first factor is not one token of its own for this tokenizer ({model})")
        rows.append((prefix, full[-1]))
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    out = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        width = max(len(ids) for ids, _ in batch)
        input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, (ids, _) in enumerate(batch):  # left padding: the last position is every row's next token
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            mask[row, width - len(ids) :] = 1
        with torch.inference_mode():
            logits = network(input_ids=input_ids, attention_mask=mask).logits[:, -1].float()
        probabilities = torch.softmax(logits, dim=-1)
        out += [float(probabilities[row, target]) for row, (_, target) in enumerate(batch)]
    return out
