"""The transformers engine: batched `model.generate` on CPU or one GPU.

The fallback engine for machines without vLLM (and the one the tests run). It batches all the
requests of a call together, many prompts per `generate`, with left padding.

Sampling and reproducibility. transformers' own sampling draws from the global torch RNG over
the whole batch, so a sequence's tokens would depend on which other sequences share its batch.
`GenerationRequest` promises the opposite (same request + seed -> same texts, whatever else is
in the call), so sampling is done by `_SeededSampler` below: every sequence gets its own stream
of uniforms, drawn up front from a CPU generator seeded with (request seed, sample index), and
picks its token by inverse-CDF on the temperature/top-p warped distribution (transformers'
`TemperatureLogitsWarper` / `TopPLogitsWarper` do the warping; generate itself runs greedy and
just takes the one token the sampler leaves). This is the only hand-written part of decoding.

What is guaranteed: for a given model, dtype, device and library versions, a request's
completions depend only on the request (prompt, n, temperature, top_p, max_tokens, stop, seed),
not on the other requests of the call, their order, nor `batch_size`, up to floating-point
differences in the logits between batch shapes (padding, batch size). In float32 on CPU there
were none in our tests (tests/test_engine_transformers.py checks it); in float16/bfloat16 on a
GPU batch-shape-dependent kernels may flip a near-tie now and then, after which that sequence
goes its own way. Identical calls give identical results. Sample j of a request depends on
(seed, sample_offset + j) only, so n=2 returns the first two samples of n=4. Two requests with the same seed
use the same uniforms (as with vLLM's per-request seeds): callers should derive distinct seeds.
Greedy requests (temperature 0) ignore seed and top_p.

Completions: text is decoded without special tokens and cut before the earliest stop string;
stop strings only match generated text, never across the prompt boundary (as in vLLM).
completion_tokens counts the tokens generated for the sequence, up to and including the EOS or
the token that completed the stop string (never padding). Raw prompts are tokenized with the
tokenizer's special tokens (a BOS for Llama-style models, as vLLM does) unless the text already
starts with the BOS; chat prompts are rendered with the chat template and tokenized as is.
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GenerationConfig,
    LogitsProcessor,
    LogitsProcessorList,
    StoppingCriteria,
    StoppingCriteriaList,
    StopStringCriteria,
    TemperatureLogitsWarper,
    TopPLogitsWarper,
)

from dart_hub.engines.base import Completion, GenerationRequest, ProgressCallback
from dart_hub.engines.local import LocalTokenizerPrompts
from dart_hub.errors import DartHubError

_DTYPES = ("auto", "float16", "bfloat16", "float32")


def _row_seed(seed: int, index: int) -> int:
    """A 63-bit generator seed for sample `index` of a request seeded with `seed`."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & ((1 << 63) - 1)


def _looks_like_path(model_id: str) -> bool:
    """Hub ids are 'name' or 'owner/name'; anything else (or an existing path) is a local path."""
    return (
        os.path.exists(model_id)
        or model_id.startswith((".", "/", "~", "\\"))
        or model_id.count("/") > 1
        or (os.sep != "/" and os.sep in model_id)
    )


class TransformersEngine(LocalTokenizerPrompts):
    """Generate with a Hugging Face causal LM through `transformers` (see the module docstring).

    model_id: a Hub id (`owner/name`, honouring HF_ENDPOINT / HF_HOME / HF_TOKEN / HF_HUB_OFFLINE)
    or a local folder. dtype: "auto" (float16 on CUDA, as in the paper; float32 on CPU),
    "float16", "bfloat16" or "float32". device: "auto" (cuda if available, else cpu) or a torch
    device string. batch_size: sequences per `generate` call. chat_template: a Jinja template
    replacing (or supplying) the tokenizer's.

    Sampling uses the request's parameters only: the model's generation_config defaults
    (temperature, top_k, top_p, repetition_penalty, ...) are ignored; only its EOS ids are kept.
    """

    name = "transformers"

    def __init__(
        self,
        model_id: str,
        *,
        revision: str | None = None,
        dtype: str = "auto",
        device: str = "auto",
        batch_size: int = 32,
        trust_remote_code: bool = False,
        chat_template: str | None = None,
        local_files_only: bool = False,
    ) -> None:
        """`local_files_only`: load from the local Hugging Face cache without asking the Hub
        (the factory sets it when the Hub cannot be reached but the model is cached)."""
        self.model_id = model_id
        self.revision = revision
        if batch_size < 1:
            raise DartHubError(f"batch size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self.device = self._resolve_device(device)
        self.dtype = self._resolve_dtype(dtype, self.device)

        source = model_id
        if _looks_like_path(model_id):
            source = str(Path(model_id).expanduser())
            if not os.path.exists(source):
                raise DartHubError(
                    f"could not load student model '{model_id}': no such folder. "
                    "Check the path, or pass a Hub id such as Qwen/Qwen2.5-0.5B-Instruct"
                )
        load_kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
        if local_files_only:
            load_kwargs["local_files_only"] = True
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(source, **load_kwargs)
            self.model = AutoModelForCausalLM.from_pretrained(
                source, dtype=getattr(torch, self.dtype), device_map=self.device, **load_kwargs
            )
        except (OSError, ValueError, KeyError) as exc:
            raise DartHubError(self._load_error(model_id, revision, exc)) from exc
        self.model.eval()

        if chat_template is not None:
            self.tokenizer.chat_template = chat_template
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Every id that ends a sequence: the generation config's list (Qwen2.5-Instruct: <|im_end|>
        # and <|endoftext|>) plus the tokenizer's EOS. Public: a caller may adjust it.
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        if not eos_ids:
            raise DartHubError(
                f"student model '{model_id}' defines no end-of-sequence token (eos_token_id); "
                "set one in its generation_config.json or tokenizer_config.json"
            )
        self.eos_token_ids: frozenset[int] = frozenset(eos_ids)
        pad = self.tokenizer.pad_token_id
        # Replace the model's sampling defaults by a neutral config: requests say how to sample.
        self.model.generation_config = GenerationConfig(
            bos_token_id=self.model.generation_config.bos_token_id,
            eos_token_id=sorted(self.eos_token_ids),
            pad_token_id=pad,
        )

    # -- set-up helpers ---------------------------------------------------------------------

    @staticmethod
    def _resolve_device(device: str) -> str:
        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        try:
            parsed = torch.device(device)
        except (RuntimeError, ValueError) as exc:
            raise DartHubError(f"unknown device '{device}'; use auto, cpu, cuda or cuda:N") from exc
        if parsed.type == "cuda":
            from dart_hub.gpu import require_gpu

            require_gpu(f"--device {device}")  # one line naming the likely cause
        return str(parsed)

    @staticmethod
    def _resolve_dtype(dtype: str, device: str) -> str:
        if dtype not in _DTYPES:
            raise DartHubError(f"unknown dtype '{dtype}'; use one of: {', '.join(_DTYPES)}")
        if dtype == "auto":
            # float16 is what the paper used on GPU; CPU kernels want float32.
            return "float16" if device.startswith("cuda") else "float32"
        return dtype

    @staticmethod
    def _load_error(model_id: str, revision: str | None, exc: Exception) -> str:
        cause = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        rev = f" at revision '{revision}'" if revision else ""
        folder = os.path.expanduser(model_id)
        if os.path.isdir(folder) and os.path.isfile(os.path.join(folder, "config.json")):
            return f"could not load model '{model_id}': {cause}"
        if os.path.isdir(folder):
            return (
                f"could not load student model '{model_id}': the folder is not a transformers "
                f"causal language model (config.json, tokenizer and weights needed): {cause}"
            )
        return (
            f"could not load student model '{model_id}'{rev}: not a local folder and not found on "
            "the Hub (or no network, or a gated model without access). Check the id and HF_TOKEN, "
            f"or pass a local path: {cause}"
        )

    # -- public helpers ---------------------------------------------------------------------

    # -- the protocol -----------------------------------------------------------------------

    def generate(
        self, requests: Sequence[GenerationRequest], progress: ProgressCallback | None = None
    ) -> list[list[Completion]]:
        """For each request in order, its `n` completions in order (see the module docstring).

        Sequences are grouped by sampling parameters (temperature, top_p, max_tokens, stop),
        sorted by prompt length (longest first, so memory trouble shows up at once) and run in
        batches of `batch_size`; `progress(k)` is called after each batch with its size k.
        """
        if "model" not in self.__dict__:
            raise RuntimeError("TransformersEngine.generate called after close()")
        results: list[list[Completion | None]] = [[None] * r.n for r in requests]
        groups: dict[tuple, list[tuple[int, int, list[int]]]] = defaultdict(list)
        for i, req in enumerate(requests):
            ids = self.prompt_ids(req)
            temperature = max(float(req.temperature), 0.0)
            top_p = float(req.top_p) if temperature > 0 else 1.0
            key = (temperature, top_p, int(req.max_tokens), tuple(req.stop))
            for j in range(req.n):
                groups[key].append((i, j, ids))

        with torch.inference_mode():
            for (temperature, top_p, max_tokens, stop), seqs in groups.items():
                seqs.sort(key=lambda s: (-len(s[2]), s[0], s[1]))
                for start in range(0, len(seqs), self.batch_size):
                    batch = seqs[start : start + self.batch_size]
                    seeds = [_row_seed(requests[i].seed, requests[i].sample_offset + j) for i, j, _ in batch]
                    completions = self._generate_batch(
                        [ids for _, _, ids in batch], seeds, temperature, top_p, max_tokens, stop
                    )
                    for (i, j, _), completion in zip(batch, completions, strict=True):
                        results[i][j] = completion
                    if progress is not None:
                        progress(len(batch))
        return results  # type: ignore[return-value]  # every slot is filled above

    def _generate_batch(
        self,
        prompts: list[list[int]],
        seeds: list[int],
        temperature: float,
        top_p: float,
        max_tokens: int,
        stop: tuple[str, ...],
    ) -> list[Completion]:
        if max_tokens < 1:
            return [Completion("", "length", len(p), 0) for p in prompts]
        enc = self.tokenizer.pad(
            {"input_ids": prompts}, padding=True, padding_side="left", return_tensors="pt"
        ).to(self.device)
        width = enc["input_ids"].shape[1]
        config = GenerationConfig(
            max_new_tokens=max_tokens,
            do_sample=False,  # tokens are picked by _SeededSampler when temperature > 0
            num_beams=1,
            eos_token_id=sorted(self.eos_token_ids),
            pad_token_id=self.tokenizer.pad_token_id,
        )
        processors = LogitsProcessorList()
        if temperature > 0:
            processors.append(TemperatureLogitsWarper(temperature))
            if top_p < 1.0:
                processors.append(TopPLogitsWarper(top_p))
            processors.append(_SeededSampler(seeds, max_tokens, width, self.device))
        criteria = StoppingCriteriaList()
        if stop:
            criteria.append(_InGenerated(StopStringCriteria(self.tokenizer, list(stop)), width))
        try:
            out = self.model.generate(
                **enc,
                generation_config=config,
                logits_processor=processors,
                stopping_criteria=criteria,
            )
        except torch.OutOfMemoryError as exc:
            raise DartHubError(
                f"out of memory generating {len(prompts)} sequences of up to {max_tokens} new "
                f"tokens; pass a smaller batch size (now {self.batch_size})"
            ) from exc
        generated = out[:, width:].tolist()
        return [
            self._finish(gen, len(prompt), max_tokens, stop)
            for gen, prompt in zip(generated, prompts, strict=True)
        ]

    def _finish(
        self, gen: list[int], prompt_tokens: int, max_tokens: int, stop: tuple[str, ...]
    ) -> Completion:
        """Turn one row of generated ids (padded after it finished) into a Completion.

        completion_tokens counts the tokens the model produced for this sequence: up to and
        including the EOS, or up to and including the token that completed the stop string
        (the text itself ends before the stop string). Padding is never counted.
        """
        eos_at = next((k for k, tok in enumerate(gen) if tok in self.eos_token_ids), None)
        body = gen if eos_at is None else gen[:eos_at]
        pad = self.tokenizer.pad_token_id
        if eos_at is None and pad not in self.eos_token_ids:
            while body and body[-1] == pad:  # only finished sequences are padded
                body = body[:-1]
        text = self._decode(body)
        cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            return Completion(text[:cut], "stop", prompt_tokens, self._tokens_to_stop(body, stop))
        if eos_at is not None:
            return Completion(text, "stop", prompt_tokens, eos_at + 1)
        # No EOS, no stop string in the text: it ran out of tokens, unless the stop-string check
        # stopped it early on a stop string written by special tokens (removed from the text).
        reason = "length" if len(body) >= max_tokens else "stop"
        return Completion(text, reason, prompt_tokens, len(body))

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def _tokens_to_stop(self, body: list[int], stop: tuple[str, ...]) -> int:
        """Fewest leading tokens of `body` whose text contains a stop string (binary search)."""
        lo, hi = 1, len(body)
        while lo < hi:
            mid = (lo + hi) // 2
            if any(s in self._decode(body[:mid]) for s in stop):
                hi = mid
            else:
                lo = mid + 1
        return hi

    def describe(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "model": self.model_id,
            "revision": self.revision,
            "dtype": self.dtype,
            "device": self.device,
            "batch_size": self.batch_size,
            "sampling": "per-sequence seeded inverse-CDF; model generation_config defaults ignored",
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }

    def close(self) -> None:
        """Drop the model (and free GPU memory); the engine cannot generate afterwards."""
        model = self.__dict__.pop("model", None)
        if model is None:
            return
        del model
        gc.collect()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


class _SeededSampler(LogitsProcessor):
    """A logits processor that samples one token per row from per-sequence random streams.

    Written by hand because transformers samples with the global RNG over the whole batch
    (see the module docstring). Given warped scores it returns -inf everywhere except the
    sampled token, so greedy decoding in `generate` emits exactly that token. Row b at step t
    uses uniform u[b, t], drawn in advance on the CPU from torch.Generator(seed_b): the stream
    is the same on every device and in every batch.
    """

    def __init__(self, seeds: list[int], max_new_tokens: int, prompt_width: int, device: str):
        rows = []
        for seed in seeds:
            gen = torch.Generator().manual_seed(seed)
            rows.append(torch.rand(max_new_tokens, generator=gen, dtype=torch.float64))
        self.dtype = torch.float32 if device.startswith("mps") else torch.float64
        self.uniforms = torch.stack(rows).to(device=device, dtype=self.dtype)
        self.prompt_width = prompt_width

    def __call__(self, input_ids, scores):
        step = input_ids.shape[1] - self.prompt_width
        probs = torch.softmax(scores.to(self.dtype), dim=-1)
        cdf = probs.cumsum(dim=-1)
        target = self.uniforms[:, step : step + 1] * cdf[:, -1:]
        # First token whose cumulative probability exceeds the target: never a zero-prob token.
        picked = torch.searchsorted(cdf, target, right=True).clamp_(max=scores.shape[-1] - 1)
        out = torch.full_like(scores, float("-inf"))
        return out.scatter_(1, picked, 0.0)


class _InGenerated(StoppingCriteria):
    """Apply a stopping criterion to the generated tokens only.

    transformers' StopStringCriteria (which we reuse: token-level matching, done as tensor ops)
    looks at the end of the whole sequence, so a stop string could match across the prompt
    boundary: a chat prompt ends with "assistant\n" and a stop "\n\n" would end generation
    on a first token starting with "\n". Like vLLM, stop strings only count in generated text.
    """

    def __init__(self, criterion: StoppingCriteria, prompt_width: int):
        self.criterion = criterion
        self.prompt_width = prompt_width

    def __call__(
        self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs
    ) -> torch.BoolTensor:
        return self.criterion(input_ids[:, self.prompt_width :], scores, **kwargs)
