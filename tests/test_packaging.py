"""The card templates live in the top-level cards/ folder; a built wheel carries them (as
dart_hub/cards/) and an installed wheel renders cards from them without the source tree."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = sorted(p.name for p in (ROOT / "cards").glob("*.j2"))


def test_templates_are_read_from_the_top_level_cards_folder():
    from dart_hub.publish.templates import SOURCE_DIR, read_template

    assert TEMPLATES == ["dataset_card.md.j2", "model_card.md.j2"]
    assert SOURCE_DIR == ROOT / "cards"
    for name in TEMPLATES:
        assert read_template(name) == (ROOT / "cards" / name).read_text(encoding="utf-8")
    assert not (ROOT / "dart_hub" / "resources" / "cards").exists()  # one place only


@pytest.mark.slow
def test_a_built_wheel_carries_the_card_templates_and_finds_them_installed(tmp_path):
    build = ROOT / "build"
    had_build = build.exists()
    try:
        done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path / "dist")],
                              capture_output=True, text=True, timeout=600)  # fmt: skip
    finally:
        if not had_build:  # setuptools builds in the tree; leave it as it was
            subprocess.run(["rm", "-rf", str(build), *map(str, ROOT.glob("*.egg-info"))], check=False)
    assert done.returncode == 0, done.stderr
    wheel = next((tmp_path / "dist").glob("dart_hub-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for name in TEMPLATES:
        assert f"dart_hub/cards/{name}" in names
    site = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)], check=True, timeout=300)
    script = (
        "import dart_hub.publish.templates as t, pathlib; "
        f"assert pathlib.Path(t.__file__).is_relative_to(pathlib.Path(r'{site}')), t.__file__; "
        "assert not t.SOURCE_DIR.exists(); "
        "print(len(t.read_template('dataset_card.md.j2')), len(t.read_template('model_card.md.j2')))"
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    shown = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    sizes = [len((ROOT / "cards" / n).read_text(encoding="utf-8")) for n in TEMPLATES]
    assert shown.stdout.split() == [str(s) for s in sizes]
