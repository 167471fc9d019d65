"""The dataset card's training commands: `dart-hub train` (recommended) and the same training as
`trl sft`, generated from the settings `dart-hub train` uses and parsed by TRL's own parser."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from dart_hub.publish.cards import TRL_MIN_VERSION, training_settings
from dart_hub.training.config import PAPER_DEFAULTS
from dart_hub.training.run import CARD_HYPERPARAMETERS
from tests.test_publish_folder import adapted_examples, write


@pytest.fixture(scope="module")
def card_and_folder(tmp_path_factory) -> tuple[str, Path]:
    examples, config = adapted_examples()
    out = write(tmp_path_factory.mktemp("card") / "out", examples, config)
    return (out / "README.md").read_text(), out


def command_from_card(card: str, program: str) -> list[str]:
    """The fenced bash block of the card that starts with `program`, as argv."""
    blocks = re.findall(r"```bash\n(.*?)\n```", card, flags=re.S)
    [block] = [b for b in blocks if b.startswith(program)]
    return shlex.split(block.replace("\\\n", " "))


def test_card_recommends_dart_hub_train_and_names_the_trl_version(card_and_folder):
    card, _ = card_and_folder
    assert command_from_card(card, "dart-hub train")[:2] == ["dart-hub", "train"]
    assert f"TRL >= {TRL_MIN_VERSION}" in card and "0.20" not in card
    assert TRL_MIN_VERSION == "1.16"


def test_trl_command_parses_with_trls_own_parser_into_dart_hub_trains_settings(card_and_folder):
    pytest.importorskip("trl")
    from trl.scripts.sft import make_parser

    card, _ = card_and_folder
    argv = command_from_card(card, "trl sft")
    assert argv[:2] == ["trl", "sft"]
    # This CPU machine cannot validate bf16 without use_cpu (SFTConfig refuses bf16 on a
    # CPU-only setup otherwise); on a GPU the card's command parses as it is.
    script, training, model, _ = make_parser().parse_args_and_config(
        [*argv[2:], "--use_cpu", "true"], fail_with_unknown_args=True
    )
    assert model.model_name_or_path == "Qwen/Qwen2.5-1.5B-Instruct"
    assert script.dataset_name == "path/to/this/folder" and script.dataset_train_split == "train"
    for key, value in training_settings().items():
        parsed = getattr(training, key)
        parsed = getattr(parsed, "value", parsed)  # enums (lr_scheduler_type, save_strategy)
        if key == "report_to":
            assert parsed in ([], "none", ["none"]), parsed
        else:
            assert parsed == value, (key, parsed, value)
    # the values TRL would otherwise use differ: the command really sets them
    assert training.per_device_train_batch_size == 1 and training.assistant_only_loss is True
    assert training.bf16 is True and training.learning_rate == PAPER_DEFAULTS["learning_rate"]


def test_dart_hub_train_command_of_the_card_runs_with_the_same_settings(card_and_folder, tiny_model_dir, tmp_path):
    """The card's `dart-hub train` command, pointed at local copies (dry run: settings resolved,
    no training), uses the settings the TRL command spells out."""
    pytest.importorskip("trl")
    card, folder = card_and_folder
    argv = command_from_card(card, "dart-hub train")[2:]
    argv[argv.index("--student") + 1] = str(tiny_model_dir)
    argv[argv.index("--data") + 1] = str(folder)
    argv[argv.index("--output") + 1] = str(tmp_path / "run")
    result = CliRunner().invoke(cli, ["train", *argv, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    settings = training_settings()
    for key in CARD_HYPERPARAMETERS:
        if key in settings and key not in ("bf16", "assistant_only_loss"):
            assert plan["hyperparameters"][key] == settings[key], key
    for key in ("save_strategy", "logging_steps", "save_only_model"):
        assert plan["sft_config"][key] == settings[key], key
    # bf16 needs a GPU here; the loss is on the assistant turn either way (the tiny template has
    # no generation markers, so dart-hub masks the prompt through completion_only_loss)
    assert plan["loss"]["mode"] in ("assistant_only", "completion_only")


@pytest.mark.slow
def test_trl_command_of_the_card_trains_on_the_adapted_folder(card_and_folder, tiny_model_dir, tmp_path):
    """TRL's own `trl sft` script, given the card's command (student and dataset pointed at local
    copies, one step, CPU), trains on the folder `adapt` writes, with the loss on the assistant
    turn only. The tiny model gets Qwen2.5-Instruct's template, which TRL knows how to mask."""
    pytest.importorskip("trl")
    import shutil

    from transformers import AutoTokenizer
    from trl.chat_template_utils import qwen2_5_chat_template
    from trl.scripts.sft import main, make_parser

    card, folder = card_and_folder
    student = Path(shutil.copytree(tiny_model_dir, tmp_path / "student"))
    tokenizer = AutoTokenizer.from_pretrained(student)
    tokenizer.chat_template = qwen2_5_chat_template
    tokenizer.save_pretrained(student)
    argv = command_from_card(card, "trl sft")[2:]
    argv[argv.index("--model_name_or_path") + 1] = str(student)
    argv[argv.index("--dataset_name") + 1] = str(folder)
    argv[argv.index("--output_dir") + 1] = str(tmp_path / "trl-out")
    # CPU and a quick run: what only a GPU run or patience would change
    argv += ["--use_cpu", "true", "--bf16", "false", "--max_steps", "1", "--max_length", "256"]
    script, training, model, dataset = make_parser().parse_args_and_config(argv, fail_with_unknown_args=True)
    assert training.assistant_only_loss is True
    main(script, training, model, dataset)
    assert (tmp_path / "trl-out" / "model.safetensors").is_file()
    state = json.loads(next((tmp_path / "trl-out").glob("checkpoint-*/trainer_state.json")).read_text())
    assert state["global_step"] == 1 and state["log_history"][0]["loss"] > 0
