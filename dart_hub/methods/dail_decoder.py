"""DAIL's mixed-policy decoder (METHOD-DAIL.md section 2, step A): one model, two contexts,
decoded in lock-step.

At every step both contexts (e.g. the plain student and the privileged one) give next-token
distributions (temperature applied, then each renormalised over its top-k tokens). One
context *proposes*: a candidate is drawn from its top-k, up to `max_draws` times, and accepted
as soon as the *validator* context has it in its own top-k with probability >= tau. Otherwise
the token is drawn from the validator's top-k. The chosen token is appended to both contexts.
tau = 0 accepts every proposal (pure proposer), tau = 1 practically never does (pure
validator: plain sampling from the validator's context, the authors' DAIL setting).

Written by hand because no library decodes two contexts in lock-step; it runs on a
transformers causal LM with one KV cache per context (the transformers engine gives access to
the model; vLLM and OpenAI-compatible servers do not expose two contexts per step). Sampling
draws from one CPU generator per sequence seeded by the caller, so a sample does not depend on
the other sequences of the batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MixedSample:
    tokens: list[int]  # generated ids, EOS excluded
    finish_reason: str  # "stop" or "length"
    proposals_accepted: int  # tokens taken from the proposer
    steps: int


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        mask[i, width - len(row) :] = 1
    return ids.to(device), mask.to(device)


class _Context:
    """One side of the lock-step: its KV cache, mask and next positions."""

    def __init__(self, model, rows: Sequence[Sequence[int]], pad_id: int, device):
        self.model = model
        ids, self.mask = _left_pad(rows, pad_id, device)
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        out = model(input_ids=ids, attention_mask=self.mask, position_ids=positions, use_cache=True)
        self.past = out.past_key_values
        self.logits = out.logits[:, -1, :].float()
        self.next_position = positions[:, -1:] + 1

    def advance(self, tokens: torch.Tensor) -> None:
        self.mask = torch.cat([self.mask, torch.ones_like(tokens)], dim=1)
        out = self.model(
            input_ids=tokens, attention_mask=self.mask, position_ids=self.next_position,
            past_key_values=self.past, use_cache=True,
        )  # fmt: skip
        self.past = out.past_key_values
        self.logits = out.logits[:, -1, :].float()
        self.next_position = self.next_position + 1


def _top_k(logits: torch.Tensor, temperature: float, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, renormalised probabilities) of the k most likely tokens, per row (CPU)."""
    scaled = logits / max(temperature, 1e-5)
    values, ids = torch.topk(scaled, min(k, scaled.shape[-1]), dim=-1)
    return ids.cpu(), torch.softmax(values, dim=-1).cpu()


@torch.inference_mode()
def mixed_policy_generate(
    model,
    proposer: Sequence[Sequence[int]],
    validator: Sequence[Sequence[int]],
    seeds: Sequence[int],
    *,
    tau: float,
    temperature: float = 0.6,
    top_k: int = 20,
    max_draws: int = 5,
    max_tokens: int = 2048,
    eos_ids: Sequence[int],
    pad_id: int,
) -> list[MixedSample]:
    """Sample one sequence per (proposer prompt, validator prompt, seed) row."""
    device = next(model.parameters()).device
    prop = _Context(model, proposer, pad_id, device)
    val = _Context(model, validator, pad_id, device)
    generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
    eos = set(int(e) for e in eos_ids)
    rows = len(seeds)
    tokens: list[list[int]] = [[] for _ in range(rows)]
    accepted = [0] * rows
    done = [False] * rows
    steps = 0
    for _ in range(max_tokens):
        p_ids, p_probs = _top_k(prop.logits, temperature, top_k)
        v_ids, v_probs = _top_k(val.logits, temperature, top_k)
        chosen = []
        for i in range(rows):
            if done[i]:
                chosen.append(pad_id)
                continue
            validator_prob = dict(zip(v_ids[i].tolist(), v_probs[i].tolist(), strict=True))
            token = None
            for _draw in range(max_draws):
                candidate = int(p_ids[i, torch.multinomial(p_probs[i], 1, generator=generators[i])].item())
                if validator_prob.get(candidate, 0.0) >= tau:
                    token = candidate
                    accepted[i] += 1
                    break
            if token is None:
                token = int(v_ids[i, torch.multinomial(v_probs[i], 1, generator=generators[i])].item())
            chosen.append(token)
            if token in eos:
                done[i] = True
            else:
                tokens[i].append(token)
        steps += 1
        if all(done):
            break
        step_tokens = torch.tensor(chosen, dtype=torch.long, device=device).unsqueeze(1)
        prop.advance(step_tokens)
        val.advance(step_tokens)
    return [
        MixedSample(tokens=tokens[i], finish_reason="stop" if done[i] else "length", proposals_accepted=accepted[i], steps=len(tokens[i]) + (1 if done[i] else 0))
        for i in range(rows)
    ]
