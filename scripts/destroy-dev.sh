#!/usr/bin/env bash
# Tears the `dev` stack down with `pulumi destroy`; `--delete-cluster` also removes the kind cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

require_tools kind pulumi python3
use_local_backend
pulumi destroy --stack dev --yes
if [ "${1:-}" = "--delete-cluster" ]; then
  kind delete cluster --name "$MAAS_KIND_CLUSTER"
fi
