"""Isolation rules: model pods admit traffic from named sources only."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.support.policy_runner import assert_only, replaced, violations


@pytest.mark.parametrize("how", ["removed", "admits everyone"])
def test_a_model_without_network_isolation_is_refused(stack_of: Any, how: str) -> None:
    stack = stack_of("dev")
    policy = stack.one("NetworkPolicy", "simulator-ingress")
    if how == "removed":
        resources = [r for r in stack.resources if r.urn != policy.urn]
    else:
        open_to_all = copy.deepcopy(policy.inputs)
        open_to_all["spec"]["ingress"] = [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
        resources = replaced(stack.resources, policy, open_to_all)
    assert_only(
        violations(stack, resources),
        "models-isolated",
        "InferenceService llm/simulator",
        "without the gateway",
    )
