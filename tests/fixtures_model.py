"""Fixtures: tiny models built from a config and a locally trained tokenizer."""
