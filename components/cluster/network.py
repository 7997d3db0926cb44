"""The NetworkPolicy kit: each namespace's default deny, and the doors a component opens in it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.pins.upstream import Workload

# In every namespace of ours: no pod accepts a connection unless a NetworkPolicy of the
# component that runs it names the caller (the "doors", `ingress_only`).
DEFAULT_DENY = "default-deny-ingress"


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
