"""GPU memory of a full fine-tune per process: the arithmetic of docs/training.md as code.

Per GPU = model states + activations + buffers, in GB (10^9 bytes), for batch 1 at
`max_length` tokens with gradient checkpointing on (dart-hub sets it, or FSDP's own:
dart_hub.training.distributed):

- model states, mixed-precision AdamW (16 bytes per parameter: weights and gradients, fp32
  master weights, two fp32 moments):
  plain DDP 16 P plus DDP's fp32 gradient buckets 4 P; ZeRO-2 2 P + 14 P / N;
  ZeRO-3 and FSDP full shard 16 P / N (N processes); LoRA: the frozen fp32 weights 4 P
  (the adapters are negligible);
- activations: the per-layer checkpoints L x T x H x 2 bytes, one layer's recomputation
  T x (16 H + 4 I) x 2 bytes, and the logits with their gradient, T x V x 4 bytes x 2
  (DAIL: three views of checkpoints, logits for one chunk of positions at a time);
- buffers: 2 GB (CUDA context, NCCL, allocator slack).

A setting fits a card when the sum is at most 90% of its memory. These are estimates to choose
a launch with, not measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

GB = 1e9
HEADROOM = 0.9
BUFFERS_GB = 2.0


@dataclass(frozen=True)
class ModelShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool
    head_dim: int | None = None
    attention_bias: bool = False  # Qwen2 has q/k/v biases

    @property
    def parameters(self) -> int:
        head_dim = self.head_dim or self.hidden // self.heads
        q = self.hidden * self.heads * head_dim
        kv = 2 * self.hidden * self.kv_heads * head_dim
        o = self.heads * head_dim * self.hidden
        bias = (self.heads + 2 * self.kv_heads) * head_dim if self.attention_bias else 0
        mlp = 3 * self.hidden * self.intermediate
        layer = q + kv + o + bias + mlp + 2 * self.hidden
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return self.layers * layer + embeddings + self.hidden

    @classmethod
    def from_config(cls, config: dict) -> ModelShape:
        """From a transformers config.json mapping."""
        return cls(
            hidden=int(config["hidden_size"]),
            intermediate=int(config["intermediate_size"]),
            layers=int(config["num_hidden_layers"]),
            heads=int(config["num_attention_heads"]),
            kv_heads=int(config.get("num_key_value_heads") or config["num_attention_heads"]),
            vocab=int(config["vocab_size"]),
            tied=bool(config.get("tie_word_embeddings", False)),
            head_dim=config.get("head_dim"),
            attention_bias=config.get("model_type") == "qwen2" or bool(config.get("attention_bias")),
        )


# The students of the shipped recipes, from their config.json on the Hub.
KNOWN_MODELS: dict[str, ModelShape] = {
    "Qwen/Qwen2.5-0.5B-Instruct": ModelShape(896, 4864, 24, 14, 2, 151936, True, attention_bias=True),
    "Qwen/Qwen2.5-1.5B-Instruct": ModelShape(1536, 8960, 28, 12, 2, 151936, True, attention_bias=True),
    "Qwen/Qwen2.5-3B-Instruct": ModelShape(2048, 11008, 36, 16, 2, 151936, True, attention_bias=True),
    "meta-llama/Llama-3.2-3B-Instruct": ModelShape(3072, 8192, 28, 24, 8, 128256, True, head_dim=128),
}

# Memory of the cards the docs name, in GB as sold.
GPUS: dict[str, float] = {"A100 40GB": 40, "A100 80GB": 80, "H100 80GB": 80, "H200 141GB": 141}


@dataclass(frozen=True)
class Estimate:
    states: float
    activations: float
    buffers: float

    @property
    def total(self) -> float:
        return self.states + self.activations + self.buffers

    def fits(self, gpu_gb: float) -> bool:
        return self.total <= HEADROOM * gpu_gb

    def describe(self) -> str:
        return f"~{self.total:.0f} GB per GPU ({self.states:.1f} model states + {self.activations:.1f} activations + {self.buffers:.0f} buffers)"


def model_states(parameters: int, kind: str, zero_stage: int | None, processes: int, lora: bool = False) -> float:
    """GB of weights, gradients and optimizer states per process."""
    p = parameters
    n = max(1, processes)
    if lora:
        return 4 * p / GB  # frozen fp32 weights; adapters and their states are a rounding error
    if kind == "fsdp" or (kind == "deepspeed" and (zero_stage or 0) >= 3):
        return 16 * p / n / GB
    if kind == "deepspeed" and zero_stage in (1, 2):
        return (2 * p + 14 * p / n) / GB
    return (16 * p + (4 * p if kind == "ddp" else 0)) / GB


def activations(shape: ModelShape, tokens: int, objective: str = "sft", chunk: int = 1024) -> float:
    """GB of activations for one sequence of `tokens` with gradient checkpointing."""
    checkpoints = shape.layers * tokens * shape.hidden * 2
    recompute = tokens * (16 * shape.hidden + 4 * shape.intermediate) * 2
    if objective == "dail":  # three views, the loss over chunks of positions
        return (3 * checkpoints + recompute + 3 * min(chunk, tokens) * shape.vocab * 4 * 2) / GB
    return (checkpoints + recompute + tokens * shape.vocab * 4 * 2) / GB


def estimate(
    shape: ModelShape, *, kind: str, zero_stage: int | None = None, processes: int = 1, tokens: int = 16384,
    lora: bool = False, objective: str = "sft", batch: int = 1,
) -> Estimate:  # fmt: skip
    """Per-GPU memory of a training launch (see the module docstring)."""
    return Estimate(
        states=model_states(shape.parameters, kind, zero_stage, processes, lora),
        activations=batch * activations(shape, tokens, objective),
        buffers=BUFFERS_GB,
    )


def student_shape(student: str, revision: str | None = None, trust_remote_code: bool = False) -> ModelShape | None:
    """The student's shape from its config.json (a local folder or the Hub; the recipes' students
    are known without a download), None when it cannot be read or is not a decoder of this form."""
    if student in KNOWN_MODELS:
        return KNOWN_MODELS[student]
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(student, revision=revision, trust_remote_code=trust_remote_code)
        text = config.get_text_config() if hasattr(config, "get_text_config") else config
        return ModelShape.from_config(text.to_dict())
    except Exception:  # noqa: BLE001 - any unreadable config: no estimate
        return None


def gpu_memory_gb() -> float | None:
    """The smallest visible GPU's memory in GB, from nvidia-smi (the launching process must not
    create a CUDA context: it would hold memory on GPU 0 for the whole run). None when unknown."""
    import os
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=index,memory.total", "--format=csv,noheader,nounits"],
            capture_output=True, text=True, timeout=20, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    sizes = {}
    for line in out.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 2 and parts[0].isdigit():
            try:
                sizes[parts[0]] = float(parts[1]) * 2**20 / GB  # MiB
            except ValueError:
                continue
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        shown = {index.strip() for index in visible.split(",")}
        sizes = {k: v for k, v in sizes.items() if k in shown}
    return min(sizes.values()) if sizes else None


def choose_launch(shape: ModelShape, gpu_gb: float, processes: int, *, tokens: int = 16384, lora: bool = False,
                  objective: str = "sft", batch: int = 1) -> tuple[str | None, str]:  # fmt: skip
    """Without an accelerate config: plain DDP when it fits, else the shipped ZeRO-3 config when
    that fits (None, "ddp"), ("deepspeed_zero3", note), or (None, a warning)."""
    ddp = estimate(shape, kind="ddp", processes=processes, tokens=tokens, lora=lora, objective=objective, batch=batch)
    if ddp.fits(gpu_gb):
        return None, f"plain DDP: {ddp.describe()}, fits {gpu_gb:.0f} GB"
    zero3 = estimate(shape, kind="deepspeed", zero_stage=3, processes=processes, tokens=tokens, lora=lora, objective=objective, batch=batch)
    if zero3.fits(gpu_gb):
        return "deepspeed_zero3", (
            f"plain DDP would need {ddp.describe()}, more than 90% of these {gpu_gb:.0f} GB GPUs: "
            f"launching with the shipped DeepSpeed ZeRO-3 config ({zero3.describe()}); pass --accelerate-config to choose"
        )
    return None, f"this training may not fit: {zero3.describe()} even under ZeRO-3 on {gpu_gb:.0f} GB GPUs (docs/training.md); consider --lora or a shorter --max-length"
