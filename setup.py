"""Packaging beyond pyproject.toml: the card templates live in the top-level cards/ folder and
are copied into the wheel as dart_hub/cards/ (dart_hub.publish.templates reads them there, or
from cards/ in a source checkout)."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildWithCards(build_py):
    def run(self):
        super().run()
        target = Path(self.build_lib) / "dart_hub" / "cards"
        target.mkdir(parents=True, exist_ok=True)
        for template in sorted(Path(__file__).resolve().parent.joinpath("cards").glob("*.j2")):
            shutil.copy2(template, target / template.name)


setup(cmdclass={"build_py": BuildWithCards})
