"""The student's likelihood scorer of the mapper (`--scorer transformers|vllm`).

The first tests need no vLLM and run in the default suite: options, the one-line error without
vLLM, and the selection plumbing of `adapt --method mapper` / `mapper train` with a fake scorer.
The tests marked `vllm` compare `VLLMScorer` with `TransformersScorer` on the toy student; run
them in an environment with vLLM (docs/vllm.md):

    VLLM_CPU_KVCACHE_SPACE=1 PYTHONPATH=$PWD /work/vllm-venv/bin/python -m pytest -m vllm tests/test_mapper_scorer.py

They cost three vLLM start-ups on the CPU (the module's scorer, the `dart-hub adapt` and
`dart-hub mapper train` subprocesses; the last needs trl, `.[train]`, and is skipped without it).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import dart_hub.methods.mapper.scorer as scorer_module
from dart_hub.cli import cli
from dart_hub.errors import DartHubError
from dart_hub.methods.mapper.scorer import TransformersScorer, _visible_gpu, make_scorer
from dart_hub.prompts import default_prompts
from dart_hub.toy import expert_dataset_path, method_prompts_path, toy_student_path

HAS_VLLM = importlib.util.find_spec("vllm") is not None
QUESTION = "Start with 18. Add 4, multiply by 4, subtract 6. What is the result?"
IN_STYLE = "Step 1: 18 + 4 = 22\n\nStep 2: 22 * 4 = 88\n\nStep 3: 88 - 6 = 82\n\nThe answer is \\boxed{82}"
GARBLED = "82 = 4 Step * answer \\boxed{88} 22\n\n6 - is multiply 18 The 3: Step + by 2: 4 = the"
ORIGINAL = (
    "We begin with 18 and add 4, which gives 18 + 4 = 22.\n\n"
    "Folding the next two operations together: 22*4-6 = 82.\n\n"
    "Therefore the result of the process is \\boxed{82}."
)


def adapt_args(tmp_path: Path, *extra: str, name: str = "out") -> list[str]:
    return [
        "adapt", "--method", "mapper", "--student", str(toy_student_path()), "--dataset", str(expert_dataset_path()),
        "--limit", "2", "--engine", "transformers", "--device", "cpu", "--dtype", "float32",
        "--mapper-samples", "2", "--mapper-max-tokens", "48", "--mapper-fallback", "original",
        "--method-prompts", str(method_prompts_path("mapper")),
        "--output", str(tmp_path / name), "--work-dir", str(tmp_path / f"w-{name}"), "--quiet", "--json", *extra,
    ]  # fmt: skip


def train_args(tmp_path: Path, *extra: str) -> list[str]:
    return [
        "mapper", "train", "--student", str(toy_student_path()), "--dataset", str(expert_dataset_path()),
        "--limit", "2", "--output", str(tmp_path / "run"), "--quiet", "--json", *extra,
    ]  # fmt: skip


class FakeScorer:
    """Stands in for a scorer class: records how it was built, scores by response length."""

    built: list[tuple[str, dict]] = []

    def __init__(self, model: str, **options):
        FakeScorer.built.append((model, options))
        self.closed = False
        self.calls = 0
        FakeScorer.last = self

    def mean_logprobs(self, questions, responses):
        self.calls += 1
        return [-1.0 - len(r) / 1000 for r in responses]

    def own_solutions(self, questions, max_tokens):
        """The student's own solution (too_short's yardstick): a fixed two-step text."""
        return ["First step. Second step. \\boxed{0}" for _ in questions]

    def describe(self):
        return {"scorer": "fake"}

    def close(self):
        self.closed = True


@pytest.fixture
def fake_scorers(monkeypatch):
    FakeScorer.built = []
    monkeypatch.setattr(scorer_module, "VLLMScorer", FakeScorer)
    monkeypatch.setattr(scorer_module, "TransformersScorer", FakeScorer)
    real = scorer_module.require_scorer
    # vLLM counts as installed (the fake stands in for it); unknown names still fail
    monkeypatch.setattr(scorer_module, "require_scorer", lambda name: None if name == "vllm" else real(name))
    return FakeScorer


# -- no vLLM needed ------------------------------------------------------------------------


def test_scorer_options_are_in_both_commands_and_checked():
    for args in (["mapper", "train", "--help"], ["adapt", "--help"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0 and "--scorer [transformers|vllm]" in result.output, result.output
        assert "--scorer-gpu-memory-utilization" in result.output
    result = CliRunner().invoke(cli, ["mapper", "train", "--student", "x", "--dataset", "y", "--output", "z", "--scorer", "onnx"])
    assert result.exit_code == 2 and "Invalid value for '--scorer'" in result.output
    with pytest.raises(DartHubError, match="unknown scorer 'onnx'"):
        make_scorer("onnx", "model")


@pytest.mark.slow  # toy adapt runs: seconds each
def test_vllm_scorer_without_vllm_is_a_one_line_error_before_any_work(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "vllm", None)  # `import vllm` fails, find_spec finds nothing
    with pytest.raises(DartHubError, match=r"--scorer vllm needs vLLM.*install-vllm-cpu\.sh"):
        make_scorer("vllm", str(toy_student_path()))
    with pytest.raises(DartHubError, match=r"--scorer vllm needs vLLM.*install-vllm-cpu\.sh"):
        scorer_module.VLLMScorer(str(toy_student_path()))
    for args in (adapt_args(tmp_path, "--scorer", "vllm"), train_args(tmp_path, "--scorer", "vllm")):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: --scorer vllm needs vLLM"), result.stderr
    assert not (tmp_path / "out").exists() and not (tmp_path / "w-out").exists() and not (tmp_path / "run").exists()
    # with the rewards that read the student off (alignment, too_short) no scorer is needed, so no vLLM either
    result = CliRunner().invoke(cli, adapt_args(tmp_path, "--scorer", "vllm", "--mapper-rewards", "alignment=0,too_short=0"))
    assert result.exit_code == 0, result.output


@pytest.mark.slow  # toy adapt runs: seconds each
def test_adapt_builds_the_chosen_scorer_uses_it_and_records_it(fake_scorers, tmp_path):
    result = CliRunner().invoke(cli, adapt_args(tmp_path, "--scorer", "vllm", "--scorer-device", "cuda:1", "--scorer-gpu-memory-utilization", "0.3"))
    assert result.exit_code == 0, result.output
    ((model, options),) = fake_scorers.built  # loaded once, on first use
    assert model == str(toy_student_path())
    assert options["device"] == "cuda:1" and options["gpu_memory_utilization"] == 0.3 and options["dtype"] == "float32"
    assert options["system"] == default_prompts().sft_system  # the question as SFT shows it
    assert fake_scorers.last.calls > 0 and fake_scorers.last.closed
    config = json.loads((tmp_path / "out" / "dart_config.json").read_text())
    assert config["mapper"]["scorer"] == "vllm"
    assert "--scorer vllm" in (tmp_path / "out" / "README.md").read_text()  # the card's command and table
    import datasets

    for row in datasets.load_dataset(str(tmp_path / "out"), "steps", split="train"):
        data = json.loads(row["method_data"])
        for candidate, rewards in zip(row["candidates"], data["rewards"], strict=True):
            if candidate["correct"]:  # the fake's value reached the alignment reward
                assert rewards["alignment"] == pytest.approx(-1.0 - len(candidate["text"]) / 1000, abs=1e-6)


@pytest.mark.slow  # toy adapt runs: seconds each
def test_adapt_default_scorer_is_transformers_and_the_choice_changes_the_fingerprint(fake_scorers, tmp_path):
    assert CliRunner().invoke(cli, adapt_args(tmp_path)).exit_code == 0
    ((_, options),) = fake_scorers.built
    assert "gpu_memory_utilization" not in options  # a vLLM-only setting is not passed on
    config = json.loads((tmp_path / "out" / "dart_config.json").read_text())
    assert config["mapper"]["scorer"] == "transformers"
    assert CliRunner().invoke(cli, adapt_args(tmp_path, "--scorer", "vllm", name="vllm")).exit_code == 0
    first, other = (json.loads((tmp_path / name / "dart_config.json").read_text())["fingerprint"] for name in ("out", "vllm"))
    assert first != other  # resumed chunks never mix scores of two scorers


def test_mapper_train_builds_the_chosen_scorer_and_closes_it(fake_scorers, monkeypatch, tmp_path):
    import dart_hub.methods.mapper.train as train_module

    seen = {}

    def fake_train(**kwargs):
        seen.update(kwargs)
        return {"final": "f", "steps": 0, "reward_curve": [], "device": "cpu", "device_hours": 0.0, "gpu_hours": 0.0,
                "scorer": kwargs["scorer"].describe()}  # fmt: skip

    monkeypatch.setattr(train_module, "train_mapper", fake_train)
    result = CliRunner().invoke(cli, train_args(tmp_path, "--scorer", "vllm", "--scorer-device", "cuda:1", "--scorer-batch-size", "32", "--scorer-gpu-memory-utilization", "0.4"))
    assert result.exit_code == 0, result.output
    ((model, options),) = fake_scorers.built
    assert model == str(toy_student_path()) and seen["scorer"] is fake_scorers.last and fake_scorers.last.closed
    assert (options["device"], options["batch_size"], options["gpu_memory_utilization"]) == ("cuda:1", 32, 0.4)
    assert json.loads(result.stdout)["scorer"] == "fake"
    fake_scorers.built.clear()
    assert CliRunner().invoke(cli, train_args(tmp_path)).exit_code == 0
    ((_, options),) = fake_scorers.built
    assert "batch_size" not in options and "gpu_memory_utilization" not in options  # each scorer's own defaults


def test_recipes_choose_the_scorer(tmp_path):
    from dart_hub.recipes import adapt_options, load_recipe

    recipe = Path(__file__).parents[1] / "recipes" / "qwen2.5-1.5b-instruct" / "limo-mapper.yaml"
    options = adapt_options(load_recipe(recipe, ["adapt.scorer=vllm", "adapt.scorer_device=cuda:1", "adapt.scorer_gpu_memory_utilization=0.3"]), tmp_path)
    assert (options["scorer"], options["scorer_device"], options["scorer_gpu_memory_utilization"]) == ("vllm", "cuda:1", 0.3)
    assert adapt_options(load_recipe(recipe), tmp_path)["scorer"] == "transformers"


def test_scorer_device_cuda_n_narrows_the_visible_gpus_while_vllm_starts(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6")
    with _visible_gpu("cuda:1"):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "4,5,6"
    with pytest.raises(DartHubError, match="cuda:3"), _visible_gpu("cuda:3"):
        pass
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES")
    with _visible_gpu("cuda:2"):
        assert os.environ["CUDA_VISIBLE_DEVICES"] == "2"
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    for device in (None, "auto", "cuda", "cpu"):
        with _visible_gpu(device):
            assert "CUDA_VISIBLE_DEVICES" not in os.environ


# -- vLLM: the toy student -------------------------------------------------------------------

needs_vllm = [
    pytest.mark.vllm,
    pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (docs/vllm.md)"),
    pytest.mark.timeout(900),  # the first test also pays the engine start-up
]
SYSTEM = "Solve the problem step by step."


@pytest.fixture(scope="module")
def vllm_scorer():
    try:
        import vllm  # noqa: F401
    except ImportError as exc:
        pytest.skip(f"vllm is installed but cannot be imported: {exc}")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")
    scorer = make_scorer("vllm", str(toy_student_path()), system=SYSTEM, enforce_eager=True, max_num_seqs=16)
    yield scorer
    scorer.close()


def pairs() -> list[tuple[str, str]]:
    rows = [json.loads(line) for line in expert_dataset_path().read_text().splitlines()[:3]]
    out = [(QUESTION, IN_STYLE), (QUESTION, GARBLED), (QUESTION, ORIGINAL), (QUESTION, "82")]
    return out + [(row["question"], row["solution"]) for row in rows]


class TestVLLMScorer:
    pytestmark = needs_vllm

    def test_matches_the_transformers_scorer_per_token(self, vllm_scorer):
        if vllm_scorer.device != "cpu":
            pytest.skip("float16 on a GPU is compared with float32 transformers only loosely")
        reference = TransformersScorer(str(toy_student_path()), device="cpu", dtype="float32", system=SYSTEM)
        questions, responses = zip(*pairs(), strict=True)
        for q, r in pairs():  # the same tokens: system turn, chat template, response boundary
            assert vllm_scorer.sequence(q, r, reference.max_length) == reference.sequence(q, r)
        expected = reference.mean_logprobs(questions, responses)
        got = vllm_scorer.mean_logprobs(questions, responses)
        differences = [abs(a - b) for a, b in zip(got, expected, strict=True)]
        print("per-token mean log-likelihood, vLLM vs transformers:", [(round(a, 4), round(b, 4)) for a, b in zip(got, expected, strict=True)], "max |diff|", max(differences))
        assert max(differences) < 1e-2
        assert vllm_scorer.mean_logprobs(questions[:1], responses[:1]) == got[:1]  # cached
        assert vllm_scorer.mean_logprobs([QUESTION], [""]) == [-math.inf] == reference.mean_logprobs([QUESTION], [""])
        assert vllm_scorer.describe()["scorer"] == "vllm" and vllm_scorer.describe()["dtype"] == "float32"

    def test_a_device_vllm_does_not_run_on_is_refused_before_starting(self, vllm_scorer):
        other = "cuda:1" if vllm_scorer.device == "cpu" else "cpu"
        with pytest.raises(DartHubError, match=f"--scorer-device {other}: this vLLM runs on {vllm_scorer.device}"):
            make_scorer("vllm", str(toy_student_path()), device=other)

    def test_ranks_an_in_style_solution_above_a_garbled_one(self, vllm_scorer):
        in_style, garbled, original = vllm_scorer.mean_logprobs([QUESTION] * 3, [IN_STYLE, GARBLED, ORIGINAL])
        assert in_style > garbled + 1.0 and in_style > original + 1.0  # nats per token


@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (docs/vllm.md)")
@pytest.mark.timeout(900)
def test_dart_hub_adapt_method_mapper_with_the_vllm_scorer(tmp_path):
    """The console script with `--scorer vllm` (vLLM's spawned engine process needs the
    command's __main__ guard); the mapper itself generates with transformers."""
    script = Path(sys.executable).parent / "dart-hub"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "dart_hub.cli"]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    result = subprocess.run([*cmd, *adapt_args(tmp_path, "--scorer", "vllm")], env=env, capture_output=True, text=True, timeout=850)
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["method"] == "mapper" and summary["kept"] == 2
    config = json.loads((tmp_path / "out" / "dart_config.json").read_text())
    assert config["mapper"]["scorer"] == "vllm"
    import datasets

    for row in datasets.load_dataset(str(tmp_path / "out"), "steps", split="train"):
        rewards = json.loads(row["method_data"])["rewards"]
        assert all(config["mapper"]["rewards"]["align_floor"] <= r["alignment"] <= 0 for r in rewards)


@pytest.mark.vllm
@pytest.mark.skipif(not HAS_VLLM, reason="vllm is not installed (docs/vllm.md)")
@pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason="mapper train needs trl (pip install -e '.[train]')")
@pytest.mark.timeout(900)
def test_dart_hub_mapper_train_with_the_vllm_scorer(tmp_path):
    """Two GRPO steps on the toy mapper (TRL in this process, the scorer's vLLM engine in its
    own); the gate is off so the alignment reward shows the scorer's values."""
    script = Path(sys.executable).parent / "dart-hub"
    cmd = [str(script)] if script.exists() else [sys.executable, "-m", "dart_hub.cli"]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1")}
    args = train_args(tmp_path, "--scorer", "vllm", "--scorer-dtype", "float32", "--mapper-prompts", str(method_prompts_path("mapper")),
                      "--num-generations", "2", "--max-completion-length", "32", "--beta", "0", "--max-steps", "2",
                      "--reward-settings", "gate=false")  # fmt: skip
    result = subprocess.run([*cmd, *args], env=env, capture_output=True, text=True, timeout=850)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["scorer"] == "vllm"
    record = json.loads((tmp_path / "run" / "mapper_run.json").read_text())
    assert record["scorer"]["scorer"] == "vllm" and record["scorer"]["dtype"] == "float32" and record["scorer"]["vllm"]
    alignment = [point["alignment"] for point in record["reward_curve"]]
    assert len(alignment) == 2 and all(-10.0 < value < 0 for value in alignment)
