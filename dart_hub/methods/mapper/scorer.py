"""The student's likelihood of a rewrite, for the alignment reward.

`TransformersScorer` runs the frozen student with transformers on its own device (so the mapper
can train on another): it renders the question as SFT will show it (optional system prompt +
the question as the user turn, the student's chat template, generation prompt) and returns the
mean log-probability per token of the response, in batches. Prompt and response are tokenised
separately and concatenated, so the response's tokens are exactly those SFT trains on.

A vLLM path (prompt log-probabilities of `prompt + response` with `prompt_logprobs=0`) would
serve large runs; it is not built yet (docs/mapper.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from dart_hub.errors import DartHubError


class TransformersScorer:
    name = "transformers"

    def __init__(self, model: str, *, device: str | None = None, dtype: str = "auto", batch_size: int = 8,
                 max_length: int = 4096, system: str = "", revision: str | None = None):  # fmt: skip
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_id = model
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = batch_size
        self.max_length = max_length
        self.system = system
        torch_dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}.get(dtype)
        if torch_dtype is None:
            raise DartHubError(f"scorer dtype '{dtype}' is not one of auto, float32, bfloat16, float16")
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(model, revision=revision)
            self.model = AutoModelForCausalLM.from_pretrained(model, revision=revision, dtype=torch_dtype).to(self.device)
        except OSError as error:
            raise DartHubError(f"cannot load the student '{model}' for likelihood scoring: {error}") from error
        self.model.eval()
        self.model.requires_grad_(False)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        self.cache: dict[tuple[str, str], float] = {}

    def prompt_ids(self, question: str) -> list[int]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": question})
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def mean_logprobs(self, questions: Sequence[str], responses: Sequence[str]) -> list[float]:
        """(1/|z|) sum_t log p(z_t | x, z<t) for each (question x, response z); -inf for an
        empty response. Results are cached by (question, response)."""
        keys = list(zip(questions, responses, strict=True))
        todo = sorted({k for k in keys if k not in self.cache}, key=lambda k: len(k[0]) + len(k[1]))
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            self.cache.update(zip(batch, self._score(batch), strict=True))
        return [self.cache[k] for k in keys]

    def _score(self, batch: Sequence[tuple[str, str]]) -> list[float]:
        import torch

        sequences, spans = [], []
        for question, response in batch:
            prompt = self.prompt_ids(question)
            answer = self.tokenizer(response, add_special_tokens=False)["input_ids"]
            ids = (prompt + answer)[: self.max_length]
            sequences.append(ids)
            spans.append((len(prompt), len(ids)))
        width = max(len(s) for s in sequences)
        input_ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for row, ids in enumerate(sequences):
            input_ids[row, : len(ids)] = torch.tensor(ids)
            mask[row, : len(ids)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device)).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            token_lp = logprobs.gather(-1, input_ids[:, 1:].to(self.device).unsqueeze(-1)).squeeze(-1).cpu()
        out = []
        for row, (begin, end) in enumerate(spans):
            if end <= begin:
                out.append(-math.inf)
                continue
            # token t is predicted at position t - 1
            out.append(float(token_lp[row, begin - 1 : end - 1].mean()))
        return out

    def describe(self) -> dict[str, Any]:
        return {"scorer": self.name, "model": self.model_id, "device": str(self.device), "batch_size": self.batch_size}

    def close(self) -> None:
        self.model = None
