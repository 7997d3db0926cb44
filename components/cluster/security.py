"""Pod Security: the level each namespace of ours enforces, and the container security context
of our own workloads."""

from __future__ import annotations

import pulumi_kubernetes as k8s

# Pod Security on every namespace of ours, by the role it plays: "restricted" enforced where
# every pod the pinned charts and operators run there meets it (read in each chart's values
# and templates, pod-security-admission v0.36.2's checks), else "baseline" enforced with
# "restricted" still warned and audited, so each pod short of it is reported.
POD_SECURITY_LEVELS = {
    # cert-manager/cert-manager@v1.21.1 values.yaml: controller, webhook, cainjector, startupapicheck set
    # runAsNonRoot, RuntimeDefault seccomp, no privilege escalation, every capability dropped.
    "cert-manager": "restricted",
    # kserve v0.20.0 kserve-resources deployment-patch.yaml and values.yaml: the same.
    "kserve": "restricted",
    # istiod, once given its seccomp profile (components/platform/istio.py): istio/istio@1.30.3
    # manifests/charts/istio-control/istio-discovery/templates/deployment.yaml sets the rest.
    "istio": "restricted",
    # kube-prometheus-stack 88.3.0 values.yaml: operator, webhook, its Jobs, Prometheus and
    # Alertmanager (with prometheus-operator v0.93.0's containers); Grafana 12.10.4 sets
    # seccomp per container, and its root init-chown-data runs only with persistence (off).
    "observability": "restricted",
    # KEDA 2.20.2 chart values.yaml: runAsNonRoot pods, containers with a read-only root, no
    # privilege escalation, every capability dropped, RuntimeDefault seccomp.
    "keda": "restricted",
    # vLLM's image runs as root (its pods meet baseline); the simulator and the model list
    # meet restricted, which the end-to-end suite checks.
    "models": "baseline",
    # Authorino's and Limitador's pods get no security context (Kuadrant/authorino-operator@v0.25.2
    # pkg/resources/k8s_deployment.go, Kuadrant/limitador-operator@7472d1c
    # pkg/limitador/k8s_objects.go) and
    # their CRs have no field for one; kuadrant-operator 1.5.2's and dns-operator 0.17.1's
    # set no seccomp profile. Redis, ours, meets restricted.
    "kuadrant": "baseline",
    # The Keycloak operator's and server's pods were not read at 26.7.4; PostgreSQL and the
    # user sync, ours, meet restricted.
    "keycloak": "baseline",
}


def pod_security(role: str) -> dict[str, str]:
    """The Pod Security labels of the namespace that plays `role`."""
    return {
        "pod-security.kubernetes.io/enforce": POD_SECURITY_LEVELS[role],
        "pod-security.kubernetes.io/warn": "restricted",
        "pod-security.kubernetes.io/audit": "restricted",
    }


def restricted_container() -> k8s.core.v1.SecurityContextArgs:
    """The container security context of our own workloads, on every flavour: Pod Security
    "restricted" (pod-security-admission v0.36.2 policy checks: no privilege escalation,
    every capability dropped, non-root, RuntimeDefault seccomp) and a read-only root."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )
