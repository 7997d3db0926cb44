"""Per-model access by tier: a model may restrict which tiers use it (maas:models[].tiers).

The authorization rules are evaluated here as Authorino would (a rule holds for a request
when all its `when` predicates do; the request is admitted when every rule that holds
admits it), for every tier and model of every stack and of a 10-tier by 50-model table. A
request is for a model when the gateway marked it with the model header (the gateway's Lua
filter does, on the model's host and on the shared host alike: tests/serving/
test_request_body.py); the model list carries no such header.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.access import tiers
from components.config import Rate, TierConfig
from components.config.model import ModelConfig
from components.names import TIER_HEADER
from components.serving import model_list
from harness.program import Evaluation, typed_config
from tests.support.authorino import admitted, admitted_models
from tests.support.configs import assert_refused, simulator
from tests.support.policy_runner import assert_only, edited, violations


def _check_every_pair(rules: dict[str, Any], tier_names: list[str], models: list[ModelConfig]) -> None:
    for tier in [*tier_names, "not-a-tier"]:
        known = tier in tier_names
        assert admitted(rules, tier, None) == known, f"{tier}: the model list"
        for model in models:
            expected = known and (model.tiers is None or tier in model.tiers)
            assert admitted(rules, tier, model.served_name) == expected, (model.name, tier)


def test_every_tier_reaches_exactly_its_models_in_every_stack(stack: Evaluation) -> None:
    config = typed_config(stack.stack)
    policy = stack.one("AuthPolicy", "inference-gateway-authpolicy")
    _check_every_pair(policy.inputs["spec"]["rules"]["authorization"], config.tier_names, list(config.models))


def test_a_ten_tier_fifty_model_table_compiles_to_a_rule_per_restricted_model() -> None:
    table = [TierConfig(name=f"t{i}", requests=(Rate(limit=10 * (i + 1), window="1m"),),
                        tokens=(Rate(limit=1000 * (i + 1), window="1m"),)) for i in range(10)]  # fmt: skip
    names = [t.name for t in table]
    models = [simulator(f"m{i}", **({"tiers": names[i % 10 :]} if i % 2 else {})) for i in range(50)]
    spec = tiers.auth_spec(table, "inference-gateway", True, None, models)
    rules = spec["rules"]["authorization"]
    # Rules grow with models (25 restricted), never with models times tiers.
    assert len(rules) == 1 + 25
    _check_every_pair(rules, names, models)
    # Each tier's model list is exactly what its rules admit: one table, no disagreement.
    for tier in names:
        listed = [m["id"] for m in model_list.model_list(models, tier)["data"]]
        assert listed == admitted_models(rules, tier, models), tier


def test_a_denied_caller_gets_an_openai_shaped_403(stack: Evaluation) -> None:
    policy = stack.one("AuthPolicy", "inference-gateway-authpolicy")
    unauthorized = policy.inputs["spec"]["rules"]["response"]["unauthorized"]
    assert unauthorized["code"] == 403
    assert unauthorized["headers"] == {"content-type": {"value": "application/json"}}
    error = json.loads(unauthorized["body"]["value"])["error"]
    assert set(error) == {"message", "type", "code"}
    assert "tier" in error["message"]


def test_an_unauthenticated_caller_gets_an_openai_shaped_401(stack: Evaluation) -> None:
    policy = stack.one("AuthPolicy", "inference-gateway-authpolicy")
    unauthenticated = policy.inputs["spec"]["rules"]["response"]["unauthenticated"]
    assert unauthenticated["code"] == 401
    assert unauthenticated["headers"] == {"content-type": {"value": "application/json"}}
    error = json.loads(unauthenticated["body"]["value"])["error"]
    assert error["code"] == "invalid_api_key"
    assert set(error) == {"message", "type", "code"}


def _bodies(node: Any) -> list[str]:
    """Every `body` value under a policy spec."""
    if isinstance(node, dict):
        found = (
            [node["body"]["value"]] if isinstance(node.get("body"), dict) and "value" in node["body"] else []
        )
        return found + [b for value in node.values() for b in _bodies(value)]
    if isinstance(node, list):
        return [b for value in node for b in _bodies(value)]
    return []


def test_every_refusal_body_survives_kuadrants_code_strings(stack: Evaluation) -> None:
    """Kuadrant pastes a refusal's body into the code of the response it builds
    (Kuadrant/kuadrant-operator@v1.5.2 internal/extension/registry.go buildDenyResponseExpr: `body: `
    and the text as it is): a backslash or `'''` would end or escape the string it sits in.
    Every body we give a Kuadrant policy has neither, and is OpenAI's error shape."""
    bodies = [
        body
        for kind in ("AuthPolicy", "RateLimitPolicy", "TokenRateLimitPolicy")
        for policy in stack.objects(kind)
        for body in _bodies(policy.inputs["spec"])
    ]
    assert len(bodies) >= 2, bodies
    for body in bodies:
        assert "\\" not in body, body
        assert "'''" not in body, body
        assert set(json.loads(body)["error"]) == {"message", "type", "code"}, body


def test_a_restricted_models_route_says_which_tiers_may_use_it(stack_of: Any) -> None:
    route = stack_of("dev").one("HTTPRoute", "simulator-large")
    assert route.inputs["metadata"]["annotations"] == {"maas-platform/tiers": "premium,enterprise"}
    assert "annotations" not in stack_of("dev").one("HTTPRoute", "simulator").inputs["metadata"]


@pytest.mark.parametrize(
    ("tiers_value", "message"),
    [
        (["gold"], "maas:models[1].tiers[0]: 'gold' is not a tier of maas:tiers (free, premium, enterprise)"),
        ([], "maas:models[1] (name: large).tiers: an empty list would admit nobody"),
        (
            ["premium", "premium"],
            "maas:models[1] (name: large).tiers: tiers[0] and tiers[1] have the same tier 'premium'",
        ),
    ],
)
def test_a_bad_tier_restriction_is_refused_with_its_key(tiers_value: list[str], message: str) -> None:
    models = [
        {"name": "simulator", "host": "simulator", "runtime": "simulator"},
        {"name": "large", "host": "large", "runtime": "simulator", "tiers": tiers_value},
    ]
    assert_refused("dev", {"maas:models": models}, message)


def test_a_restriction_no_rule_enforces_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")

    def drop(inputs: dict[str, Any]) -> None:
        del inputs["spec"]["rules"]["authorization"]["model-simulator-large"]

    resources = edited(stack, "AuthPolicy", "inference-gateway-authpolicy", drop)
    assert_only(
        violations(stack, resources),
        "model-tiers-enforced",
        "HTTPRoute llm/simulator-large (model simulator-large-model)",
        "Fix: ",
    )


def test_a_rule_admitting_other_tiers_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")

    def widen(inputs: dict[str, Any]) -> None:
        rule = inputs["spec"]["rules"]["authorization"]["model-simulator-large"]
        rule["patternMatching"]["patterns"] = [
            {"predicate": "auth.identity.tier in ['free', 'premium', 'enterprise']"}
        ]

    resources = edited(stack, "AuthPolicy", "inference-gateway-authpolicy", widen)
    assert_only(
        violations(stack, resources), "model-tiers-enforced", "restricted to tiers enterprise, premium"
    )


def test_a_model_route_on_another_gateway_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")

    def elsewhere(inputs: dict[str, Any]) -> None:
        inputs["spec"]["parentRefs"] = [{"name": "side-door"}]

    resources = edited(stack, "HTTPRoute", "simulator", elsewhere)
    found = violations(stack, resources)
    assert any(v.policy == "model-tiers-enforced" and "Gateway side-door" in v.message for v in found), found


def test_a_restricted_model_reachable_without_its_model_header_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")

    def unmark(inputs: dict[str, Any]) -> None:
        del inputs["spec"]["rules"][0]["matches"][0]["headers"]

    resources = edited(stack, "HTTPRoute", "simulator-large", unmark)
    assert_only(
        violations(stack, resources),
        "model-tiers-enforced",
        "1 of its matches do not require the x-maas-model header",
        "Fix: ",
    )


def test_the_tier_header_is_set_by_authorino_from_the_validated_tier(stack: Evaluation) -> None:
    """The model list reads the tier from this header (components/serving/model_list.py)."""
    policy = stack.one("AuthPolicy", "inference-gateway-authpolicy")
    headers = policy.inputs["spec"]["rules"]["response"]["success"]["headers"]
    assert headers[TIER_HEADER] == {"plain": {"expression": tiers.TIER}}
    # The rest are the pooled models' scheduling headers (tests/access/test_priorities.py).
    assert set(headers) - {TIER_HEADER} <= {"x-llm-d-inference-objective", "x-llm-d-inference-fairness-id"}


def test_a_model_header_matched_loosely_or_a_rule_keyed_loosely_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")

    def regex(inputs: dict[str, Any]) -> None:
        for match in inputs["spec"]["rules"][0]["matches"]:
            match["headers"][0] |= {"type": "RegularExpression", "value": ".*"}

    found = violations(stack, edited(stack, "HTTPRoute", "simulator-large", regex))
    assert any("do not require the x-maas-model header" in v.message for v in found), found

    def negated(inputs: dict[str, Any]) -> None:
        rule = inputs["spec"]["rules"]["authorization"]["model-simulator-large"]
        rule["when"] = [{"predicate": rule["when"][0]["predicate"].replace("==", "!=")}]

    found = violations(stack, edited(stack, "AuthPolicy", "inference-gateway-authpolicy", negated))
    assert any("no AuthPolicy rule enforces that" in v.message for v in found), found
