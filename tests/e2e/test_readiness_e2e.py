"""Everything the stack declares reports ready on the cluster, with current status (bounded waits)."""

from __future__ import annotations

from functools import partial
from typing import Any

from tests.e2e.cluster import until
from tests.e2e.platform import Live


def _condition(item: dict[str, Any], kind: str) -> bool:
    generation = item["metadata"].get("generation")
    for condition in item.get("status", {}).get("conditions", []):
        if condition["type"] == kind:
            current = condition.get("observedGeneration", generation) == generation
            return bool(condition["status"] == "True" and current)
    return False


def _all_ready(platform: Live, resource: str, namespace: str, condition: str) -> bool:
    items = platform.get(resource, "-n", namespace)["items"]
    return bool(items) and all(_condition(item, condition) for item in items)


def test_gateway_programmed_policies_enforced_models_ready(platform: Live) -> None:
    namespace = platform.models_namespace
    for resource, condition, within_s in (
        ("gateway", "Programmed", 300),
        ("authpolicy", "Enforced", 300),
        ("ratelimitpolicy", "Enforced", 300),
        ("tokenratelimitpolicy", "Enforced", 300),
        ("inferenceservice", "Ready", 1800),
    ):
        until(
            partial(_all_ready, platform, resource, namespace, condition),
            within_s,
            f"{resource} {condition}",
        )


def test_kuadrant_is_ready(platform: Live) -> None:
    (kuadrant,) = platform.get("kuadrant", "-A")["items"]
    assert _condition(kuadrant, "Ready")
