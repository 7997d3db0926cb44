"""Metering rules: routes publish only metered endpoints, and every stream carries its usage."""

from __future__ import annotations

from typing import Any

import pytest

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
