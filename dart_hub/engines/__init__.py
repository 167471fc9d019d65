"""Text generation engines behind one protocol (see base.py)."""

from dart_hub.engines.base import Completion, Engine, GenerationRequest

__all__ = ["Completion", "Engine", "GenerationRequest"]
