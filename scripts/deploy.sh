#!/usr/bin/env bash
# Deploys a stack: `scripts/deploy.sh dev` (README: `make deploy-dev`) or
# `scripts/deploy.sh gpu` (`make deploy STACK=gpu`). For a stack on the local kind cluster
# (its maas:cluster.context is kind-maas: dev, dev-oidc; scripts/lib.sh on_local_kind) it
# creates that cluster when absent; any other stack's cluster must exist already.
# kind, kubectl and the Pulumi CLI are fetched at their pinned versions when
# PATH has none at that version; the state lives in a local file backend. `pulumi up` previews first, with the policy
# pack, so a refused stack stops before anything is applied. Safe to run again: it converges.
# Extra arguments go to `pulumi up`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

stack=${1:?usage: scripts/deploy.sh STACK [pulumi up flags]}
shift
started=$(date +%s)

# curl: the first authorized call at the end (scripts/first-answer.sh).
require_tools python3 curl
if on_local_kind "$stack"; then
  require_docker
  ensure_tools kind kubectl pulumi
  if ! kind get clusters 2>/dev/null | grep -qx "$MAAS_KIND_CLUSTER"; then
    kind create cluster --name "$MAAS_KIND_CLUSTER" --image "$(pinned KIND_NODE_IMAGE)" --wait 120s
  fi
else
  echo "Stack $stack deploys to context '$(stack_context "$stack")', not the local kind cluster: it must exist."
  ensure_tools kubectl pulumi
fi

use_local_backend
prepare_python
# What the stack takes from the cluster instead of installing it (OpenShift: its Gateway API
# CRDs, user-workload monitoring), checked before anything is applied.
.venv/bin/python -m commands.preflight "$stack"
config_file=$(stack_file "$stack")
create_stack "$stack" "$config_file"
# No --skip-preview: the stack-level rules (routes-protected, tiers-limited, ...) run when
# the preview ends; without it they would run only after every resource is applied
# (pulumi/pulumi@v3.272.0 pkg/resource/deploy/deployment_executor.go). --refresh reads the cluster
# first, so a cluster recreated under a surviving state (or anything deleted by hand)
# is seen as gone and created again, instead of being reported as deployed.
pulumi up --stack "$stack" --config-file "$config_file" --yes --refresh --non-interactive \
  --policy-pack policies --policy-pack-config "policies/config/$stack.json" "$@"
pulumi stack output --stack "$stack"
# The policies report Enforced before Kuadrant has written the gateway's wasm config, and a
# failed write is only logged: wait for the config to hold what the stack declares, else fail
# naming the cause and the fix (scripts/kuadrant_written.py).
pulumi stack output --stack "$stack" --json | python3 scripts/kuadrant_written.py "$stack"

scripts/first-answer.sh "$stack" "$started"
