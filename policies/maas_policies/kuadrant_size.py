"""How big Kuadrant's generated configuration gets, from the objects a stack declares.

kuadrant-operator v1.5.2 turns the Gateway, its HTTPRoutes and the AuthPolicy,
RateLimitPolicy and TokenRateLimitPolicy into three generated things, each with a cap
that nothing reports when it is passed (the operator only logs a failed write):

- the wasm-shim's configuration, one JSON string in one EnvoyFilter per gateway: one
  object in etcd, at most 1.5 MiB (etcd's default --max-request-bytes);
- one Authorino AuthConfig per listener and route rule, each an object of its own;
- Limitador's limits, which limitador-operator writes into one ConfigMap (at most 1 MiB
  of data: Kubernetes validates a ConfigMap's data like a Secret's, corev1.MaxSecretSize).

This module rebuilds them the way the operator's code does, rule by rule (each cited at its
function), and measures them as they are stored. It is pure (no Pulumi, no program module)
so that the policy pack, which runs in a virtualenv of its own, uses it as is.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# etcd's default request cap (--max-request-bytes, 1.5 MiB), which bounds one stored object.
ETCD_OBJECT_CAP = 1_572_864
# A ConfigMap's data: at most 1 MiB (Kubernetes pkg/apis/core/validation ValidateConfigMap).
CONFIGMAP_CAP = 1_048_576
# The share of a cap a stack may use: growth (a model, a tier) must not silently pass it.
SHARE = 0.5

# Kuadrant/kuadrant-operator@v1.5.2 internal/wasm/utils.go NewServiceBuilder: the four services every
# config names, and their defaults (AUTH_SERVICE_FAILURE_MODE deny, the others allow).
_SERVICES = {
    "auth-service": {
        "type": "auth",
        "endpoint": "kuadrant-auth-service",
        "failureMode": "deny",
        "timeout": "200ms",
    },
    "ratelimit-service": {
        "type": "ratelimit",
        "endpoint": "kuadrant-ratelimit-service",
        "failureMode": "allow",
        "timeout": "100ms",
    },
    "ratelimit-check-service": {
        "type": "ratelimit-check",
        "endpoint": "kuadrant-ratelimit-service",
        "failureMode": "allow",
        "timeout": "100ms",
    },
    "ratelimit-report-service": {
        "type": "ratelimit-report",
        "endpoint": "kuadrant-ratelimit-service",
        "failureMode": "allow",
        "timeout": "100ms",
    },
}
# Kuadrant/kuadrant-operator@v1.5.2 internal/controller/ratelimit_workflow_helpers.go
# wasmActionsFromTokenLimit: what the response phase adds to the hits.
_TOKEN_USAGE = 'responseBodyJSON("/usage/total_tokens")'
# Kuadrant/kuadrant-operator@v1.5.2 api/v1 ratelimitpolicy_types.go RulesKeyTopLevelPredicates is the key of a
# policy's own `when`; here it is simply the policy's top-level `when`.
_SOURCE_GROUP = {
    "AuthPolicy": "authpolicy.kuadrant.io",
    "RateLimitPolicy": "ratelimitpolicy.kuadrant.io",
    "TokenRateLimitPolicy": "tokenratelimitpolicy.kuadrant.io",
}
_POLICY_KINDS = tuple(_SOURCE_GROUP)
_WINDOW = re.compile(r"([0-9]+)(ms|h|m|s)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


@dataclass(frozen=True)
class Path:
    """One topological path the operator builds policies for: gateway class, gateway,
    listener, route, rule (Kuadrant/kuadrant-operator@v1.5.2 api/v1 merge_strategies.go PathID joins them with
    '|')."""

    gateway_class: str
    gateway: str
    listener: str
    listener_hostname: str
    route: Mapping[str, Any]
    rule_index: int

    @property
    def route_key(self) -> str:
        return _key(self.route)

    @property
    def id(self) -> str:
        return "|".join(
            (
                self.gateway_class,
                self.gateway,
                f"{self.gateway}#{self.listener}",
                self.route_key,
                f"{self.route_key}#rule-{self.rule_index + 1}",
            )
        )


@dataclass(frozen=True)
class Estimate:
    """What Kuadrant would generate for one gateway, and how big it is stored."""

    # Action sets in the wasm config, and the most on one hostname: the wasm-shim tries a
    # host's sets in order (Kuadrant/wasm-shim@v0.14.1 src/kuadrant/pipeline/factory.rs), so this is
    # the per-request work on the busiest host.
    action_sets: int
    sets_per_host: Mapping[str, int]
    # The EnvoyFilter as etcd stores it.
    wasm_config_bytes: int
    auth_configs: int
    # The largest AuthConfig as stored, and all of them together.
    auth_config_bytes: int
    auth_configs_bytes: int
    limits: int
    # limitador-operator's ConfigMap data.
    limits_bytes: int

    def shares(self) -> dict[str, tuple[int, int]]:
        """(bytes, cap) of each capped object."""
        return {
            "wasm config (EnvoyFilter)": (self.wasm_config_bytes, ETCD_OBJECT_CAP),
            "largest AuthConfig": (self.auth_config_bytes, ETCD_OBJECT_CAP),
            "Limitador limits (ConfigMap)": (self.limits_bytes, CONFIGMAP_CAP),
        }

    def over(self, share: float = SHARE) -> dict[str, tuple[int, int]]:
        """The capped objects past `share` of their cap."""
        return {what: (size, cap) for what, (size, cap) in self.shares().items() if size > share * cap}


def plain(value: Any) -> Any:
    """Plain data from what the policy analyzer hands a rule (read-only proxies, numbers as
    floats, pulumi/pulumi-policy@v1.21.0 sdk/python/lib/pulumi_policy/proxy.py) or from the program: dicts,
    lists, whole numbers as int."""
    if isinstance(value, Mapping):
        return {str(k): plain(value[k]) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [plain(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _key(obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    return f"{metadata.get('namespace')}/{metadata.get('name')}"


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _go_json(value: Any) -> str:
    """Go's encoding/json, as the API server stores a custom resource: compact, and `&`, `<`,
    `>` escaped as \\u0026 etc. (encoding/json HTMLEscape is on by default)."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _proto_json(value: Any) -> str:
    """protojson of a google.protobuf.Struct (how Kuadrant/kuadrant-operator@v1.5.2 internal/istio/utils.go
    buildWasmFilterConfig writes the config string): compact, keys sorted, no HTML escaping."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


# --- topology ---------------------------------------------------------------------------


def _subset(hostname: str, of: str) -> bool:
    """internal/utils Name.SubsetOf: `of` equal, `*`, or a wildcard whose suffix holds it."""
    if of == "*" or hostname == of:
        return True
    if of.startswith("*."):
        suffix = of[1:]
        return hostname.endswith(suffix) and hostname != suffix[1:]
    return False


def hostnames(listener_hostname: str, route: Mapping[str, Any]) -> list[str]:
    """Kuadrant/kuadrant-operator@v1.5.2 internal/gatewayapi/utils.go HostnamesFromListenerAndHTTPRoute: the
    route's hostnames that fall under the listener's, or the listener's when the route names none."""
    own = list((route.get("spec") or {}).get("hostnames") or [])
    if not own:
        return [listener_hostname]
    return [h for h in own if _subset(str(h), listener_hostname)]


def paths(gateway: Mapping[str, Any], routes: Iterable[Mapping[str, Any]]) -> list[Path]:
    """Every listener x route x rule of the gateway (the routes attached to a listener by
    parentRefs: the listener's sectionName, or none for all listeners)."""
    gateway_name = str((gateway.get("metadata") or {}).get("name"))
    gateway_key = _key(gateway)
    namespace = (gateway.get("metadata") or {}).get("namespace")
    found = []
    for listener in (gateway.get("spec") or {}).get("listeners") or []:
        for route in routes:
            route_namespace = (route.get("metadata") or {}).get("namespace")
            attached = any(
                ref.get("name") == gateway_name
                and (ref.get("namespace") or route_namespace) == namespace
                and ref.get("sectionName", listener.get("name")) == listener.get("name")
                for ref in (route.get("spec") or {}).get("parentRefs") or []
            )
            if not attached:
                continue
            for index, _ in enumerate((route.get("spec") or {}).get("rules") or []):
                found.append(
                    Path(
                        str((gateway.get("spec") or {}).get("gatewayClassName") or "istio"),
                        gateway_key,
                        str(listener.get("name")),
                        str(listener.get("hostname") or "*"),
                        route,
                        index,
                    )
                )
    return found


def _effective(
    policies: Sequence[Mapping[str, Any]], path: Path, gateway_name: str
) -> Mapping[str, Any] | None:
    """The policy of one kind in force on a path: one targeting the route wins over the
    gateway's `defaults`, the gateway's `overrides` over everything (the operator's atomic
    merge strategy, Kuadrant/kuadrant-operator@v1.5.2 api/v1 merge_strategies.go, the default of both
    blocks)."""
    on_gateway = on_route = None
    route_meta = path.route.get("metadata") or {}
    for policy in policies:
        meta = policy.get("metadata") or {}
        if meta.get("namespace") != route_meta.get("namespace"):
            continue
        target = (policy.get("spec") or {}).get("targetRef") or {}
        if target.get("kind") == "Gateway" and target.get("name") == gateway_name:
            if target.get("sectionName") in (None, path.listener):
                on_gateway = policy
        elif target.get("kind") == "HTTPRoute" and target.get("name") == route_meta.get("name"):
            on_route = policy
    if on_gateway is not None and (on_gateway.get("spec") or {}).get("overrides"):
        return on_gateway
    return on_route or on_gateway


def proper(policy: Mapping[str, Any]) -> Mapping[str, Any]:
    """A policy's own settings: its `overrides` or `defaults` block, else its spec (api/v1
    AuthPolicySpec.Proper, RateLimitPolicySpec.Proper)."""
    spec = policy.get("spec") or {}
    return spec.get("overrides") or spec.get("defaults") or spec


def _when(block: Mapping[str, Any]) -> list[str]:
    return [str(p.get("predicate")) for p in block.get("when") or []]


def _source(policy: Mapping[str, Any]) -> str:
    """policy-machinery's locator of a policy: `<kind>.<group>:<namespace>/<name>` (as the
    operator's tests expect it,
    Kuadrant/kuadrant-operator@v1.5.2 tests/envoygateway/extension_reconciler_test.go)."""
    return f"{_SOURCE_GROUP[str(policy.get('kind'))]}:{_key(policy)}"


# --- the wasm config --------------------------------------------------------------------


def predicates_of_match(match: Mapping[str, Any]) -> list[str]:
    """Kuadrant/kuadrant-operator@v1.5.2 internal/wasm/utils.go PredicatesFromHTTPRouteMatch: method, path,
    each header, each query parameter (the first of a name), in that order."""
    found = []
    if match.get("method"):
        found.append(f"request.method == '{match['method']}'")
    path = match.get("path")
    if path is not None:
        value, kind = path.get("value", "/"), path.get("type", "PathPrefix")
        if kind == "PathPrefix":
            found.append(f"request.url_path.startsWith('{value}')")
        elif kind == "RegularExpression":
            found.append(f"request.url_path.matches('{value}')")
        else:
            found.append(f"request.url_path == '{value}'")
    for header in match.get("headers") or []:
        found.append(
            f"request.headers.exists(h, h.lowerAscii() == '{str(header.get('name')).lower()}' "
            f"&& request.headers[h] == '{header.get('value')}')"
        )
    seen: set[str] = set()
    for query in match.get("queryParams") or []:
        name = str(query.get("name"))
        if name not in seen:
            seen.add(name)
            found.append(
                f"'{name}' in queryMap(request.query) ? queryMap(request.query)['{name}'] == "
                f"'{query.get('value')}' : false"
            )
    return found


def _limit_identifier(prefix: str, policy: Mapping[str, Any], name: str) -> str:
    """Kuadrant/kuadrant-operator@v1.5.2 ratelimit_workflow_helpers.go LimitNameToLimitadorIdentifier (prefix
    "limit.") and TokenLimitNameToLimitadorIdentifier ("tokenlimit."): the name, non-word characters as `_`,
    and 4 bytes of a hash of "<namespace>/<policy>/<name>"."""
    sanitized = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return f"{prefix}{sanitized}__{_sha256(f'{_key(policy)}/{name}')[:8]}"


def _expression(key: str, value: str) -> dict[str, Any]:
    return {"expression": {"key": key, "value": value}}


def _counters(limit: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [
        _expression(str(c.get("expression")), str(c.get("expression"))) for c in limit.get("counters") or []
    ]


def _has_auth_access(actions: Sequence[Mapping[str, Any]]) -> bool:
    """Kuadrant/kuadrant-operator@v1.5.2 types.go Action.HasAuthAccess: a predicate or an expression reads
    `auth.`."""
    for action in actions:
        for block in action.get("conditionalData") or []:
            if any("auth." in p for p in block.get("predicates") or []):
                return True
            if any("auth." in d["expression"]["value"] for d in block.get("data") or [] if "expression" in d):
                return True
    return False


def _rate_limit_actions(policy: Mapping[str, Any], scope: str) -> list[dict[str, Any]]:
    """Kuadrant/kuadrant-operator@v1.5.2 ratelimit_workflow_helpers.go buildWasmActionsForAnyRateLimit /
    wasmActionFromLimit: one action per limit, in the order of the limits' names, each with one block of
    predicates (the policy's `when`, then the limit's) and data (the limit's identifier = 1, then its
    counters)."""
    spec = proper(policy)
    top = _when(spec)
    return [
        {
            "service": "ratelimit-service",
            "scope": scope,
            "conditionalData": [
                _without_empty(
                    {
                        "predicates": top + _when(limit),
                        "data": [
                            _expression(_limit_identifier("limit.", policy, name), "1"),
                            *_counters(limit),
                        ],
                    }
                )
            ],
            "sources": [_source(policy)],
        }
        for name, limit in sorted((spec.get("limits") or {}).items())
    ]


def _token_limit_actions(policy: Mapping[str, Any], scope: str) -> list[dict[str, Any]]:
    """buildWasmActionsForTokenRateLimit / wasmActionsFromTokenLimit: per limit (by name), a
    check before the request (hits_addend 0) and a report after the response (the usage)."""
    spec = proper(policy)
    top = _when(spec)
    actions = []
    for name, limit in sorted((spec.get("limits") or {}).items()):
        common = [_expression(_limit_identifier("tokenlimit.", policy, name), "1"), *_counters(limit)]
        for service, addend in (("ratelimit-check-service", "0"), ("ratelimit-report-service", _TOKEN_USAGE)):
            block = {
                "predicates": top + _when(limit),
                "data": [*common, _expression("ratelimit.hits_addend", addend)],
            }
            actions.append(
                {
                    "service": service,
                    "scope": scope,
                    "conditionalData": [_without_empty(block)],
                    "sources": [_source(policy)],
                }
            )
    return actions


def _without_empty(value: dict[str, Any]) -> dict[str, Any]:
    """Go's `omitempty`: empty lists are left out."""
    return {k: v for k, v in value.items() if v not in ([], None, "")}


def _merge(actions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kuadrant/kuadrant-operator@v1.5.2 data_plane_policies_workflow.go mergeAndVerify: consecutive actions
    of one scope and service (not auth) become one, their blocks sorted by their joined predicates."""
    merged: list[dict[str, Any]] = []
    for action in actions:
        last = merged[-1] if merged else None
        if (
            last is not None
            and last["scope"] == action["scope"]
            and last["service"] == action["service"]
            and action["service"] != "auth-service"
        ):
            last["conditionalData"] = sorted(
                [*last["conditionalData"], *action["conditionalData"]],
                key=lambda block: "|".join(block.get("predicates") or []),
            )
            last["sources"] = sorted(set(last["sources"]) | set(action["sources"]))
        else:
            merged.append({**action})
    return merged


def actions_for_path(
    path: Path, gateway_name: str, policies: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """Kuadrant/kuadrant-operator@v1.5.2 istio_extension_reconciler.go buildWasmConfigs: the auth action, then
    the rate limit and token actions (after auth when they read `auth.`, else before it), merged."""
    actions: list[dict[str, Any]] = []
    auth = _effective(policies.get("AuthPolicy", ()), path, gateway_name)
    if auth is not None:
        # Kuadrant/kuadrant-operator@v1.5.2 auth_workflow_helpers.go buildWasmActionsForAuth: the AuthConfig
        # named by the path.
        actions.append(
            _without_empty(
                {
                    "service": "auth-service",
                    "scope": _sha256(path.id),
                    "predicates": _when(proper(auth)),
                    "sources": [_source(auth)],
                }
            )
        )
    # Kuadrant/kuadrant-operator@v1.5.2 ratelimit_workflow_helpers.go LimitsNamespaceFromRoute: limits are
    # scoped by route.
    scope = path.route_key
    for kind, build in (
        ("RateLimitPolicy", _rate_limit_actions),
        ("TokenRateLimitPolicy", _token_limit_actions),
    ):
        policy = _effective(policies.get(kind, ()), path, gateway_name)
        if policy is None:
            continue
        more = build(policy, scope)
        actions = [*actions, *more] if _has_auth_access(more) else [*more, *actions]
    return _merge(actions)


def action_sets(
    gateway: Mapping[str, Any],
    routes: Sequence[Mapping[str, Any]],
    policies: Mapping[str, Sequence[Mapping[str, Any]]],
) -> list[dict[str, Any]]:
    """Kuadrant/kuadrant-operator@v1.5.2 internal/wasm/utils.go BuildActionSetsForPath: for each path with
    actions, one set per hostname x match (no match: PathPrefix "/"), each with the path's whole action list;
    named ActionSetNameForPath (sha256 of "<path>|<match index + 1>|<hostname>")."""
    gateway_name = str((gateway.get("metadata") or {}).get("name"))
    return [s for path in paths(gateway, routes) for s in sets_for_path(path, gateway_name, policies)]


def sets_for_path(
    path: Path, gateway_name: str, policies: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """The action sets of one listener x route rule (none when no policy is in force on it)."""
    actions = actions_for_path(path, gateway_name, policies)
    if not actions:
        return []
    rule = ((path.route.get("spec") or {}).get("rules") or [])[path.rule_index]
    matches = rule.get("matches") or [{"path": {"type": "PathPrefix", "value": "/"}}]
    return [
        {
            "name": _sha256(f"{path.id}|{index + 1}|{hostname}"),
            "routeRuleConditions": _without_empty(
                {"hostnames": [hostname], "predicates": predicates_of_match(match)}
            ),
            "actions": actions,
        }
        for hostname in hostnames(path.listener_hostname, path.route)
        for index, match in enumerate(matches)
    ]


def wasm_config(sets: list[dict[str, Any]], request_data: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Kuadrant/kuadrant-operator@v1.5.2 types.go Config: services, action sets and (from a TelemetryPolicy)
    requestData."""
    config: dict[str, Any] = {"services": _SERVICES, "actionSets": sets}
    if request_data:
        config["requestData"] = dict(request_data)
    return config


def envoy_filter(gateway: Mapping[str, Any], config: Mapping[str, Any]) -> dict[str, Any]:
    """Kuadrant/kuadrant-operator@v1.5.2 istio_extension_reconciler.go buildIstioEnvoyFilterForGateway and
    internal/istio/utils.go BuildEnvoyFilterWasmPatch: the config, as one string, in the wasm filter's
    patch, beside the cluster of the operator's wasm server; with what the API server adds
    (uid, versions, one managedFields entry)."""
    meta = gateway.get("metadata") or {}
    name = str(meta.get("name"))
    uid = "00000000-0000-0000-0000-000000000000"
    wasm_url = "http://kuadrant-operator-wasm.kuadrant-system.svc.cluster.local:8082/plugin.wasm"
    filter_config = {
        "config": {
            "name": "kuadrant-wasm-shim",
            "root_id": "kuadrant_wasm_shim",
            "vm_config": {
                "runtime": "envoy.wasm.runtime.v8",
                "code": {
                    "remote": {
                        "http_uri": {"uri": wasm_url, "timeout": "10s", "cluster": "kuadrant-operator-wasm"},
                        "sha256": "0" * 64,
                    }
                },
                "allow_precompiled": True,
            },
            "failure_policy": "FAIL_RELOAD",
            "configuration": {
                "@type": "type.googleapis.com/google.protobuf.StringValue",
                "value": _proto_json(config),
            },
        }
    }
    router = {"name": "envoy.filters.http.router"}
    chain = {"filter": {"name": "envoy.filters.network.http_connection_manager", "subFilter": router}}
    cluster = {
        "name": "kuadrant-operator-wasm",
        "type": "STRICT_DNS",
        "connect_timeout": "1s",
        "lb_policy": "ROUND_ROBIN",
        "http2_protocol_options": {},
        "load_assignment": {
            "cluster_name": "kuadrant-operator-wasm",
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {
                                    "socket_address": {
                                        "address": "kuadrant-operator-wasm.kuadrant-system.svc.cluster.local",
                                        "port_value": 8082,
                                    }
                                }
                            }
                        }
                    ]
                }
            ],
        },
    }
    return {
        "apiVersion": "networking.istio.io/v1alpha3",
        "kind": "EnvoyFilter",
        "metadata": {
            "name": f"kuadrant-{name}",
            "namespace": meta.get("namespace"),
            "uid": uid,
            "resourceVersion": "12345678",
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "labels": {"kuadrant.io/managed": "true", "kuadrant.io/wasm": "true"},
            "ownerReferences": [
                {
                    "apiVersion": "gateway.networking.k8s.io/v1",
                    "kind": "Gateway",
                    "name": name,
                    "uid": uid,
                    "blockOwnerDeletion": True,
                    "controller": True,
                }
            ],
            "managedFields": [
                {
                    "manager": "manager",
                    "operation": "Update",
                    "apiVersion": "networking.istio.io/v1alpha3",
                    "time": "2026-01-01T00:00:00Z",
                    "fieldsType": "FieldsV1",
                    "fieldsV1": {
                        "f:metadata": {
                            "f:labels": {".": {}, "f:kuadrant.io/managed": {}, "f:kuadrant.io/wasm": {}},
                            "f:ownerReferences": {".": {}, f'k:{{"uid":"{uid}"}}': {}},
                        },
                        "f:spec": {".": {}, "f:configPatches": {}, "f:targetRefs": {}},
                    },
                }
            ],
        },
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": name}],
            "configPatches": [
                {
                    "applyTo": "HTTP_FILTER",
                    "match": {"context": "GATEWAY", "listener": {"filterChain": chain}},
                    "patch": {
                        "operation": "INSERT_BEFORE",
                        "value": {
                            "name": "envoy.filters.http.wasm",
                            "typed_config": {
                                "@type": "type.googleapis.com/udpa.type.v1.TypedStruct",
                                "type_url": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                                "value": filter_config,
                            },
                        },
                    },
                },
                {
                    "applyTo": "CLUSTER",
                    "match": {
                        "cluster": {"service": "kuadrant-operator-wasm.kuadrant-system.svc.cluster.local"}
                    },
                    "patch": {"operation": "ADD", "value": cluster},
                },
            ],
        },
    }


# --- AuthConfigs and Limitador's limits -----------------------------------------------


def auth_config(path: Path, policy: Mapping[str, Any], namespace: str) -> dict[str, Any]:
    """Kuadrant/kuadrant-operator@v1.5.2 authconfigs_reconciler.go buildDesiredAuthConfig: named by the path's
    hash, which is also its only host; the policy's rules as Authorino's spec (response.success.filters become
    dynamicMetadata), with the route rule's locator as an annotation."""
    name = _sha256(path.id)
    rules = dict(proper(policy).get("rules") or {})
    spec: dict[str, Any] = {"hosts": [name]}
    for section in ("authentication", "metadata", "authorization", "callbacks"):
        if rules.get(section):
            spec[section] = rules[section]
    response = dict(rules.get("response") or {})
    if response:
        success = dict(response.pop("success", None) or {})
        spec["response"] = {
            **response,
            "success": _without_empty(
                {"headers": success.get("headers") or {}, "dynamicMetadata": success.get("filters") or {}}
            ),
        }
    return {
        "apiVersion": "authorino.kuadrant.io/v1beta3",
        "kind": "AuthConfig",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "annotations": {"kuadrant.io/authpolicies": f"{path.id}"},
            "labels": {"kuadrant.io/managed": "true", "kuadrant.io/auth": "true"},
            "uid": "00000000-0000-0000-0000-000000000000",
            "resourceVersion": "12345678",
            "generation": 1,
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": spec,
    }


def _window_seconds(window: str) -> int:
    return int(sum(int(n) * _SECONDS[unit] for n, unit in _WINDOW.findall(window)))


def limitador_limits(
    paths_: Sequence[Path], gateway_name: str, policies: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    """Kuadrant/kuadrant-operator@v1.5.2 limitador_limits_reconciler.go processPolicyRules: per route (the
    limits' namespace) and limit, one Limitador limit per rate, indexed by namespace and identifier, so one
    route's rules and listeners share them; counters as `descriptors[0]["<expression>"]` (internal/cel
    TransformCounterVariable)."""
    index: dict[str, list[dict[str, Any]]] = {}
    for path in paths_:
        for kind, prefix in (("RateLimitPolicy", "limit."), ("TokenRateLimitPolicy", "tokenlimit.")):
            policy = _effective(policies.get(kind, ()), path, gateway_name)
            if policy is None:
                continue
            for name, limit in (proper(policy).get("limits") or {}).items():
                identifier = _limit_identifier(prefix, policy, name)
                index[f"{path.route_key}/{identifier}"] = [
                    {
                        "conditions": [f'descriptors[0]["{identifier}"] == "1"'],
                        "max_value": int(rate.get("limit", 0)),
                        "namespace": path.route_key,
                        "seconds": _window_seconds(str(rate.get("window", ""))),
                        "variables": [
                            f'descriptors[0]["{c.get("expression")}"]' for c in limit.get("counters") or []
                        ],
                        "name": name,
                    }
                    for rate in limit.get("rates") or []
                ]
    return [limit for key in sorted(index) for limit in index[key]]


def _yaml_string(text: str) -> str:
    """A scalar as go-yaml writes it: plain when it can, single-quoted when it starts with
    an indicator or holds `: `/` #`/quotes (quotes inside doubled)."""
    if text and re.fullmatch(r"[A-Za-z0-9_./-][^:#'\"\[\]{},&*!|>%@`]*", text) and not text.endswith(" "):
        return text
    return "'" + text.replace("'", "''") + "'"


def limits_yaml(limits: Sequence[Mapping[str, Any]]) -> str:
    """Kuadrant/limitador-operator@7472d1c pkg/limitador/k8s_objects.go LimitsConfigMap: sigs.k8s.io/yaml of
    the limits, keys sorted, a list item's keys indented under its dash."""
    lines = []
    for limit in limits:
        first = True
        for key in sorted(limit):
            value = limit[key]
            lead = "- " if first else "  "
            first = False
            if isinstance(value, list):
                lines.append(f"{lead}{key}:" + ("" if value else " []"))
                lines.extend(f"  - {_yaml_string(str(v))}" for v in value)
            else:
                lines.append(f"{lead}{key}: {value if isinstance(value, int) else _yaml_string(str(value))}")
    return "\n".join(lines) + ("\n" if lines else "[]\n")


# --- the estimate ------------------------------------------------------------------------


def estimate(
    objects: Iterable[Mapping[str, Any]], kuadrant_namespace: str = "kuadrant-system"
) -> dict[str, Estimate]:
    """Per Gateway (by "<namespace>/<name>"): Kuadrant's generated objects for the stack's
    Gateways, HTTPRoutes, AuthPolicy, RateLimitPolicy, TokenRateLimitPolicy and
    TelemetryPolicy (its labels, requestData). `objects` are Kubernetes objects as declared
    (apiVersion, kind, metadata, spec)."""
    listed = [plain(o) for o in objects]
    gateways = [o for o in listed if o.get("kind") == "Gateway"]
    routes = [o for o in listed if o.get("kind") == "HTTPRoute"]
    policies = {kind: [o for o in listed if o.get("kind") == kind] for kind in _POLICY_KINDS}
    request_data = {
        f"metrics.labels.{label}": str(expression)
        for o in listed
        if o.get("kind") == "TelemetryPolicy"
        for label, expression in (((o.get("spec") or {}).get("metrics") or {}).get("default") or {})
        .get("labels", {})
        .items()
    }
    found = {}
    for gateway in gateways:
        gateway_name = str((gateway.get("metadata") or {}).get("name"))
        sets = action_sets(gateway, routes, policies)
        per_host: dict[str, int] = {}
        for action_set in sets:
            for host in action_set["routeRuleConditions"]["hostnames"]:
                per_host[host] = per_host.get(host, 0) + 1
        stored = envoy_filter(gateway, wasm_config(sets, request_data))
        gateway_paths = paths(gateway, routes)
        auth_configs = [
            len(_go_json(auth_config(path, auth, kuadrant_namespace)))
            for path in gateway_paths
            if (auth := _effective(policies["AuthPolicy"], path, gateway_name)) is not None
        ]
        limits = limitador_limits(gateway_paths, gateway_name, policies)
        found[_key(gateway)] = Estimate(
            action_sets=len(sets),
            sets_per_host=per_host,
            wasm_config_bytes=len(_go_json(stored).encode()),
            auth_configs=len(auth_configs),
            auth_config_bytes=max(auth_configs, default=0),
            auth_configs_bytes=sum(auth_configs),
            limits=len(limits),
            limits_bytes=len(limits_yaml(limits).encode()),
        )
    return found
