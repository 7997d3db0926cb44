#!/usr/bin/env bash
# Runs the end-to-end suite against a deployed stack (default: dev) in the local state backend.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

require_tools python3
ensure_tools kubectl pulumi
use_local_backend
MAAS_E2E_STACK=${MAAS_E2E_STACK:-dev} exec .venv/bin/pytest tests/e2e -p no:cacheprovider "$@"
