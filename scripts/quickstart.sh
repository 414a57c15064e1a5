#!/usr/bin/env bash
# Set up launchbay and open JupyterLab on the quickstart notebook (local target, embedded store).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
extra=()
if [ "$(id -u)" = 0 ]; then extra+=(--allow-root); fi
cd notebooks
exec ../.venv/bin/jupyter lab quickstart.ipynb "${extra[@]}" "$@"
