"""TransformersEngine on the tiny random model: batching, padding, seeds, stops, counts, errors."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from dart_hub.engines.base import Engine, GenerationRequest
from dart_hub.engines.transformers import TransformersEngine
from dart_hub.errors import DartHubError

QUESTION = "What is 12 + 7? Put the final answer in \\boxed{}."
RAW = "Step 1: compute 123 + 45 ="
LONG = " ".join(["Let x = 5. Then x * 3 = 15, therefore the result is 15."] * 6)


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path) -> TransformersEngine:
    eng = TransformersEngine(str(tiny_model_dir), batch_size=4)
    yield eng
    eng.close()


def chat(content: str = QUESTION, **kwargs) -> GenerationRequest:
    return GenerationRequest.chat([{"role": "user", "content": content}], **kwargs)


def reference_greedy(engine: TransformersEngine, prompt_ids: list[int], max_new: int) -> list[int]:
    """Plain transformers greedy decoding of one unpadded prompt, up to and including EOS."""
    with torch.inference_mode():
        out = engine.model.generate(
            torch.tensor([prompt_ids]),
            attention_mask=torch.ones(1, len(prompt_ids), dtype=torch.long),
            do_sample=False,
            max_new_tokens=max_new,
            eos_token_id=sorted(engine.eos_token_ids),
            pad_token_id=engine.tokenizer.pad_token_id,
        )
    gen = out[0, len(prompt_ids) :].tolist()
    for k, tok in enumerate(gen):
        if tok in engine.eos_token_ids:
            return gen[: k + 1]
    return gen


def test_implements_the_engine_protocol(engine):
    assert isinstance(engine, Engine)
    info = engine.describe()
    assert info["engine"] == "transformers" and info["model"] == engine.model_id
    assert (info["dtype"], info["device"]) == ("float32", "cpu")
    assert info["transformers"] and info["torch"]


def test_chat_and_raw_prompts_match_plain_greedy_generate(engine):
    """Greedy output, token counts and finish reasons equal transformers' own unbatched decoding."""
    requests = [chat(max_tokens=24), GenerationRequest(prompt=RAW, max_tokens=24)]
    out = engine.generate(requests)
    chat_ids = engine.tokenizer.apply_chat_template(
        requests[0].message_dicts(), add_generation_prompt=True, tokenize=True, return_dict=False
    )
    raw_ids = engine.tokenizer(RAW)["input_ids"]
    for ids, (completion,) in zip([chat_ids, raw_ids], out, strict=True):
        ref = reference_greedy(engine, ids, 24)
        ended = bool(ref) and ref[-1] in engine.eos_token_ids
        assert completion.prompt_tokens == len(ids)
        assert completion.completion_tokens == len(ref) <= 24
        assert completion.finish_reason == ("stop" if ended else "length")
        assert completion.text == engine.tokenizer.decode(ref, skip_special_tokens=True)
    assert "<|im_start|>assistant\n" in engine.render_prompt(requests[0])


def test_left_padding_does_not_change_greedy_output(engine):
    """A short prompt batched with much longer ones decodes as it does alone."""
    short = GenerationRequest(prompt=RAW, max_tokens=32)
    alone = engine.generate([short])[0]
    others = [chat(LONG, max_tokens=32), GenerationRequest(prompt=LONG[:90], max_tokens=32)]
    batched = engine.generate([others[0], short, others[1]])
    assert batched[1] == alone
    assert batched[1][0].text == engine.tokenizer.decode(
        reference_greedy(engine, engine.tokenizer(RAW)["input_ids"], 32), skip_special_tokens=True
    )


def test_n_samples_in_order_and_seeded(engine):
    req = chat(n=4, temperature=1.0, max_tokens=24, seed=7)
    first = engine.generate([req])[0]
    assert len(first) == 4
    assert len({c.text for c in first}) == 4  # each sample has its own random stream
    assert engine.generate([req])[0] == first  # same seed, same texts
    # Sample j depends on (seed, j) only: n=2 gives the first two samples of n=4.
    assert engine.generate([chat(n=2, temperature=1.0, max_tokens=24, seed=7)])[0] == first[:2]
    other_seed = engine.generate([chat(n=4, temperature=1.0, max_tokens=24, seed=8)])[0]
    assert [c.text for c in other_seed] != [c.text for c in first]
    for c in first:
        assert c.completion_tokens <= 24
        assert c.finish_reason == "stop" or c.completion_tokens == 24


def test_greedy_is_deterministic_and_ignores_seed(engine):
    a = engine.generate([chat(n=3, max_tokens=16, seed=1)])[0]
    b = engine.generate([chat(n=3, max_tokens=16, seed=2)])[0]
    assert a == b and len({c.text for c in a}) == 1


def test_a_request_gives_the_same_texts_whatever_shares_the_call(engine, tiny_model_dir):
    """The guarantee of the module docstring, in float32 on CPU: batch mates, their prompt
    lengths and parameters, the order of the call and batch_size do not change a request."""
    params = {"temperature": 0.7, "top_p": 0.9, "max_tokens": 24}
    target = chat(n=3, seed=11, **params)
    alone = engine.generate([target])[0]
    crowd = [
        chat(LONG, n=2, seed=1, **params),
        GenerationRequest(prompt=RAW, n=2, seed=2, **params),
        target,
        chat("2 + 2 = ?", n=3, seed=3, **params),
        GenerationRequest(prompt=LONG, n=1, temperature=0.0, max_tokens=8),
    ]
    assert engine.generate(crowd)[2] == alone
    other = TransformersEngine(str(tiny_model_dir), batch_size=3)
    try:
        assert other.generate(list(reversed(crowd)))[2] == alone
    finally:
        other.close()


def test_sampler_follows_the_model_distribution(engine):
    """One-token samples: frequencies match softmax(logits / T) and top_p bounds the support."""
    ids = engine.tokenizer(RAW)["input_ids"]
    with torch.inference_mode():
        logits = engine.model(torch.tensor([ids])).logits[0, -1].double()
    temperature, n = 0.2, 1500
    probs = torch.softmax(logits / temperature, dim=-1)
    # Completions carry text, not ids: compare per decoded text (a few ids may share one).
    expected: Counter[str] = Counter()
    for token_id, p in enumerate(probs.tolist()):
        expected[engine.tokenizer.decode([token_id], skip_special_tokens=True)] += p
    order = probs.argsort(descending=True).tolist()
    mass = probs[order].cumsum(0)
    # The nucleus for top_p=0.5: the fewest most likely tokens that hold half the mass.
    nucleus_size = int((mass < 0.5).sum()) + 1
    nucleus = {engine.tokenizer.decode([t], skip_special_tokens=True) for t in order[:nucleus_size]}
    engine.batch_size = 500
    try:
        sampled = engine.generate(
            [GenerationRequest(prompt=RAW, n=n, temperature=temperature, max_tokens=1, seed=5)]
        )[0]
        in_nucleus = engine.generate(
            [GenerationRequest(prompt=RAW, n=300, temperature=temperature, top_p=0.5, max_tokens=1)]
        )[0]
    finally:
        engine.batch_size = 4
    observed = Counter(c.text for c in sampled)
    checked = 0
    for text, p in expected.items():
        if n * p >= 15:
            sigma = (n * p * (1 - p)) ** 0.5
            assert abs(observed[text] - n * p) < 5 * sigma, (text, observed[text], n * p)
            checked += 1
    assert checked >= 3  # the check above covers the head of the distribution, not just one token
    assert {c.text for c in in_nucleus} <= nucleus and nucleus_size >= 2
    assert len({c.text for c in in_nucleus}) >= 2


def test_stop_strings_truncate_and_end_generation_early(engine):
    full = engine.generate([GenerationRequest(prompt=QUESTION, max_tokens=40)])[0][0]
    gen = reference_greedy(engine, engine.tokenizer(QUESTION)["input_ids"], 40)
    assert len(full.text) > 12 and full.completion_tokens == len(gen) == 40
    stop = full.text[6:9]
    cut = full.text.find(stop)
    out = engine.generate(
        [GenerationRequest(prompt=QUESTION, max_tokens=40, stop=("@@never@@", stop))]
    )
    c = out[0][0]
    assert c.text == full.text[:cut] and c.finish_reason == "stop"
    # Tokens counted up to the one that completed the stop string: the fewest whose text has it.
    assert 0 < c.completion_tokens < 40
    assert stop in engine.tokenizer.decode(gen[: c.completion_tokens])
    assert stop not in engine.tokenizer.decode(gen[: c.completion_tokens - 1])
    # The earliest stop string wins, whatever the order they are given in.
    earlier = full.text[cut : cut + 2]
    out2 = engine.generate(
        [GenerationRequest(prompt=QUESTION, max_tokens=40, stop=(stop, earlier))]
    )
    assert out2[0][0].text == full.text[: full.text.find(earlier)]


def test_stop_strings_only_match_generated_text(engine):
    """A stop string that only appears across the prompt/completion boundary does not stop."""
    full = engine.generate([GenerationRequest(prompt=QUESTION, max_tokens=20)])[0][0]
    straddling = QUESTION[-3:] + full.text[:1]
    assert straddling not in full.text  # precondition on the tiny model's output
    out = engine.generate([GenerationRequest(prompt=QUESTION, max_tokens=20, stop=(straddling,))])
    assert out[0][0] == full


def test_eos_ends_a_sequence_and_is_counted(engine, monkeypatch):
    """Pick a token the model emits mid-way, declare it an EOS: generation stops there."""
    ids = engine.tokenizer(RAW)["input_ids"]
    gen = reference_greedy(engine, ids, 30)
    k = next((i for i in range(1, len(gen)) if gen[i] not in gen[:i]), 0)
    # Replace the EOS set: the pad token (<|endoftext|>) is no longer an EOS, so the padding
    # after the early finish must be stripped without being counted.
    monkeypatch.setattr(engine, "eos_token_ids", frozenset({gen[k]}))
    out = engine.generate([GenerationRequest(prompt=RAW, max_tokens=30), chat(LONG, max_tokens=30)])
    c = out[0][0]
    assert c.finish_reason == "stop"
    assert c.completion_tokens == k + 1
    assert c.text == engine.tokenizer.decode(gen[:k], skip_special_tokens=True)


def test_progress_reports_every_sequence_in_batches(engine):
    seen: list[int] = []
    requests = [chat(n=3, max_tokens=4), GenerationRequest(prompt=RAW, n=6, max_tokens=4)]
    requests.append(chat(n=2, temperature=0.5, max_tokens=4))  # another parameter group
    out = engine.generate(requests, progress=seen.append)
    assert [len(o) for o in out] == [3, 6, 2]
    assert sum(seen) == 11 and max(seen) <= engine.batch_size
    assert len(seen) == 3 + 1  # 9 greedy sequences in batches of 4, then 2 sampled


def test_count_tokens(engine):
    assert engine.count_tokens("") == 0
    assert engine.count_tokens("123") == 3  # digits are split one by one
    assert engine.count_tokens(RAW) == len(
        engine.tokenizer(RAW, add_special_tokens=False)["input_ids"]
    )


def test_missing_local_model_is_a_helpful_error(tmp_path):
    with pytest.raises(DartHubError, match="no such folder"):
        TransformersEngine(str(tmp_path / "no-model-here"))
    with pytest.raises(DartHubError, match="not a transformers causal language model"):
        TransformersEngine(str(tmp_path))


def test_unknown_hub_model_is_a_helpful_error(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # no network wait
    with pytest.raises(DartHubError, match="not found on the Hub.*pass a local path"):
        TransformersEngine("nobody-here/no-such-model-xyz")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"dtype": "float8"}, "unknown dtype 'float8'"),
        ({"device": "tpu-ish"}, "unknown device"),
        ({"batch_size": 0}, "batch size"),
    ],
)
def test_bad_settings_are_helpful_errors(tiny_model_dir, kwargs, message):
    with pytest.raises(DartHubError, match=message):
        TransformersEngine(str(tiny_model_dir), **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_helpful_error(tiny_model_dir):
    with pytest.raises(DartHubError, match="--device cuda needs a GPU, but torch sees none"):
        TransformersEngine(str(tiny_model_dir), device="cuda")


def test_explicit_dtype(tiny_model_dir):
    eng = TransformersEngine(str(tiny_model_dir), dtype="bfloat16")
    try:
        assert eng.model.dtype == torch.bfloat16 and eng.describe()["dtype"] == "bfloat16"
        (c,) = eng.generate([GenerationRequest(prompt=RAW, max_tokens=5)])[0]
        assert c.completion_tokens <= 5
    finally:
        eng.close()
    with pytest.raises(RuntimeError, match="after close"):
        eng.generate([GenerationRequest(prompt=RAW)])


def test_model_without_chat_template(tiny_model_dir, tmp_path):
    plain = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, plain)
    (plain / "chat_template.jinja").unlink()
    eng = TransformersEngine(str(plain))
    try:
        assert eng.generate([GenerationRequest(prompt=RAW, max_tokens=3)])[0][0].completion_tokens
        with pytest.raises(DartHubError, match="has no chat template"):
            eng.generate([chat(max_tokens=3)])
    finally:
        eng.close()
    template = "{% for m in messages %}{{ m['content'] }}{% endfor %}"
    eng = TransformersEngine(str(plain), chat_template=template)
    try:
        assert eng.render_prompt(chat("hello")) == "hello"
    finally:
        eng.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_float16_generation(tiny_model_dir):
    """On a GPU, auto picks cuda and float16; seeded sampling is reproducible call to call."""
    eng = TransformersEngine(str(tiny_model_dir))
    try:
        assert (eng.describe()["device"], eng.describe()["dtype"]) == ("cuda", "float16")
        requests = [chat(n=4, temperature=0.7, max_tokens=32, seed=3), chat(LONG, max_tokens=32)]
        first = eng.generate(requests)
        assert first == eng.generate(requests)
        assert all(c.completion_tokens <= 32 for cs in first for c in cs)
    finally:
        eng.close()
