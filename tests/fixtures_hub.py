"""Fixtures: a local Hub emulator (filled in by the Hub emulator work)."""
