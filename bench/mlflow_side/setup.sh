#!/usr/bin/env bash
# Create an isolated venv with the pinned MLflow used by mlflow_bench.py.
# Kept separate from launchbay's own venv so MLflow's heavy deps never leak in.
# Idempotent: does nothing when the venv already has the pinned version.
# Override the location with MLFLOW_BENCH_VENV=/some/path.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
venv="${MLFLOW_BENCH_VENV:-$(dirname "$here")/.venv-mlflow}"
req="$here/requirements.txt"
want="$(sed -n 's/^mlflow==//p' "$req")"

if [ -x "$venv/bin/python" ] &&
    [ "$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("mlflow"))' 2>/dev/null || true)" = "$want" ]; then
    echo "mlflow $want already installed in $venv" >&2
    exit 0
fi

python3 -m venv "$venv"
# Self-ignoring venv (like Python 3.13's venv does) so git never sees it.
printf '*\n' >"$venv/.gitignore"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet -r "$req"
echo "installed mlflow $want in $venv" >&2
echo "python: $venv/bin/python" >&2
