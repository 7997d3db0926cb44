"""kuadrant-config-fits: a catalog whose Kuadrant configuration passes half a cap is refused
before anything is applied, with the numbers and the fix."""

from __future__ import annotations

import dataclasses
from typing import Any

from components.access import tiers
from components.serving.catalog import POLICY_ROUTE
from harness.bench import catalog
from harness.program import Declared, evaluate
from maas_policies.capacity import KUADRANT_CONFIG_FITS
from tests.support import policy_runner

GATEWAY = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference-gateway"}


def _todays_shape(declared: Declared) -> Declared | None:
    """The stack as it was before issue 27: the tier policies on the Gateway, so on every model
    route, limits counted per user (and route), no policy route."""
    if declared.is_k8s_object and declared.object_name == POLICY_ROUTE:
        return None
    if declared.kind not in ("AuthPolicy", "RateLimitPolicy", "TokenRateLimitPolicy"):
        return declared

    def retarget(props: dict[str, Any]) -> dict[str, Any]:
        spec = {**props["spec"], "targetRef": GATEWAY}
        if "limits" in spec:
            per_user = [{"expression": tiers.USER_ID}]
            spec["limits"] = {name: {**limit, "counters": per_user} for name, limit in spec["limits"].items()}
        return {**props, "spec": spec}

    return dataclasses.replace(declared, inputs=retarget(declared.inputs), outputs=retarget(declared.outputs))


def _refusals(models: int, tiers: int, todays_shape: bool = False) -> list[policy_runner.Violation]:
    result = evaluate("dev", catalog(models, tiers))
    assert result.error is None
    if todays_shape:
        shaped = [_todays_shape(r) for r in result.resources]
        result = dataclasses.replace(result, resources=[r for r in shaped if r is not None])
    found = policy_runner.run(result, {}, None, [KUADRANT_CONFIG_FITS])
    assert all(v.policy == KUADRANT_CONFIG_FITS.name for v in found)
    return found


def test_38_models_of_3_tiers_on_the_gateways_policies_are_refused_with_the_numbers_and_the_fix() -> None:
    """Issue 27: with the policies on the Gateway, at 38 models of 3 tiers the wasm config
    reaches etcd's cap, where Kuadrant stops writing it and says nothing; the pack refuses it
    (and anything past half) first."""
    (refusal,) = _refusals(38, 3, todays_shape=True)
    assert refusal.mandatory
    assert refusal.message.startswith("Gateway llm/inference-gateway: Kuadrant's wasm config (EnvoyFilter)")
    assert "of its 1,572,864-byte cap, past the 50% this pack allows (305 action sets" in refusal.message
    assert "Fix: fewer action sets" in refusal.message


def test_a_catalog_within_half_of_every_cap_passes() -> None:
    assert _refusals(10, 3, todays_shape=True) == []
    assert _refusals(38, 3) == []
