#!/usr/bin/env bash
# One command for the tracking benchmarks: MLflow in its own venv, then both sides in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
bash bench/mlflow_side/setup.sh
.venv/bin/python bench/bench_tracking.py "$@"
