"""DAIL's contrastive objective (dart_hub.training.dail_loss): equal to a hand computation,
aligned across prompts of different lengths, indifferent to padding, bounded in memory by
chunks, and training only the trained weights."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")

from dart_hub.training.dail_loss import DailCollator, dail_loss  # noqa: E402

# Token ids of the tiny model's vocabulary (any ids below its size work: the model is random).
PLAIN = [11, 12, 13]
PRIVILEGED = [21, 22, 23, 24, 25, 26]
NEGATIVE = [31, 32, 33, 34]
RESPONSE = [41, 42]


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    m = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    m.eval()
    return m


def feature(plain=PLAIN, privileged=PRIVILEGED, negative=NEGATIVE, response=RESPONSE):
    return {"prompt_ids": plain, "privileged_prompt_ids": privileged, "negative_prompt_ids": negative, "response_ids": response}


def log_probs(model, prompt, response):
    """log-softmax of the logits predicting each response token, with an unpadded forward."""
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([prompt + response])).logits[0].float()
    rows = [len(prompt) + j - 1 for j in range(len(response))]  # logits at t-1 predict token t
    return torch.log_softmax(logits[rows], dim=-1)


def hand_loss(model, lam, kl):
    """sum over positions of KL(p||P) - lam KL(p||N) (or the forward KLs) by explicit sums, / T."""
    p = log_probs(model, PLAIN, RESPONSE)
    P = log_probs(model, PRIVILEGED, RESPONSE)
    N = log_probs(model, NEGATIVE, RESPONSE)
    total = 0.0
    for t in range(len(RESPONSE)):
        if kl == "reverse":
            kp = sum(float(p[t, v].exp() * (p[t, v] - P[t, v])) for v in range(p.shape[1]))
            kn = sum(float(p[t, v].exp() * (p[t, v] - N[t, v])) for v in range(p.shape[1]))
        else:
            kp = sum(float(P[t, v].exp() * (P[t, v] - p[t, v])) for v in range(p.shape[1]))
            kn = sum(float(N[t, v].exp() * (N[t, v] - p[t, v])) for v in range(p.shape[1]))
        total += kp - lam * kn
    return total / len(RESPONSE)


@pytest.mark.parametrize("kl", ["reverse", "forward"])
def test_loss_equals_a_hand_computation_on_a_two_token_response(model, kl):
    reference = copy.deepcopy(model)
    batch = DailCollator(pad_token_id=0)([feature()])
    with torch.no_grad():
        out = dail_loss(model, batch, reference_model=reference, lam=0.1, kl=kl)
    expected = hand_loss(model, 0.1, kl)
    assert out.positions == 2
    assert float(out.loss) == pytest.approx(expected, rel=1e-4, abs=1e-6)
    assert out.kl_privileged > 0 and out.kl_negative > 0  # the contexts really differ
    assert float(out.loss) == pytest.approx(out.kl_privileged - 0.1 * out.kl_negative, rel=1e-5)


def test_chunk_size_does_not_change_the_loss_or_its_gradient(model):
    reference = copy.deepcopy(model)
    student = copy.deepcopy(model)
    batch = DailCollator(pad_token_id=0)([feature(response=[41, 42, 43, 44, 45]), feature(plain=[7, 8], response=[50, 51, 52])])
    results = []
    for chunk in (1, 3, 1024):
        student.zero_grad()
        out = dail_loss(student, batch, reference_model=reference, chunk_size=chunk)
        out.loss.backward()
        grad = student.get_output_embeddings().weight.grad.clone()
        results.append((float(out.loss.detach()), grad))
    for loss, grad in results[1:]:
        assert loss == pytest.approx(results[0][0], rel=1e-5)
        assert torch.allclose(grad, results[0][1], atol=1e-6)


def test_positions_align_across_prompts_of_different_lengths_and_padding(model):
    """Two rows with prompts of different lengths in each view: the loss is the same with left
    or right padding, and equals the position-weighted mean of the rows' own losses."""
    reference = copy.deepcopy(model)
    rows = [feature(), feature(plain=[9, 10, 11, 12, 13, 14, 15], privileged=[3, 4], negative=[5, 6, 7, 8, 9, 10, 11, 12], response=[60, 61, 62])]
    with torch.no_grad():
        right = dail_loss(model, DailCollator(0, "right")(rows), reference_model=reference)
        left = dail_loss(model, DailCollator(0, "left")(rows), reference_model=reference)
        reversed_rows = dail_loss(model, DailCollator(0, "left")(rows[::-1]), reference_model=reference)
        alone = [dail_loss(model, DailCollator(0)([row]), reference_model=reference) for row in rows]
    weighted = (float(alone[0].loss) * 2 + float(alone[1].loss) * 3) / 5
    assert float(right.loss) == pytest.approx(weighted, rel=1e-4)
    assert float(left.loss) == pytest.approx(float(right.loss), rel=1e-4)
    assert float(reversed_rows.loss) == pytest.approx(float(right.loss), rel=1e-4)


def test_a_shifted_alignment_gives_a_different_value(model):
    """Moving the privileged view's response start by one (the reference code's off-by-one)
    changes the loss: the alignment is what the test above pins down, not an accident."""
    reference = copy.deepcopy(model)
    batch = DailCollator(pad_token_id=0)([feature()])
    with torch.no_grad():
        aligned = float(dail_loss(model, batch, reference_model=reference).loss)
        shifted = dict(batch)
        shifted["privileged_response_start"] = batch["privileged_response_start"] + 1
        off = float(dail_loss(model, shifted, reference_model=reference).loss)
    assert aligned == pytest.approx(hand_loss(model, 0.1, "reverse"), rel=1e-4)
    assert abs(off - aligned) > 1e-4


def test_the_first_response_token_needs_a_prompt():
    with pytest.raises(ValueError, match="prompt"):
        DailCollator(0)([feature(plain=[])])


def test_gradients_reach_the_trained_copy_only(model):
    student = copy.deepcopy(model)
    student.train()
    reference = copy.deepcopy(model)
    reference.requires_grad_(False)
    out = dail_loss(student, DailCollator(0)([feature()]), reference_model=reference)
    out.loss.backward()
    assert all(p.grad is None for p in reference.parameters())
    grads = [p.grad for p in student.parameters()]
    assert all(g is not None for g in grads) and any(float(g.abs().sum()) > 0 for g in grads)


def test_lora_references_are_the_base_weights_and_only_adapters_get_gradients(model):
    peft = pytest.importorskip("peft")
    base = copy.deepcopy(model)
    torch.manual_seed(1)
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    student = peft.get_peft_model(copy.deepcopy(model), config)
    batch = DailCollator(0)([feature()])

    out = dail_loss(student, batch)  # references: the adapter disabled
    out.loss.backward()
    named = dict(student.named_parameters())
    lora = [n for n in named if "lora_" in n]
    assert lora and all(named[n].grad is not None and float(named[n].grad.abs().sum()) > 0 for n in lora)
    assert all(named[n].grad is None for n in named if "lora_" not in n)

    with torch.no_grad():
        frozen_copy = dail_loss(student, batch, reference_model=base)  # the same references
        plain = dail_loss(model, batch, reference_model=base)  # without the adapter's effect
    assert float(out.loss) == pytest.approx(float(frozen_copy.loss), rel=1e-5)
    assert abs(float(out.loss) - float(plain.loss)) > 1e-4  # the adapter (random B) matters


def test_lambda_zero_skips_the_negative_view(model):
    reference = copy.deepcopy(model)
    batch = DailCollator(0)([feature()])
    with torch.no_grad():
        out = dail_loss(model, batch, reference_model=reference, lam=0.0)
    assert out.kl_negative == 0.0
    assert float(out.loss) == pytest.approx(out.kl_privileged, rel=1e-6)
