"""kuadrant-config-fits: a catalog whose Kuadrant configuration passes half a cap is refused
before anything is applied, with the numbers and the fix."""

from __future__ import annotations

from harness.bench import catalog
from harness.program import evaluate
from maas_policies.capacity import KUADRANT_CONFIG_FITS
from tests.support import policy_runner, shapes


def _refusals(models: int, tiers: int, todays_shape: bool = False) -> list[policy_runner.Violation]:
    result = evaluate("dev", catalog(models, tiers))
    assert result.error is None
    if todays_shape:
        result = shapes.on_the_gateway(result)
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
