#!/usr/bin/env bash
# Deploys the `dev` stack: a local kind cluster (created when absent), a local file state
# backend (created when absent), then `pulumi up` guarded by the policy pack. Safe to run
# again: it converges.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

require_tools docker kind kubectl pulumi python3
if ! docker info >/dev/null 2>&1; then
  echo "Cannot deploy: docker is installed but its daemon does not answer (is it running?)." >&2
  exit 1
fi

if ! kind get clusters 2>/dev/null | grep -qx "$MAAS_KIND_CLUSTER"; then
  kind create cluster --name "$MAAS_KIND_CLUSTER" --image "$(pinned KIND_NODE_IMAGE)" --wait 120s
fi

use_local_backend
pulumi stack select dev --create
pulumi up --stack dev --yes --skip-preview \
  --policy-pack policies --policy-pack-config policies/config/dev.json "$@"
pulumi stack output --stack dev
