"""dart-hub: adapt expert reasoning datasets to small students (DART) and publish them on the Hub.

The Python API is `dart_hub.api`: `adapt`, `push`, `train`, `evaluate`, `compare`,
`run_recipe`, `inspect`, `merge`, `card`, `report`, `prefetch`, `mapper_train`, `demo`, their
specs and results, all re-exported here with `DartHubError` (`dart_hub.adapt(spec)` is the
function; the package of the adapt stage and the DART algorithm is `dart_hub.adaptation`).
They load on first use, so `import dart_hub` (and `dart-hub --help`) stays fast.
"""

import importlib

__version__ = "0.1.0"

_API = (
    "AdaptResult", "AdaptSpec", "CardResult", "Comparison", "DemoResult", "DemoSpec", "EvalResult", "EvalSpec",
    "Fetched", "InspectSpec", "Inspection", "MapperTrainResult", "MapperTrainSpec", "MergeResult", "RecipeRun",
    "ReportResult", "TrainResult", "TrainSpec", "adapt", "card", "compare", "demo", "evaluate", "inspect", "mapper_train",
    "merge", "prefetch", "push", "report", "run_recipe", "train",
)  # fmt: skip
__all__ = ["DartHubError", "__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        # imported by name: the package does not import its API at import time
        return getattr(importlib.import_module("dart_hub.api"), name)
    if name == "DartHubError":
        from dart_hub.errors import DartHubError

        return DartHubError
    raise AttributeError(f"module 'dart_hub' has no attribute {name!r}")
