#!/usr/bin/env bash
# After a deploy: calls the stack's first model through the gateway with the API key of the
# first user whose tier that model admits, until it answers 200, and prints the time from
# STARTED (epoch seconds) to that answer; over HTTPS, trusting the gateway's certificate,
# when the stack serves HTTPS only. Under GitHub Actions the line also goes to the job summary.
# Then prints what the user types next (scripts/try_it.py).
#   scripts/first-answer.sh STACK STARTED
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

stack=${1:?usage: scripts/first-answer.sh STACK STARTED}
started=${2:?usage: scripts/first-answer.sh STACK STARTED}
timeout_s=${MAAS_FIRST_ANSWER_TIMEOUT:-300}
require_tools python3 curl
use_local_backend

# context, gateway namespace and service, host, served model name, key, scheme, TLS Secret
# (namespace/name, or "-"): one per line (none empty: $(...) drops trailing empty lines).
target=$(pulumi stack output --stack "$stack" --json --show-secrets | python3 -c '
import json, sys
out = json.load(sys.stdin)
keys = out.get("apiKeys") or {}
users = out.get("users") or {}
# The first model with the first user whose tier it admits (its "tiers" output).
pairs = [
    (model, key)
    for model in (out.get("models") or {}).values()
    for user, key in keys.items()
    if users.get(user) in model.get("tiers", [users.get(user)])
]
if not pairs:
    sys.exit(0)
model, key = pairs[0]
namespace, service = out["gatewayService"].split("/")
scheme, rest = model["url"].split("://", 1)
host = rest.split(":", 1)[0].split("/", 1)[0]
tls = out.get("gatewayTlsSecret") or "-"
print(out["kubeContext"], namespace, service, host, model["servedModelName"], key, scheme, tls, sep="\n")
')
if [ -z "$target" ]; then
  echo "first answer: stack '$stack' has no API key of a tier any model admits; not measured"
  exit 0
fi
{ read -r context; read -r namespace; read -r service; read -r host; read -r model; read -r key; read -r scheme; read -r tls; } <<EOF2
$target
EOF2

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
forward_log=$(mktemp)
trust=$(mktemp)
forward=""
trap 'if [ -n "$forward" ]; then kill "$forward" 2>/dev/null || true; fi; rm -f "$forward_log" "$trust"' EXIT
remote_port=80
# The CA file curl trusts, when there is one (no array: bash 3.2 under set -u).
ca=""
if [ "$scheme" = https ]; then
  remote_port=443
  # A self-signed certificate's issuer, as cert-manager stores it beside it (ca.crt: the
  # certificate itself, cert-manager/cert-manager@v1.21.1 pkg/controller/certificaterequests/selfsigned/
  # selfsigned.go returns CA: certPem); with a public issuer there is none, and curl
  # trusts the system's roots.
  if [ "$tls" != - ]; then
    kubectl --context "$context" get secret -n "${tls%%/*}" "${tls#*/}" -o 'jsonpath={.data.ca\.crt}' |
      python3 -c 'import base64, sys; sys.stdout.buffer.write(base64.b64decode(sys.stdin.read()))' >"$trust"
    if [ -s "$trust" ]; then ca=$trust; fi
  fi
fi
kubectl --context "$context" port-forward -n "$namespace" "svc/$service" "$port:$remote_port" >"$forward_log" 2>&1 &
forward=$!

deadline=$(($(date +%s) + timeout_s))
# Between tries: gives up when the port-forward died or the time is up (saying $1).
keep_trying() {
  if ! kill -0 "$forward" 2>/dev/null; then
    echo "first answer: the port-forward to $namespace/$service stopped:" >&2
    cat "$forward_log" >&2
    exit 1
  fi
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "first answer: $1" >&2
    exit 1
  fi
  sleep 1
}
# kubectl prints "Forwarding from <address> -> <port>" once it listens (kubernetes/client-go@v0.36.3
# tools/portforward/portforward.go listenOnPort); a curl before that would find no listener.
until grep -q '^Forwarding from' "$forward_log"; do
  keep_trying "the port-forward to $namespace/$service did not listen within ${timeout_s}s"
done
body="{\"model\": \"$model\", \"messages\": [{\"role\": \"user\", \"content\": \"Hello!\"}], \"max_tokens\": 8}"
while :; do
  status=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 10 ${ca:+--cacert} ${ca:+"$ca"} \
    --resolve "$host:$port:127.0.0.1" -H "Authorization: APIKEY $key" \
    -H 'Content-Type: application/json' -d "$body" "$scheme://$host:$port/v1/chat/completions" 2>/dev/null || true)
  [ "$status" = 200 ] && break
  keep_trying "no 200 from $host within ${timeout_s}s (last status: ${status:-none})"
done

line="Stack $stack: first authorized 200 from $model after $(($(date +%s) - started)) s (from the start of the deploy)"
echo "$line"
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
  echo "$line" >>"$GITHUB_STEP_SUMMARY"
fi
echo
kubectl_path=$(command -v kubectl || echo kubectl)
pulumi stack output --stack "$stack" --json | python3 scripts/try_it.py "$stack" "${kubectl_path#"$PWD"/}"
