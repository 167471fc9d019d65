"""Shared pytest configuration. Fixtures live in the fixtures_* modules listed here."""

pytest_plugins = ["tests.fixtures_hub", "tests.fixtures_model"]
