"""Prompt rendering shared by the engines that hold the student's tokenizer (transformers, vLLM),
so both feed the model exactly the same prompt tokens."""

from __future__ import annotations

from typing import Any

from dart_hub.engines.base import GenerationRequest
from dart_hub.errors import DartHubError


class LocalTokenizerPrompts:
    """Mixin: needs `self.tokenizer` and `self.model_id`."""

    tokenizer: Any
    model_id: str

    def render_prompt(self, request: GenerationRequest) -> str:
        """The exact text the model continues: the chat template applied, or the raw prompt."""
        if request.prompt is not None:
            return request.prompt
        if not self.tokenizer.chat_template:
            raise DartHubError(
                f"student model '{self.model_id}' has no chat template; use an instruct model "
                "or pass a template"
            )
        return self.tokenizer.apply_chat_template(request.message_dicts(), add_generation_prompt=True, tokenize=False)

    def prompt_ids(self, request: GenerationRequest) -> list[int]:
        """Token ids of the rendered prompt. Chat prompts get no extra special tokens (the
        template has them); raw prompts get the tokenizer's (a BOS for Llama-style models) as
        vLLM does, unless the text already starts with the BOS token."""
        text = self.render_prompt(request)
        bos = self.tokenizer.bos_token
        add_special = request.prompt is not None and not (bos and text.startswith(bos))
        return list(self.tokenizer(text, add_special_tokens=add_special)["input_ids"])

    def count_tokens(self, text: str) -> int:
        """Number of tokens of `text` alone (no special tokens added)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
