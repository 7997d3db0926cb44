"""What a stack's cluster must already provide, checked before `pulumi up` touches it.

    python -m commands.preflight ocp

A plain-Kubernetes stack brings everything itself: nothing to check. An OpenShift stack uses
what the cluster has, so the deploy script stops here, one line per problem with its fix, when:

- the ingress operator's Gateway API CRDs are older than v1.5, the release Istio 1.30 is
  built against (the CRDs are the cluster's: cluster-ingress-operator refuses others' changes);
- with observability on, user-workload monitoring is off, or the stack's observability
  namespace is not exempt from its namespace enforcement (the usage rules join Limitador's
  counters, the gateway's and the models' series across namespaces).

It reads the stack file only for the keys it needs; `pulumi up` validates the rest.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from components.config import Namespaces

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Istio 1.30 is documented against Gateway API v1.5 (components/pins/versions.py
# GATEWAY_API_VERSION); the ingress operator stamps its bundle's release on each CRD
# (cluster-ingress-operator pkg/manifests/assets/gateway-api/*.yaml).
GATEWAY_CRD = "gateways.gateway.networking.k8s.io"
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"
MINIMUM_GATEWAY_API = (1, 5)
# cluster-monitoring-operator release-4.22: cmd/operator/main.go (ConfigMap and namespace),
# pkg/manifests/config.go (key config.yaml), types.go (enableUserWorkload;
# namespacesWithoutLabelEnforcement in the user-workload one).
MONITORING = ("openshift-monitoring", "cluster-monitoring-config")
USER_WORKLOAD = ("openshift-user-workload-monitoring", "user-workload-monitoring-config")

Kubectl = Callable[[Sequence[str]], dict[str, Any] | None]


def _stack_values(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text()) or {}
    return dict(document.get("config") or {})


def _kubectl(context: str) -> Kubectl:
    def get(args: Sequence[str]) -> dict[str, Any] | None:
        done = subprocess.run(
            ["kubectl", "--context", context, "get", *args, "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        return json.loads(done.stdout) if done.returncode == 0 and done.stdout.strip() else None

    return get


def _config_yaml(kubectl: Kubectl, where: tuple[str, str]) -> dict[str, Any]:
    found = kubectl(["configmap", where[1], "-n", where[0]]) or {}
    return yaml.safe_load((found.get("data") or {}).get("config.yaml") or "") or {}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def problems(values: dict[str, Any], kubectl: Kubectl) -> list[str]:
    """What the cluster lacks for the stack (`values`: its file's config), each with its fix."""
    if values.get("maas:flavour") != "openshift":
        return []
    found = []
    crd = kubectl(["crd", GATEWAY_CRD]) or {}
    bundle = str(((crd.get("metadata") or {}).get("annotations") or {}).get(BUNDLE_VERSION, ""))
    if _version(bundle)[:2] < MINIMUM_GATEWAY_API:
        found.append(
            f"Gateway API CRDs {bundle or 'absent'}: Istio 1.30 needs v1.5 or later, and on OpenShift "
            "the ingress operator installs them. Fix: use an OpenShift release whose ingress operator "
            'ships Gateway API v1.5 (README "OpenShift")'
        )
    if (values.get("maas:observability") or {}).get("enabled", True) is False:
        return found
    if _config_yaml(kubectl, MONITORING).get("enableUserWorkload") is not True:
        found.append(
            "user-workload monitoring is off. Fix: set enableUserWorkload: true in config.yaml of "
            f"ConfigMap {MONITORING[1]} (namespace {MONITORING[0]})"
        )
    namespace = (values.get("maas:namespaces") or {}).get("observability") or Namespaces().observability
    exempt = _config_yaml(kubectl, USER_WORKLOAD).get("namespacesWithoutLabelEnforcement") or []
    if namespace not in exempt:
        found.append(
            f"namespace {namespace} is not in namespacesWithoutLabelEnforcement: its usage rules could "
            f"read only their own namespace's series. Fix: add it to config.yaml of ConfigMap "
            f"{USER_WORKLOAD[1]} (namespace {USER_WORKLOAD[0]})"
        )
    return found


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m commands.preflight STACK", file=sys.stderr)
        return 2
    values = _stack_values(args[0])
    context = str((values.get("maas:cluster") or {}).get("context", ""))
    found = problems(values, _kubectl(context))
    if found:
        print(f"stack '{args[0]}': the cluster (context {context}) is not ready for it:", file=sys.stderr)
        for problem in found:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
