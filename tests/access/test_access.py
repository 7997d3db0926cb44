"""Tiered access: keys, Keycloak realm and limit policies follow the tier table exactly."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.access import policies as access_policies
from components.access import realm
from components.access import tiers as tier_policies
from components.config import DEFAULT_TIERS
from components.pins import upstream, versions
from components.platform import counter_store
from harness.program import Declared, Evaluation, evaluate, stack_config, typed_config
from maas_policies import KNOWN_DEFAULT_CREDENTIALS, kuadrant_size
from tests.support import cel
from tests.support.configs import REMOVE, assert_refused, evaluate_variant
from tests.support.labels import selects

POLICY_KINDS = ("AuthPolicy", "RateLimitPolicy", "TokenRateLimitPolicy")
FIVE_TIERS = [
    {"name": n, "requests": {"limit": r, "window": "1m"}, "tokens": {"limit": t, "window": "1h"}}
    for n, r, t in [
        ("trial", 2, 500),
        ("bronze", 10, 5000),
        ("silver", 30, 20000),
        ("gold", 90, 80000),
        ("platinum", 300, 300000),
    ]
]


def _raw_tiers(stack: str) -> list[dict[str, Any]]:
    """The tier table as written in the stack file, or the documented default."""
    written = stack_config(stack).get("maas:tiers")
    if written is not None:
        return list(written)
    return [t.model_dump(by_alias=True, exclude={"description"}) for t in DEFAULT_TIERS]


def _policy(result: Evaluation, kind: str) -> Declared:
    """The tier policy of `kind` (the key service has an AuthPolicy of its own)."""
    found = [o for o in result.objects(kind) if o.object_name == access_policies.policy_name(kind)]
    assert len(found) == 1, f"{result.stack}: {len(found)} {kind}s"
    return found[0]


# Limits and billing apply to the paths that produce tokens only (docs/access.md "Tiers, keys and limits").
BILLED = "request.url_path in ['/v1/chat/completions', '/v1/completions', '/v1/embeddings']"


def _expected_limits(tiers: list[dict[str, Any]], what: str) -> dict[str, Any]:
    return {
        f"{t['name']}-{what}": {
            "rates": [
                {"limit": r["limit"], "window": r["window"]}
                for r in (t[what] if isinstance(t[what], list | tuple) else [t[what]])
            ],
            "when": [{"predicate": f"auth.identity.tier == '{t['name']}'"}, {"predicate": BILLED}],
            "counters": [{"expression": "auth.identity.userid"}, {"expression": MODEL_COUNTER}],
        }
        for t in tiers
    }


# Per user and model: every model's counters are in the policy route's namespace.
MODEL_COUNTER = "'x-maas-model' in request.headers ? request.headers['x-maas-model'] : ''"


def _assert_policies_follow(result: Evaluation, tiers: list[dict[str, Any]]) -> None:
    gateway_target = {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "metered-paths"}
    requests = _policy(result, "RateLimitPolicy").inputs["spec"]
    tokens = _policy(result, "TokenRateLimitPolicy").inputs["spec"]
    auth = _policy(result, "AuthPolicy").inputs["spec"]
    for spec, what in ((requests, "requests"), (tokens, "tokens")):
        assert spec["targetRef"] == gateway_target
        # The tiers' own limits; a model's quota adds a limit, and a condition leaving the
        # model out of its tier's (tests/access/test_model_quotas.py).
        expected = _expected_limits(tiers, what)
        found = {
            name: {**spec["limits"][name], "when": spec["limits"][name]["when"][:2]} for name in expected
        }
        assert found == expected
    assert auth["targetRef"] == gateway_target
    allowed = auth["rules"]["authorization"]["allowed-tiers"]["patternMatching"]["patterns"]
    names = ", ".join(f"'{t['name']}'" for t in tiers)
    assert allowed == [{"predicate": f"auth.identity.tier in [{names}]"}]


def test_policies_match_the_tier_table_of_every_stack(stack: Evaluation) -> None:
    _assert_policies_follow(stack, _raw_tiers(stack.stack))


def _open_models(stack: str) -> list[dict[str, Any]]:
    """The stack's catalog without tier restrictions (which name the stack's own tiers)."""
    return [{k: v for k, v in m.items() if k != "tiers"} for m in stack_config(stack)["maas:models"]]


def test_policies_match_a_five_tier_table() -> None:
    users = [{"name": "alice", "tier": "gold"}, {"name": "bob", "tier": "trial"}]
    result = evaluate_variant(
        "gpu",
        {
            "maas:tiers": FIVE_TIERS,
            "maas:users": users,
            "maas:prices": REMOVE,
            "maas:models": _open_models("gpu"),
        },
    )
    assert result.error is None
    _assert_policies_follow(result, FIVE_TIERS)
    realm = result.one("KeycloakRealmImport", "realm-maas").inputs["spec"]["realm"]
    # and, for the key service, the administrators' group
    assert [g["name"] for g in realm["groups"]] == [t["name"] for t in FIVE_TIERS] + [
        "maas-stack-users",
        "maas-admins",
    ]


def test_the_identity_reaches_the_limiters_as_userid_and_tier(stack: Evaluation) -> None:
    rules = _policy(stack, "AuthPolicy").inputs["spec"]["rules"]
    exposed = rules["response"]["success"]["filters"]["identity"]["json"]["properties"]
    assert exposed == {
        "userid": {"expression": "auth.identity.userid"},
        "tier": {"expression": "auth.identity.tier"},
    }
    for method in rules["authentication"].values():
        assert set(method["overrides"]) == {"userid", "tier"}


def test_api_keys_are_selected_by_our_label_and_their_tier_in_authorinos_namespace_only(
    stack: Evaluation,
) -> None:
    """One apiKey rule per tier, each selecting our keys labelled with it and giving that tier:
    a label edit moves a key between rules (the tier follows the Keycloak group)."""
    methods = _policy(stack, "AuthPolicy").inputs["spec"]["rules"]["authentication"]
    key_rules = {name: m for name, m in methods.items() if "apiKey" in m}
    tier_names = [t.name for t in typed_config(stack.stack).tiers]
    assert sorted(key_rules) == sorted(f"api-keys-{t}" for t in tier_names)
    for tier in tier_names:
        rule = key_rules[f"api-keys-{tier}"]
        assert rule["apiKey"] == {
            "selector": {"matchLabels": {"maas-platform/api-key": "true", "maas-platform/tier": tier}}
        }
        assert rule["credentials"] == {"authorizationHeader": {"prefix": "APIKEY"}}
        assert rule["overrides"]["tier"] == {"value": tier}
        assert "when" not in rule
    kuadrant = stack.one("Kuadrant", "kuadrant")
    users = {u["name"]: u["tier"] for u in stack_config(stack.stack)["maas:users"]}
    secrets = [
        s
        for s in stack.objects("Secret")
        if "maas-platform/api-key" in s.inputs["metadata"].get("labels", {})
    ]
    assert sorted(s.object_name for s in secrets) == sorted(f"apikey-{u}" for u in users)
    for secret in secrets:
        metadata = secret.inputs["metadata"]
        user = secret.object_name.removeprefix("apikey-")
        assert metadata["namespace"] == kuadrant.namespace
        assert metadata["labels"]["authorino.kuadrant.io/managed-by"] == "authorino"
        assert metadata["labels"]["maas-platform/tier"] == users[user]
        assert metadata["annotations"] == {"secret.kuadrant.io/user-id": user}
        assert secret.is_secret("stringData.api_key")
        assert len(secret.inputs["stringData"]["api_key"]) >= 32


def test_oidc_tokens_are_checked_against_the_keycloak_realm(stack_of: Any) -> None:
    gpu = stack_of("gpu")
    keycloak = _policy(gpu, "AuthPolicy").inputs["spec"]["rules"]["authentication"]["keycloak"]
    # The realm's keys, read in-cluster: browsers see another issuer (the shared host).
    assert keycloak["jwt"] == {
        "jwksUrl": "http://keycloak-service.keycloak.svc.cluster.local:8080/realms/maas/protocol/openid-connect/certs"
    }
    assert keycloak["credentials"] == {"authorizationHeader": {"prefix": "Bearer"}}
    assert gpu.outputs["keycloakUrl"] == "http://keycloak-service.keycloak.svc.cluster.local:8080"
    assert "keycloak" not in _policy(stack_of("dev"), "AuthPolicy").inputs["spec"]["rules"]["authentication"]


@pytest.mark.parametrize(
    ("groups", "tier"),
    [
        (["free"], "free"),
        (["premium", "free"], "premium"),
        (["enterprise", "staff"], "enterprise"),
        (["staff"], ""),
        (None, ""),
    ],
)
def test_a_keycloak_users_tier_is_the_highest_tier_group(
    stack_of: Any, groups: list[str] | None, tier: str
) -> None:
    rules = _policy(stack_of("gpu"), "AuthPolicy").inputs["spec"]["rules"]
    expression = rules["authentication"]["keycloak"]["overrides"]["tier"]["expression"]
    identity = {"preferred_username": "u"} | ({"groups": groups} if groups is not None else {})
    assert cel.evaluate(expression, {"auth": {"identity": identity}}) == tier


def test_only_configured_tiers_pass_authorization_and_each_meets_only_its_limits(stack: Evaluation) -> None:
    rules = _policy(stack, "AuthPolicy").inputs["spec"]["rules"]
    allowed = rules["authorization"]["allowed-tiers"]["patternMatching"]["patterns"][0]["predicate"]
    limits = _policy(stack, "RateLimitPolicy").inputs["spec"]["limits"]
    tiers = [t["name"] for t in _raw_tiers(stack.stack)]
    config = typed_config(stack.stack)
    named = tier_policies.limit_names(config.tiers, config.models, "requests")
    for tier in [*tiers, "gold-plated", ""]:
        identity = {"auth": {"identity": {"userid": "u", "tier": tier}}}
        assert cel.evaluate(allowed, identity) == (tier in tiers)
        matching = [
            name for name, limit in limits.items() if cel.evaluate(limit["when"][0]["predicate"], identity)
        ]
        # The tier's limit, and its models' own quotas (<tier>.<model>-requests).
        assert matching == [n for n in named if n == f"{tier}-requests" or n.startswith(f"{tier}.")]


def test_request_and_token_limits_have_distinct_names(stack: Evaluation) -> None:
    requests = set(_policy(stack, "RateLimitPolicy").inputs["spec"]["limits"])
    tokens = set(_policy(stack, "TokenRateLimitPolicy").inputs["spec"]["limits"])
    assert requests.isdisjoint(tokens)


def test_every_host_and_metered_path_of_every_route_gets_the_policies(stack: Evaluation) -> None:
    """Model routes have no policies of their own: the policy route's, on every host of each
    listener, cover them and any route added later. Checked the way the wasm-shim picks a
    request's action sets (Kuadrant/wasm-shim@v0.14.1 src/kuadrant/pipeline/factory.rs select_blueprint: the
    nearest host entry, a wildcard included, then the first set whose predicates hold) over
    the sets kuadrant-operator would build (maas_policies/kuadrant_size.py)."""
    objects = [r.inputs for r in stack.objects()]
    (gateway,) = [o for o in objects if o["kind"] == "Gateway"]
    routes = [o for o in objects if o["kind"] == "HTTPRoute"]
    policies = {kind: [o for o in objects if o["kind"] == kind] for kind in POLICY_KINDS}
    sets = kuadrant_size.action_sets(gateway, routes, policies)
    key_service = [
        r for r in routes if r["metadata"].get("labels", {}).get("app.kubernetes.io/name") == "key-service"
    ]
    realm_routes = [r for r in routes if r["metadata"]["name"] == realm.REALM_ROUTE]
    # a route per model (served by its own server or another's), the shared host's model
    # list, and the policy route; on OIDC stacks the key service's two (its API and its page)
    # and the realm's
    config = typed_config(stack.stack)
    assert len(routes) == len(config.models) + 2 + len(key_service) + len(realm_routes)
    assert len(key_service) == (2 if config.key_service_on else 0)
    assert len(realm_routes) == (1 if config.auth.oidc.enabled else 0)
    for route in realm_routes:
        # The login pages are public: no set of the tiers applies there, and no model path
        # is under the realm's prefixes.
        prefixes = [m["path"]["value"] for rule in route["spec"]["rules"] for m in rule["matches"]]
        assert not any(p.startswith(("/v1", "/openai")) for p in prefixes), prefixes
        for path in ("/realms/maas/protocol/openid-connect/auth", "/resources/x/login.css"):
            assert _shim_selects(sets, "api" + gateway["spec"]["listeners"][0]["hostname"][1:], path) is None
    for route in (r for r in routes if r not in key_service and r not in realm_routes):
        # A route without hostnames takes the listener's, *.<domain>: any host under it.
        listener_host = gateway["spec"]["listeners"][0]["hostname"]
        for host in route["spec"].get("hostnames") or ["any" + listener_host[1:]]:
            for rule in route["spec"]["rules"]:
                for match in rule["matches"]:
                    chosen = _shim_selects(sets, host, match["path"]["value"])
                    assert chosen is not None, (route["metadata"]["name"], host, match)
                    services = {a["service"] for a in chosen["actions"]}
                    assert {"auth-service", "ratelimit-service", "ratelimit-check-service"} <= services


def _shim_selects(sets: list[dict[str, Any]], host: str, path: str) -> dict[str, Any] | None:
    """The set the wasm-shim applies to a request for `host` and `path`, or None (it passes)."""
    by_host: dict[str, list[dict[str, Any]]] = {}
    for action_set in sets:
        for name in action_set["routeRuleConditions"]["hostnames"]:
            by_host.setdefault(name, []).append(action_set)
    labels = host.split(".")
    nearest = [host, *("*." + ".".join(labels[i:]) for i in range(1, len(labels)))]
    for name in nearest:
        if name in by_host:
            for action_set in by_host[name]:
                predicates = action_set["routeRuleConditions"].get("predicates", [])
                values = {"request": {"url_path": path, "headers": {}}}
                if all(cel.evaluate(p, values) for p in predicates):
                    return action_set
            return None
    return None


def test_one_budget_per_user_and_model_whichever_host() -> None:
    """The model counter is the header the gateway sets from either host (lua/request_body.lua)."""
    for headers, value in (({"x-maas-model": "simulator-model"}, "simulator-model"), ({}, "")):
        assert cel.evaluate(MODEL_COUNTER, {"request": {"headers": headers}}) == value


def test_policies_wait_for_enforcement_after_routes_and_identity(stack: Evaluation) -> None:
    for kind in POLICY_KINDS:
        policy = _policy(stack, kind)
        assert policy.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Enforced"
        for route in stack.objects("HTTPRoute"):
            assert stack.waits_for(policy, route)


def _policies(result: Evaluation) -> dict[str, dict[str, Any]]:
    return {kind: _policy(result, kind).inputs for kind in POLICY_KINDS}


def test_adding_a_user_adds_only_its_key_and_changes_no_policy() -> None:
    base = evaluate("dev")
    users = [*stack_config("dev")["maas:users"], {"name": "newuser", "tier": "premium"}]
    more = evaluate_variant("dev", {"maas:users": users})
    added = {r.urn: r for r in more.resources}.keys() - {r.urn for r in base.resources}
    assert sorted(urn.rsplit("::", 1)[1] for urn in added) == ["api-keys-newuser", "api-keys-newuser-secret"]
    assert _policies(more) == _policies(base)


def test_removing_a_tier_removes_it_everywhere() -> None:
    tiers = [t for t in _raw_tiers("gpu") if t["name"] != "premium"]
    users = [{"name": "alice", "tier": "free"}, {"name": "bob", "tier": "enterprise"}]
    prices = stack_config("gpu")["maas:prices"]
    without = {
        "currency": prices["currency"],
        "tiers": {t: p for t, p in prices["tiers"].items() if t != "premium"},
        "models": {m: {t: p for t, p in by.items() if t != "premium"} for m, by in prices["models"].items()},
    }
    models = [
        {k: v for k, v in m.items() if k != "tiers"}
        | ({"tiers": [t for t in m["tiers"] if t != "premium"]} if "tiers" in m else {})
        for m in stack_config("gpu")["maas:models"]
    ]
    result = evaluate_variant(
        "gpu", {"maas:tiers": tiers, "maas:users": users, "maas:prices": without, "maas:models": models}
    )
    assert result.error is None
    mentions = [str(r) for r in result.resources if "premium" in json.dumps(r.inputs)]
    assert mentions == []
    assert result.outputs["tiers"] == ["free", "enterprise"]


def test_the_realm_import_holds_every_tier_and_no_user(stack_of: Any) -> None:
    """The import has the tier groups and the clients; the stack file's users come from the
    user sync (tests/platform/test_keycloak_users.py), so the import is the same whatever the
    number of users (issue 29: it would pass the API server's object size near 4,400)."""
    gpu = stack_of("gpu")
    spec = gpu.one("KeycloakRealmImport", "realm-maas").inputs["spec"]
    realm = spec["realm"]
    # the key service's administrators' group and client account: tests/access/test_key_service_deploy.py
    assert [g["name"] for g in realm["groups"]] == [t["name"] for t in _raw_tiers("gpu")] + [
        "maas-stack-users",
        "maas-admins",
    ]
    assert [u for u in realm["users"] if "serviceAccountClientId" not in u] == []
    assert all(not key.startswith("PASSWORD_") for key in spec["placeholders"])
    many = [{"name": f"user{i:03}", "tier": "free"} for i in range(300)]
    crowded = evaluate_variant("gpu", {"maas:users": many})
    assert crowded.error is None, crowded.error
    assert crowded.one("KeycloakRealmImport", "realm-maas").inputs["spec"] == spec
    (client,) = [c for c in realm["clients"] if c["clientId"] == "maas-cli"]
    assert client["publicClient"] is True
    assert client["directAccessGrantsEnabled"] is True
    mapper = client["protocolMappers"][0]
    assert mapper["protocolMapper"] == "oidc-group-membership-mapper"
    assert mapper["config"]["claim.name"] == "groups"
    assert mapper["config"]["access.token.claim"] == "true"
    assert set(gpu.outputs["keycloakPasswords"]) == {u["name"] for u in stack_config("gpu")["maas:users"]}
    assert {"keycloakPasswords", "keycloakAdmin", "apiKeys"} <= gpu.secret_outputs


def test_keycloak_runs_in_production_mode_with_a_database_and_generated_admin(stack_of: Any) -> None:
    gpu = stack_of("gpu")
    spec = gpu.one("Keycloak", "keycloak").inputs["spec"]
    assert spec["db"]["vendor"] == "postgres"
    assert spec["db"]["passwordSecret"] == {"name": "keycloak-db", "key": "password"}
    assert spec["bootstrapAdmin"] == {"user": {"secret": "keycloak-admin"}}
    assert spec["hostname"]["hostname"]
    assert spec["image"].startswith("quay.io/keycloak/keycloak:")
    assert "start-dev" not in json.dumps(spec)
    admin = gpu.one("Secret", "keycloak-admin")
    assert admin.is_secret("stringData.password")
    assert not KNOWN_DEFAULT_CREDENTIALS.search(gpu.outputs["keycloakAdmin"]["password"])
    database = gpu.one("StatefulSet", "keycloak-postgres")
    assert database.inputs["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"] == {
        "storage": "5Gi"
    }


def test_postgresql_volumes_change_owner_only_on_a_root_mismatch(oidc_stack: Evaluation) -> None:
    """The kubelet's recursive fsGroup pass would make PGDATA group-writable on every mount,
    which PostgreSQL refuses (docs/openshift.md "Storage"): on every flavour, only when the
    volume's root does not match."""
    database = oidc_stack.one("StatefulSet", "keycloak-postgres")
    context = database.inputs["spec"]["template"]["spec"]["securityContext"]
    assert context["fsGroupChangePolicy"] == "OnRootMismatch"


def test_keys_are_secret_outputs_and_rotate_with_their_version(stack: Evaluation) -> None:
    assert "apiKeys" in stack.secret_outputs
    assert set(stack.outputs["apiKeys"]) == {u["name"] for u in stack_config(stack.stack)["maas:users"]}
    users = [{"name": "alice", "tier": "free", "keyVersion": 2}]
    rotated = evaluate_variant("dev", {"maas:users": users})
    (key,) = [
        r for r in rotated.of_type("random:index/randomPassword:RandomPassword") if r.name == "api-keys-alice"
    ]
    assert key.inputs["keepers"] == {"version": "2"}
    assert key.inputs["length"] >= 32


def test_limitador_reports_limit_names_and_keeps_its_counters_as_configured(stack: Evaluation) -> None:
    """dev: one replica, counters in memory; gpu: two replicas sharing a deployed Redis. Its
    request-limit answers carry X-RateLimit-Reset, the gateway's Retry-After (refusals.lua)."""
    patch = stack.one("Limitador", "limitador")
    assert patch.type == "kubernetes:limitador.kuadrant.io/v1alpha1:LimitadorPatch"
    limitador = typed_config(stack.stack).limitador
    shared = {"storage": {"redis": {"configSecretRef": {"name": "limitador-redis"}}}}
    assert patch.inputs["spec"] == {
        "telemetry": "exhaustive",
        "replicas": limitador.replicas,
        "rateLimitHeaders": "DRAFT_VERSION_03",
        **(shared if limitador.storage == "redis" else {}),
    }


def test_more_limitador_replicas_share_counters_in_redis() -> None:
    result = evaluate_variant(
        "dev",
        {"maas:limitador": {"replicas": 3, "storage": "redis"}},
        secrets={"maas:limitadorRedisUrl": "redis://r:6379"},
    )
    assert result.error is None
    spec = result.one("Limitador", "limitador").inputs["spec"]
    assert spec["storage"] == {"redis": {"configSecretRef": {"name": "limitador-redis"}}}
    assert result.one("Secret", "limitador-redis").is_secret("stringData.URL")


BAD_ACCESS: dict[str, tuple[dict[str, Any], str]] = {
    "tier name not DNS-safe": (
        {"maas:tiers": [{**FIVE_TIERS[0], "name": "Free Tier"}]},
        "maas:tiers[0].name: 'Free Tier' is not a DNS-1123 label",
    ),
    "duplicate tier": (
        {"maas:tiers": [FIVE_TIERS[0], FIVE_TIERS[0]]},
        "tiers[0] and tiers[1] have the same tier name 'trial'",
    ),
    "zero limit": (
        {"maas:tiers": [{**FIVE_TIERS[0], "requests": {"limit": 0, "window": "1m"}}]},
        "maas:tiers[0] (name: trial).requests.limit: Input should be greater than or equal to 1",
    ),
    "window in days": (
        {"maas:tiers": [{**FIVE_TIERS[0], "tokens": {"limit": 5, "window": "1d"}}]},
        "maas:tiers[0] (name: trial).tokens.window: '1d' is not a Kuadrant window "
        "('d' is not a unit: write 24h)",
    ),
    "window Limitador would hold as 0s": (
        {"maas:tiers": [{**FIVE_TIERS[0], "requests": {"limit": 5, "window": "500ms"}}]},
        "maas:tiers[0] (name: trial).requests.window: '500ms' is not a whole number of seconds, and "
        "Limitador counts in whole seconds (it would hold 0s)",
    ),
    "window Limitador would truncate": (
        {
            "maas:tiers": [
                {**FIVE_TIERS[0], "tokens": [{"limit": 5, "window": "1m"}, {"limit": 9, "window": "90500ms"}]}
            ]
        },
        "maas:tiers[0] (name: trial).tokens[1].window: '90500ms' is not a whole number of seconds",
    ),
    "no window at all": (
        {"maas:tiers": [{**FIVE_TIERS[0], "requests": []}]},
        "maas:tiers[0] (name: trial).requests: a limit needs at least one {limit, window}",
    ),
    "one window twice": (
        {
            "maas:tiers": [
                {**FIVE_TIERS[0], "requests": [{"limit": 2, "window": "1m"}, {"limit": 4, "window": "60s"}]}
            ]
        },
        "maas:tiers[0] (name: trial).requests[1].window: '60s' is the window of "
        "maas:tiers[0] (name: trial).requests[0] too (60s); Limitador keeps one limit per window",
    ),
    "a longer window allowing less": (
        {
            "maas:tiers": [
                {
                    **FIVE_TIERS[0],
                    "tokens": [{"limit": 500, "window": "730h"}, {"limit": 900, "window": "1h"}],
                }
            ]
        },
        "maas:tiers[0] (name: trial).tokens[0].limit: 500 per 730h is less than "
        "maas:tiers[0] (name: trial).tokens[1]'s 900 per 1h, so the shorter window could never bind: "
        "raise it to at least 900",
    ),
    "user in an unknown tier": (
        {"maas:users": [{"name": "alice", "tier": "gold"}]},
        "maas:users[0] (name: alice).tier: 'gold' is not a tier of maas:tiers (free, premium, enterprise)",
    ),
    "duplicate user": (
        {"maas:users": [{"name": "alice", "tier": "free"}, {"name": "alice", "tier": "premium"}]},
        "users[0] and users[1] have the same user name 'alice'",
    ),
    "invalid user name": (
        {"maas:users": [{"name": "Alice!", "tier": "free"}]},
        "maas:users[0].name: 'Alice!' is not a DNS-1123 label",
    ),
    "user name Keycloak refuses": (
        {"maas:auth": {"oidc": {"enabled": True}}, "maas:users": [{"name": "al", "tier": "free"}]},
        "maas:users[0].name: 'al' is shorter than the 3 characters Keycloak requires of a username",
    ),
    "empty tier table": ({"maas:tiers": []}, "maas:tiers: the tier table is empty"),
    "no way in": ({"maas:auth": {"apiKeys": False}}, "enable apiKeys, oidc.enabled or both"),
    "replicas without shared counters": (
        {"maas:limitador": {"replicas": 2}},
        "2 replicas with in-memory counters would split every limit between pods",
    ),
}


@pytest.mark.parametrize("case", BAD_ACCESS, ids=list(BAD_ACCESS))
def test_bad_access_config_stops_with_its_message_and_declares_nothing(case: str) -> None:
    changes, expected = BAD_ACCESS[case]
    assert_refused("dev", changes, expected)


def test_each_problem_of_a_limits_windows_is_its_own_message() -> None:
    rates = [{"limit": 9, "window": "1m"}, {"limit": 8, "window": "60s"}, {"limit": 3, "window": "1h"}]
    message = assert_refused("dev", {"maas:tiers": [{**FIVE_TIERS[0], "requests": rates}]}, "requests[1]")
    problems = [line for line in message.splitlines() if "maas:tiers[0] (name: trial).requests" in line]
    assert len(problems) == 2, message
    assert "requests[1].window: '60s' is the window of" in problems[0]
    assert "requests[2].limit: 3 per 1h is less than" in problems[1]


def test_a_single_window_and_a_list_of_one_compile_alike() -> None:
    rest = {
        "maas:users": [{"name": "alice", "tier": "gold"}],
        "maas:prices": REMOVE,
        "maas:models": _open_models("gpu"),
    }
    single = evaluate_variant("gpu", {"maas:tiers": FIVE_TIERS, **rest})
    listed = [{**t, "requests": [t["requests"]], "tokens": [t["tokens"]]} for t in FIVE_TIERS]
    as_list = evaluate_variant("gpu", {"maas:tiers": listed, **rest})
    for kind in ("RateLimitPolicy", "TokenRateLimitPolicy"):
        assert _policy(single, kind).inputs["spec"] == _policy(as_list, kind).inputs["spec"]


def test_a_redis_url_without_redis_storage_is_refused() -> None:
    assert_refused(
        "dev",
        {"maas:limitador": {"storage": "memory"}},
        "maas:limitadorRedisUrl: set, but limitador.storage is not redis",
        secrets={"maas:limitadorRedisUrl": "redis://r:6379"},
    )


def test_shared_counters_without_a_url_live_in_a_redis_only_limitador_reaches(stack_of: Any) -> None:
    """gpu: two Limitador replicas, one Redis the program deploys: a generated password, in a
    file and in Limitador's URL, both secrets; a volume for the append-only file; only
    Limitador's pods admitted; Pod Security "restricted"."""
    stack = stack_of("gpu")
    server = stack.one("StatefulSet", counter_store.NAME)
    pod = server.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == versions.REDIS_IMAGE
    assert container["command"] == ["redis-server", f"{counter_store.CONFIG_DIR}/redis.conf"]
    assert pod["securityContext"]["runAsUser"] == counter_store.REDIS_UID
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert not any("REDIS" in e.get("name", "") for e in container.get("env", []))
    (claim,) = server.inputs["spec"]["volumeClaimTemplates"]
    assert claim["spec"]["resources"]["requests"] == {"storage": "1Gi"}
    config = stack.one("Secret", counter_store.CONFIG_SECRET)
    assert {"name": "config", "secret": {"secretName": counter_store.CONFIG_SECRET}} in pod["volumes"]
    assert config.is_secret("stringData.redis.conf")
    text = config.inputs["stringData"]["redis.conf"]
    password = next(line.split(" ", 1)[1] for line in text.splitlines() if line.startswith("requirepass "))
    assert len(password) >= 32
    assert "appendonly yes" in text.splitlines()
    url = stack.one("Secret", "limitador-redis")
    assert url.is_secret("stringData.URL")
    assert url.inputs["stringData"]["URL"] == (
        f"redis://:{password}@{counter_store.NAME}.kuadrant-system.svc.cluster.local:{counter_store.PORT}"
    )
    isolation = stack.one("NetworkPolicy", f"{counter_store.NAME}-ingress")
    (rule,) = isolation.inputs["spec"]["ingress"]
    assert rule["from"] == [{"podSelector": {"matchLabels": upstream.LIMITADOR_PODS.labels}}]
    assert selects(
        isolation.inputs["spec"]["podSelector"], server.inputs["spec"]["template"]["metadata"]["labels"]
    )
    # A Redis of the stack's own: nothing deployed.
    external = evaluate_variant(
        "gpu", {}, secrets={"maas:limitadorRedisUrl": "redis://:pw@redis.example:6379"}
    )
    assert external.error is None
    assert all(o.object_name != counter_store.NAME for o in external.objects("StatefulSet"))
    assert (
        external.one("Secret", "limitador-redis").inputs["stringData"]["URL"]
        == "redis://:pw@redis.example:6379"
    )


def _users_count(n: int) -> tuple[int, dict[str, dict[str, Any]]]:
    result = evaluate_variant("dev", {"maas:users": [{"name": f"user{i}", "tier": "free"} for i in range(n)]})
    assert result.error is None
    return len(result.resources), _policies(result)


def test_resources_grow_by_one_key_per_user_and_policies_not_at_all() -> None:
    (five, policies_five), (fifty, policies_fifty) = _users_count(5), _users_count(50)
    assert fifty - five == 45 * 2
    assert policies_five == policies_fifty


@pytest.mark.parametrize(
    ("path", "billed"),
    [
        ("/v1/chat/completions", True),
        ("/v1/completions", True),
        ("/v1/embeddings", True),
        ("/v1/models", False),
        ("/v1/responses", False),
    ],
)
def test_only_requests_that_produce_tokens_are_limited_and_billed(
    stack: Evaluation, path: str, billed: bool
) -> None:
    """Listing models spends no request and no token budget, and so is not metered either."""
    tier = _raw_tiers(stack.stack)[0]["name"]
    request = {"auth": {"identity": {"userid": "u", "tier": tier}}, "request": {"url_path": path}}
    for kind in ("RateLimitPolicy", "TokenRateLimitPolicy"):
        limits = _policy(stack, kind).inputs["spec"]["limits"]
        applying = [
            name
            for name, limit in limits.items()
            if all(cel.evaluate(c["predicate"], request) for c in limit["when"])
        ]
        assert applying == ([name for name in limits if name.startswith(f"{tier}-")] if billed else []), kind
