"""The model push: one `HfApi.upload_folder` commit, the base model's full licence metadata."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from dart_hub.cli import cli
from tests.test_train import trained_folder

QWEN_LICENCE = {
    "license": "other",
    "license_name": "qwen-research",
    "license_link": "https://huggingface.co/Qwen/Qwen2.5-3B-Instruct/blob/main/LICENSE",
}


@pytest.fixture
def student(tiny_model_dir: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "student"))


def base_card(licence: dict[str, str]) -> str:
    return "---\n" + "".join(f"{k}: {v}\n" for k, v in licence.items()) + "---\n\n# Base\n"


def push(out: Path, *extra: str):
    return CliRunner().invoke(cli, ["train", "--output", str(out), "--push-only", "--push-to-hub", "test-user/tiny-dart", *extra])


def test_push_is_one_upload_folder_commit_and_copies_an_other_licence_from_the_hub(hub, student, tmp_path, monkeypatch):
    from huggingface_hub import HfApi, ModelCard

    hub.create_model("Qwen/Qwen2.5-3B-Instruct", {"README.md": base_card(QWEN_LICENCE)})
    calls: list[dict] = []
    real = HfApi.upload_folder

    def spy(self, **kwargs):
        calls.append(kwargs)
        return real(self, **kwargs)

    monkeypatch.setattr(HfApi, "upload_folder", spy)
    out = trained_folder(tmp_path, student)
    result = push(out, "--base-model", "Qwen/Qwen2.5-3B-Instruct")
    assert result.exit_code == 0, result.output
    [call] = calls
    assert call["folder_path"] == str(out / "best") and call["repo_type"] == "model"

    commits = hub.commits("test-user/tiny-dart", repo_type="model")
    ours = [c for c in commits if "model.safetensors" in c.changed]
    assert len(ours) == 1 and commits[0].oid == ours[0].oid
    assert {"config.json", "model.safetensors", "README.md", "training_summary.json"} <= set(ours[0].changed)
    card = ModelCard(hub.read_file("test-user/tiny-dart", "README.md", repo_type="model").decode())
    meta = card.data.to_dict()
    assert {k: meta.get(k) for k in QWEN_LICENCE} == QWEN_LICENCE


def test_local_student_licence_and_the_license_flag(student, tmp_path):
    from huggingface_hub import ModelCard

    from dart_hub.publish.model_card import render_model_card

    (student / "README.md").write_text(base_card(QWEN_LICENCE))
    out = trained_folder(tmp_path, student)
    summary = __import__("json").loads((out / "training_summary.json").read_text())
    copied = ModelCard(str(render_model_card(summary, "test-user/x"))).data.to_dict()
    assert {k: copied.get(k) for k in QWEN_LICENCE} == QWEN_LICENCE
    # --license replaces the whole licence: no stale name/link of another licence
    replaced = ModelCard(str(render_model_card(summary, "test-user/x", license="apache-2.0"))).data.to_dict()
    assert replaced["license"] == "apache-2.0"
    assert "license_name" not in replaced and "license_link" not in replaced


def test_pushing_the_model_folder_again_after_a_push(hub, student, tmp_path):
    """After a push, best/ holds README.md and training_summary.json: pushing best/ itself works."""
    out = trained_folder(tmp_path, student)
    assert push(out).exit_code == 0
    again = CliRunner().invoke(cli, ["train", "--output", str(out / "best"), "--push-only", "--push-to-hub", "test-user/tiny-dart-2"])
    assert again.exit_code == 0, again.output
    assert "model.safetensors" in hub.list_files("test-user/tiny-dart-2", repo_type="model")
