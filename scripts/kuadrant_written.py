"""After `pulumi up`: waits until Kuadrant's wasm configuration on the stack's gateway holds
every action set the cluster's Gateway, HTTPRoutes and policies call for, else fails.

    pulumi stack output --stack STACK --json | python3 scripts/kuadrant_written.py STACK

Kuadrant (Kuadrant/kuadrant-operator@v1.5.2) writes a gateway's whole wasm config as one
EnvoyFilter, `kuadrant-<gateway>` in the gateway's namespace (internal/wasm/utils.go
ExtensionName, internal/controller/istio_extension_reconciler.go buildIstioEnvoyFilterForGateway), the
config as a JSON string in the wasm filter's `configuration` (internal/istio/utils.go
buildWasmFilterConfig). When the write fails it only logs it and keeps the old filter (or,
fresh, has none); the policies stay Enforced, so `pulumi up` succeeds while the wasm-shim
lets through every request it has no action set for. This check is what turns that into a
failed deploy.

The expected sets come from the estimator (policies/maas_policies/kuadrant_size.py, which
rebuilds them the way the operator's code does) applied to what the cluster holds after the
update: each set by its name (sha256 of path, match and hostname:
Kuadrant/kuadrant-operator@v1.5.2 internal/wasm/utils.go ActionSetNameForPath) with its AuthConfig scope and
limit identifiers, so a config kept from
before a new tier or limit is caught as well as a missing one. Standard library only: it
runs before any virtualenv is needed, with the scripts' kubectl.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The kinds the action sets are built from (kuadrant_size.estimate reads these).
KINDS = (
    "gateways.gateway.networking.k8s.io",
    "httproutes.gateway.networking.k8s.io",
    "authpolicies.kuadrant.io",
    "ratelimitpolicies.kuadrant.io",
    "tokenratelimitpolicies.kuadrant.io",
)
# A limit's identifier in the actions' data (Kuadrant/kuadrant-operator@v1.5.2
# internal/controller/ratelimit_workflow_helpers.go
# LimitNameToLimitadorIdentifier, TokenLimitNameToLimitadorIdentifier).
IDENTIFIER_PREFIXES = ("limit.", "tokenlimit.")


def _estimator() -> Any:
    # By path: the pack's package __init__ imports pulumi_policy, which only its venv has.
    spec = importlib.util.spec_from_file_location(
        "kuadrant_size", ROOT / "policies" / "maas_policies" / "kuadrant_size.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


ks = _estimator()


def marks(action_set: Mapping[str, Any]) -> set[str]:
    """What a set must carry: each action's service and scope (the auth action's scope names
    its AuthConfig), and each limit identifier its data names."""
    found = set()
    for action in action_set.get("actions") or []:
        found.add(f"{action.get('service')} {action.get('scope')}")
        for block in action.get("conditionalData") or []:
            for data in block.get("data") or []:
                key = str((data.get("expression") or {}).get("key", ""))
                if key.startswith(IDENTIFIER_PREFIXES):
                    found.add(key)
    return found


def expected(
    objects: Sequence[Mapping[str, Any]], gateway: Mapping[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """(where, set) for each action set the gateway's config must hold: `where` names the
    listener, host and match, for the message."""
    routes = [o for o in objects if o.get("kind") == "HTTPRoute"]
    policies = {kind: [o for o in objects if o.get("kind") == kind] for kind in ks._POLICY_KINDS}
    name = str((gateway.get("metadata") or {}).get("name"))
    found = []
    for path in ks.paths(gateway, routes):
        for action_set in ks.sets_for_path(path, name, policies):
            conditions = action_set["routeRuleConditions"]
            where = (
                f"listener {path.listener}, route {path.route_key}, host {conditions['hostnames'][0]}, "
                f"{' && '.join(conditions.get('predicates') or ['any path'])}"
            )
            found.append((where, action_set))
    return found


def written_sets(envoy_filter: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]] | None:
    """The action sets in the EnvoyFilter's wasm config, by name; None without a filter."""
    if not envoy_filter:
        return None
    sets: dict[str, Mapping[str, Any]] = {}
    for patch in (envoy_filter.get("spec") or {}).get("configPatches") or []:
        value = ((patch.get("patch") or {}).get("value") or {}).get("typed_config") or {}
        configuration = ((value.get("value") or {}).get("config") or {}).get("configuration") or {}
        if "value" in configuration:
            for action_set in json.loads(configuration["value"]).get("actionSets") or []:
                sets[str(action_set.get("name"))] = action_set
    return sets


def problems(
    objects: Sequence[Mapping[str, Any]], gateway: Mapping[str, Any], envoy_filter: Mapping[str, Any] | None
) -> list[str]:
    """What the gateway's written config lacks, one line each; empty when it holds it all."""
    wanted = expected(objects, gateway)
    if not wanted:
        return []
    written = written_sets(envoy_filter)
    if written is None:
        return [f"no EnvoyFilter at all, where {len(wanted)} action sets are due"]
    found = []
    for where, action_set in wanted:
        live = written.get(action_set["name"])
        if live is None:
            found.append(f"{where}: no action set")
        elif lacking := sorted(marks(action_set) - marks(live)):
            found.append(f"{where}: an older action set, without {', '.join(lacking)}")
    return found


def kubectl_json(context: str, *args: str) -> Any:
    done = subprocess.run(
        ["kubectl", "--context", context, "get", *args, "-o", "json"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip() or f"kubectl get {' '.join(args)} failed")
    return json.loads(done.stdout) if done.stdout.strip() else None


def check_once(context: str, namespace: str) -> dict[str, list[str]]:
    """Problems per EnvoyFilter ("<namespace>/<name>") of each Gateway in `namespace`."""
    listed = kubectl_json(context, ",".join(KINDS), "--all-namespaces")
    objects = [ks.plain(o) for o in (listed or {}).get("items") or []]
    found = {}
    for gateway in objects:
        meta = gateway.get("metadata") or {}
        if gateway.get("kind") != "Gateway" or meta.get("namespace") != namespace:
            continue
        name = f"kuadrant-{meta.get('name')}"
        envoy_filter = kubectl_json(
            context, "envoyfilters.networking.istio.io", "-n", namespace, name, "--ignore-not-found"
        )
        found[f"{namespace}/{name}"] = problems(objects, gateway, envoy_filter)
    return found


def main() -> int:
    stack = sys.argv[1]
    outputs = json.load(sys.stdin)
    context = outputs["kubeContext"]
    namespace = outputs["gatewayService"].split("/")[0]
    timeout = float(os.environ.get("MAAS_KUADRANT_TIMEOUT", "180"))
    deadline = time.monotonic() + timeout
    while True:
        try:
            found = check_once(context, namespace)
            error = ""
        except RuntimeError as failed:
            found, error = {}, str(failed)
        if not error and not any(found.values()):
            print(f"Kuadrant's wasm configuration holds every action set stack {stack} calls for.")
            return 0
        if time.monotonic() >= deadline:
            break
        time.sleep(2)
    print(
        f"deploy: stack {stack} is not in force: after {timeout:.0f} s Kuadrant's wasm configuration "
        "on its gateway lacks what the stack declares; requests it lacks sets for pass the wasm filter "
        "unauthenticated and unmetered (the gateway's policy guard answers them 503).",
        file=sys.stderr,
    )
    if error:
        print(f"  reading it failed: {error}", file=sys.stderr)
    for envoy_filter, lines in found.items():
        for line in lines:
            print(f"  EnvoyFilter {envoy_filter}: {line}", file=sys.stderr)
    print(
        "Cause: kuadrant-operator only logs a failed write and keeps the old EnvoyFilter (a "
        "configuration past etcd's 1.5 MiB object cap is the known one); its log says which: "
        f"kubectl --context {context} logs -n <maas:namespaces.kuadrant, kuadrant-system by default> "
        "deploy/kuadrant-operator-controller-manager | grep -i envoyfilter\n"
        "Fix: bring the gateway's policies under the cap (fewer listeners, tiers, or route rules, "
        "hostnames and matches with policies: the pack's kuadrant-config-fits estimate), or what the "
        "log names, then deploy again.",
        file=sys.stderr,
    )
    return 1


if __name__ == "__main__":
    sys.exit(main())
