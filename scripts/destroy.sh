#!/usr/bin/env bash
# Tears a stack down with `pulumi destroy`: `scripts/destroy.sh dev` (`make destroy-dev`).
# `--delete-cluster` also removes the dev stack's kind cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

stack=${1:?usage: scripts/destroy.sh STACK [--delete-cluster]}
require_tools python3
ensure_tools pulumi
use_local_backend
prepare_python
pulumi destroy --stack "$stack" --yes --non-interactive
if [ "${2:-}" = "--delete-cluster" ]; then
  ensure_tools kind
  kind delete cluster --name "$MAAS_KIND_CLUSTER"
fi
