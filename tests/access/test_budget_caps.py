"""Money budgets held exactly (components/access/tiers.py budget_caps): where every model a
tier reaches costs one price per request and nothing per token, a budget is a request limit
in the RateLimitPolicy, counted per user across models; evaluated here as the wasm-shim would
(a limit applies to a request when all its `when` predicates hold). Elsewhere, a price per
token included, no limit claims to be a budget."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.access import policies as access_policies
from components.access import tiers
from components.access.key_service.server import limit_of
from components.config import PricesConfig
from harness.program import Evaluation, typed_config
from tests.support import cel
from tests.support.configs import evaluate_variant, simulator

# premium pays per request only: 1 USD an hour at 0.002 a request is 500 requests, and 10 a
# day 5,000; premiumuser2's own 0.5 an hour 250. enterprise pays per request and per token
# both: its budget has no cap.
EXACT = {
    "currency": "USD",
    "tiers": {
        "premium": {"perRequest": 0.002},
        "enterprise": {"perRequest": 0.0005, "perThousandTokens": 0.001},
    },
    "budgets": {
        "tiers": {
            "premium": [{"amount": 1, "window": "1h"}, {"amount": 10, "window": "24h"}],
            "enterprise": [{"amount": 3, "window": "1h"}],
        },
        "users": {"premiumuser2": [{"amount": 0.5, "window": "1h"}]},
    },
}


@pytest.fixture(scope="module")
def capped() -> Evaluation:
    result = evaluate_variant("dev", {"maas:prices": EXACT})
    assert result.error is None, result.error
    return result


def _spec(result: Evaluation, kind: str) -> dict[str, Any]:
    (policy,) = [o for o in result.objects(kind) if o.object_name == access_policies.policy_name(kind)]
    spec: dict[str, Any] = policy.inputs["spec"]
    return spec


def _budget_limits(result: Evaluation, kind: str) -> dict[str, Any]:
    return {
        name: limit for name, limit in _spec(result, kind)["limits"].items() if name.startswith("+budget:")
    }


def _applying(limits: dict[str, Any], user: str, tier: str, model: str, path: str) -> list[str]:
    converted = cel.activation(
        {
            "auth": {"identity": {"userid": user, "tier": tier}},
            "request": {"headers": {"x-maas-model": model}, "url_path": path},
        }
    )
    return [
        name
        for name, limit in limits.items()
        if all(cel.evaluate_in(w["predicate"], converted) for w in limit["when"])
    ]


def test_an_exact_budget_is_a_request_limit_per_user_across_models(capped: Evaluation) -> None:
    """The tier's cap and the user's own, each counted by the user alone (not the model), one
    rate per budget window, in the RateLimitPolicy; enterprise's budget and the token policy
    get none."""
    limits = _budget_limits(capped, "RateLimitPolicy")
    assert _budget_limits(capped, "TokenRateLimitPolicy") == {}
    assert set(limits) == {"+budget:requests:tier:premium", "+budget:requests:user:premiumuser2"}
    tier, user = limits["+budget:requests:tier:premium"], limits["+budget:requests:user:premiumuser2"]
    assert tier["rates"] == [{"limit": 500, "window": "1h"}, {"limit": 5_000, "window": "24h"}]
    assert user["rates"] == [{"limit": 250, "window": "1h"}]
    for limit in (tier, user):
        # The same data key and value as the request limit's first counter, so Kuadrant
        # merges the cap into that limit's one call to Limitador.
        assert limit["counters"] == [tiers.COUNTERS[0]] == [{"expression": tiers.USER_ID}]


@pytest.mark.parametrize("model", ["simulator", "simulator-large"])
def test_each_user_meets_the_one_cap_that_is_theirs_on_every_model(capped: Evaluation, model: str) -> None:
    served = {m.name: m.served_name for m in typed_config("dev").models}[model]
    limits = _budget_limits(capped, "RateLimitPolicy")
    usage = "/v1/chat/completions"
    assert _applying(limits, "premiumuser1", "premium", served, usage) == ["+budget:requests:tier:premium"]
    assert _applying(limits, "premiumuser2", "premium", served, usage) == [
        "+budget:requests:user:premiumuser2"
    ]
    # The user's own cap follows the user into any tier; the tier's reaches no other tier.
    assert _applying(limits, "premiumuser2", "enterprise", served, usage) == [
        "+budget:requests:user:premiumuser2"
    ]
    assert _applying(limits, "enterpriseuser1", "enterprise", served, usage) == []
    # Listing models spends nothing and meets no cap.
    assert _applying(limits, "premiumuser1", "premium", served, "/v1/models") == []


def _caps(prices: dict[str, Any], models: Any = None) -> list[tiers.BudgetCap]:
    config = typed_config("dev")
    return tiers.budget_caps(
        config.tiers,
        config.models if models is None else models,
        PricesConfig.model_validate_json(json.dumps(prices)),
        config.user_tiers,
    )


def test_a_price_per_request_alone_is_a_request_cap_floored_in_decimal() -> None:
    """0.3 USD at 0.1 a request is 3 requests (0.3 / 0.1 is 2.999… in binary floating point);
    0.35 is 3 too: the cap never admits a request the budget cannot pay."""
    prices = {"tiers": {"premium": {"perRequest": 0.1}}}
    for amount in (0.3, 0.35):
        budgets = {"tiers": {"premium": [{"amount": amount, "window": "1h"}]}}
        (cap,) = _caps({**prices, "budgets": budgets})
        assert (cap.name, cap.rates, cap.price) == ("+budget:requests:tier:premium", ((3, "1h"),), 0.1)


NO_CAP: dict[str, dict[str, Any]] = {
    # A cap in tokens would be a second token limit, checked after the answer on the
    # wasm-shim v0.14.1 (tiers.py _budget_unit): alerts only.
    "per token alone": {"tiers": {"premium": {"perThousandTokens": 0.002}}},
    "per request and per token both": {
        "tiers": {"premium": {"perRequest": 0.001, "perThousandTokens": 0.002}}
    },
    "models priced apart": {
        "tiers": {"premium": {"perRequest": 0.002}},
        "models": {"simulator-large": {"premium": {"perRequest": 0.004}}},
    },
    "a model without a price": {
        "tiers": {},
        "models": {"simulator-large": {"premium": {"perRequest": 0.004}}},
    },
}


@pytest.mark.parametrize("case", NO_CAP, ids=list(NO_CAP))
def test_no_cap_where_no_one_count_is_the_spend(case: str) -> None:
    budgets = {"tiers": {"premium": [{"amount": 1, "window": "1h"}]}}
    assert _caps({**NO_CAP[case], "budgets": budgets}) == []


def test_a_model_the_tier_does_not_reach_does_not_spoil_the_cap() -> None:
    """Only the tier's models count: free reaches the simulator alone, so a price on a model
    only premium reaches leaves free's budget exact."""
    models = [simulator("simulator"), simulator("gpu-model", tiers=["premium"])]
    prices = {
        "tiers": {"free": {"perRequest": 0.001}},
        "models": {"gpu-model": {"premium": {"perThousandTokens": 1.0}}},
        "budgets": {"tiers": {"free": [{"amount": 2, "window": "24h"}]}},
    }
    (cap,) = _caps(prices, models)
    assert (cap.name, cap.rates) == ("+budget:requests:tier:free", ((2_000, "24h"),))


def test_the_usage_api_takes_no_cap_for_a_tiers_limit(capped: Evaluation) -> None:
    """GET /v1/usage picks a tier's limits by name (key_service/server.py limit_of): a cap
    is none of them, for any tier."""
    names = [
        *_budget_limits(capped, "RateLimitPolicy"),
        tiers.budget_limit_name("free", None),
    ]
    for name in names:
        for tier in typed_config("dev").tier_names:
            assert limit_of(name, tier) is None


def test_each_stack_declares_the_caps_of_its_budgets_and_no_other(stack: Evaluation) -> None:
    """Every stack's RateLimitPolicy holds a budget limit exactly where budget_caps finds one
    (dev-oidc's premiumuser2), and no TokenRateLimitPolicy holds any."""
    config = typed_config(stack.stack)
    caps = tiers.budget_caps(config.tiers, config.models, config.prices, config.user_tiers)
    assert set(_budget_limits(stack, "RateLimitPolicy")) == {c.name for c in caps}
    if stack.stack == "dev-oidc":
        # The one cap the end-to-end budget scenario spends (Pulumi.dev-oidc.yaml).
        assert [(c.name, c.rates) for c in caps] == [("+budget:requests:user:premiumuser2", ((5, "1h"),))]
    assert _budget_limits(stack, "TokenRateLimitPolicy") == {}
