#!/usr/bin/env bash
# One command for issue 18's figures (100k-run store, run.log, submit, ingest memory, 1,000-trial sweep,
# the widget and sidebar on a growing 10M-point series):
# each script prints its rows of one table; details (JSON) go to stderr. The 100k-run store and
# MLflow's are built on the first run (~15 min) and cached under /tmp/launchbay-bench-scale/.
# Env: PY (default .venv/bin/python), MLFLOW_BENCH_VENV (default bench/.venv-mlflow), SWEEP_TRIALS.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}"
unset PYTHONDONTWRITEBYTECODE # users' launchbay has its bytecode cached: so does this run's
"$PY" -m compileall -q src/launchbay
bash bench/mlflow_side/setup.sh
ingest="$(mktemp -d)"
trap 'rm -rf "$ingest"' EXIT
touch "$ingest/index.sqlite"
echo "launchbay $(git rev-parse --short HEAD), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" bench/table.py --header
"$PY" bench/bench_scale.py
"$PY" bench/bench_runlog.py
"$PY" bench/bench_ingest_memory.py "$ingest" 300 --table
"$PY" bench/bench_sweep_scale.py --trials "${SWEEP_TRIALS:-1000}"
"$PY" bench/bench_growing.py
echo "GPU step-time overhead: not measured (no GPU on this machine)"
