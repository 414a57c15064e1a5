#!/usr/bin/env bash
# Set up and run the whole test suite: venv, services, pytest; stops what it started.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
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
