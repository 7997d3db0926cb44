"""The tier table, compiled: where a tier's limits become Kuadrant policy.

Every place a tier appears in policy (limits, the authorization rule, the tier derived
from a Keycloak token's groups, the labels metrics carry) is generated here from
`maas:tiers`. The other places a tier appears read the same table and keep no list of
their own: Keycloak's group per tier beside its users (realm.py), the gateway's caps and
the model lists per tier (serving), the usage rules (metering). So a tier cannot exist in
one place and not another.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from components.config import ModelConfig, PricesConfig, Rate, StackConfig, TierConfig
from components.config.model import KEY_ADMIN_GROUP, Budget
from components.names import ADMIN_HEADER, MODEL_HEADER, TIER_HEADER, USER_HEADER, VIA_HEADER
from components.pins.upstream import FAIRNESS_HEADER, OBJECTIVE_HEADER, OPENAI_USAGE_PATHS

# Labels and annotations of the API-key Secrets. Authorino follows changes only to Secrets
# with its `managed-by` label; the AuthPolicy selects ours by `API_KEY_LABEL`, and each
# tier's rule by `TIER_LABEL`. The tier is a label, not an annotation: Authorino keeps its
# old copy of a Secret whose key is unchanged, so an annotation edit never reaches it, while
# a label edit moves the key from one rule's selector to another's (Kuadrant/authorino@v0.26.2
# pkg/evaluators/identity/api_key.go AddK8sSecretBasedIdentity "api key unchanged";
# controllers/secret_controller.go revokes from the rules it no longer matches). So the key
# service (components/access/key_service/server.py) changes a key's tier with one label patch.
AUTHORINO_WATCH = {"authorino.kuadrant.io/managed-by": "authorino"}
API_KEY_LABEL = "maas-platform/api-key"
TIER_LABEL = "maas-platform/tier"
USER_ANNOTATION = "secret.kuadrant.io/user-id"
# Authorino reads the key from this data key of the Secret.
API_KEY_DATA = "api_key"

# What the limiters and the metrics see of a caller: auth.identity.userid / .tier.
USER_ID = "auth.identity.userid"
TIER = "auth.identity.tier"
# The body of a 403: OpenAI's error shape ({"error": {"message", "type", "code"}}); the
# OpenAI SDK raises PermissionDeniedError on a 403 (openai/openai-python@3.57.0 src/openai/_client.py
# _make_status_error). Authorino sends a static `value` body verbatim (Kuadrant/authorino@v0.26.2
# pkg/service/auth_pipeline.go customizeDenyWith, pkg/json/json.go StringifyJSON).
FORBIDDEN_BODY = (
    '{"error": {"message": "This model is not available to your tier.", '
    '"type": "permission_error", "code": "model_not_in_tier"}}'
)
# The body of a 401 (no credential, or one Authorino does not accept), in the same shape;
# the SDK raises AuthenticationError on a 401 (same function). AuthPolicy's
# response.unauthenticated takes it
# (Kuadrant/kuadrant-operator@v1.5.2 api/v1/authpolicy_types.go, internal/controller/
# authconfigs_reconciler.go: Authorino's DenyWithSpec).
UNAUTHENTICATED_BODY = (
    '{"error": {"message": "Missing or invalid API key or token.", '
    '"type": "invalid_request_error", "code": "invalid_api_key"}}'
)


Kind = Literal["requests", "tokens"]


def request_limit_name(tier: str) -> str:
    """RateLimitPolicy limit of a tier; Limitador reports it as `limit_name`."""
    return f"{tier}-requests"


def token_limit_name(tier: str) -> str:
    """TokenRateLimitPolicy limit of a tier; distinct from the request limit's name so
    metrics can tell a token 429 from a request 429."""
    return f"{tier}-tokens"


def tier_predicate(tier: str) -> str:
    return f"{TIER} == '{tier}'"


def _route_target(route: str) -> dict[str, str]:
    """The policies target the route of every host's metered paths (components/serving/
    catalog.py POLICY_ROUTE), not the Gateway: Kuadrant repeats them in a wasm action set
    per route match, host and listener of whatever they cover, and that must not grow with
    the catalog (policies/maas_policies/kuadrant_size.py)."""
    return {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route}


def _cel_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


# Only requests that produce tokens are limited and billed: listing models spends nothing.
# `request.url_path` (the path without its query) is a well-known attribute of Kuadrant's
# predicates (Kuadrant/wasm-shim@v0.14.1 src/data/cel.rs, new_well_known_attribute_map).
BILLED = f"request.url_path in {_cel_list(OPENAI_USAGE_PATHS)}"


# The model a request is for, '' without one (a request no model route takes). Kuadrant
# scopes counters by the route the policy is on (kuadrant-operator v1.5.2
# LimitsNamespaceFromRoute), the same for every model, so the model is a counter: one budget
# per user and model, whichever host the request came by.
MODEL = f"'{MODEL_HEADER}' in request.headers ? request.headers['{MODEL_HEADER}'] : ''"


def model_limit_name(tier: str, model: str, kind: Kind) -> str:
    """The limit of a model's own quota in a tier: a dot between two DNS labels, so no other
    tier and model make the same name, and the kind's suffix as the tier's limits have."""
    name = request_limit_name if kind == "requests" else token_limit_name
    return name(f"{tier}.{model}")


def _own_quota(models: Sequence[ModelConfig], tier: str, kind: Kind) -> list[ModelConfig]:
    return [m for m in models if m.own_rates(tier, kind) is not None]


def limit_names(tiers: Sequence[TierConfig], models: Sequence[ModelConfig], kind: Kind) -> list[str]:
    """Every limit of `kind`, as Limitador reports it in `limit_name`: each tier's and each
    model's own quota in a tier."""
    name = request_limit_name if kind == "requests" else token_limit_name
    return [
        limit
        for t in tiers
        for limit in (
            name(t.name),
            *(model_limit_name(t.name, m.name, kind) for m in _own_quota(models, t.name, kind)),
        )
    ]


def _rates(rates: Sequence[Rate]) -> list[dict[str, Any]]:
    """One rate per window, each a Limitador counter of its own (components/config/model.py Rates)."""
    return [{"limit": rate.limit, "window": rate.window} for rate in rates]


# Every limit counts per user and model. Counters of a tier's limit and of a model's quota
# are the same two expressions, so when Kuadrant merges the limits' actions into one call
# to Limitador their data keys agree (Kuadrant/kuadrant-operator@v1.5.2
# internal/controller/data_plane_policies_workflow.go mergeAndVerify refuses one key with two
# values).
COUNTERS = [{"expression": USER_ID}, {"expression": MODEL}]
# A budget cap spans the user's models: the user alone, the same expression (so the same data
# key and value) as COUNTERS' first, so it merges into the call of the tier's request limit.
BUDGET_COUNTERS = [{"expression": USER_ID}]


@dataclass(frozen=True)
class BudgetCap:
    """A money budget held exactly by one Limitador limit: where every model a tier reaches
    costs the same per request and nothing per token, spend is that price times the requests,
    so `floor(amount / price)` requests is the budget."""

    name: str
    # The tier whose prices make it exact; `user` None: each of its users without a budget
    # of their own, else that user alone.
    tier: str
    user: str | None
    # (limit, window) per budget window, each a counter of its own.
    rates: tuple[tuple[int, str], ...]
    # What every model the tier reaches charges per request.
    price: float
    # A tier's cap: the users it leaves to budgets of their own.
    others: tuple[str, ...] = ()


def budget_limit_name(tier: str, user: str | None) -> str:
    """No `-requests` suffix, so nothing that reads a tier's limits by name takes a cap for
    one, and metering tells a cap's refusal from the tier's (components/metering/chargeback.py
    usage_rules). The leading `+` puts it apart from every tier's and model's limit (DNS
    labels start with a letter or digit)."""
    return f"+budget:requests:tier:{tier}" if user is None else f"+budget:requests:user:{user}"


def budget_limit_pattern() -> str:
    """A regex of every budget cap as Limitador reports it in `limit_name`; no backslash, so
    it reads the same in a PromQL string."""
    return "[+]budget:requests:.+"


# Only a price per request alone makes a cap. A cap counts into the call of the tier's request
# limit, checked before the request (Kuadrant/wasm-shim@v0.14.1 src/configuration/
# legacy_translation.rs:107-121 merges the actions). A token cap would be a second token
# limit, and the wasm-shim runs a request's actions as a chain, each after the one before
# (src/kuadrant/pipeline/blueprint.rs:187-193, src/kuadrant/pipeline/executor.rs:106-114)
# while a token limit's report waits for the response body (src/data/cel.rs:272-280,
# src/kuadrant/pipeline/tasks/dynamic.rs:136-142): the tier's own token check would come
# after the model answered. A budget priced per token is alerts only (docs/metering.md).
def _budget_unit(prices: PricesConfig, tier: str, models: Sequence[ModelConfig]) -> float | None:
    """What one request costs on every model `tier` reaches, where that is all it pays; None
    where no count of requests is the spend."""
    found = {
        (p.per_request, p.per_thousand_tokens)
        for p in (prices.price(tier, m.name) for m in models if m.admits(tier))
    }
    if len(found) != 1:
        return None
    ((per_request, per_thousand),) = found
    return per_request if per_thousand == 0 and per_request > 0 else None


def budget_caps(
    tiers: Sequence[TierConfig], models: Sequence[ModelConfig], prices: PricesConfig, users: Mapping[str, str]
) -> list[BudgetCap]:
    """The budgets (maas:prices.budgets) a request limit holds exactly, at the prices of the
    tier the stack file puts them in (`users`: user -> tier); the others are alerts only
    (components/metering/chargeback.py budget_statements)."""
    caps = []
    budgets = prices.budgets
    others = tuple(budgets.users)
    owners: list[tuple[str, str | None, tuple[Budget, ...]]] = [
        (t.name, None, budgets.tiers.get(t.name, ())) for t in tiers
    ]
    owners += [(users[user], user, listed) for user, listed in budgets.users.items()]
    for tier, user, listed in owners:
        price = _budget_unit(prices, tier, models) if listed else None
        if price is None:
            continue
        # In decimal: 0.3 / 0.1 is 2.9999999999999996 in binary floating point.
        each = decimal.Decimal(repr(price))
        rates = tuple((int(decimal.Decimal(repr(b.amount)) // each), b.window) for b in listed)
        left = others if user is None else ()
        caps.append(BudgetCap(budget_limit_name(tier, user), tier, user, rates, price, left))
    return caps


def stack_budget_caps(config: StackConfig) -> list[BudgetCap]:
    """The caps of a stack's budgets, the one list the tier policies and the preview read."""
    return budget_caps(config.tiers, config.models, config.prices, config.user_tiers)


def _budget_limits(caps: Sequence[BudgetCap]) -> dict[str, Any]:
    """The caps, each counted per user alone, across models: a tier's for its users without a
    budget of their own, a user's own wherever the user calls from. Each merges into the call
    of the tier's request limit, as consecutive actions of one service do
    (Kuadrant/kuadrant-operator@v1.5.2 internal/controller/data_plane_policies_workflow.go
    mergeAndVerify)."""
    limits = {}
    for cap in caps:
        if cap.user is None:
            when = [{"predicate": tier_predicate(cap.tier)}, {"predicate": BILLED}]
            if cap.others:
                when.append({"predicate": f"!({USER_ID} in {_cel_list(cap.others)})"})
        else:
            when = [{"predicate": f"{USER_ID} == '{cap.user}'"}, {"predicate": BILLED}]
        limits[cap.name] = {
            "rates": [{"limit": limit, "window": window} for limit, window in cap.rates],
            "when": when,
            "counters": BUDGET_COUNTERS,
        }
    return limits


def _limits(
    tiers: Sequence[TierConfig], models: Sequence[ModelConfig], route: str, kind: Kind
) -> dict[str, Any]:
    """Per tier, its `kind` limit on billed requests for every model without a quota of its
    own in the tier, and one limit per model that has one. Their conditions exclude each
    other, so each request meets one limit of each kind, and Limitador's calls per request,
    which metering counts on, are the same as with tier limits alone
    (components/metering/chargeback.py). Limits grow with tiers plus the quotas declared."""
    name = request_limit_name if kind == "requests" else token_limit_name
    limits: dict[str, Any] = {}
    for t in tiers:
        own = _own_quota(models, t.name, kind)
        when = [{"predicate": tier_predicate(t.name)}, {"predicate": BILLED}]
        if own:
            others = f"!(({MODEL}) in {_cel_list([m.served_name for m in own])})"
            when = [*when, {"predicate": others}]
        limits[name(t.name)] = {"rates": _rates(getattr(t, kind)), "when": when, "counters": COUNTERS}
        for m in own:
            limits[model_limit_name(t.name, m.name, kind)] = {
                "rates": _rates(m.own_rates(t.name, kind) or ()),
                "when": [
                    {"predicate": tier_predicate(t.name)},
                    {"predicate": BILLED},
                    {"predicate": model_predicate(m.served_name)},
                ],
                "counters": COUNTERS,
            }
    return {"targetRef": _route_target(route), "limits": limits}


def rate_limit_spec(
    tiers: Sequence[TierConfig],
    route: str,
    models: Sequence[ModelConfig] = (),
    caps: Sequence[BudgetCap] = (),
) -> dict[str, Any]:
    """The RateLimitPolicy: the request limits, and the budget caps (at most one a request,
    in the same call to Limitador as the request limit it meets)."""
    spec = _limits(tiers, models, route, "requests")
    spec["limits"].update(_budget_limits(caps))
    return spec


def token_limit_spec(
    tiers: Sequence[TierConfig], route: str, models: Sequence[ModelConfig] = ()
) -> dict[str, Any]:
    """The TokenRateLimitPolicy: the token limits; Kuadrant counts usage.total_tokens of each
    response."""
    return _limits(tiers, models, route, "tokens")


def tier_from_groups(tiers: Sequence[TierConfig], groups: str = "auth.identity.groups") -> str:
    """CEL: the highest tier among a token's groups, '' when none (which authorization refuses)."""
    expression = "''"
    for tier in tiers:  # lowest first, so the highest ends up outermost and wins
        expression = f"{groups}.exists(g, g == '{tier.name}') ? '{tier.name}' : ({expression})"
    return f"has({groups}) ? ({expression}) : ''"


def model_predicate(served_name: str) -> str:
    """CEL: the request is for the model `served_name`. The gateway's Lua filter sets the
    header on every model request, from the model's own host or the body's `model` on the
    shared host, after removing any a client sent (components/serving/lua/request_body.lua);
    the `in` test keeps a request without it (the model list) from being a CEL error."""
    return f"'{MODEL_HEADER}' in request.headers && request.headers['{MODEL_HEADER}'] == '{served_name}'"


def model_rules(models: Sequence[ModelConfig]) -> dict[str, dict[str, Any]]:
    """One authorization rule per model that restricts its tiers: for that model, on any
    host, only those tiers. Rules grow with models, never with models times tiers."""
    return {
        f"model-{m.name}": {
            "when": [{"predicate": model_predicate(m.served_name)}],
            "patternMatching": {"patterns": [{"predicate": f"{TIER} in {_cel_list(m.tiers)}"}]},
        }
        for m in models
        if m.tiers is not None
    }


def priorities(tiers: Sequence[TierConfig]) -> dict[str, int]:
    """A tier's priority in a pooled model's flow control: its place in the table, lowest 0.
    The endpoint picker dispatches the highest non-empty priority band first and holds the
    rest while the pool is saturated (llm-d/llm-d-router@v0.10.0 pkg/epp/flowcontrol/controller/
    internal/processor.go), so lower tiers wait first and, past the queue timeout, get 429."""
    return {t.name: index for index, t in enumerate(tiers)}


def objective_name(model: str, tier: str) -> str:
    """The InferenceObjective that gives `tier` its priority on `model`'s pool: a dot between
    two DNS labels, so no other model and tier make the same name (a dash would: model a,
    tier b-free; model a-b, tier free)."""
    return f"{model}.{tier}"


def objectives(model: str, tiers: Sequence[TierConfig]) -> dict[str, dict[str, Any]]:
    """One InferenceObjective spec per tier, in tier order, on the model's InferencePool
    (named like the model). The picker takes a request's objective by name from
    OBJECTIVE_HEADER and only objectives whose poolRef is its own pool (llm-d/llm-d-router@v0.10.0
    pkg/epp/controller/inferenceobjective_reconciler.go)."""
    pool = {"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": model}
    return {
        objective_name(model, tier): {"poolRef": pool, "priority": priority}
        for tier, priority in priorities(tiers).items()
    }


def pooled_predicate(pooled: Sequence[ModelConfig]) -> str:
    """CEL: the request is one a picker schedules, an inference request (not a model list)
    for a pooled model."""
    return (
        f"'{MODEL_HEADER}' in request.headers && "
        f"request.headers['{MODEL_HEADER}'] in {_cel_list([m.served_name for m in pooled])} && {BILLED}"
    )


def objective_expression(pooled: Sequence[ModelConfig]) -> str:
    """CEL: the name of the caller's tier's objective on the pool of the model asked for
    (objective_name), from the validated tier, never from anything the client sent."""
    pools = ", ".join(f"'{m.served_name}': '{m.name}'" for m in pooled)
    return f"{{{pools}}}[request.headers['{MODEL_HEADER}']] + '.' + {TIER}"


def scheduling_headers(pooled: Sequence[ModelConfig]) -> dict[str, Any]:
    """What Authorino tells a pooled model's endpoint picker after authentication: the tier's
    objective (its priority) and the user as the flow shared fairly within it. The wasm-shim
    sets each over any value a client sent (Kuadrant/wasm-shim@v0.14.1 src/kuadrant/pipeline/tasks/headers.rs,
    HeaderOperation::Set), and the gateway has removed those already (lua/request_body.lua)."""
    if not pooled:
        return {}
    when = [{"predicate": pooled_predicate(pooled)}]
    return {
        OBJECTIVE_HEADER: {"plain": {"expression": objective_expression(pooled)}, "when": when},
        FAIRNESS_HEADER: {"plain": {"expression": USER_ID}, "when": when},
    }


def api_key_rule_name(tier: str) -> str:
    return f"api-keys-{tier}"


def api_key_rules(tiers: Sequence[TierConfig], when: Sequence[dict[str, str]] = ()) -> dict[str, Any]:
    """One apiKey rule per tier, selecting our key Secrets labelled with that tier: the tier is
    the rule's, never read from the Secret, so a key whose label names no tier is no key."""
    return {
        api_key_rule_name(t.name): {
            # allNamespaces stays false: Authorino reads key Secrets from its own namespace only.
            "apiKey": {"selector": {"matchLabels": {API_KEY_LABEL: "true", TIER_LABEL: t.name}}},
            "credentials": {"authorizationHeader": {"prefix": "APIKEY"}},
            "overrides": {
                "userid": {"expression": f"auth.identity.metadata.annotations['{USER_ANNOTATION}']"},
                "tier": {"value": t.name},
            },
            **({"when": list(when)} if when else {}),
        }
        for t in tiers
    }


def auth_spec(
    tiers: Sequence[TierConfig],
    route: str,
    api_keys: bool,
    oidc_keys: str | None,
    models: Sequence[ModelConfig] = (),
) -> dict[str, Any]:
    """Who may call: API keys (our Secrets only) and/or Keycloak tokens; only configured tiers.

    Each way in normalises the caller to `userid` and `tier`, which the response filter
    hands to the limiters (as auth.identity.*) and the TelemetryPolicy turns into labels.
    """
    authentication: dict[str, Any] = api_key_rules(tiers) if api_keys else {}
    if oidc_keys is not None:
        authentication["keycloak"] = {
            "jwt": token_keys(oidc_keys),
            "credentials": {"authorizationHeader": {"prefix": "Bearer"}},
            "overrides": {
                "userid": {"expression": "auth.identity.preferred_username"},
                "tier": {"expression": tier_from_groups(tiers)},
            },
        }
    names = [t.name for t in tiers]
    return {
        "targetRef": _route_target(route),
        "rules": {
            "authentication": authentication,
            "authorization": {
                "allowed-tiers": {
                    "patternMatching": {"patterns": [{"predicate": f"{TIER} in {_cel_list(names)}"}]}
                },
                **model_rules(models),
            },
            "response": {
                "unauthenticated": unauthenticated(),
                "unauthorized": {
                    "code": 403,
                    "headers": {"content-type": {"value": "application/json"}},
                    "body": {"value": FORBIDDEN_BODY},
                },
                "success": {
                    # The tier, for the model list (components/serving/model_list.py); the
                    # wasm-shim sets it over any value a client sent (Kuadrant/wasm-shim@v0.14.1 src/kuadrant/
                    # pipeline/tasks/headers.rs, HeaderOperation::Set).
                    "headers": {
                        TIER_HEADER: {"plain": {"expression": TIER}},
                        **scheduling_headers([m for m in models if m.scheduling == "pool"]),
                    },
                    "filters": identity_for_limiters(),
                },
            },
        },
    }


def model_name(models: Sequence[ModelConfig]) -> str:
    """CEL: the catalog name of the model a request is for ('' for none), for the metrics."""
    names = "{" + ", ".join(f"'{m.served_name}': '{m.name}'" for m in models) + "}"
    return f"({MODEL}) in {names} ? {names}[{MODEL}] : ''"


def telemetry_labels(models: Sequence[ModelConfig]) -> dict[str, str]:
    """Labels Limitador adds to its counters (TelemetryPolicy): who called, in which tier,
    and the model (every model's counters share the policy route's namespace)."""
    return {"user": USER_ID, "tier": TIER, "model": model_name(models)}


# The key service's caller, as Authorino hands it over (docs/access.md "Self-service keys").
VIA = "auth.identity.via"
ADMIN = "auth.identity.admin"
# The realm group whose members administer every key (components/access/realm.py); no tier
# may take its name (the config refuses it).
ADMIN_GROUP = KEY_ADMIN_GROUP


def unauthenticated() -> dict[str, Any]:
    """Authorino's answer to a caller it could not identify: 401 in OpenAI's error shape."""
    return {
        "code": 401,
        "headers": {"content-type": {"value": "application/json"}},
        "body": {"value": UNAUTHENTICATED_BODY},
    }


def identity_for_limiters() -> dict[str, Any]:
    """The success filter that hands the caller's `userid` and `tier` on as Authorino's
    dynamic metadata, which the limiters and the TelemetryPolicy read as auth.identity.*."""
    return {
        "identity": {
            "json": {"properties": {"userid": {"expression": USER_ID}, "tier": {"expression": TIER}}}
        }
    }


def token_keys(url: str) -> dict[str, str]:
    """Where Authorino checks a token's signature: the realm's keys read in-cluster, not
    discovered from the issuer browsers see, which Authorino need not reach. It checks neither
    `iss` nor audience either way (Kuadrant/authorino@v0.26.2 pkg/evaluators/identity/jwt.go
    tokenVerifierConfig, NewJwksVerifier; controllers/auth_config_controller.go jwksUrl)."""
    return {"jwksUrl": url}


def key_service_auth_spec(
    tiers: Sequence[TierConfig], route: str, oidc_keys: str, key_paths: Sequence[str]
) -> dict[str, Any]:
    """The key service's AuthPolicy: a Keycloak token everywhere, an API key on `key_paths`
    only (a key may read its usage, never mint another), and four request headers set from
    the verified identity, which the service trusts and nothing else. The wasm-shim sets
    Authorino's success headers over any a client sent (Kuadrant/wasm-shim@v0.14.1
    src/kuadrant/pipeline/tasks/headers.rs, HeaderOperation::Set; Authorino returns them in
    its OkHttpResponse, Kuadrant/authorino@v0.26.2 pkg/service/auth.go buildResponseHeaders),
    and the gateway's Lua filter removes client copies first (components/serving/gateway.py
    GATEWAY_HEADERS)."""
    groups = "auth.identity.groups"
    is_admin = f"has({groups}) && {groups}.exists(g, g == '{ADMIN_GROUP}') ? 'true' : 'false'"
    on_key_paths = {"predicate": f"request.url_path in {_cel_list(key_paths)}"}
    keys = api_key_rules(tiers, [on_key_paths])
    for rule in keys.values():
        rule["overrides"] |= {"via": {"value": "key"}, "admin": {"value": "false"}}
    return {
        "targetRef": _route_target(route),
        "rules": {
            "authentication": {
                **keys,
                "keycloak": {
                    "jwt": token_keys(oidc_keys),
                    "credentials": {"authorizationHeader": {"prefix": "Bearer"}},
                    "overrides": {
                        "userid": {"expression": "auth.identity.preferred_username"},
                        "tier": {"expression": tier_from_groups(tiers)},
                        "via": {"value": "token"},
                        "admin": {"expression": is_admin},
                    },
                },
            },
            "response": {
                "unauthenticated": unauthenticated(),
                "success": {
                    "headers": {
                        USER_HEADER: {"plain": {"expression": USER_ID}},
                        TIER_HEADER: {"plain": {"expression": TIER}},
                        VIA_HEADER: {"plain": {"expression": VIA}},
                        ADMIN_HEADER: {"plain": {"expression": ADMIN}},
                    },
                    # Its RateLimitPolicy counts per auth.identity.userid (self_service.py
                    # rate_limit_spec), and the TelemetryPolicy on the Gateway labels every
                    # Limitador call with userid and tier: the same identity the tier policy hands over.
                    "filters": identity_for_limiters(),
                },
            },
        },
    }
