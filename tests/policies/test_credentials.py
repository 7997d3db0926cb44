"""Credential rules: no demo, default or plain-text credential outside dev stacks."""

from __future__ import annotations

import copy
from typing import Any

from maas_policies import KNOWN_DEFAULT_CREDENTIALS
from tests.support.policy_runner import assert_only, edited, replaced, violations


def test_a_demo_credential_is_refused_outside_dev_only(stack_of: Any) -> None:
    leaked = KNOWN_DEFAULT_CREDENTIALS.pattern.split("|")[0]
    for name in ("gpu", "dev"):
        stack = stack_of(name)
        resources = edited(
            stack, "Secret", "grafana-admin", lambda i: i["stringData"].update({"admin-password": leaked})
        )
        found = violations(stack, resources)
        if name == "dev":
            assert found == []
        else:
            assert_only(
                found,
                "no-default-credentials",
                "Secret llm-observability/grafana-admin",
                "known default or demo credential",
            )


def test_a_plain_text_credential_in_helm_values_is_refused_outside_dev(stack_of: Any) -> None:
    stack = stack_of("gpu")
    release = stack.release("monitoring")
    values = copy.deepcopy(release.inputs["values"])
    values["grafana"]["adminPassword"] = "not-generated-anywhere"
    resources = replaced(stack.resources, release, {**release.inputs, "values": values})
    assert_only(
        violations(stack, resources),
        "no-default-credentials",
        "values.grafana.adminPassword holds a credential in plain text",
    )


def test_keycloak_without_a_database_is_refused_outside_dev(stack_of: Any) -> None:
    stack = stack_of("gpu")
    resources = edited(stack, "Keycloak", "keycloak", lambda i: i["spec"].pop("db"))
    assert_only(violations(stack, resources), "keycloak-production-mode", "lacks a database (spec.db)")


def test_keycloak_in_dev_mode_is_refused_outside_dev(stack_of: Any) -> None:
    """start-dev inside a list (the operator's pod template args): under the CLI the spec is a
    read-only mapping whose str() is its address, so the rule reads every string in it."""
    stack = stack_of("gpu")
    containers = [{"name": "keycloak", "args": ["start-dev"]}]
    resources = edited(
        stack,
        "Keycloak",
        "keycloak",
        lambda i: i["spec"].update({"unsupported": {"podTemplate": {"spec": {"containers": containers}}}}),
    )
    found = violations(stack, resources)
    assert_only(found, "keycloak-production-mode", "production mode (start, not start-dev)")


def test_a_credential_inside_a_list_of_helm_values_is_refused_outside_dev(stack_of: Any) -> None:
    stack = stack_of("gpu")
    release = stack.release("monitoring")
    values = copy.deepcopy(release.inputs["values"])
    leaked = KNOWN_DEFAULT_CREDENTIALS.pattern.split("|")[0]
    values["grafana"]["extraContainers"] = [{"name": "sidecar", "env": [{"name": "LOGIN", "value": leaked}]}]
    resources = replaced(stack.resources, release, {**release.inputs, "values": values})
    assert_only(
        violations(stack, resources),
        "no-default-credentials",
        "values.grafana.extraContainers[0].env[0].value holds a known default or demo credential",
    )
