#!/usr/bin/env bash
# Create .venv with launchbay (editable) and everything the tests need. Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[test]"
# PyTorch (CPU build, from this machine's local wheel) lets the tests check that 0-d tensors
# are logged without a sync per step; the tests still pass without it.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    .venv/bin/python -m pip install -q "torch==2.13.0" || echo "setup-venv: torch not installed (optional)"
fi
