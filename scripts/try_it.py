"""Prints what a user types after a deploy ("Try it"), from the stack's outputs (no secrets):

    pulumi stack output --stack dev --json | python3 scripts/try_it.py dev .tools/bin/kubectl

the forward to the gateway through the kubectl the scripts use, with the stack's context
(when apiUrl points at the forward's local port); the API key of the first user whose tier
the first model admits, through `make keys` (read with python3, which the scripts need
anyway: no jq); a first request to the shared host, apiUrl. Standard library only.
"""

from __future__ import annotations

import json
import shlex
import sys
from typing import Any
from urllib.parse import urlsplit


def block(stack: str, kubectl: str, out: dict[str, Any]) -> list[str]:
    users = out.get("users") or {}
    pairs = [
        (model, user)
        for model in (out.get("models") or {}).values()
        for user, tier in users.items()
        if tier in model.get("tiers", [tier])
    ]
    if not pairs:
        return []
    model, user = pairs[0]
    api = urlsplit(out.get("apiUrl") or model["url"])
    forward = str(out.get("portForward") or "").split()
    forwarded = forward[1:2] == ["port-forward"] and api.port == int(forward[-1].split(":")[0])
    context = out["kubeContext"]
    lines = ["Try it (from this folder):"]
    if forwarded:
        lines.append(f"  {kubectl} --context {context} {' '.join(forward[1:])} &")
    curl = "curl -sS"
    tls = out.get("gatewayTlsSecret")
    if api.scheme == "https" and tls:
        namespace, name = tls.split("/")
        jsonpath = shlex.quote("jsonpath={.data.ca\\.crt}")
        lines.append(
            f"  {kubectl} --context {context} get secret -n {namespace} {name} -o {jsonpath}"
            " | python3 -m base64 -d > maas-ca.crt"
        )
        curl += " --cacert maas-ca.crt"
    if forwarded:
        curl += f" --resolve {api.hostname}:{api.port}:127.0.0.1"
    keys = "make -s keys" + ("" if stack == "dev" else f" STACK={stack}")
    pick = shlex.quote(f'import json, sys; print(json.load(sys.stdin)["{user}"])')
    body = {"model": model["servedModelName"], "messages": [{"role": "user", "content": "Hello!"}]}
    lines += [
        f"  export MAAS_API_KEY=$({keys} | python3 -c {pick})   # {user}'s key",
        f"  {curl} -H \"Authorization: APIKEY $MAAS_API_KEY\" -H 'Content-Type: application/json' \\",
        f"    -d {shlex.quote(json.dumps(body))} \\",
        f"    {api.geturl().rstrip('/')}/chat/completions",
        "More: make outputs (every model, its URL and a curl line); README, 'Call a model' (the OpenAI SDK).",
    ]
    return lines


if __name__ == "__main__":
    print("\n".join(block(sys.argv[1], sys.argv[2], json.load(sys.stdin))))
