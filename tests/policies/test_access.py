"""Access rules: every model route behind authentication and limits; every tier limited."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from components.names import GATEWAY_NAME
from harness.program import stack_config
from tests.support import policy_runner
from tests.support.configs import evaluate_variant
from tests.support.policy_runner import assert_only, edited, violations


@pytest.mark.parametrize(
    ("kind", "missing", "also"),
    # Without the AuthPolicy, the large model's tier restriction is enforced by nothing either,
    # and nothing sets the pooled simulator's priorities.
    [
        ("AuthPolicy", "authentication", ("model-tiers-enforced", "priority-from-identity")),
        ("RateLimitPolicy", "limits", "tiers-limited"),
    ],
)
def test_an_unprotected_route_is_refused(
    stack_of: Any, kind: str, missing: str, also: str | tuple[str, ...]
) -> None:
    stack = stack_of("dev")
    without = [r for r in stack.resources if r.kind != kind]
    found = violations(stack, without)
    assert_only(
        found,
        "routes-protected",
        "HTTPRoute llm/simulator",
        f"reachable without {missing}",
        "Fix:",
        also=also,
    )


@pytest.mark.parametrize(
    ("change", "uncovered"),
    [
        # Its sets would hold the shared host only: the model's own host gets none.
        (lambda spec: spec.update(hostnames=["api.maas.local"]), "HTTPRoute llm/simulator-large"),
        # A match with a header is a predicate the model's requests do not meet.
        (
            lambda spec: spec["rules"][0]["matches"][0].update(headers=[{"name": "x", "value": "y"}]),
            "HTTPRoute llm/simulator",
        ),
        # A path it does not match is served unprotected.
        (lambda spec: spec["rules"][0]["matches"].pop(0), "HTTPRoute llm/simulator"),
    ],
)
def test_the_policy_route_covers_only_what_its_sets_take(stack_of: Any, change: Any, uncovered: str) -> None:
    """The tier policies reach a model route through the policy route only where the
    wasm-shim would pick its sets: every host (no hostnames) and each usage path, exactly."""
    stack = stack_of("dev")
    found = violations(
        stack, edited(stack, "HTTPRoute", "metered-paths", lambda inputs: change(inputs["spec"]))
    )
    refused = [v for v in found if v.policy == "routes-protected"]
    assert any(uncovered in v.message and "reachable without authentication" in v.message for v in refused)


def _limits_on_the_gateway(stack: Any) -> list[Any]:
    """A RateLimitPolicy of someone's on the Gateway, beside ours on the policy route."""
    limits = stack.one("RateLimitPolicy", stack.objects("RateLimitPolicy")[0].object_name)
    inputs = copy.deepcopy(limits.inputs)
    inputs["metadata"]["name"] = "gateway-wide"
    inputs["spec"]["targetRef"] = {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": GATEWAY_NAME,
    }
    return [*stack.resources, policy_runner.added(stack, "RateLimitPolicy", inputs)]


def _wildcard_route_with_a_policy(stack: Any) -> list[Any]:
    """A route of someone's on `*.<domain>` with an AuthPolicy of its own."""
    route = stack.one("HTTPRoute", "simulator")
    inputs = copy.deepcopy(route.inputs)
    inputs["metadata"]["name"] = "wildcard"
    inputs["spec"]["hostnames"] = ["*.maas.local"]
    auth = copy.deepcopy(stack.one("AuthPolicy", "inference-gateway-authpolicy").inputs)
    auth["metadata"]["name"] = "wildcard-auth"
    auth["spec"]["targetRef"] = {
        "group": "gateway.networking.k8s.io",
        "kind": "HTTPRoute",
        "name": "wildcard",
    }
    return [
        *stack.resources,
        policy_runner.added(stack, "HTTPRoute", inputs),
        policy_runner.added(stack, "AuthPolicy", auth),
    ]


@pytest.mark.parametrize("change", [_limits_on_the_gateway, _wildcard_route_with_a_policy])
def test_a_nearer_host_entry_takes_the_model_hosts_from_the_policy_route(stack_of: Any, change: Any) -> None:
    """The wasm-shim takes a request's sets from the nearest host entry (Kuadrant/wasm-shim@v0.14.1
    src/kuadrant/pipeline/factory.rs select_blueprint): a policy on the Gateway gives the
    model hosts entries of their own, and so does a policy on a route over `*.<domain>`."""
    stack = stack_of("dev")
    found = violations(stack, change(stack))
    refused = [v for v in found if v.policy == "routes-protected"]
    assert any(
        "HTTPRoute llm/simulator" in v.message and "reachable without" in v.message for v in refused
    ), found


_AUTH = "inference-gateway-authpolicy"
_LIMITS = "inference-gateway-ratelimitpolicy"


def _anonymous(inputs: dict[str, Any]) -> None:
    inputs["spec"]["rules"]["authentication"]["guest"] = {"anonymous": {}}


def _no_methods(inputs: dict[str, Any]) -> None:
    inputs["spec"]["rules"]["authentication"] = {}


def _conditional_methods(inputs: dict[str, Any]) -> None:
    for method in inputs["spec"]["rules"]["authentication"].values():
        method["when"] = [{"predicate": "request.url_path == '/v1/completions'"}]


def _policy_when(inputs: dict[str, Any]) -> None:
    inputs["spec"]["when"] = [{"predicate": "request.url_path == '/v1/completions'"}]


def _overridden_open(inputs: dict[str, Any]) -> None:
    rules = inputs["spec"].pop("rules")
    open_door = {"guest": {"plain": {"selector": "x"}}}
    inputs["spec"]["overrides"] = {"rules": {**rules, "authentication": open_door}}


def _only_completions(inputs: dict[str, Any]) -> None:
    for limit in inputs["spec"]["limits"].values():
        limit["when"][-1] = {"predicate": "request.url_path == '/v1/completions'"}


def _no_limits(inputs: dict[str, Any]) -> None:
    inputs["spec"]["limits"] = {}


def _zero_rates(inputs: dict[str, Any]) -> None:
    for limit in inputs["spec"]["limits"].values():
        limit["rates"] = []


def _unjudgeable(inputs: dict[str, Any]) -> None:
    for limit in inputs["spec"]["limits"].values():
        limit["when"][-1] = {"predicate": "request.url_path.matches('^/v1/.*')"}


def _gets_only(inputs: dict[str, Any]) -> None:
    """Model requests are POSTs: a limit on GETs counts none of them."""
    for limit in inputs["spec"]["limits"].values():
        limit["when"].append({"predicate": "request.method == 'GET'"})


def test_a_model_left_out_of_its_tiers_limit_needs_a_quota_of_its_own(stack_of: Any) -> None:
    """Dev's premium request limit leaves the large model to its own quota: without that
    quota, premium's requests for it would be counted by nothing."""
    stack = stack_of("dev")
    resources = edited(
        stack,
        "RateLimitPolicy",
        _LIMITS,
        lambda i: i["spec"]["limits"].pop("premium.simulator-large-requests"),
    )
    assert_only(
        violations(stack, resources),
        "routes-protected",
        "no limit counts requests of tier 'premium' on model simulator-large-model",
    )


def test_a_deny_all_default_is_not_taken_for_an_open_door(stack_of: Any) -> None:
    """Kuadrant's documented gateway default that refuses everyone (OPA `allow = false`, no
    authentication) protects; the same policy allowing everyone does not."""
    stack = stack_of("dev")

    def deny_all(inputs: dict[str, Any]) -> None:
        inputs["spec"]["rules"] = {"authorization": {"deny-all": {"opa": {"rego": "allow = false"}}}}

    def allow_all(inputs: dict[str, Any]) -> None:
        inputs["spec"]["rules"] = {"authorization": {"allow-all": {"opa": {"rego": "allow = true"}}}}

    denying = violations(stack, edited(stack, "AuthPolicy", _AUTH, deny_all))
    assert not [v for v in denying if v.policy == "routes-protected"], denying
    allowing = violations(stack, edited(stack, "AuthPolicy", _AUTH, allow_all))
    assert any(v.policy == "routes-protected" and "no authentication method" in v.message for v in allowing)


@pytest.mark.parametrize(
    ("kind", "name", "edit", "why"),
    [
        ("AuthPolicy", _AUTH, _anonymous, "method 'guest' verifies no credential"),
        ("AuthPolicy", _AUTH, _no_methods, "no authentication method"),
        ("AuthPolicy", _AUTH, _conditional_methods, "every authentication method has `when`"),
        ("AuthPolicy", _AUTH, _policy_when, "leave some requests unauthenticated"),
        ("AuthPolicy", _AUTH, _overridden_open, "method 'guest' verifies no credential"),
        ("RateLimitPolicy", _LIMITS, _only_completions, "requests to /v1/chat/completions, /v1/embeddings"),
        ("RateLimitPolicy", _LIMITS, _no_limits, "counts nothing"),
        ("RateLimitPolicy", _LIMITS, _zero_rates, "counts nothing"),
        ("RateLimitPolicy", _LIMITS, _policy_when, "leave some requests uncounted"),
        ("RateLimitPolicy", _LIMITS, _unjudgeable, "cannot be judged"),
        ("RateLimitPolicy", _LIMITS, _gets_only, "`request.method == 'GET'` cannot be judged"),
    ],
)
def test_a_policy_that_protects_nothing_is_refused_like_a_missing_one(
    stack_of: Any, kind: str, name: str, edit: Any, why: str
) -> None:
    """Present is not enough: the policy covering the route must authenticate every request
    and count every usage path the route serves."""
    stack = stack_of("dev")
    found = [v for v in violations(stack, edited(stack, kind, name, edit)) if v.policy == "routes-protected"]
    assert found, f"{kind} edited by {edit.__name__} passed"
    subject = f"{kind} llm/{name} (covers HTTPRoute llm/simulator)"
    assert any(subject in v.message and why in v.message and "Fix:" in v.message for v in found), found


def test_a_tier_without_a_token_limit_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    (tokens,) = stack.objects("TokenRateLimitPolicy")
    resources = edited(
        stack, "TokenRateLimitPolicy", tokens.object_name, lambda i: i["spec"]["limits"].pop("premium-tokens")
    )
    assert_only(
        violations(stack, resources), "tiers-limited", "admits tier 'premium', which has no token limit"
    )


def test_a_budget_cap_is_no_tiers_request_limit() -> None:
    """premium's budget is a request cap (it pays per request only); without premium's own
    request limit the cap, which names the tier too, does not stand in for it."""
    prices = {
        "currency": "USD",
        "tiers": {"premium": {"perRequest": 0.002}},
        "budgets": {"tiers": {"premium": [{"amount": 1, "window": "1h"}]}},
    }
    stack = evaluate_variant("dev", {"maas:prices": prices})
    assert stack.error is None, stack.error
    (requests,) = stack.objects("RateLimitPolicy")
    assert "+budget:requests:tier:premium" in requests.inputs["spec"]["limits"]
    resources = edited(
        stack, "RateLimitPolicy", requests.object_name, lambda i: i["spec"]["limits"].pop("premium-requests")
    )
    assert_only(
        violations(stack, resources),
        "tiers-limited",
        "admits tier 'premium', which has no request limit",
        "Fix:",
    )


@pytest.mark.parametrize(
    ("rates", "why"),
    [
        (
            [{"limit": 500, "window": "500ms"}],
            "window 500ms is 0.5s; Limitador counts whole seconds and would hold 0s",
        ),
        (
            [{"limit": 500, "window": "1500ms"}],
            "window 1500ms is 1.5s; Limitador counts whole seconds and would hold 1s",
        ),
        (
            [{"limit": 500, "window": "2m"}, {"limit": 900, "window": "120s"}],
            "windows 2m and 120s are one Limitador limit, which keeps one",
        ),
    ],
)
def test_a_window_limitador_cannot_hold_is_refused(stack_of: Any, rates: list[Any], why: str) -> None:
    stack = stack_of("dev")
    (requests,) = stack.objects("RateLimitPolicy")
    resources = edited(
        stack,
        "RateLimitPolicy",
        requests.object_name,
        lambda i: i["spec"]["limits"]["enterprise-requests"].update(rates=rates),
    )
    assert_only(violations(stack, resources), "tiers-limited", f"(limit enterprise-requests): {why}")


@pytest.mark.parametrize(
    "premium_requests",
    [
        {"limit": 2, "window": "2m"},
        # Ranked by the shortest window, whatever the order of the rates.
        [{"limit": 200, "window": "1h"}, {"limit": 2, "window": "2m"}],
    ],
    ids=["one-rate", "shortest-window-last"],
)
def test_a_higher_tier_with_lower_limits_only_warns(premium_requests: Any) -> None:
    tiers = copy.deepcopy(stack_config("dev")["maas:tiers"])
    tiers[1]["requests"] = premium_requests
    result = evaluate_variant("dev", {"maas:tiers": tiers})
    assert result.error is None
    assert_only(
        violations(result),
        "tier-limits-grow",
        "tier 'premium': gets fewer requests per second than 'free'",
        level="advisory",
    )


def test_limitador_replicas_without_redis_are_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    resources = edited(stack, "Limitador", "limitador", lambda i: i["spec"].update(replicas=3))
    assert_only(
        violations(stack, resources),
        "limitador-shared-storage",
        "3 replicas keep separate in-memory counters",
    )
    shared = evaluate_variant(
        "dev",
        {"maas:limitador": {"replicas": 3, "storage": "redis"}},
        secrets={"maas:limitadorRedisUrl": "redis://r:6379"},
    )
    assert policy_runner.run(shared) == []


def test_a_gpu_stack_with_counters_in_memory_is_refused(stack_of: Any) -> None:
    stack = stack_of("gpu")

    def in_memory(inputs: dict[str, Any]) -> None:
        del inputs["spec"]["storage"]
        inputs["spec"]["replicas"] = 1

    found = violations(stack, edited(stack, "Limitador", "limitador", in_memory))
    assert_only(found, "shared-counters", "Limitador kuadrant-system/limitador", "on GPUs", "Fix: ")
    # dev serves no model on GPUs: memory is fine there.
    assert violations(stack_of("dev")) == []


def _mint_limit_only(inputs: dict[str, Any]) -> None:
    inputs["spec"]["limits"].pop("key-calls")


def _call_limit_only(inputs: dict[str, Any]) -> None:
    inputs["spec"]["limits"].pop("key-mints")


def _counted_for_everyone(inputs: dict[str, Any]) -> None:
    """One budget shared by all users: nobody's churn is bounded apart from the others'."""
    for limit in inputs["spec"]["limits"].values():
        limit.pop("counters")


def _mints_of_another_path(inputs: dict[str, Any]) -> None:
    inputs["spec"]["limits"].pop("key-calls")
    inputs["spec"]["limits"]["key-mints"]["when"][-1] = {"predicate": "request.url_path == '/v1/usage'"}


def _no_rate(inputs: dict[str, Any]) -> None:
    for limit in inputs["spec"]["limits"].values():
        limit["rates"] = []


@pytest.mark.parametrize("edit", [_counted_for_everyone, _mints_of_another_path, _no_rate])
def test_a_key_service_route_without_a_limit_on_mints_per_user_is_refused(stack_of: Any, edit: Any) -> None:
    """The key service's route (dev-oidc runs one) needs a RateLimitPolicy of its own that
    counts mints per user: the tier policies' sets hold their exact usage paths only, and a
    user who mints and revokes in a loop makes a Secret each time for Authorino to watch."""
    stack = stack_of("dev-oidc")
    for resources in (
        [r for r in stack.resources if not (r.kind == "RateLimitPolicy" and r.object_name == "key-service")],
        edited(stack, "RateLimitPolicy", "key-service", edit),
    ):
        assert_only(
            violations(stack, resources),
            "routes-protected",
            "HTTPRoute llm/key-service on Gateway inference-gateway",
            "no RateLimitPolicy on it counts mints per user (auth.identity.userid)",
            "Fix: a RateLimitPolicy targeting the route",
        )


@pytest.mark.parametrize("edit", [_mint_limit_only, _call_limit_only])
def test_a_limit_on_mints_or_on_every_call_counts_the_mints(stack_of: Any, edit: Any) -> None:
    """Either limit alone bounds a user's mints, and the mint limit's method condition, which
    no model request meets, does not make the policy a weak one for the routes it reaches."""
    stack = stack_of("dev-oidc")
    assert violations(stack, edited(stack, "RateLimitPolicy", "key-service", edit)) == []
