"""DAIL's contrastive distillation objective (METHOD-DAIL.md section 2, Step C).

For a response y_1..y_T and three prompts (plain x_S, privileged x_P, negative x_N), at each
response position t:

    l_t = KL(p_t || P_t) - lambda * KL(p_t || N_t)

    p_t = p_theta(. | x_S, y_<t)   the trained model on the plain prompt (gets gradients)
    P_t = q_0(. | x_P, y_<t)       the FROZEN initial weights on the privileged prompt
    N_t = q_0(. | x_N, y_<t)       the FROZEN initial weights on the negative prompt

KL(a || b) = sum_v a(v) (log a(v) - log b(v)) ("reverse", the default; "forward" swaps the
arguments). The loss is the mean of l_t over the response positions of the batch.

Alignment. Each view is `prompt + response` (the response tokens are the same in all three);
prompts have different lengths and rows are padded. In a view whose response starts at index
`s` of the padded row (`s` = left padding + prompt length), the hidden state that predicts
response token y_j (0-based j) sits at index `s + j - 1`. Positions are gathered per view with
their own `s`, so position j of the student is compared with position j of both references.
Position ids come from the attention mask, so left and right padding give the same numbers.

Memory. The models return hidden states (only one position of logits); the output head, the
log-softmax and the KLs run over chunks of `chunk_size` response positions. Each chunk runs
under activation checkpointing: its [chunk, vocab] tensors are recomputed in the backward pass
instead of being kept, so at most a few [chunk, vocab] float32 tensors are alive at once,
whatever the sequence length (the transformer trunk's activations are the usual ones; use
`gradient_checkpointing` for those).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

REVERSE = "reverse"
FORWARD = "forward"
KL_DIRECTIONS = (REVERSE, FORWARD)
DEFAULT_LAMBDA = 0.1  # METHOD-DAIL.md section 3 (the authors' code)
DEFAULT_CHUNK_SIZE = 1024  # response positions per head/log-softmax chunk

VIEWS = ("student", "privileged", "negative")


@dataclass
class DailLossOutput:
    """The loss (mean over response positions) and its two terms (detached means)."""

    loss: Any
    kl_privileged: float
    kl_negative: float
    positions: int


# -- batches ------------------------------------------------------------------------------------


class DailCollator:
    """Features {"prompt_ids", "privileged_prompt_ids", "negative_prompt_ids", "response_ids"}
    (token id lists) -> three padded views sharing the response tokens.

    For each view V in (student, privileged, negative): `V_input_ids`, `V_attention_mask`,
    `V_position_ids` [B, L_V], `V_prompt_len` and `V_response_start` [B] (index of the first
    response token in the padded row); plus `response_length` [B]."""

    prompt_keys = {"student": "prompt_ids", "privileged": "privileged_prompt_ids", "negative": "negative_prompt_ids"}

    def __init__(self, pad_token_id: int, padding_side: str = "right"):
        if padding_side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
        self.pad_token_id = int(pad_token_id)
        self.padding_side = padding_side

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        import torch

        batch: dict[str, Any] = {}
        responses = [list(f["response_ids"]) for f in features]
        if any(not r for r in responses):
            raise ValueError("every DAIL example needs at least one response token")
        batch["response_length"] = torch.tensor([len(r) for r in responses], dtype=torch.long)
        for view, key in self.prompt_keys.items():
            prompts = [list(f[key]) for f in features]
            if any(not p for p in prompts):
                raise ValueError(f"the {view} prompt of a DAIL example is empty")
            rows = [p + r for p, r in zip(prompts, responses, strict=True)]
            width = max(len(row) for row in rows)
            ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
            mask = torch.zeros((len(rows), width), dtype=torch.long)
            starts = []
            for i, (row, prompt) in enumerate(zip(rows, prompts, strict=True)):
                offset = width - len(row) if self.padding_side == "left" else 0
                ids[i, offset : offset + len(row)] = torch.tensor(row, dtype=torch.long)
                mask[i, offset : offset + len(row)] = 1
                starts.append(offset + len(prompt))
            batch[f"{view}_input_ids"] = ids
            batch[f"{view}_attention_mask"] = mask
            batch[f"{view}_position_ids"] = position_ids(mask)
            batch[f"{view}_prompt_len"] = torch.tensor([len(p) for p in prompts], dtype=torch.long)
            batch[f"{view}_response_start"] = torch.tensor(starts, dtype=torch.long)
        return batch


def position_ids(mask):
    """0, 1, 2, ... over the real tokens of each row, whatever the padding side (pads: 0)."""
    return (mask.cumsum(-1) - 1).clamp(min=0) * mask


def response_index(response_start, response_length):
    """(row, column) indices of the hidden states that predict each response token, in the
    order (row 0: y_1..y_T0, row 1: ...), identical across views. Column = start + j - 1."""
    import torch

    rows, cols = [], []
    for b, (start, length) in enumerate(zip(response_start.tolist(), response_length.tolist(), strict=True)):
        if start < 1:
            raise ValueError("a response must follow a non-empty prompt (nothing predicts its first token)")
        rows.extend([b] * length)
        cols.extend(range(start - 1, start - 1 + length))
    device = response_start.device
    return torch.tensor(rows, dtype=torch.long, device=device), torch.tensor(cols, dtype=torch.long, device=device)


# -- the loss -----------------------------------------------------------------------------------


def _language_model(model):
    """The causal LM under DDP / PEFT wrappers (its output head is what we call per chunk)."""
    inner = getattr(model, "module", model)
    if hasattr(inner, "get_base_model"):
        inner = inner.get_base_model()
    return inner


def _head(model, frozen: bool):
    head = _language_model(model).get_output_embeddings()
    # A LoRA-wrapped head (only when the user targets it): the reference uses its base layer.
    return getattr(head, "base_layer", head) if frozen else head


def _hidden(model, batch: dict[str, Any], view: str):
    """Last hidden states [B, L, H] of one view (after the final norm), through the model's own
    forward (DDP / PEFT hooks run) with logits for one position only."""
    out = model(
        input_ids=batch[f"{view}_input_ids"],
        attention_mask=batch[f"{view}_attention_mask"],
        position_ids=batch[f"{view}_position_ids"],
        output_hidden_states=True,
        logits_to_keep=1,
        use_cache=False,
    )
    return out.hidden_states[-1]


def kl_terms(student_logits, privileged_logprobs, negative_logprobs, kl: str = REVERSE):
    """Per-position KL(p || P) and KL(p || N) (reverse) or KL(P || p) and KL(N || p) (forward),
    in float32. `negative_logprobs` may be None (lambda = 0)."""
    import torch

    logp = torch.log_softmax(student_logits.float(), dim=-1)
    if kl == REVERSE:
        p = logp.exp()
        kp = (p * (logp - privileged_logprobs)).sum(-1)
        kn = (p * (logp - negative_logprobs)).sum(-1) if negative_logprobs is not None else None
    elif kl == FORWARD:
        kp = (privileged_logprobs.exp() * (privileged_logprobs - logp)).sum(-1)
        kn = (negative_logprobs.exp() * (negative_logprobs - logp)).sum(-1) if negative_logprobs is not None else None
    else:
        raise ValueError(f"kl must be one of {KL_DIRECTIONS}, got {kl!r}")
    return kp, kn


def _chunk(student_head, reference_head, kl, h_s, h_p, h_n):
    import torch

    with torch.no_grad():
        log_p = torch.log_softmax(reference_head(h_p).float(), dim=-1)
        log_n = torch.log_softmax(reference_head(h_n).float(), dim=-1) if h_n is not None else None
    kp, kn = kl_terms(student_head(h_s), log_p, log_n, kl)
    return kp, (kn if kn is not None else torch.zeros_like(kp))


def dail_loss(
    model,
    batch: dict[str, Any],
    *,
    reference_model=None,
    lam: float = DEFAULT_LAMBDA,
    kl: str = REVERSE,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
) -> DailLossOutput:
    """The DAIL loss of one collated batch (see the module docstring).

    `reference_model`: a frozen copy of the initial weights; None means `model` is a PEFT model
    and the references are `model` with its adapter disabled."""
    import torch
    from torch.utils.checkpoint import checkpoint

    if kl not in KL_DIRECTIONS:
        raise ValueError(f"kl must be one of {KL_DIRECTIONS}, got {kl!r}")
    if chunk_size < 1:
        raise ValueError("chunk_size must be >= 1")
    lengths = batch["response_length"]
    index = {view: response_index(batch[f"{view}_response_start"], lengths) for view in VIEWS}
    h_s = _hidden(model, batch, "student")[index["student"]]

    if reference_model is None:
        reference = getattr(model, "module", model)
        if not hasattr(reference, "disable_adapter"):
            raise ValueError("without a reference model, the trained model must be a PEFT (LoRA) model")
        frozen = reference.disable_adapter()
    else:
        reference = reference_model
        frozen = contextlib.nullcontext()
    with torch.no_grad(), frozen:
        h_p = _hidden(reference, batch, "privileged")[index["privileged"]]
        h_n = _hidden(reference, batch, "negative")[index["negative"]] if lam != 0 else None
    student_head = _head(model, frozen=False)
    reference_head = _head(reference, frozen=True)

    total = h_s.new_zeros((), dtype=torch.float32)
    sum_p = sum_n = 0.0
    positions = h_s.shape[0]
    for start in range(0, positions, chunk_size):
        part = slice(start, start + chunk_size)
        args = (student_head, reference_head, kl, h_s[part], h_p[part], h_n[part] if h_n is not None else None)
        if torch.is_grad_enabled() and h_s.requires_grad:
            kp, kn = checkpoint(_chunk, *args, use_reentrant=False)
        else:
            kp, kn = _chunk(*args)
        total = total + kp.sum() - lam * kn.sum()
        sum_p += float(kp.detach().sum())
        sum_n += float(kn.detach().sum())
    return DailLossOutput(
        loss=total / positions,
        kl_privileged=sum_p / positions,
        kl_negative=sum_n / positions,
        positions=positions,
    )
