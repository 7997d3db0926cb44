"""The NetworkPolicy reader the matrix and the pack rely on, against the API's own cases.

Each case is a sentence of the networking.k8s.io/v1 API reference (kubernetes/api@v0.36.4
networking/v1/types.go doc comments) or of the "Network Policies" concept page
(kubernetes/website@main content/en/docs/concepts/services-networking/network-policies.md).
"""

from __future__ import annotations

from typing import Any

import pytest

from maas_policies.network import Endpoint, admits, denies_by_default, selects

NAMESPACES = {"a": {"team": "blue"}, "b": {"team": "red"}}
WEB = Endpoint("web", "10.0.0.1", "a", {"app": "web", "tier": "front"}, {"http": (8080, "TCP")})
DB = Endpoint("db", "10.0.0.2", "a", {"app": "db"}, {"pg": (5432, "TCP")})
OTHER_NS_WEB = Endpoint("web-b", "10.0.1.1", "b", {"app": "web"})
NODE = Endpoint("apiserver", "172.18.0.2")


def _policy(spec: dict[str, Any], namespace: str = "a") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": namespace}, "spec": spec}


def _only_from(*peers: dict[str, Any], port: Any = 5432) -> dict[str, Any]:
    return _policy(
        {
            "podSelector": {"matchLabels": {"app": "db"}},
            "ingress": [{"from": list(peers), "ports": [{"port": port}]}],
        }
    )


def test_a_pod_no_policy_selects_accepts_everything() -> None:
    assert admits([], NAMESPACES, OTHER_NS_WEB, DB, 5432)
    elsewhere = _policy({"podSelector": {}}, namespace="b")
    assert admits([elsewhere], NAMESPACES, OTHER_NS_WEB, DB, 5432)


def test_default_deny_isolates_every_pod_of_its_namespace_only() -> None:
    deny = _policy({"podSelector": {}, "policyTypes": ["Ingress"]})
    assert denies_by_default(deny)
    assert not admits([deny], NAMESPACES, WEB, DB, 5432)
    assert admits([deny], NAMESPACES, WEB, OTHER_NS_WEB, 80)


def test_an_egress_only_policy_does_not_isolate_ingress() -> None:
    egress = _policy({"podSelector": {}, "policyTypes": ["Egress"]})
    assert not denies_by_default(egress)
    assert admits([egress], NAMESPACES, OTHER_NS_WEB, DB, 5432)


def test_pod_selector_alone_means_the_policys_own_namespace() -> None:
    policy = _only_from({"podSelector": {"matchLabels": {"app": "web"}}})
    assert admits([policy], NAMESPACES, WEB, DB, 5432)
    assert not admits([policy], NAMESPACES, OTHER_NS_WEB, DB, 5432)


def test_both_selectors_in_one_peer_are_anded_and_two_peers_are_ored() -> None:
    anded = _only_from(
        {"namespaceSelector": {"matchLabels": {"team": "red"}}, "podSelector": {"matchLabels": {"app": "x"}}}
    )
    assert not admits([anded], NAMESPACES, OTHER_NS_WEB, DB, 5432)
    red, x = {"matchLabels": {"team": "red"}}, {"matchLabels": {"app": "x"}}
    ored = _only_from({"namespaceSelector": red}, {"podSelector": x})
    assert admits([ored], NAMESPACES, OTHER_NS_WEB, DB, 5432)


def test_the_automatic_namespace_name_label_selects_a_namespace() -> None:
    policy = _only_from(
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "b"}}, "podSelector": {}}
    )
    assert admits([policy], NAMESPACES, OTHER_NS_WEB, DB, 5432)
    assert not admits([policy], NAMESPACES, WEB, DB, 5432)


def test_a_rule_without_from_admits_every_source_and_addresses_outside_pods() -> None:
    anyone = {"ports": [{"port": 5432}]}
    policy = _policy({"podSelector": {"matchLabels": {"app": "db"}}, "ingress": [anyone]})
    assert admits([policy], NAMESPACES, NODE, DB, 5432)
    assert not admits([policy], NAMESPACES, NODE, DB, 5433)


def test_pod_selectors_never_match_an_address_outside_pods() -> None:
    policy = _only_from({"namespaceSelector": {}})
    assert admits([policy], NAMESPACES, OTHER_NS_WEB, DB, 5432)
    assert not admits([policy], NAMESPACES, NODE, DB, 5432)


def test_ip_blocks_match_addresses_less_their_exceptions() -> None:
    policy = _only_from({"ipBlock": {"cidr": "172.18.0.0/16", "except": ["172.18.0.2/32"]}})
    assert not admits([policy], NAMESPACES, NODE, DB, 5432)
    assert admits([policy], NAMESPACES, Endpoint("n2", "172.18.0.3"), DB, 5432)


@pytest.mark.parametrize(
    ("entry", "port", "expected"),
    [
        ({"port": "pg"}, 5432, True),
        ({"port": "pg"}, 5433, False),
        ({"port": "http"}, 8080, False),  # a name resolves on the destination pod
        ({"port": 5000, "endPort": 6000}, 5432, True),
        ({"port": 5432, "protocol": "UDP"}, 5432, False),
        ({"protocol": "TCP"}, 5432, True),
    ],
)
def test_ports_by_number_name_range_and_protocol(entry: dict[str, Any], port: int, expected: bool) -> None:
    policy = _only_from({"podSelector": {}}, port=None)
    policy["spec"]["ingress"][0]["ports"] = [entry]
    assert admits([policy], NAMESPACES, WEB, DB, port) is expected


def test_policies_add_up() -> None:
    deny = _policy({"podSelector": {}})
    web_only = _only_from({"podSelector": {"matchLabels": {"app": "web"}}})
    red = _only_from({"namespaceSelector": {"matchLabels": {"team": "red"}}})
    assert admits([deny, web_only, red], NAMESPACES, WEB, DB, 5432)
    assert admits([deny, web_only, red], NAMESPACES, OTHER_NS_WEB, DB, 5432)


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"key": "tier", "operator": "In", "values": ["front"]}, True),
        ({"key": "tier", "operator": "NotIn", "values": ["front"]}, False),
        ({"key": "zone", "operator": "NotIn", "values": ["x"]}, True),
        ({"key": "tier", "operator": "Exists"}, True),
        ({"key": "tier", "operator": "DoesNotExist"}, False),
    ],
)
def test_match_expressions(expression: dict[str, Any], expected: bool) -> None:
    assert selects({"matchExpressions": [expression]}, WEB.labels) is expected
    assert selects({}, WEB.labels)
