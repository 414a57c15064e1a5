#!/usr/bin/env bash
# Install launchbay (the product, plus JupyterLab) into .venv and open JupyterLab on the quickstart
# notebook (local target, embedded store in notebooks/.launchbay/). The test toolchain is not
# installed here: scripts/setup-venv.sh does that for CI and development.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[lab]"
port=${LAUNCHBAY_LAB_PORT:-}
if [ -z "$port" ]; then  # 8888 when free, else any free port
    port=$(.venv/bin/python -c 'import socket
s = socket.socket()
try:
    s.bind(("127.0.0.1", 8888))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])')
fi
token=$(.venv/bin/python -c 'import secrets; print(secrets.token_hex(16))')
extra=()
if [ "$(id -u)" = 0 ]; then extra+=(--allow-root); fi
echo
echo "launchbay is installed in $repo/.venv. To use the launchbay command from this shell, run:"
echo "    source $repo/.venv/bin/activate"
echo "JupyterLab listens on http://127.0.0.1:$port/lab/tree/quickstart.ipynb?token=$token  (Ctrl-C stops it)"
echo
cd notebooks
exec ../.venv/bin/jupyter lab quickstart.ipynb --ip=127.0.0.1 --port="$port" \
    --ServerApp.port_retries=0 --IdentityProvider.token="$token" "${extra[@]}" "$@"
