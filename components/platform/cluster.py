"""Cluster access: the explicit Kubernetes provider, and the platform's namespaces."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.config import ClusterConfig
from components.pins.upstream import Workload

PART_OF = {"app.kubernetes.io/part-of": "maas-platform"}
# In every namespace of ours: no pod accepts a connection unless a NetworkPolicy of the
# component that runs it names the caller (the "doors", `ingress_only`).
DEFAULT_DENY = "default-deny-ingress"

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


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    cluster: ClusterConfig
    # role (e.g. "models") -> namespace name, for every namespace this stack uses
    namespaces: Mapping[str, str]


class ClusterAccess(pulumi.ComponentResource):
    """Owns the provider every other layer uses, and the namespaces they deploy into.

    Namespaces are created here, before any layer, so that `pulumi destroy` removes
    them last: every namespaced resource depends on its namespace's name output.
    """

    TYPE: ClassVar[str] = "maas:cluster:ClusterAccess"
    provider: k8s.Provider

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        self._name = name
        self._cluster = args.cluster
        self.provider = self._new_provider(f"{name}-provider")
        self._namespaces = {
            role: k8s.core.v1.Namespace(
                f"{name}-ns-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=namespace,
                    labels={**PART_OF, **pod_security(role)},
                ),
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )
            for role, namespace in args.namespaces.items()
        }
        # An empty pod selector isolates every pod of the namespace for ingress, and a policy
        # without rules admits nothing itself (kubernetes/api@v0.36.4 networking/v1/types.go).
        deny = {
            role: k8s.networking.v1.NetworkPolicy(
                f"{name}-deny-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=DEFAULT_DENY, namespace=self.namespace(role)),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress"]
                ),
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )
            for role in args.namespaces
        }
        self.register_outputs(
            {
                "provider": self.provider,
                "namespaces": {r: n.metadata.name for r, n in self._namespaces.items()},
                "defaultDeny": deny,
            }
        )

    def namespace(self, role: str) -> pulumi.Output[str]:
        """The namespace's name as an output, so that users of it depend on it."""
        return self._namespaces[role].metadata.name

    def provider_in(self, role: str) -> k8s.Provider:
        """A provider like the main one whose default namespace is the role's namespace.

        For upstream manifests that leave namespaces out. It takes the namespace's name as
        an input, so everything it creates comes after the namespace and goes before it.
        """
        return self._new_provider(f"{self._name}-provider-{role}", self.namespace(role))

    def _new_provider(self, name: str, namespace: pulumi.Input[str] | None = None) -> k8s.Provider:
        kubeconfig = self._cluster.kubeconfig
        return k8s.Provider(
            name,
            context=self._cluster.context,
            kubeconfig=os.path.expanduser(kubeconfig) if kubeconfig else None,
            namespace=namespace,
            enable_server_side_apply=True,
            # A ConfigMap or Secret whose data changes is updated in place, not deleted and made
            # again under the same name, which leaves seconds with no object
            # (pulumi/pulumi-kubernetes@v4.34.2 provider/pkg/provider/diff.go forceNewProperties, provider.go
            # Diff deleteBeforeReplace). Readers that load one at start and whose content follows the
            # stack file roll on a digest of it (docs/upgrades.md).
            enable_config_map_mutable=True,
            enable_secret_mutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )


def data_volume(size: str, storage_class: str | None) -> k8s.core.v1.PersistentVolumeClaimArgs:
    """The `data` volume claim of a StatefulSet of ours: one node's disk, of `size`, from
    `storage_class` (None: the cluster's default)."""
    return k8s.core.v1.PersistentVolumeClaimArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(name="data"),
        spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=["ReadWriteOnce"],
            storage_class_name=storage_class,
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": size}),
        ),
    )


def pods(labels: Mapping[str, str], namespace: str | None = None) -> k8s.networking.v1.NetworkPolicyPeerArgs:
    """A NetworkPolicy peer: the pods with `labels`, in the policy's namespace or `namespace`."""
    return k8s.networking.v1.NetworkPolicyPeerArgs(
        namespace_selector=(
            k8s.meta.v1.LabelSelectorArgs(match_labels={"kubernetes.io/metadata.name": namespace})
            if namespace is not None
            else None
        ),
        pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(labels)),
    )


def ingress_only(
    resource_name: str,
    *,
    name: str,
    namespace: pulumi.Input[str],
    selects: Mapping[str, str],
    ports: Sequence[int],
    peers: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs] | None,
    opts: pulumi.ResourceOptions,
) -> k8s.networking.v1.NetworkPolicy:
    """A door: the pods labelled `selects` accept connections on `ports` (TCP) from `peers`,
    one rule per peer; with the namespace's default deny, nothing else reaches them (where
    the CNI enforces NetworkPolicy). `peers` None admits every source: for what no pod
    selector can name, the API server calling a webhook (a node's address) and the gateway's
    clients ("from" left out matches all sources: kubernetes/api@v0.36.4 networking/v1/types.go)."""
    allowed = [k8s.networking.v1.NetworkPolicyPortArgs(port=port, protocol="TCP") for port in ports]
    rules = (
        [k8s.networking.v1.NetworkPolicyIngressRuleArgs(ports=allowed)]
        if peers is None
        else [k8s.networking.v1.NetworkPolicyIngressRuleArgs(from_=[peer], ports=allowed) for peer in peers]
    )
    return k8s.networking.v1.NetworkPolicy(
        resource_name,
        metadata=k8s.meta.v1.ObjectMetaArgs(name=name, namespace=namespace),
        spec=k8s.networking.v1.NetworkPolicySpecArgs(
            pod_selector=k8s.meta.v1.LabelSelectorArgs(match_labels=dict(selects)),
            policy_types=["Ingress"],
            ingress=rules,
        ),
        opts=opts,
    )


@dataclass(frozen=True)
class Door:
    """`pods` accept connections on their ports named `ports` from `peers` (None: anyone)."""

    name: str
    pods: Workload
    ports: tuple[str, ...]
    peers: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs] | None


def doors(
    component: str, namespace: pulumi.Input[str], wanted: Sequence[Door], parent: pulumi.Resource
) -> list[k8s.networking.v1.NetworkPolicy]:
    """One NetworkPolicy per door, named after it, children of the component that installs the pods."""
    return [
        ingress_only(
            f"{component}-door-{door.name}",
            name=door.name,
            namespace=namespace,
            selects=door.pods.labels,
            ports=[door.pods.ports[port] for port in door.ports],
            peers=door.peers,
            opts=pulumi.ResourceOptions(parent=parent),
        )
        for door in wanted
    ]
