"""What a stack's cluster must already provide, checked before `pulumi up` touches it.

    python -m commands.preflight ocp

A plain-Kubernetes stack brings everything itself: nothing to check. An OpenShift stack uses
what the cluster has, so the deploy script stops here, one line per problem with its fix, when:

- the ingress operator's Gateway API CRDs are older than v1.5, the release Istio 1.30 is
  built against (the CRDs are the cluster's: cluster-ingress-operator refuses others' changes);
- with observability on, user-workload monitoring is off, or the stack's observability
  namespace is not exempt from its namespace enforcement (the usage rules join Limitador's
  counters, the gateway's and the models' series across namespaces).
- an operator the stack subscribes to is already there, not installed by it (Red Hat documents
  Service Mesh 3 and the cert-manager Operator as Connectivity Link's prerequisites):
  `pulumi up` would fail creating the same Subscription or namespace (AlreadyExists).

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
from components.names import OPENSHIFT_CERT_MANAGER_NAMESPACE, PART_OF
from components.pins import versions

PROJECT_DIR = Path(__file__).resolve().parent.parent
# Istio 1.30 is documented against Gateway API v1.5 (components/pins/versions.py
# GATEWAY_API_VERSION); the ingress operator stamps its bundle's release on each CRD
# (openshift/cluster-ingress-operator@main pkg/manifests/assets/gateway-api/*.yaml).
GATEWAY_CRD = "gateways.gateway.networking.k8s.io"
BUNDLE_VERSION = "gateway.networking.k8s.io/bundle-version"
MINIMUM_GATEWAY_API = (1, 5)
# openshift/cluster-monitoring-operator@release-4.22: cmd/operator/main.go (ConfigMap and namespace),
# pkg/manifests/config.go (key config.yaml), types.go (enableUserWorkload;
# namespacesWithoutLabelEnforcement in the user-workload one).
MONITORING = ("openshift-monitoring", "cluster-monitoring-config")
USER_WORKLOAD = ("openshift-user-workload-monitoring", "user-workload-monitoring-config")

Kubectl = Callable[[Sequence[str]], dict[str, Any] | None]
SUBSCRIPTION = "subscriptions.operators.coreos.com"


def _stack_values(stack: str) -> dict[str, Any]:
    document = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text()) or {}
    return dict(document.get("config") or {})


class UnreachableError(RuntimeError):
    """The cluster could not be asked (no context, no rights, down): not an answer."""


def _kubectl(context: str) -> Kubectl:
    def get(args: Sequence[str]) -> dict[str, Any] | None:
        done = subprocess.run(
            ["kubectl", "--context", context, "get", *args, "-o", "json"],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode == 0:
            return dict(json.loads(done.stdout)) if done.stdout.strip() else None
        # kubectl says NotFound for an object that does not exist; anything else is no answer.
        if "NotFound" in done.stderr:
            return None
        raise UnreachableError(f"kubectl get {' '.join(args)}: {done.stderr.strip()}")

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
            "ships Gateway API v1.5 (docs/openshift.md)"
        )
    found.extend(_foreign_operators(kubectl))
    if (values.get("maas:observability") or {}).get("enabled", True) is False:
        return found
    monitoring = _config_yaml(kubectl, MONITORING)
    if monitoring.get("enableUserWorkload") is not True:
        found.append(
            "user-workload monitoring is off. Fix: set enableUserWorkload: true in config.yaml of "
            f"ConfigMap {MONITORING[1]} (namespace {MONITORING[0]})"
        )
    # The exemption below counts only while this stays true, its default
    # (openshift/cluster-monitoring-operator@release-4.19 pkg/manifests/config.go; manifests.go
    # excludedFromEnforcement).
    if (monitoring.get("userWorkload") or {}).get("rulesWithoutLabelEnforcementAllowed") is False:
        found.append(
            "userWorkload.rulesWithoutLabelEnforcementAllowed is false, which voids every namespace's "
            "exemption from label enforcement. Fix: remove it from config.yaml of ConfigMap "
            f"{MONITORING[1]} (namespace {MONITORING[0]})"
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


def _ours(found: dict[str, Any]) -> bool:
    labels = (found.get("metadata") or {}).get("labels") or {}
    return all(labels.get(key) == value for key, value in PART_OF.items())


def _foreign_operators(kubectl: Kubectl) -> list[str]:
    """Operators the stack installs that the cluster already has from elsewhere."""
    found = []
    mesh = versions.OLM_SERVICE_MESH
    where = f"{mesh.namespace}/{mesh.package}"
    subscription = kubectl([SUBSCRIPTION, mesh.package, "-n", str(mesh.namespace)])
    if subscription is not None and not _ours(subscription):
        installed = (subscription.get("status") or {}).get("installedCSV") or "none yet"
        found.append(
            f"Subscription {where} exists and is not this stack's (installed: {installed}); the "
            f"stack subscribes to the same name, channel {mesh.channel}. Fix: delete that "
            f"Subscription (oc delete {SUBSCRIPTION} {mesh.package} -n {mesh.namespace}; the running "
            "operator and its CSV stay) and deploy again, on a cluster whose installed Service Mesh "
            f"is 3.4 ({mesh.starting_csv}) or none"
        )
    namespace = kubectl(["namespace", OPENSHIFT_CERT_MANAGER_NAMESPACE])
    if namespace is not None and not _ours(namespace):
        found.append(
            f"namespace {OPENSHIFT_CERT_MANAGER_NAMESPACE} exists and is not this stack's: cert-manager "
            "is installed already (the cert-manager Operator for Red Hat OpenShift runs it there), and "
            f"the stack installs {versions.OLM_CERT_MANAGER.package} itself, whose CRDs OLM gives one "
            "owner. Fix: deploy on a cluster without cert-manager, or uninstall the cert-manager "
            "Operator (its Subscription and CSV) and delete that namespace first"
        )
    return found


def retention_note(values: dict[str, Any], kubectl: Kubectl) -> str | None:
    """Not a refusal: how much usage user-workload monitoring keeps, when shorter than the 30
    days the usage export asks for by default (its Prometheus keeps 24h unless told otherwise:
    openshift/cluster-monitoring-operator@release-4.19 pkg/manifests/types.go PrometheusRestrictedConfig)."""
    if values.get("maas:flavour") != "openshift":
        return None
    retention = str((_config_yaml(kubectl, USER_WORKLOAD).get("prometheus") or {}).get("retention") or "24h")
    days = {"d": 1.0, "w": 7.0, "y": 365.0, "h": 1 / 24}
    match = re.fullmatch(r"(\d+)([hdwy])", retention)
    if match and int(match[1]) * days[match[2]] >= 30:
        return None
    return (
        f"user-workload monitoring keeps usage for {retention}: the usage export reads no further back. "
        f"For longer, set prometheus.retention in config.yaml of ConfigMap {USER_WORKLOAD[1]} "
        f"(namespace {USER_WORKLOAD[0]})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 1:
        print("usage: python -m commands.preflight STACK", file=sys.stderr)
        return 2
    try:
        values = _stack_values(args[0])
    except OSError as exc:
        print(f"stack '{args[0]}': cannot read its stack file: {exc}", file=sys.stderr)
        return 2
    context = str((values.get("maas:cluster") or {}).get("context", ""))
    kubectl = _kubectl(context)
    try:
        found = problems(values, kubectl)
        note = retention_note(values, kubectl)
    except UnreachableError as exc:
        print(f"stack '{args[0]}': cannot ask the cluster (context {context}): {exc}", file=sys.stderr)
        return 1
    if note:
        print(f"note: {note}", file=sys.stderr)
    if found:
        print(f"stack '{args[0]}': the cluster (context {context}) is not ready for it:", file=sys.stderr)
        for problem in found:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
