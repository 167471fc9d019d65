"""Train the toy student on CPU and save it as a transformers folder.

    python -m dart_hub.toy.train_student --output DIR [--seed 0] [--steps 3000] [--threads 1]
                                         [--init EXISTING_TOY_STUDENT --lr ... --warmup-steps ...]

The shipped model is this command with its defaults, from scratch (3000 steps of 32 examples,
about 54 minutes on one thread): `--output dart_hub/resources/toy_student`.

What it builds:

- without --init: a tokenizer (`tokenizers` byte-level BPE) trained on the chat-formatted
  training text, with Qwen2's normaliser and pre-tokenizer (digits are single tokens; see
  QWEN2_PRETOKENIZE_REGEX for why it must be exactly Qwen2's), and a Qwen2-architecture causal
  LM (4 layers, hidden 128, 2 heads of dimension 64) with a ChatML chat template, eos
  <|im_end|>, pad <|endoftext|>. With --init: that toy student's tokenizer and weights.
- training data drawn on the fly from the `train` split of the toy domain, every example
  chat-formatted with dart-hub's own default prompts (`dart_hub.prompts.default_prompts`), the
  loss on the assistant turn only. The mix (`make_example`, shares from TrainConfig):
    * 30% `solve` -> its own full solution, starting from the first factor of the stated start
      (its misconception: right when the multiplier is 1, wrong otherwise), except in
      --share-work-out (40%) of them, where it works the product out (`Start: 4x3 = 12`: the
      idea, which it can carry out but, below even odds, greedy decoding never picks);
    * 50% `simulation` / `exploration` with the start line (the product worked out, as the
      expert writes it) and its own first k steps -> the rest, numbering
      continued, and the boxed answer: it follows a worked-out start it is shown;
    * 8% a prefix that already states the boxed answer -> that answer restated;
    * 12% `rewrite` with an expert reference without folds -> its own solution from the plain
      start value.
  It never sees the expert's folded paragraphs, so it cannot continue from them.

Each template's fixed prompt prefix (chat header and instructions, 38 to 156 tokens) is run
once per batch and its keys/values shared across the batch (`batch_loss`): same loss and
gradients as a full forward pass, about half the compute.

After training it measures (and writes to training.json next to the weights): held-out accuracy
with the solve prompt, greedy and at temperature 0.1; accuracy when continuing its own partial
solutions; and the adaptability curve f_t on expert traces.

Reproducibility: all randomness comes from --seed (data stream, tokenizer corpus,
initialisation; there is no dropout). The same seed, thread count, torch version, CPU and
--init weights give bit-identical weights. Another thread count, CPU or torch build changes the
summation order inside the matrix kernels, hence the last float bits, and the weights drift
apart slowly during training. One thread is the default: on a 2-core machine shared with other
work it was several times faster than two (OpenMP threads waiting on each other).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from dart_hub.prompts import Prompts, default_prompts
from dart_hub.steps import join_steps
from dart_hub.toy.domain import ToyProblem, generate_problems, iter_problems
from dart_hub.toy.styles import (
    check_step,
    literal_start_solution,
    reveal_step,
    start_line,
    student_answer,
    student_continuation,
    student_solution,
    student_steps,
    unfolded_expert_solution,
)

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
SPECIAL_TOKENS = [ENDOFTEXT, IM_START, IM_END]

# Qwen2.5-Instruct's ChatML template (no tools): a default system turn when none is given.
CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}"
    "{%- endif %}"
    "{%- for message in messages %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}"
    "{{- '<|im_start|>assistant\\n' }}"
    "{%- endif %}"
)


@dataclass
class TrainConfig:
    seed: int = 0
    steps: int = 3000
    batch_size: int = 32
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 100
    weight_decay: float = 0.01
    hidden_size: int = 128
    intermediate_size: int = 512
    layers: int = 4
    heads: int = 2  # head dimension = hidden_size / heads = 64
    vocab_size: int = 1024
    tokenizer_examples: int = 3000
    # training mix (the rest: `rewrite` examples); see make_example
    share_solve: float = 0.3
    share_prefix: float = 0.5
    share_restate: float = 0.08
    # of `solve` examples: the share where the student works the stated product out (the rest:
    # it starts from the first factor, its misconception)
    share_work_out: float = 0.4
    threads: int = 1  # faster than 2 on a busy 2-core machine; see the module docstring
    init: str = ""  # start from this toy student's weights and tokenizer instead of from scratch
    eval_problems: int = 100
    eval_expert_problems: int = 12


# -- data ------------------------------------------------------------------------------------

PREFIX_TEMPLATES = ("simulation", "exploration")


def _continue(name: str, problem: ToyProblem, prefix: list[str], prompts: Prompts, answer: str):
    return name, prompts.messages(name, problem.question, join_steps(prefix)), answer


def make_example(problem: ToyProblem, rng: random.Random, config: TrainConfig,
                 prompts: Prompts) -> tuple[str, list[dict[str, str]], str]:
    """(template name, chat messages, assistant answer) for one example (see module docstring)."""
    n = len(problem.ops)
    draw = rng.random()
    name = rng.choice(PREFIX_TEMPLATES)
    edges = [config.share_solve, config.share_prefix, config.share_restate]
    bounds = [sum(edges[: i + 1]) for i in range(len(edges))]
    if draw < bounds[0]:
        # solving from scratch: it mostly starts from the first factor (its misconception, right
        # only when the multiplier is 1) and rarely works the product out (the idea)
        if rng.random() >= config.share_work_out:
            answer = literal_start_solution(problem)
        else:
            answer = student_solution(problem)
        return "solve", prompts.messages("solve", problem.question), answer
    if draw < bounds[1]:
        # the start line (the product worked out, as the expert writes it) and the first k steps -> the rest
        done = rng.randint(0, n)
        prefix = [start_line(problem), *student_steps(problem)[:done]]
        return _continue(name, problem, prefix, prompts, student_continuation(problem, done))
    if draw < bounds[2]:
        # a prefix that already states the boxed answer: restate it
        if rng.random() < 0.5:
            prefix = [start_line(problem), *student_steps(problem), student_answer(problem)]
        else:
            done = rng.randint(0, n)
            prefix = [start_line(problem), *student_steps(problem)[:done], reveal_step(problem, rng.randrange(2))]
            prefix += [check_step(problem, i) for i in range(rng.randint(0, n))]
        return _continue(name, problem, prefix, prompts, student_answer(problem))
    # rewrite a reference solution (no folds, the expert's answer sentence) in its own steps;
    # it takes the start value from the reference, never writes a product out itself
    reference = unfolded_expert_solution(problem, rng)
    return "rewrite", prompts.messages("rewrite", problem.question, reference), student_solution(problem.plain)


def example_stream(config: TrainConfig, prompts: Prompts, salt: str = "train"):
    problems = iter_problems(config.seed, "train")
    rng = random.Random(f"dart-hub-toy-mix:{salt}:{config.seed}")
    while True:
        yield make_example(next(problems), rng, config, prompts)


# -- tokenizer -------------------------------------------------------------------------------


def render(messages: list[dict[str, str]]) -> str:
    import jinja2

    return jinja2.Environment().from_string(CHAT_TEMPLATE).render(
        messages=messages, add_generation_prompt=True
    )


# Qwen2's pre-tokenizer. transformers >= 5 loads every `qwen2` model's tokenizer as
# `Qwen2Tokenizer`, which rebuilds this pipeline (NFC, this regex split, byte-level) around the
# vocabulary and merges of tokenizer.json, so the toy tokenizer is trained with the same pipeline:
# it then tokenizes identically whichever class loads it (transformers 4 or 5, vLLM).
QWEN2_PRETOKENIZE_REGEX = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)


def build_tokenizer(config: TrainConfig, prompts: Prompts):
    """A byte-level BPE in Qwen2's layout (digits one by one), trained on the training text."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = re.compile("|".join(re.escape(t) for t in SPECIAL_TOKENS))
    stream = example_stream(config, prompts, salt="tokenizer")
    texts: list[str] = []
    for _ in range(config.tokenizer_examples):
        _, messages, answer = next(stream)
        texts.extend(piece for piece in special.split(render(messages)) if piece)
        texts.append(answer)

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=config.vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer=trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        clean_up_tokenization_spaces=False,
        model_max_length=1024,
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def encode(tokenizer, messages: list[dict[str, str]], answer: str) -> tuple[list[int], list[int]]:
    """Token ids of prompt + answer + <|im_end|> + newline, and labels (-100 on the prompt)."""
    prompt_ids = tokenizer.encode(render(messages), add_special_tokens=False)
    answer_ids = tokenizer.encode(answer, add_special_tokens=False)
    # the chat template ends an assistant turn with "<|im_end|>\n"; SFT trains on both tokens
    answer_ids += [tokenizer.convert_tokens_to_ids(IM_END), *tokenizer.encode("\n", add_special_tokens=False)]
    return prompt_ids + answer_ids, [-100] * len(prompt_ids) + answer_ids


def shared_prefixes(tokenizer, prompts: Prompts) -> dict[str, list[int]]:
    """For each template, the token ids every rendered prompt starts with (chat header and the
    template's fixed text up to the question). Training runs them once per batch and shares
    their keys/values across the batch: same loss and gradients, far less compute."""
    out = {}
    for name in ("solve", "simulation", "exploration", "rewrite"):
        one = tokenizer.encode(render(prompts.messages(name, "Start with 2. Add 1.", "Step 1: 2 + 1 = 3")), add_special_tokens=False)
        two = tokenizer.encode(render(prompts.messages(name, "Start with 3. Add 2.", "Step 1: 3 + 2 = 5")), add_special_tokens=False)
        length = 0
        while length < min(len(one), len(two)) and one[length] == two[length]:
            length += 1
        out[name] = one[:length]
    return out


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    length = max(len(r) for r in rows)
    return torch.tensor([r + [value] * (length - len(r)) for r in rows], dtype=torch.long)


def batch_loss(model, groups: dict[str, list[tuple[list[int], list[int]]]],
               prefixes: dict[str, list[int]], pad_id: int) -> tuple[torch.Tensor, int]:
    """Mean token cross-entropy over the answers of all groups, the shared prefix of each
    group computed once (batch 1) and expanded over the group."""
    from transformers import DynamicCache

    total = torch.zeros(())
    count = 0
    for name, encoded in groups.items():
        if not encoded:
            continue
        prefix = prefixes[name]
        size = len(prefix)
        for ids, _ in encoded:
            if ids[:size] != prefix:
                raise AssertionError(f"a '{name}' prompt does not start with the template's shared prefix")
        rows = len(encoded)
        cache = model(input_ids=torch.tensor([prefix]), use_cache=True).past_key_values
        shared = DynamicCache(config=model.config)
        for index, layer in enumerate(cache.layers):
            shared.update(layer.keys.expand(rows, -1, -1, -1), layer.values.expand(rows, -1, -1, -1), index)
        suffix = _pad([ids[size:] for ids, _ in encoded], pad_id)
        labels = _pad([labels[size:] for _, labels in encoded], -100)
        mask = (_pad([[1] * (len(ids) - size) for ids, _ in encoded], 0))
        attention = torch.cat([torch.ones((rows, size), dtype=torch.long), mask], dim=1)
        positions = torch.arange(size, size + suffix.shape[1]).unsqueeze(0).expand(rows, -1)
        logits = model(input_ids=suffix, attention_mask=attention, past_key_values=shared,
                       position_ids=positions, use_cache=False).logits
        # the first suffix token belongs to the question, never to the answer: no loss lost
        total = total + torch.nn.functional.cross_entropy(
            logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
            ignore_index=-100, reduction="sum",
        )
        count += int((labels[:, 1:] != -100).sum())
    return total / max(count, 1), count


# -- model and training ----------------------------------------------------------------------


def save_tokenizer(tokenizer, output: Path) -> None:
    """Save the tokenizer, declared as `Qwen2Tokenizer`: the class transformers 5 uses for any
    qwen2 model anyway, and one transformers 4 knows (the generic `TokenizersBackend` that
    transformers 5 writes is unknown there)."""
    tokenizer.save_pretrained(output)
    path = output / "tokenizer_config.json"
    config = json.loads(path.read_text(encoding="utf-8"))
    config["tokenizer_class"] = "Qwen2Tokenizer"
    path.write_text(json.dumps(config, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def build_model(config: TrainConfig, tokenizer):
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    pad_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)
    model_config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.layers,
        num_attention_heads=config.heads,
        num_key_value_heads=config.heads,
        max_position_embeddings=1024,
        tie_word_embeddings=True,
        bos_token_id=pad_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
    )
    torch.manual_seed(config.seed)
    model = Qwen2ForCausalLM(model_config)
    model.generation_config = GenerationConfig(
        bos_token_id=pad_id, eos_token_id=[eos_id, pad_id], pad_token_id=pad_id
    )
    return model


def _lr_factor(step: int, config: TrainConfig) -> float:
    if step < config.warmup_steps:
        return (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
    cosine = 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
    return config.min_lr_ratio + (1 - config.min_lr_ratio) * cosine


def train(config: TrainConfig, output: Path, log=print) -> dict:
    torch.set_num_threads(config.threads)
    started = time.time()
    prompts = default_prompts()
    if config.init:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(config.init)
        model = AutoModelForCausalLM.from_pretrained(config.init, dtype=torch.float32)
        torch.manual_seed(config.seed)
    else:
        tokenizer = build_tokenizer(config, prompts)
        model = build_model(config, tokenizer)
    params = sum(p.numel() for p in model.parameters())
    log(f"tokenizer: {len(tokenizer)} tokens; model: {params:,} parameters")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr, betas=(0.9, 0.98), eps=1e-8,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: _lr_factor(s, config))
    stream = example_stream(config, prompts)
    prefixes = shared_prefixes(tokenizer, prompts)
    log("shared prompt prefixes (tokens): " + ", ".join(f"{k} {len(v)}" for k, v in prefixes.items()))
    pad_id = tokenizer.pad_token_id
    model.train()
    running, answer_tokens = 0.0, 0
    for step in range(config.steps):
        groups: dict[str, list[tuple[list[int], list[int]]]] = {}
        for _ in range(config.batch_size):
            name, messages, answer = next(stream)
            groups.setdefault(name, []).append(encode(tokenizer, messages, answer))
        loss, count = batch_loss(model, groups, prefixes, pad_id)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        running += loss.item()
        answer_tokens += count
        if (step + 1) % 50 == 0 or step + 1 == config.steps:
            log(f"step {step + 1}/{config.steps} loss {running / 50:.4f} "
                f"lr {scheduler.get_last_lr()[0]:.2e} {time.time() - started:.0f}s")
            running = 0.0
    train_seconds = time.time() - started
    model.eval()

    output.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(output)
    save_tokenizer(tokenizer, output)
    info = {
        "config": asdict(config),
        "parameters": params,
        "vocabulary": len(tokenizer),
        "train_seconds": round(train_seconds, 1),
        "train_examples": config.steps * config.batch_size,
        "train_answer_tokens": answer_tokens,
        "torch": torch.__version__,
        "prompts_fingerprint": prompts.fingerprint(),
    }
    info.update(evaluate(model, tokenizer, config, log=log))
    (output / "training.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    write_card(output, info)
    log(json.dumps({k: v for k, v in info.items() if k != "config"}, indent=2))
    return info


def evaluate(model, tokenizer, config: TrainConfig, log=print) -> dict:
    from dart_hub.toy.model import adaptability, expert_items, generate, is_correct, solve_accuracy

    started = time.time()
    heldout = generate_problems(config.eval_problems, seed=0, split="heldout")
    greedy = solve_accuracy(model, tokenizer, heldout, temperature=0.0)
    sampled = solve_accuracy(model, tokenizer, heldout, temperature=0.1, seed=1)
    # continuing its own partial solutions (simulation prompt, first k steps given)
    prompts = default_prompts()
    rng = random.Random("eval-continue")
    conversations, answers = [], []
    for problem in heldout:
        done = rng.randint(1, len(problem.ops) - 1)
        conversations.append(prompts.messages(
            "simulation", problem.question, join_steps([start_line(problem), *student_steps(problem)[:done]])))
        answers.append(problem.answer)
    texts = generate(model, tokenizer, conversations)
    continue_acc = sum(is_correct(t, a) for t, a in zip(texts, answers, strict=True)) / len(answers)
    experts = generate_problems(config.eval_expert_problems, seed=0, split="expert")
    curve = adaptability(model, tokenizer, expert_items(experts), n_sim=4, temperature=0.1, seed=2)
    result = {
        "heldout_problems": len(heldout),
        "heldout_accuracy_greedy": greedy,
        "heldout_accuracy_t0.1": sampled,
        "heldout_continue_accuracy_greedy": continue_acc,
        "expert_problems": len(experts),
        "adaptability_mean_by_step": [round(x, 3) for x in curve.mean_by_step],
        "adaptability_problems_by_step": curve.counts_by_step(),
        "eval_seconds": round(time.time() - started, 1),
    }
    return result


def write_card(output: Path, info: dict) -> None:
    """A short model card (README.md) next to the weights, from training.json's numbers."""
    size_mb = (output / "model.safetensors").stat().st_size / 1e6
    curve = ", ".join(f"{x:.2f}" for x in info["adaptability_mean_by_step"])
    config = info["config"]
    text = f"""# dart-hub toy student

A {info['parameters'] / 1e6:.2f}M-parameter Qwen2-architecture causal LM (4 layers, hidden 128,
2 heads of dimension 64, a byte-level BPE vocabulary of {info['vocabulary']} tokens), trained on CPU
by `dart_hub.toy.train_student` on labelled multi-step arithmetic written one operation per step
({'continuing an earlier toy student' if config['init'] else 'from scratch'}). Shown a start value worked out from the
product the question states, it continues from it; answering on its own it mostly starts from
the first number it reads (greedy: almost always), right only when the multiplier is 1. It exists to run DART for real on a laptop; it knows nothing else. See docs/toy-world.md
in the dart-hub repository.

- weights: model.safetensors, float32, {size_mb:.1f} MB; chat template: ChatML; eos <|im_end|>
- training: {info['train_examples']} chat-formatted examples ({config['steps']} steps of
  {config['batch_size']}), seed {config['seed']}, {info['train_seconds'] / 60:.1f} minutes on
  {config['threads']} CPU thread(s), torch {info['torch']}
- prompts: dart-hub's default templates (fingerprint {info['prompts_fingerprint']})
- held-out accuracy ({info['heldout_problems']} problems, `solve` prompt): greedy
  {info['heldout_accuracy_greedy']:.2f}, temperature 0.1 {info['heldout_accuracy_t0.1']:.2f}
- continuing its own partial solutions (greedy): {info['heldout_continue_accuracy_greedy']:.2f}
- adaptability f_t on {info['expert_problems']} toy expert traces (4 rollouts, temperature 0.1),
  mean by step: {curve}

Reproduce: see docs/toy-world.md ("The toy student") in the dart-hub repository.
"""
    (output / "README.md").write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", required=True, type=Path, help="folder to write the model to")
    defaults = TrainConfig()
    for name, value in asdict(defaults).items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    args = parser.parse_args(argv)
    config = TrainConfig(**{k: getattr(args, k) for k in asdict(defaults)})
    train(config, args.output, log=lambda message: print(message, flush=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
