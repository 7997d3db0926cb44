"""Relaxing a rule: a stack exempts a resource only with a recorded reason."""

from __future__ import annotations

from typing import Any

from tests.support.policy_runner import edited, violations


def test_a_stack_relaxes_a_rule_only_with_a_reason(stack_of: Any) -> None:
    stack = stack_of("dev")
    resources = edited(
        stack,
        "InferenceService",
        "simulator",
        lambda i: i["spec"]["predictor"]["containers"][0].update(image="sim:latest"),
    )
    explained = {"exemptions": ["llm/simulator"], "reason": "a locally built simulator for a demo"}
    assert violations(stack, resources, **{"images-pinned": explained}) == []
    unexplained = violations(stack, resources, **{"images-pinned": {"exemptions": ["llm/simulator"]}})
    assert any("has no reason" in v.message for v in unexplained)
    assert any("is not pinned" in v.message for v in unexplained)
