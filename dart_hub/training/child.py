"""Entry point of one training process started by `dart_hub.training.launch` (kept apart from
the launcher so that the launcher and the train stage do not import each other)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from dart_hub.errors import DartHubError
from dart_hub.training.launch import visible_gpus


def child_main(spec_path: str) -> int:
    """Entry point of one launched process."""
    from dart_hub.training.stage import run

    spec = json.loads(Path(spec_path).read_text(encoding="utf-8"))
    options = spec["options"]
    sft = dict(spec.get("sft") or {})
    if not visible_gpus():
        sft["use_cpu"] = True  # accelerate only forms a CPU (gloo) process group when asked
    try:
        run(sft=sft or None, **options)
    except DartHubError as error:
        print(f"Error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(child_main(sys.argv[1]))
