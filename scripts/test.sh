#!/usr/bin/env bash
# Set up and run the whole test suite: venv, services, pytest; stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
# Debian packages the tests use directly (the services install their own).
need=()
for p in chromium git openmpi-bin libopenmpi-dev; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || need+=("$p")
done
if ((${#need[@]})); then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
fi
bash scripts/setup-venv.sh
export LAUNCHBAY_VENV="$PWD/.venv"
export LAUNCHBAY_SERVICES_DIR=${LAUNCHBAY_SERVICES_DIR:-/tmp/launchbay-services}
SERVICES=${LAUNCHBAY_TEST_SERVICES:-all}
cleanup() { bash scripts/services/stop.sh $SERVICES || true; }
trap cleanup EXIT
if [ "$SERVICES" != "none" ]; then
    bash scripts/services/start.sh $SERVICES
    # shellcheck disable=SC1091
    source "$LAUNCHBAY_SERVICES_DIR/env.sh"
fi
.venv/bin/python -m pytest "$@"
