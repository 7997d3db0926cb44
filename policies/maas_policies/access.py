"""Access: every model route behind authentication and limits; every tier limited."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from maas_policies import objects, relaxation
from maas_policies.metering import KEY_SERVICE

# The tier as the program's predicates name it: components/access/tiers.py TIER (a test ties them).
_TIER_IN = re.compile(r"auth\.identity\.tier\s+in\s+\[([^\]]*)\]")
_TIER_IS = re.compile(r"auth\.identity\.tier\s*==\s*'([^']+)'")
_WINDOW_PART = re.compile(r"([0-9]+)(ms|h|m|s)")
# A model's quota and the tier's limit for its other models: components/access/tiers.py
# model_predicate and _limits, on the model header MODEL_HEADER (a test ties them).
_MODEL_IS = re.compile(
    r"'x-maas-model' in request\.headers && request\.headers\['x-maas-model'\] == '([^']+)'"
)
_MODELS_OUT = re.compile(
    r"!\(\('x-maas-model' in request\.headers \? request\.headers\['x-maas-model'\] : ''\) in \[([^\]]*)\]\)"
)
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
# A money budget's cap (components/access/tiers.py budget_limit_name; a test ties them): it
# names a tier in its `when` but counts per user across models, and is no tier's limit.
_BUDGET_CAP = re.compile(r"\+budget:requests:")


_KUADRANT_POLICIES = ("AuthPolicy", "RateLimitPolicy", "TokenRateLimitPolicy")


def covers(policy: PolicyResource, route: PolicyResource, gateway: str, args: StackValidationArgs) -> bool:
    """The policy is in force on every request the route takes: it targets the route, its
    Gateway, or a route whose action sets the wasm-shim picks for each of the route's hosts
    and usage paths (_anchors)."""
    target = (policy.props.get("spec") or {}).get("targetRef") or {}
    route_meta, policy_meta = route.props.get("metadata") or {}, policy.props.get("metadata") or {}
    if policy_meta.get("namespace") != route_meta.get("namespace"):
        return False
    if target.get("kind") == "HTTPRoute":
        if target.get("name") == route_meta.get("name"):
            return True
        anchors = [
            r
            for r in objects.of_kind(args, "HTTPRoute")
            if objects.name(r.props) == f"{route_meta.get('namespace')}/{target.get('name')}"
        ]
        return any(_anchors(anchor.props, route.props, gateway, args) for anchor in anchors)
    return target.get("kind") == "Gateway" and target.get("name") == gateway


def _hosts(route: Mapping[str, Any]) -> list[str]:
    return [str(h) for h in (route.get("spec") or {}).get("hostnames") or []]


def _targeted_routes(args: StackValidationArgs) -> set[str]:
    """The routes (namespace/name) a Kuadrant policy targets."""
    found = set()
    for kind in _KUADRANT_POLICIES:
        for policy in objects.of_kind(args, kind):
            target = (policy.props.get("spec") or {}).get("targetRef") or {}
            if target.get("kind") == "HTTPRoute":
                namespace = (policy.props.get("metadata") or {}).get("namespace")
                found.add(f"{namespace}/{target.get('name')}")
    return found


def _anchors(
    anchor: Mapping[str, Any], route: Mapping[str, Any], gateway: str, args: StackValidationArgs
) -> bool:
    """Policies on `anchor` are in force on `route`'s requests: the anchor is on the route's
    gateway and names no hostnames (so Kuadrant/kuadrant-operator@v1.5.2 gives its sets the
    listener's `*.<domain>`, internal/gatewayapi/utils.go HostnamesFromListenerAndHTTPRoute, and the one
    wasm filter of the gateway applies them on every listener, internal/istio/utils.go
    BuildEnvoyFilterWasmPatch); no other route with policies names one of the route's hosts
    (the wasm-shim takes a request's sets from the nearest host entry only, Kuadrant/wasm-shim@v0.14.1
    src/kuadrant/pipeline/factory.rs select_blueprint); and it matches each usage path the
    route serves exactly, with nothing more to match (PredicatesFromHTTPRouteMatch makes any
    further condition a predicate the route's requests might not meet)."""
    spec = anchor.get("spec") or {}
    if _hosts(anchor) or not any(p.get("name") == gateway for p in spec.get("parentRefs") or []):
        return False
    # A policy on the Gateway gives every route of it sets of its own hosts
    # (Kuadrant/kuadrant-operator@v1.5.2 internal/wasm/utils.go BuildActionSetsForPath per path), nearer than
    # `*.<domain>`.
    if any(
        _targets_gateway(policy.props, gateway)
        for kind in _KUADRANT_POLICIES
        for policy in objects.of_kind(args, kind)
    ):
        return False
    targeted = _targeted_routes(args) - {objects.name(anchor)}
    for other in objects.of_kind(args, "HTTPRoute"):
        if objects.name(other.props) in targeted and any(
            _host_matches(pattern, host) for pattern in _hosts(other.props) for host in _hosts(route)
        ):
            return False
    exact = {
        str((m.get("path") or {}).get("value"))
        for rule in spec.get("rules") or []
        for m in rule.get("matches") or []
        if set(m) == {"path"} and (m.get("path") or {}).get("type") == "Exact"
    }
    served = set()
    for rule in (route.get("spec") or {}).get("rules") or []:
        for match in rule.get("matches") or [{}]:
            served |= match_usage_paths(match)
    return served <= exact


def _targets_gateway(policy: Mapping[str, Any], gateway: str) -> bool:
    target = (policy.get("spec") or {}).get("targetRef") or {}
    return target.get("kind") == "Gateway" and target.get("name") == gateway


def _host_matches(pattern: str, host: str) -> bool:
    """A route hostname takes `host`: the same name, or a wildcard over it
    (kubernetes-sigs/gateway-api@v1.5.1 httproute_types.go Hostnames: `*.example.com` matches any
    name under it)."""
    return pattern == host or (pattern.startswith("*.") and host.endswith(pattern[1:]))


# Copy of components/pins/upstream.py OPENAI_USAGE_PATHS (a test ties them): the paths whose
# requests a limit policy must count.
USAGE_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
_PATH_IN = re.compile(r"^request\.url_path\s+in\s+\[([^\]]*)\]$")
_PATH_IS = re.compile(r"^request\.url_path\s*==\s*'([^']*)'$")
_PATH_STARTS = re.compile(r"^request\.url_path\.startsWith\('([^']*)'\)$")
# Identity methods that verify no credential: anyone passes them.
_OPEN_DOORS = ("anonymous", "plain")


def _effective(spec: Mapping[str, Any]) -> Mapping[str, Any]:
    """A Kuadrant policy's own settings: its `overrides` or `defaults` block when it has one
    (Kuadrant/kuadrant-operator@v1.5.2 api/v1 AuthPolicySpec, RateLimitPolicySpec: same fields)."""
    return spec.get("overrides") or spec.get("defaults") or spec


def match_usage_paths(match: Mapping[str, Any]) -> set[str]:
    """The usage paths one route match takes (no path: PathPrefix "/"). A prefix matches by
    whole path elements, a trailing slash ignored (kubernetes-sigs/gateway-api@v1.5.1 apis/v1/
    httproute_types.go PathMatchPathPrefix); a regular expression is not judged: all."""
    path = match.get("path") or {"type": "PathPrefix", "value": "/"}
    value, kind = str(path.get("value", "/")), path.get("type", "PathPrefix")
    if kind == "Exact":
        return {value} & set(USAGE_PATHS)
    if kind != "PathPrefix":
        return set(USAGE_PATHS)
    prefix = value.rstrip("/")
    return {p for p in USAGE_PATHS if p == prefix or p.startswith(prefix + "/")}


def _route_paths(route: PolicyResource) -> set[str]:
    """The usage paths a route's matches send to its backends."""
    found: set[str] = set()
    for rule in (route.props.get("spec") or {}).get("rules") or []:
        for match in rule.get("matches") or [{}]:
            found |= match_usage_paths(match)
    return found


def _auth_weakness(policy: PolicyResource) -> str | None:
    """Why an AuthPolicy lets some request in without a verified credential, if it does."""
    spec = policy.props.get("spec") or {}
    effective = _effective(spec)
    if spec.get("when") or effective.get("when"):
        return "its `when` conditions leave some requests unauthenticated"
    rules = effective.get("rules") or {}
    methods = rules.get("authentication") or {}
    if not methods:
        if _denies_all(rules.get("authorization") or {}):
            return None  # Kuadrant's "deny all by default": routes open with policies of their own
        return "it has no authentication method, so every caller is let in"
    for method_name, method in methods.items():
        if any(door in method for door in _OPEN_DOORS):
            return f"its authentication method '{method_name}' verifies no credential: every caller passes"
    if all(method.get("when") for method in methods.values()):
        return "every authentication method has `when` conditions, so some requests meet none"
    return None


_DENY_REGO = re.compile(r"^\s*allow\s*:?=\s*false\s*$")


def _denies_all(authorization: Mapping[str, Any]) -> bool:
    """An unconditional authorization rule that refuses everyone: OPA `allow = false` (the
    Kuadrant docs' deny-all AuthPolicy) or a pattern whose predicate is `false`."""
    for rule in authorization.values():
        if rule.get("when"):
            continue
        if _DENY_REGO.match(str((rule.get("opa") or {}).get("rego", ""))):
            return True
        patterns = (rule.get("patternMatching") or {}).get("patterns") or []
        if any(str(p.get("predicate", "")).strip() == "false" for p in patterns):
            return True
    return False


def _path_filter(limit: Mapping[str, Any]) -> set[str] | str | None:
    """The usage paths a limit's conditions admit (None: any path). Any condition but a tier's
    or one on `request.url_path` in a known form is returned as text: what it lets through
    cannot be judged (`request.method == 'GET'` would count no model request)."""
    admitted: set[str] | None = None
    for condition in limit.get("when") or []:
        predicate = str(condition.get("predicate", "")).strip()
        # A tier's limit (components/access/tiers.py): it holds for that tier's requests; a
        # model's quota in it, or the tier's limit for its other models (_models_partitioned).
        if (
            _TIER_IS.fullmatch(predicate)
            or _MODEL_IS.fullmatch(predicate)
            or _MODELS_OUT.fullmatch(predicate)
        ):
            continue
        if listed := _PATH_IN.match(predicate):
            paths = set(re.findall(r"'([^']*)'", listed.group(1)))
        elif equal := _PATH_IS.match(predicate):
            paths = {equal.group(1)}
        elif prefix := _PATH_STARTS.match(predicate):
            paths = {p for p in USAGE_PATHS if p.startswith(prefix.group(1))}
        else:
            return predicate
        admitted = paths if admitted is None else admitted & paths
    return admitted


def _limit_weakness(policy: PolicyResource, paths: set[str]) -> str | None:
    """Why a RateLimitPolicy counts none of some of `paths`' requests, if it does."""
    spec = policy.props.get("spec") or {}
    effective = _effective(spec)
    if spec.get("when") or effective.get("when"):
        return "its `when` conditions leave some requests uncounted"
    counting = [
        limit
        for limit in (effective.get("limits") or {}).values()
        if any(int(rate.get("limit", 0)) > 0 for rate in limit.get("rates") or [])
    ]
    if not counting:
        return "it has no limit with a rate, so it counts nothing"
    covered: set[str] = set()
    unjudged: str | None = None
    for limit in counting:
        admitted = _path_filter(limit)
        if isinstance(admitted, str):
            # It counts nothing we can vouch for; the others may still count every path (the
            # key service's mint limit beside its limit on every call).
            unjudged = unjudged or admitted
            continue
        covered |= set(USAGE_PATHS) if admitted is None else admitted
    skipped = sorted(paths - covered)
    if skipped and unjudged is not None:
        return (
            f"a limit's condition `{unjudged}` cannot be judged (conditions on the tier and "
            "`request.url_path in [...]` can)"
        )
    if skipped:
        return f"no limit counts requests to {', '.join(skipped)}"
    return _models_partitioned(counting)


# Copies of components/access/self_service.py MINT_PATH and rate_limit_spec's mint predicates,
# and of components/access/tiers.py USER_ID (a test ties them): where the key service mints,
# and the user Kuadrant counts by.
MINT_PATH = "/v1/api-keys"
MINT_PREDICATES = frozenset({"request.method == 'POST'", f"request.url_path == '{MINT_PATH}'"})
USER_ID = "auth.identity.userid"


def _mints(route: PolicyResource) -> bool:
    """The route sends POST /v1/api-keys to the key service (a match of no path takes it)."""
    for rule in (route.props.get("spec") or {}).get("rules") or []:
        if not any(b.get("name") == KEY_SERVICE for b in rule.get("backendRefs") or []):
            continue
        for match in rule.get("matches") or [{}]:
            path = match.get("path") or {"type": "PathPrefix", "value": "/"}
            value, kind = str(path.get("value", "/")), path.get("type", "PathPrefix")
            prefix = value.rstrip("/")
            if (kind == "Exact" and value == MINT_PATH) or kind not in ("Exact", "PathPrefix"):
                return True
            if kind == "PathPrefix" and (prefix == MINT_PATH or MINT_PATH.startswith(prefix + "/")):
                return True
    return False


def _counts_mints_per_user(policy: PolicyResource) -> bool:
    """A limit with a rate, counted per user, on every request or on the mints exactly."""
    spec = policy.props.get("spec") or {}
    effective = _effective(spec)
    if spec.get("when") or effective.get("when"):
        return False
    for limit in (effective.get("limits") or {}).values():
        counters = {str(c.get("expression", "")).strip() for c in limit.get("counters") or []}
        predicates = {str(c.get("predicate", "")).strip() for c in limit.get("when") or []}
        rated = any(int(rate.get("limit", 0)) > 0 for rate in limit.get("rates") or [])
        if rated and USER_ID in counters and predicates <= MINT_PREDICATES:
            return True
    return False


def _mints_limited(route: PolicyResource, limits: list[PolicyResource], gateway: str) -> str | None:
    """Why the key service's route lets a user mint without limit, if it does. Only a policy on
    the route itself counts: the policy route's sets hold its exact usage paths only (_anchors)."""
    meta = route.props.get("metadata") or {}
    on_route = [
        p
        for p in limits
        if (p.props.get("metadata") or {}).get("namespace") == meta.get("namespace")
        and ((p.props.get("spec") or {}).get("targetRef") or {}).get("kind") == "HTTPRoute"
        and ((p.props.get("spec") or {}).get("targetRef") or {}).get("name") == meta.get("name")
    ]
    on_gateway = [p for p in limits if _targets_gateway(p.props, gateway)]
    if any(_counts_mints_per_user(p) for p in (*on_route, *on_gateway)):
        return None
    return (
        "it mints API keys and no RateLimitPolicy on it counts mints per user "
        f"({USER_ID}), so one user may mint and revoke as fast as they like, each mint a Secret "
        "every Authorino replica watches and holds"
    )


def _models_partitioned(limits: list[Mapping[str, Any]]) -> str | None:
    """A tier's limit that leaves some models out (they have quotas of their own: components/
    access/tiers.py _limits) leaves their requests to a limit of that tier for each of them."""
    own: set[tuple[str, str]] = set()
    left_out: list[tuple[str, str]] = []
    for limit in limits:
        predicates = [str(c.get("predicate", "")).strip() for c in limit.get("when") or []]
        tier = next((m.group(1) for p in predicates if (m := _TIER_IS.fullmatch(p))), "")
        for predicate in predicates:
            if model := _MODEL_IS.fullmatch(predicate):
                own.add((tier, model.group(1)))
            elif out := _MODELS_OUT.fullmatch(predicate):
                left_out.extend((tier, name) for name in re.findall(r"'([^']*)'", out.group(1)))
    missing = [f"tier '{tier}' on model {model}" for tier, model in left_out if (tier, model) not in own]
    return f"no limit counts requests of {', '.join(missing)}" if missing else None


def _routes_protected(args: StackValidationArgs, report: ReportViolation) -> None:
    """Every route is covered by an AuthPolicy that authenticates every request and by a
    RateLimitPolicy that counts every usage path the route serves: one that lets everyone in,
    skips the model's paths or counts nothing is refused like a missing one. A route that
    mints API keys needs a limit of its own that counts mints per user."""
    auth, limits = objects.of_kind(args, "AuthPolicy"), objects.of_kind(args, "RateLimitPolicy")
    for route in objects.of_kind(args, "HTTPRoute"):
        subject = objects.name(route.props)
        if relaxation.exempt(args.get_config(), subject, report, "routes-protected"):
            continue
        paths = _route_paths(route)
        for parent in (route.props.get("spec") or {}).get("parentRefs") or []:
            gateway = parent.get("name")
            for kind, policies, missing in (
                ("AuthPolicy", auth, "authentication"),
                ("RateLimitPolicy", limits, "limits"),
            ):
                covering = [p for p in policies if covers(p, route, gateway, args)]
                if not covering:
                    report(
                        objects.refusal(
                            f"HTTPRoute {subject} on Gateway {gateway}",
                            f"no {kind} covers it, so the model is reachable without {missing}",
                            f"a {kind} targeting the Gateway, this route, or a route of every host that "
                            "matches its usage paths exactly (components/serving/model_list.py POLICY_ROUTE)",
                        ),
                        route.urn,
                    )
                for policy in covering:
                    why = _auth_weakness(policy) if kind == "AuthPolicy" else _limit_weakness(policy, paths)
                    if why:
                        report(
                            objects.refusal(
                                f"{kind} {objects.name(policy.props)} (covers HTTPRoute {subject})",
                                f"{why}: the model is as reachable without {missing} as with no {kind}",
                                "the policies components/access/tiers.py compiles",
                            ),
                            route.urn,
                        )
            if _mints(route) and (why := _mints_limited(route, limits, gateway)):
                report(
                    objects.refusal(
                        f"HTTPRoute {subject} on Gateway {gateway}",
                        why,
                        f"a RateLimitPolicy targeting the route, with a limit counted per {USER_ID} on "
                        f"every request or on POST {MINT_PATH} (components/access/self_service.py "
                        "rate_limit_spec; maas:keyService.mints)",
                    ),
                    route.urn,
                )


def _allowed_tiers(auth: PolicyResource) -> list[str]:
    """The tiers the unconditional authorization rule admits (a rule with `when` holds for
    some requests only, e.g. one model's host)."""
    rules = (auth.props.get("spec") or {}).get("rules") or {}
    for rule in (rules.get("authorization") or {}).values():
        if rule.get("when"):
            continue
        for pattern in (rule.get("patternMatching") or {}).get("patterns") or []:
            listed = _tiers_listed(pattern)
            if listed is not None:
                return listed
    return []


def _tiers_listed(pattern: Mapping[str, Any]) -> list[str] | None:
    """The tiers of a pattern `auth.identity.tier in [...]`; None for any other pattern."""
    found = _TIER_IN.search(str(pattern.get("predicate", "")))
    return re.findall(r"'([^']+)'", found.group(1)) if found else None


def _limits_by_tier(policy: PolicyResource) -> dict[str, dict[str, Any]]:
    """A tier's own limits: not a model's quota within it (whose `when` names the model), nor
    a budget's cap."""
    found: dict[str, dict[str, Any]] = {}
    for name, limit in ((policy.props.get("spec") or {}).get("limits") or {}).items():
        if _BUDGET_CAP.match(str(name)):
            continue
        predicates = [str(c.get("predicate", "")) for c in limit.get("when") or []]
        if any(f"request.headers['{MODEL_HEADER}'] ==" in p for p in predicates):
            continue
        for condition in limit.get("when") or []:
            matched = _TIER_IS.search(str(condition.get("predicate", "")))
            if matched:
                found[matched.group(1)] = limit
    return found


def _per_second(limit: Mapping[str, Any]) -> float:
    """The rate of the limit's shortest window (the one a burst meets first)."""

    def seconds(rate: Mapping[str, Any]) -> float:
        return sum(int(n) * _SECONDS[unit] for n, unit in _WINDOW_PART.findall(str(rate.get("window", ""))))

    rate = min(limit.get("rates") or [{}], key=seconds)
    window = seconds(rate)
    return float(rate.get("limit", 0)) / window if window else 0.0


def _tier_tables(
    args: StackValidationArgs,
) -> list[tuple[PolicyResource, list[str], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]]:
    """Per AuthPolicy: its allowed tiers and the request and token limits beside it."""
    tables = []
    for auth in objects.of_kind(args, "AuthPolicy"):
        namespace = (auth.props.get("metadata") or {}).get("namespace")
        target = ((auth.props.get("spec") or {}).get("targetRef") or {}).get("name")

        def beside(kind: str, ns: Any = namespace, name: Any = target) -> dict[str, dict[str, Any]]:
            merged: dict[str, dict[str, Any]] = {}
            for policy in objects.of_kind(args, kind):
                meta, spec = policy.props.get("metadata") or {}, policy.props.get("spec") or {}
                if meta.get("namespace") == ns and (spec.get("targetRef") or {}).get("name") == name:
                    merged |= _limits_by_tier(policy)
            return merged

        tables.append((auth, _allowed_tiers(auth), beside("RateLimitPolicy"), beside("TokenRateLimitPolicy")))
    return tables


def _tiers_limited(args: StackValidationArgs, report: ReportViolation) -> None:
    _limit_windows_held(args, report)
    for auth, tiers, requests, tokens in _tier_tables(args):
        for tier in tiers:
            for what, limits in (("request", requests), ("token", tokens)):
                if tier not in limits:
                    kind = "RateLimitPolicy" if what == "request" else "TokenRateLimitPolicy"
                    report(
                        objects.refusal(
                            f"AuthPolicy {objects.name(auth.props)}",
                            f"admits tier '{tier}', which has no {what} limit",
                            f"add the tier to the {kind}",
                        ),
                        auth.urn,
                    )


def _tiers_grow(args: StackValidationArgs, report: ReportViolation) -> None:
    for auth, tiers, requests, tokens in _tier_tables(args):
        for what, limits in (("requests", requests), ("tokens", tokens)):
            ranked = [t for t in tiers if t in limits]
            for lower, higher in itertools.pairwise(ranked):
                if _per_second(limits[higher]) < _per_second(limits[lower]):
                    report(
                        objects.refusal(
                            f"tier '{higher}'",
                            f"gets fewer {what} per second than '{lower}' below it",
                            "order maas:tiers from lowest to highest, or raise the higher tier's limit",
                        ),
                        auth.urn,
                    )


def _limit_windows_held(args: StackValidationArgs, report: ReportViolation) -> None:
    """Each rate of a limit is a Limitador limit of whole seconds: Kuadrant truncates its
    window (Kuadrant/kuadrant-operator@v1.5.2 api/v1/ratelimitpolicy_types.go Duration.Seconds),
    a 0-second counter expires as it is made (Kuadrant/limitador@v2.4.0
    limitador/src/storage/atomic_expiring_value.rs), and two rates of one window are one
    Limitador limit, one of them dropped (limitador/src/limit.rs: a limit's identity leaves
    its maximum out)."""
    for kind in ("RateLimitPolicy", "TokenRateLimitPolicy"):
        for policy in objects.of_kind(args, kind):
            for name, limit in ((policy.props.get("spec") or {}).get("limits") or {}).items():
                subject = f"{kind} {objects.name(policy.props)} (limit {name})"
                seen: dict[float, str] = {}
                for rate in limit.get("rates") or []:
                    window = str(rate.get("window", ""))
                    seconds = sum(int(n) * _SECONDS[unit] for n, unit in _WINDOW_PART.findall(window))
                    if seconds < 1 or seconds != int(seconds):
                        held = f"Limitador counts whole seconds and would hold {int(seconds)}s"
                        why = f"window {window} is {seconds:g}s; {held}"
                        fix = "a window of at least 1s in whole seconds (maas:tiers[].requests/tokens)"
                    elif seconds in seen:
                        why = f"windows {seen[seconds]} and {window} are one Limitador limit, which keeps one"
                        fix = "one rate per window"
                    else:
                        seen[seconds] = window
                        continue
                    report(objects.refusal(subject, why, fix), policy.urn)


def _limitador_storage(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if objects.kind(args.resource_type, args.props) != "Limitador":
        return
    spec = args.props.get("spec") or {}
    replicas = int(spec.get("replicas") or 1)
    storage = spec.get("storage") or {}
    if replicas > 1 and not (storage.get("redis") or storage.get("redis-cached")):
        report(
            objects.refusal(
                f"Limitador {objects.name(args.props)}",
                f"{replicas} replicas keep separate in-memory counters, so every limit is multiplied",
                "storage.redis (maas:limitador.storage: redis), or one replica",
            ),
            None,
        )


def _serves_on_gpus(args: StackValidationArgs) -> bool:
    return any(
        objects.gpu_resources(containers)
        for resource in args.resources
        for _, _, containers in objects.pod_specs(
            objects.kind(resource.resource_type, resource.props), resource.props
        )
    )


def _shared_counters(args: StackValidationArgs, report: ReportViolation) -> None:
    """A stack serving on GPUs is a production one: its budgets must survive a Limitador
    restart, so Limitador keeps them in Redis."""
    if not _serves_on_gpus(args):
        return
    for limitador in objects.of_kind(args, "Limitador"):
        subject = objects.name(limitador.props)
        storage = (limitador.props.get("spec") or {}).get("storage") or {}
        if storage.get("redis") or storage.get("redis-cached"):
            continue
        if not relaxation.exempt(args.get_config(), subject, report, "shared-counters"):
            report(
                objects.refusal(
                    f"Limitador {subject}",
                    "the stack serves models on GPUs, yet keeps every budget in one pod's memory: a "
                    "restart forgets them all",
                    "maas:limitador.storage: redis (a Redis the program deploys, or maas:limitadorRedisUrl)",
                ),
                limitador.urn,
            )


# Copies of components/serving/model_deployment.py TIERS_ANNOTATION, components/names.py MODEL_HEADER and
# components/access/tiers.py model_predicate (a test ties them).
TIERS_ANNOTATION = "maas-platform/tiers"
MODEL_HEADER = "x-maas-model"


def model_predicate(model: str) -> str:
    return f"'{MODEL_HEADER}' in request.headers && request.headers['{MODEL_HEADER}'] == '{model}'"


def _model_rule_tiers(auth: PolicyResource, model: str) -> list[list[str]]:
    """The tier lists of authorization rules that hold for requests for `model` (their `when`
    compares the model header with it)."""
    rules = ((auth.props.get("spec") or {}).get("rules") or {}).get("authorization") or {}
    found = []
    for rule in rules.values():
        conditions = [str(c.get("predicate", "")) for c in rule.get("when") or []]
        if model_predicate(model) not in conditions:
            continue
        for pattern in (rule.get("patternMatching") or {}).get("patterns") or []:
            listed = _tiers_listed(pattern)
            if listed is not None:
                found.append(listed)
    return found


def _models_matched(spec: Mapping[str, Any]) -> tuple[set[str], int]:
    """The model header values a route's matches require, and how many matches require none."""
    models, unmarked = set(), 0
    for rule in spec.get("rules") or []:
        for match in rule.get("matches") or [{}]:
            headers = match.get("headers") or []
            values = {
                h.get("value")
                for h in headers
                if str(h.get("name", "")).lower() == MODEL_HEADER and h.get("type", "Exact") == "Exact"
            }
            models |= {str(v) for v in values}
            unmarked += not values
    return models, unmarked


def _model_tiers_enforced(args: StackValidationArgs, report: ReportViolation) -> None:
    auth = objects.of_kind(args, "AuthPolicy")
    for route in objects.of_kind(args, "HTTPRoute"):
        subject = objects.name(route.props)
        if relaxation.exempt(args.get_config(), subject, report, "model-tiers-enforced"):
            continue
        spec, metadata = route.props.get("spec") or {}, route.props.get("metadata") or {}
        for parent in spec.get("parentRefs") or []:
            if parent.get("name") != objects.GATEWAY_NAME:
                report(
                    objects.refusal(
                        f"HTTPRoute {subject}",
                        f"it attaches to Gateway {parent.get('name')}, outside the shared gateway's policies",
                        f"attach it to Gateway {objects.GATEWAY_NAME}",
                    ),
                    route.urn,
                )
        restricted = (metadata.get("annotations") or {}).get(TIERS_ANNOTATION)
        if not restricted:
            continue
        wanted = sorted(restricted.split(","))
        models, unmarked = _models_matched(spec)
        if unmarked:
            report(
                objects.refusal(
                    f"HTTPRoute {subject}",
                    f"the model is restricted to tiers {', '.join(wanted)}, but {unmarked} of its matches "
                    f"do not require the {MODEL_HEADER} header its authorization rule keys on, so every "
                    "tier reaches the model through them",
                    f"an exact {MODEL_HEADER} header match (the model's served name) in every match "
                    "(components/serving/model_deployment.py)",
                ),
                route.urn,
            )
        covering = [a for a in auth if covers(a, route, objects.GATEWAY_NAME, args)]
        for model in sorted(models):
            if not any(sorted(tiers) == wanted for a in covering for tiers in _model_rule_tiers(a, model)):
                report(
                    objects.refusal(
                        f"HTTPRoute {subject} (model {model})",
                        f"the model is restricted to tiers {', '.join(wanted)}, but no AuthPolicy rule "
                        "enforces that for it, so every tier can use it",
                        f"an authorization rule of the gateway's AuthPolicy, when {MODEL_HEADER} is {model}, "
                        f"allowing only {', '.join(wanted)} (components/access/tiers.py model_rules)",
                    ),
                    route.urn,
                )


MODEL_TIERS_ENFORCED = StackValidationPolicy(
    name="model-tiers-enforced",
    description="Every model route is on the shared gateway, and a model restricted to some tiers "
    "is reached only with its model header, on which an authorization rule admits only those tiers.",
    validate=_model_tiers_enforced,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)

ROUTES_PROTECTED = StackValidationPolicy(
    name="routes-protected",
    description="An AuthPolicy that authenticates every request and a RateLimitPolicy that counts "
    "every usage path cover every HTTPRoute, on its Gateway, on the route or on a route of every host; "
    "a route that mints API keys has a limit on mints per user.",
    validate=_routes_protected,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)

TIERS_LIMITED = StackValidationPolicy(
    name="tiers-limited",
    description="Every tier an AuthPolicy admits has a request limit and a token limit, and every "
    "window of a limit is one Limitador can hold.",
    validate=_tiers_limited,
    enforcement_level=EnforcementLevel.MANDATORY,
)

TIER_LIMITS_GROW = StackValidationPolicy(
    name="tier-limits-grow",
    description="Limits grow from the lowest tier to the highest (in the order the AuthPolicy lists them).",
    validate=_tiers_grow,
    enforcement_level=EnforcementLevel.ADVISORY,
)

SHARED_COUNTERS = StackValidationPolicy(
    name="shared-counters",
    description="A stack that serves models on GPUs keeps Limitador's counters in Redis.",
    validate=_shared_counters,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)

LIMITADOR_SHARED_STORAGE = ResourceValidationPolicy(
    name="limitador-shared-storage",
    description="Limitador runs more than one replica only with shared (Redis) counter storage.",
    validate=_limitador_storage,
    enforcement_level=EnforcementLevel.MANDATORY,
)
