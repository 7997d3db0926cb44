#!/usr/bin/env bash
# Tears a stack down with `pulumi destroy`: `scripts/destroy.sh dev` (`make destroy-dev`,
# `make destroy STACK=...`). `--delete-cluster` also deletes the local kind cluster, for a
# stack deployed to it (scripts/lib.sh on_local_kind: dev, dev-oidc); for any other stack
# it is refused before anything is destroyed, since that cluster is not this project's.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

stack=${1:?usage: scripts/destroy.sh STACK [--delete-cluster]}
require_tools python3
delete_cluster=""
if [ "${2:-}" = "--delete-cluster" ]; then
  if ! on_local_kind "$stack"; then
    echo "Cannot delete the cluster: stack $stack deploys to context '$(stack_context "$stack")'," \
      "not the local kind cluster kind-$MAAS_KIND_CLUSTER." >&2
    exit 1
  fi
  delete_cluster=yes
fi
ensure_tools pulumi
use_local_backend
prepare_python
config_file=$(stack_file "$stack")
pulumi destroy --stack "$stack" --config-file "$config_file" --yes --non-interactive
if [ -n "$delete_cluster" ]; then
  ensure_tools kind
  kind delete cluster --name "$MAAS_KIND_CLUSTER"
fi
