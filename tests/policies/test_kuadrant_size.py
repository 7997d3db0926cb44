"""The size estimator (maas_policies/kuadrant_size.py) against the operator's construction
rules, on small hand-built cases whose answer follows from kuadrant-operator v1.5.2's code,
and against the measured size of a real stack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
import yaml

from components.access import self_service
from harness.bench import catalog, sizes
from harness.program import Evaluation, stack_config, typed_config
from maas_policies import kuadrant_size as ks
from tests.support import shapes
from tests.support.configs import REMOVE, evaluate_variant

NS = "maas"
TIERS = ("free", "premium", "enterprise")


def _gateway(*listeners: str, hostname: str = "*.example.com") -> dict[str, Any]:
    return {
        "kind": "Gateway",
        "metadata": {"name": "gw", "namespace": NS},
        "spec": {"listeners": [{"name": name, "hostname": hostname} for name in listeners]},
    }


def _route(
    name: str,
    rules: Sequence[Sequence[dict[str, Any]]],
    hostnames: Sequence[str] = (),
    section: str | None = None,
) -> dict[str, Any]:
    parent = {"name": "gw", **({"sectionName": section} if section else {})}
    return {
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "parentRefs": [parent],
            "hostnames": list(hostnames),
            "rules": [{"matches": list(matches)} if matches else {} for matches in rules],
        },
    }


def _exact(path: str) -> dict[str, Any]:
    return {"path": {"type": "Exact", "value": path}}


def _policy(kind: str, spec: dict[str, Any], target: str = "Gateway", name: str = "gw") -> dict[str, Any]:
    return {
        "kind": kind,
        "metadata": {"name": f"{kind.lower()}-{name}", "namespace": NS},
        "spec": {"targetRef": {"kind": target, "name": name}, **spec},
    }


AUTH = _policy("AuthPolicy", {"rules": {"authentication": {"keys": {"apiKey": {"selector": {}}}}}})


def _limits(suffix: str) -> dict[str, Any]:
    return {
        "limits": {
            f"{tier}-{suffix}": {
                "rates": [{"limit": 5, "window": "1m"}],
                "when": [{"predicate": f"auth.identity.tier == '{tier}'"}],
                "counters": [{"expression": "auth.identity.userid"}],
            }
            for tier in TIERS
        }
    }


REQUESTS = _policy("RateLimitPolicy", _limits("requests"))
TOKENS = _policy("TokenRateLimitPolicy", _limits("tokens"))


def _sets(gateway: dict[str, Any], *objects: dict[str, Any]) -> list[dict[str, Any]]:
    routes = [o for o in objects if o["kind"] == "HTTPRoute"]
    policies = {kind: [o for o in objects if o["kind"] == kind] for kind in ks._POLICY_KINDS}
    return ks.action_sets(gateway, routes, policies)


def test_one_set_per_listener_rule_hostname_and_match() -> None:
    """BuildActionSetsForPath: a path is a listener x route x rule; each gives one set per
    hostname x match. 2 listeners x 2 hostnames x (3 + 1 matches) = 16."""
    route = _route(
        "r", [[_exact("/a"), _exact("/b"), _exact("/c")], [_exact("/d")]], ["a.example.com", "b.example.com"]
    )
    sets = _sets(_gateway("http", "https"), route, AUTH)
    assert len(sets) == 16
    assert len({s["name"] for s in sets}) == 16, "ActionSetNameForPath names each apart"
    hosts = [s["routeRuleConditions"]["hostnames"] for s in sets]
    assert hosts.count(["a.example.com"]) == hosts.count(["b.example.com"]) == 8


def test_hostnames_come_from_the_route_under_the_listener_or_the_listener() -> None:
    """HostnamesFromListenerAndHTTPRoute: a route's hostname outside the listener's is left
    out; a route with none takes the listener's."""
    named = _route("named", [[_exact("/a")]], ["a.example.com", "a.elsewhere.org"])
    bare = _route("bare", [[_exact("/a")]])
    sets = _sets(_gateway("http"), named, bare, AUTH)
    assert sorted(s["routeRuleConditions"]["hostnames"][0] for s in sets) == [
        "*.example.com",
        "a.example.com",
    ]


def test_a_route_on_one_listener_has_sets_on_that_listener_only() -> None:
    route = _route("r", [[_exact("/a")]], ["a.example.com"], section="https")
    assert len(_sets(_gateway("http", "https"), route, AUTH)) == 1


def test_a_rule_without_matches_is_one_set_for_every_path() -> None:
    """BuildActionSetsForPath: no matches is PathPrefix "/"."""
    (only,) = _sets(_gateway("http"), _route("r", [[]], ["a.example.com"]), AUTH)
    assert only["routeRuleConditions"]["predicates"] == ["request.url_path.startsWith('/')"]


def test_a_route_no_policy_covers_has_no_set() -> None:
    """buildWasmConfigs skips a path without actions: policies on one route give the other
    route's requests no set at all."""
    covered, other = _route("covered", [[_exact("/a")]]), _route("other", [[_exact("/a")]], ["o.example.com"])
    auth = _policy("AuthPolicy", {"rules": AUTH["spec"]["rules"]}, target="HTTPRoute", name="covered")
    sets = _sets(_gateway("http"), covered, other, auth)
    assert [s["routeRuleConditions"]["hostnames"] for s in sets] == [["*.example.com"]]


def test_the_operators_own_case_a_route_with_one_limit() -> None:
    """Kuadrant/kuadrant-operator@v1.5.2 tests/istio/extension_reconciler_test.go "Simple RLP
    targeting HTTPRoute creates envoyfilter": its route
    (Kuadrant/kuadrant-operator@v1.5.2 tests/commons.go BuildBasicHttpRoute: GET, PathPrefix /toy)
    and policy, and the action set the operator's test expects."""
    route = _route("toystore", [[{"path": {"type": "PathPrefix", "value": "/toy"}, "method": "GET"}]])
    route["spec"]["hostnames"] = ["*.example.com"]
    rlp = _policy(
        "RateLimitPolicy",
        {"limits": {"l1": {"rates": [{"limit": 1, "window": "3m"}]}}},
        "HTTPRoute",
        "toystore",
    )
    (only,) = _sets(_gateway("http"), route, rlp)
    assert len(only["name"]) == len(ks._sha256(""))
    identifier = ks._limit_identifier("limit.", rlp, "l1")
    assert len(identifier) == len("limit.l1__") + 8
    assert only["routeRuleConditions"] == {
        "hostnames": ["*.example.com"],
        "predicates": ["request.method == 'GET'", "request.url_path.startsWith('/toy')"],
    }
    assert only["actions"] == [
        {
            "service": "ratelimit-service",
            "scope": f"{NS}/toystore",
            "sources": [f"ratelimitpolicy.kuadrant.io:{NS}/ratelimitpolicy-toystore"],
            "conditionalData": [{"data": [{"expression": {"key": identifier, "value": "1"}}]}],
        }
    ]


def test_a_header_match_is_one_predicate_per_header() -> None:
    """PredicatesFromHTTPRouteMatch / predicateFromHeader, word for word."""
    match = {"path": {"type": "Exact", "value": "/v1/models"}, "headers": [{"name": "X-Model", "value": "m"}]}
    assert ks.predicates_of_match(match) == [
        "request.url_path == '/v1/models'",
        "request.headers.exists(h, h.lowerAscii() == 'x-model' && request.headers[h] == 'm')",
    ]
    regex = {"path": {"type": "RegularExpression", "value": "/v1/(a|b)"}}
    assert ks.predicates_of_match(regex) == ["request.url_path.matches('/v1/(a|b)')"]


def test_actions_auth_then_one_merged_rate_limit_then_a_check_and_a_report_per_tier() -> None:
    """buildWasmConfigs + mergeAndVerify: limits reading `auth.` go after the auth action;
    consecutive actions of one service and scope merge (the request limits: one action, a
    block per tier), token checks and reports alternate so none merge: 2 + 2 x tiers."""
    (only,) = _sets(_gateway("http"), _route("r", [[_exact("/a")]]), AUTH, REQUESTS, TOKENS)
    services = [a["service"] for a in only["actions"]]
    assert services == [
        "auth-service",
        "ratelimit-service",
        *["ratelimit-check-service", "ratelimit-report-service"] * len(TIERS),
    ]
    blocks = only["actions"][1]["conditionalData"]
    assert [b["predicates"] for b in blocks] == sorted([b["predicates"] for b in blocks], key="|".join)
    assert len(blocks) == len(TIERS)
    report = only["actions"][3]["conditionalData"][0]["data"][-1]
    assert report == {
        "expression": {"key": "ratelimit.hits_addend", "value": 'responseBodyJSON("/usage/total_tokens")'}
    }


def test_limits_that_read_no_identity_go_before_auth() -> None:
    anonymous = _policy("RateLimitPolicy", {"limits": {"all": {"rates": [{"limit": 1, "window": "1s"}]}}})
    (only,) = _sets(_gateway("http"), _route("r", [[_exact("/a")]]), AUTH, anonymous)
    assert [a["service"] for a in only["actions"]] == ["ratelimit-service", "auth-service"]


def test_the_stored_envoy_filter_carries_the_config_as_one_string() -> None:
    """What etcd stores decodes (Go's escaping of `&` included) to the filter whose
    configuration string decodes to the config: real JSON decoders on both levels."""
    gateway = _gateway("http")
    objects = [gateway, _route("r", [[_exact("/a")]]), AUTH, REQUESTS, TOKENS]
    sets = _sets(gateway, *objects[1:])
    stored = ks._go_json(ks.envoy_filter(gateway, ks.wasm_config(sets)))
    decoded = json.loads(stored)
    patch = decoded["spec"]["configPatches"][0]["patch"]["value"]["typed_config"]["value"]["config"]
    assert json.loads(patch["configuration"]["value"]) == ks.wasm_config(sets)
    (estimate,) = ks.estimate(objects).values()
    assert estimate.wasm_config_bytes == len(stored)


def test_limitador_limits_are_per_route_not_per_listener_and_valid_yaml() -> None:
    """processPolicyRules indexes limits by route namespace and identifier: a route on two
    listeners with two rules has each limit once. The ConfigMap's YAML decodes to them."""
    objects = [
        _gateway("http", "https"),
        _route("r", [[_exact("/a")], [_exact("/b")]]),
        AUTH,
        REQUESTS,
        TOKENS,
    ]
    (estimate,) = ks.estimate(objects).values()
    assert estimate.limits == 2 * len(TIERS)
    assert estimate.auth_configs == 2 * 2, "one AuthConfig per listener and rule"
    gateway, route = objects[0], objects[1]
    limits = ks.limitador_limits(ks.paths(gateway, [route]), "gw", {"RateLimitPolicy": [REQUESTS]})
    assert yaml.safe_load(ks.limits_yaml(limits)) == limits
    assert limits[0]["variables"] == ['descriptors[0]["auth.identity.userid"]']
    assert estimate.limits_bytes == len(
        ks.limits_yaml(
            ks.limitador_limits(
                ks.paths(gateway, [route]),
                "gw",
                {"RateLimitPolicy": [REQUESTS], "TokenRateLimitPolicy": [TOKENS]},
            )
        )
    )


@pytest.mark.parametrize("name", ["dev", "gpu"])
def test_the_shape_before_issue_27_matches_its_measured_size(name: str, stack_of: Any) -> None:
    """Issue 27 measured the wasm config of dev and gpu (2 models x 3 tiers) with the policies
    on the Gateway at 92 KB; the sets were the listeners x (8 per model: 2 hostnames x 4
    matches, + the model list). Then every limit had one window and no model a quota of its
    own (dev has both since issue 30)."""
    models = [{k: v for k, v in m.items() if k != "limits"} for m in stack_config(name)["maas:models"]]
    then = evaluate_variant(name, {"maas:tiers": REMOVE, "maas:models": models})
    before = shapes.on_the_gateway(then)
    (estimate,) = ks.estimate(r.inputs for r in before.objects()).values()
    assert estimate.action_sets == 8 * 2 + 1
    assert abs(estimate.wasm_config_bytes - 92_000) <= 0.05 * 92_000


@pytest.mark.parametrize("name", ["dev", "gpu"])
def test_a_real_stack_is_4_sets_per_listener(name: str, stack_of: Any) -> None:
    """The tier policies are on the policy route alone (components/serving/model_list.py): one
    set per metered path on every host, per listener; with the key service, one more per path
    of its API (its AuthPolicy's). (Before issue 27, with the policies on the Gateway, dev and
    gpu carried 17 sets, 92 KB.)"""
    stack: Evaluation = stack_of(name)
    (estimate,) = ks.estimate(r.inputs for r in stack.objects()).values()
    listeners = len(stack.one("Gateway", "inference-gateway").inputs["spec"]["listeners"])
    key_sets = len(self_service.API_PATHS) if typed_config(name).key_service_on else 0
    assert estimate.action_sets == (4 + key_sets) * listeners
    assert estimate.over() == {}


def test_100_models_of_10_tiers_on_both_listeners_fit_in_half_the_caps() -> None:
    """Issue 27's target: the configuration does not grow with the catalog (the limits do, by
    route, not by model), and a request on any host tries the same 4 sets whatever the
    catalog (the wasm-shim tries a host's sets in order)."""
    small, large = (sizes("dev", catalog(n, 10, both_listeners=True)) for n in (2, 100))
    assert large.action_sets == small.action_sets == 2 * 4
    assert large.sets_per_host == small.sets_per_host == {"*.maas.local": 8}
    assert large.over() == {}, large.shares()
    assert large.wasm_config_bytes < 1.05 * small.wasm_config_bytes
