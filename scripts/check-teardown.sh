#!/usr/bin/env bash
# After `pulumi destroy`: fails if a namespace of ours still exists (Terminating or not) or
# a custom resource of the API groups the platform uses is left anywhere in the cluster.
# Usage: check-teardown.sh [context] [cluster|shared]. On a shared cluster (OpenShift, whose
# own monitors, Routes, subscriptions and gateways use the same groups) only objects labelled
# as ours count; OpenShift's groups are always judged by that label.
set -euo pipefail
context=${1:-kind-maas}
mode=${2:-cluster}
case "$mode" in
cluster | shared) ;;
*)
  echo "usage: check-teardown.sh [context] [cluster|shared]" >&2
  exit 2
  ;;
esac
k() { kubectl --context "$context" "$@"; }
ours=app.kubernetes.io/part-of=maas-platform

status=0
left=$(k get namespaces -l app.kubernetes.io/part-of=maas-platform -o name)
if [ -n "$left" ]; then
  echo "namespaces of ours still exist:" >&2
  k get namespaces -l app.kubernetes.io/part-of=maas-platform >&2
  status=1
fi
# Ours, and those the operators create from ours: AuthConfigs and the Authorino instance
# (kuadrant-operator), the EnvoyFilters and WasmPlugins Kuadrant programs Istio with.
for group in gateway.networking.k8s.io kuadrant.io extensions.kuadrant.io limitador.kuadrant.io \
  authorino.kuadrant.io operator.authorino.kuadrant.io serving.kserve.io cert-manager.io \
  monitoring.coreos.com k8s.keycloak.org networking.istio.io security.istio.io \
  telemetry.istio.io extensions.istio.io inference.networking.k8s.io llm-d.ai \
  sailoperator.io operators.coreos.com route.openshift.io operator.openshift.io; do
  case "$mode:$group" in
  cluster:*.openshift.io | cluster:sailoperator.io | cluster:operators.coreos.com | shared:*) label=$ours ;;
  *) label= ;;
  esac
  for resource in $(k api-resources --api-group="$group" -o name 2>/dev/null); do
    if [ -n "$label" ]; then
      found=$(k get "$resource" --all-namespaces -l "$label" -o name 2>/dev/null || true)
    else
      found=$(k get "$resource" --all-namespaces -o name 2>/dev/null || true)
    fi
    if [ -n "$found" ]; then
      echo "left behind ($resource):" >&2
      echo "$found" >&2
      status=1
    fi
  done
done
[ "$status" -eq 0 ] && echo "teardown clean: no namespace of ours, no custom resource of our groups"
exit "$status"
