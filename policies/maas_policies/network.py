"""NetworkPolicies read as the API server and a conforming CNI read them (ingress only).

The semantics, from the networking.k8s.io/v1 API (kubernetes/api@v0.36.4 networking/v1/types.go,
NetworkPolicySpec, NetworkPolicyIngressRule, NetworkPolicyPeer, NetworkPolicyPort):
- a pod is isolated for ingress once any policy in its namespace selects it and has
  "Ingress" among its policyTypes (which default to ["Ingress"], plus "Egress" when the
  policy has egress rules); a pod no policy isolates accepts everything;
- an isolated pod accepts a connection when one rule of one policy selecting it admits it:
  union across rules and policies, never an intersection;
- a rule admits a port when `ports` is empty or one entry matches (a number, or a name
  resolved against the destination pod's container ports; protocol TCP unless given;
  `endPort` closes a range), and a source when `from` is empty or one peer matches;
- a peer with `podSelector` alone selects pods of the policy's own namespace; with
  `namespaceSelector` alone, every pod of the namespaces selected; with both, those pods of
  those namespaces; `ipBlock` selects addresses (a pod by its IP), less each `except`.
A selector `{}` selects everything; matchLabels and matchExpressions are ANDed.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Endpoint:
    """A source or destination: a pod (namespace, labels, container ports), or an address
    outside any pod (namespace None), such as the API server on a control-plane node."""

    name: str
    ip: str
    namespace: str | None = None
    labels: Mapping[str, str] = field(default_factory=dict)
    # container port name -> (number, protocol)
    ports: Mapping[str, tuple[int, str]] = field(default_factory=dict)


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector against labels (kubernetes/apimachinery@v0.36.4 pkg/labels/selector.go
    semantics)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or []:
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values") or []
        present = key in labels
        if operator == "In" and not (present and labels[key] in values):
            return False
        if operator == "NotIn" and present and labels[key] in values:
            return False
        if operator == "Exists" and not present:
            return False
        if operator == "DoesNotExist" and present:
            return False
        if operator not in ("In", "NotIn", "Exists", "DoesNotExist"):
            # The API server refuses any other operator (kubernetes/apimachinery@v0.36.4
            # pkg/labels/selector.go).
            raise ValueError(f"label selector operator {operator!r}")
    return True


def _policy_types(spec: Mapping[str, Any]) -> list[str]:
    given = spec.get("policyTypes")
    if given:
        return list(given)
    return ["Ingress", *(["Egress"] if spec.get("egress") else [])]


def _port_matches(entry: Mapping[str, Any], port: int, protocol: str, target: Endpoint) -> bool:
    if entry.get("protocol", "TCP") != protocol:
        return False
    wanted = entry.get("port")
    if wanted is None:
        return True
    if isinstance(wanted, str) and not wanted.isdigit():
        named = target.ports.get(wanted)
        return named is not None and named == (port, protocol)
    first = int(wanted)
    return first <= port <= int(entry.get("endPort", first))


def _peer_matches(
    peer: Mapping[str, Any],
    source: Endpoint,
    policy_namespace: str,
    namespaces: Mapping[str, Mapping[str, str]],
) -> bool:
    block = peer.get("ipBlock")
    if block is not None:
        address = ipaddress.ip_address(source.ip)
        inside = address in ipaddress.ip_network(block["cidr"], strict=False)
        excluded = any(address in ipaddress.ip_network(e, strict=False) for e in block.get("except") or [])
        return inside and not excluded
    if source.namespace is None:
        return False
    pod_selector, namespace_selector = peer.get("podSelector"), peer.get("namespaceSelector")
    if namespace_selector is None:
        in_namespace = source.namespace == policy_namespace
    else:
        in_namespace = selects(namespace_selector, _namespace_labels(source.namespace, namespaces))
    return in_namespace and (pod_selector is None or selects(pod_selector, source.labels))


def _namespace_labels(namespace: str, namespaces: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    # The API server sets this label on every namespace (NamespaceDefaultLabelName, 1.21+).
    return {**namespaces.get(namespace, {}), "kubernetes.io/metadata.name": namespace}


def isolating(policies: Iterable[Mapping[str, Any]], target: Endpoint) -> list[Mapping[str, Any]]:
    """The policies that select `target` for ingress."""
    found = []
    for policy in policies:
        metadata, spec = policy.get("metadata") or {}, policy.get("spec") or {}
        if metadata.get("namespace") != target.namespace or "Ingress" not in _policy_types(spec):
            continue
        if selects(spec.get("podSelector") if spec.get("podSelector") is not None else {}, target.labels):
            found.append(policy)
    return found


def admits(
    policies: Sequence[Mapping[str, Any]],
    namespaces: Mapping[str, Mapping[str, str]],
    source: Endpoint,
    target: Endpoint,
    port: int,
    protocol: str = "TCP",
) -> bool:
    """Whether `target` accepts a connection from `source` on `port` under `policies`.

    `namespaces` maps a namespace to its labels (the automatic name label is added)."""
    chosen = isolating(policies, target)
    if not chosen:
        return True
    for policy in chosen:
        policy_namespace = str((policy.get("metadata") or {}).get("namespace"))
        for rule in (policy.get("spec") or {}).get("ingress") or []:
            ports = rule.get("ports") or []
            if ports and not any(_port_matches(p, port, protocol, target) for p in ports):
                continue
            peers = rule.get("from") or []
            if not peers or any(_peer_matches(p, source, policy_namespace, namespaces) for p in peers):
                return True
    return False


def denies_by_default(policy: Mapping[str, Any]) -> bool:
    """A policy that isolates every pod of its namespace and admits nothing itself."""
    spec = policy.get("spec") or {}
    return (
        spec.get("podSelector") in ({}, {"matchLabels": {}})
        and "Ingress" in _policy_types(spec)
        and not spec.get("ingress")
    )
