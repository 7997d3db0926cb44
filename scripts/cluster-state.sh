#!/usr/bin/env bash
# What a person needs when the e2e job fails, written into a directory that e2e.yml keeps
# as an artifact: the node's description (its allocatable and what is requested of it),
# every event, every pod, the platform's objects with their conditions, and the logs of
# every pod in the namespaces of ours (operators, the gateway, Authorino, Limitador, the
# models and their picker), the previous container's too where one restarted.
# Usage: cluster-state.sh <context> <directory>. Best effort: what cannot be read is noted
# in its file, and the script never fails the job's cleanup.
set -u
context=${1:?usage: cluster-state.sh <context> <directory>}
dir=${2:?usage: cluster-state.sh <context> <directory>}
mkdir -p "$dir"
k() { kubectl --context "$context" "$@"; }

k describe nodes >"$dir/nodes.txt" 2>&1
k get events --all-namespaces --sort-by=.lastTimestamp -o wide >"$dir/events.txt" 2>&1
k get pods --all-namespaces -o wide >"$dir/pods.txt" 2>&1
k get gateways,httproutes,authpolicies,ratelimitpolicies,tokenratelimitpolicies,kuadrants,limitadors,authorinos,inferenceservices,inferencepools \
  --all-namespaces -o yaml >"$dir/objects.yaml" 2>&1
for namespace in $(k get namespaces -l app.kubernetes.io/part-of=maas-platform -o name 2>/dev/null); do
  namespace=${namespace#namespace/}
  for pod in $(k get pods -n "$namespace" -o name 2>/dev/null); do
    pod=${pod#pod/}
    k logs -n "$namespace" "$pod" --all-containers --prefix --tail=5000 >"$dir/logs-$namespace-$pod.txt" 2>&1
    k logs -n "$namespace" "$pod" --all-containers --prefix --previous --tail=5000 \
      >"$dir/logs-$namespace-$pod-previous.txt" 2>/dev/null || rm -f "$dir/logs-$namespace-$pod-previous.txt"
  done
done
echo "Cluster state written to $dir"
exit 0
