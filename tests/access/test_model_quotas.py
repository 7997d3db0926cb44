"""A model's own quota inside a tier (maas:models[].limits.<tier>), compiled into the
RateLimitPolicy and TokenRateLimitPolicy: evaluated here as the wasm-shim would (a limit
applies to a request when all its `when` predicates hold), every billed request of a tier
meets exactly one limit of each kind, the model's own where it has one, the tier's else."""

from __future__ import annotations

import re
from typing import Any

import pytest

from components.access import policies as access_policies
from components.access import tiers
from components.config import Rate, TierConfig
from harness.program import Evaluation, typed_config
from tests.support import cel
from tests.support.configs import assert_refused, simulator

USAGE_PATH = "/v1/chat/completions"


def _applying(
    limits: dict[str, Any], tier: str, served_name: str | None, path: str = USAGE_PATH
) -> list[str]:
    headers = {} if served_name is None else {"x-maas-model": served_name}
    values = {
        "auth": {"identity": {"userid": "u", "tier": tier}},
        "request": {"headers": headers, "url_path": path},
    }
    converted = cel.activation(values)
    return [
        name
        for name, limit in limits.items()
        if all(cel.evaluate_in(w["predicate"], converted) for w in limit["when"])
    ]


def _check_each_request_meets_one_limit(
    spec: dict[str, Any], kind: tiers.Kind, table: Any, models: Any
) -> None:
    # Besides a money budget's cap, counted per user across models (tests/access/test_budget_caps.py).
    limits = {n: x for n, x in spec["limits"].items() if not re.fullmatch(tiers.budget_limit_pattern(), n)}
    for tier in table:
        for model in models:
            own = model.own_rates(tier.name, kind)
            name = tiers.model_limit_name(tier.name, model.name, kind) if own else f"{tier.name}-{kind}"
            assert _applying(limits, tier.name, model.served_name) == [name], (tier.name, model.name)
            rates = own or getattr(tier, kind)
            assert limits[name]["rates"] == [{"limit": r.limit, "window": r.window} for r in rates]
        # The model list is not billed: no limit applies to it.
        assert _applying(limits, tier.name, None, "/v1/models") == []


def test_every_tier_and_model_of_every_stack_meets_its_own_limit(stack: Evaluation) -> None:
    config = typed_config(stack.stack)
    kinds: list[tuple[tiers.Kind, str]] = [
        ("requests", "RateLimitPolicy"),
        ("tokens", "TokenRateLimitPolicy"),
    ]
    for kind, policy in kinds:
        # The tier policy (the key service's limits are per user of the service, not per tier).
        found = stack.one(policy, access_policies.policy_name(policy))
        _check_each_request_meets_one_limit(found.inputs["spec"], kind, config.tiers, config.models)


def test_dev_gives_premium_a_smaller_share_of_the_large_model(stack_of: Any) -> None:
    (requests,) = stack_of("dev").objects("RateLimitPolicy")
    limit = requests.inputs["spec"]["limits"]["premium.simulator-large-requests"]
    assert limit["rates"] == [{"limit": 3, "window": "2m"}]
    # Counted per user and model, with the tier's limits' counters (one merged call).
    assert limit["counters"] == requests.inputs["spec"]["limits"]["premium-requests"]["counters"]


def test_a_ten_tier_fifty_model_table_grows_by_one_limit_per_declared_quota() -> None:
    table = [TierConfig(name=f"t{i}", requests=(Rate(limit=10 * (i + 1), window="1m"),),
                        tokens=(Rate(limit=1000 * (i + 1), window="1m"),)) for i in range(10)]  # fmt: skip
    quota = {
        "requests": {"limit": 2, "window": "1m"},
        "tokens": [{"limit": 50, "window": "1m"}, {"limit": 500, "window": "24h"}],
    }
    # Every fifth model has its own quota in two tiers: 10 models, 20 quotas.
    models = [
        simulator(f"m{i}", **({"limits": {"t0": quota, "t9": quota}} if i % 5 == 0 else {}))
        for i in range(50)
    ]
    kinds: list[tiers.Kind] = ["requests", "tokens"]
    for kind in kinds:
        spec = (
            tiers.rate_limit_spec(table, "r", models)
            if kind == "requests"
            else tiers.token_limit_spec(table, "r", models)
        )
        assert len(spec["limits"]) == 10 + 20
        assert list(spec["limits"]) == tiers.limit_names(table, models, kind)
        _check_each_request_meets_one_limit(spec, kind, table, models)


def _with_quota(limits: dict[str, Any], tiers_: list[str] | None = None) -> dict[str, Any]:
    large: dict[str, Any] = {"name": "large", "host": "large", "runtime": "simulator", "limits": limits}
    if tiers_ is not None:
        large["tiers"] = tiers_
    return {"maas:models": [{"name": "simulator", "host": "simulator", "runtime": "simulator"}, large]}


BAD_QUOTAS: dict[str, tuple[dict[str, Any], str]] = {
    "a tier the table lacks": (
        _with_quota({"gold": {"requests": {"limit": 1, "window": "1m"}}}),
        "maas:models[1] (name: large).limits.gold: 'gold' is not a tier of maas:tiers "
        "(free, premium, enterprise)",
    ),
    "a tier the model refuses": (
        _with_quota({"free": {"requests": {"limit": 1, "window": "1m"}}}, ["premium"]),
        "maas:models[1] (name: large).limits.free: the model's tiers leave 'free' out, so the quota would "
        "limit nobody: add 'free' to maas:models[1].tiers or remove the quota",
    ),
    "an empty quota": (
        _with_quota({"free": {}}),
        "maas:models[1] (name: large).limits.free: set requests, tokens or both, or remove the tier's entry",
    ),
    "a window Limitador cannot hold": (
        _with_quota({"free": {"tokens": {"limit": 1, "window": "250ms"}}}),
        "maas:models[1] (name: large).limits.free.tokens.window: '250ms' is not a whole number of seconds",
    ),
    "a longer window allowing less": (
        _with_quota({"free": {"requests": [{"limit": 5, "window": "1m"}, {"limit": 4, "window": "1h"}]}}),
        "maas:models[1] (name: large).limits.free.requests[1].limit: 4 per 1h is less than",
    ),
}


@pytest.mark.parametrize("case", BAD_QUOTAS, ids=list(BAD_QUOTAS))
def test_a_bad_quota_stops_with_its_message(case: str) -> None:
    changes, expected = BAD_QUOTAS[case]
    assert_refused("dev", changes, expected)


def test_a_model_follows_the_tier_where_it_sets_no_quota_of_that_kind() -> None:
    model = simulator("m", limits={"free": {"tokens": {"limit": 9, "window": "1m"}}})
    assert model.own_rates("free", "requests") is None
    assert model.own_rates("premium", "tokens") is None
    assert model.own_rates("free", "tokens") == (Rate(limit=9, window="1m"),)
