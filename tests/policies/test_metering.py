"""Metering rules: routes publish only metered endpoints, and every stream carries its usage."""

from __future__ import annotations

from typing import Any

import pytest

from harness.program import stack_config
from tests.support import policy_runner
from tests.support.configs import evaluate_variant
from tests.support.policy_runner import assert_only, edited, violations


@pytest.mark.parametrize(
    ("matches", "fragment"),
    [
        ([{"path": {"type": "PathPrefix", "value": "/v1"}}], "PathPrefix /v1"),
        ([{"path": {"type": "Exact", "value": "/v1/responses"}}], "Exact /v1/responses"),
        (None, "PathPrefix /"),
    ],
)
def test_a_route_publishing_unmetered_endpoints_is_refused(
    stack_of: Any, matches: list[dict[str, Any]] | None, fragment: str
) -> None:
    stack = stack_of("dev")

    def widen(inputs: dict[str, Any]) -> None:
        rule = inputs["spec"]["rules"][0]
        if matches is None:
            rule.pop("matches")
        else:
            rule["matches"] = [*rule["matches"], *matches]

    resources = edited(stack, "HTTPRoute", "simulator", widen)
    assert_only(violations(stack, resources), "usage-metered", "HTTPRoute llm/simulator", fragment, "Fix:")


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("/admin", "PathPrefix /admin"),
        ("/realms/master", "PathPrefix /realms/master"),
        ("/realms", "PathPrefix /realms"),
        ("/", "PathPrefix /"),
    ],
)
def test_the_realm_route_publishes_one_realms_pages_and_nothing_more(
    stack_of: Any, value: str, fragment: str
) -> None:
    """The login pages reach no model: the rule lets them by. Keycloak's admin console, its
    master realm or all of it through the same route are refused."""
    stack = stack_of("dev-oidc")
    assert not [v for v in violations(stack) if v.policy == "usage-metered"]

    def widen(inputs: dict[str, Any]) -> None:
        rule = inputs["spec"]["rules"][0]
        rule["matches"] = [*rule["matches"], {"path": {"type": "PathPrefix", "value": value}}]

    resources = edited(stack, "HTTPRoute", "keycloak-realm", widen)
    assert_only(
        violations(stack, resources), "usage-metered", "HTTPRoute llm/keycloak-realm", fragment, "Fix:"
    )


def test_a_gateway_that_does_not_ask_streams_for_usage_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    without = [r for r in stack.resources if r.kind != "EnvoyFilter"]
    assert_only(
        violations(stack, without), "usage-metered", "a stream without stream_options is never charged"
    )


def test_vllm_without_forced_usage_is_refused(stack_of: Any) -> None:
    stack = stack_of("gpu")

    def unforce(inputs: dict[str, Any]) -> None:
        inputs["spec"]["containers"][0]["args"].remove("--enable-force-include-usage")

    resources = edited(stack, "ServingRuntime", "vllm-openai", unforce)
    assert_only(violations(stack, resources), "usage-metered", "ServingRuntime llm/vllm-openai", "Fix: add")


def _budgeted() -> Any:
    budgets = {"tiers": {"premium": [{"amount": 10, "window": "1h"}]}}
    result = evaluate_variant(
        "dev", {"maas:prices": {**stack_config("dev")["maas:prices"], "budgets": budgets}}
    )
    assert result.error is None, result.error
    assert policy_runner.run(result) == []
    return result


def _budget_rule(edit: Any) -> Any:
    def change(inputs: dict[str, Any]) -> None:
        for group in inputs["spec"]["groups"]:
            for rule in group["rules"]:
                if rule.get("record") == "maas:budget_amount":
                    edit(rule)

    return change


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (
            lambda rule: rule["labels"].update(currency="EUR"),
            "its currency EUR is not one the price table bills in (USD)",
        ),
        (lambda rule: rule["labels"].update(window="1500ms"), "window 1500ms is not whole seconds"),
    ],
)
def test_a_budget_outside_the_price_table_or_limitadors_seconds_is_refused(edit: Any, why: str) -> None:
    stack = _budgeted()
    (rule,) = stack.objects("PrometheusRule")
    resources = edited(stack, "PrometheusRule", rule.object_name, _budget_rule(edit))
    assert_only(violations(stack, resources), "usage-metered", "(budget of tier premium per", why)


def test_a_budget_with_no_price_rules_is_refused() -> None:
    stack = _budgeted()
    (rule,) = stack.objects("PrometheusRule")

    def unpriced(inputs: dict[str, Any]) -> None:
        for group in inputs["spec"]["groups"]:
            group["rules"] = [r for r in group["rules"] if r.get("record") != "maas:price_per_request"]

    resources = edited(stack, "PrometheusRule", rule.object_name, unpriced)
    assert_only(violations(stack, resources), "usage-metered", "bills in (none)")
