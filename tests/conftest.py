"""Shared pytest configuration. Fixtures live in the fixtures_* modules listed here."""

import pytest

pytest_plugins = ["tests.fixtures_hub", "tests.fixtures_model"]


@pytest.fixture(autouse=True)
def isolated_caches(tmp_path_factory, monkeypatch):
    """Every test gets its own datasets cache and dart-hub work root: datasets caches local
    folders by name, and two tests writing `out/` must never read each other's rows."""
    import datasets

    root = tmp_path_factory.mktemp("caches")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(root / "datasets"))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", root / "datasets")
    monkeypatch.setenv("DART_HUB_CACHE", str(root / "dart-hub"))
