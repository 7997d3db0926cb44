"""Models and exposure on a real cluster (CHECKLIST S5, S6, S7), scheduling and scaling."""

from __future__ import annotations

import pytest

from tests.e2e import scenarios
from tests.e2e.platform import Live


def test_a_model_is_unreachable_except_through_the_gateway(platform: Live) -> None:
    scenarios.models_only_through_the_gateway(platform, platform.models_namespace, platform.gateway_service)


def test_only_the_gateway_service_is_exposed(platform: Live) -> None:
    scenarios.only_the_gateway_is_exposed(platform, platform.gateway_service)


def test_model_pods_meet_the_pod_security_level_readme_claims(platform: Live) -> None:
    scenarios.pods_meet_their_pod_security_level(platform)


def test_higher_tiers_are_served_first_when_the_pool_is_saturated(platform: Live) -> None:
    """Runs where a model is pooled (dev in CI): a burst of free and enterprise keys, the free
    ones sending enterprise's objective header, and enterprise is answered first."""
    scenarios.higher_tiers_are_served_first_when_saturated(platform)


def test_one_users_burst_does_not_hold_back_another_of_the_same_tier(platform: Live) -> None:
    """Runs where a model is pooled (dev in CI): one enterprise key's burst, then another
    enterprise key's single request, answered ahead of most of the burst."""
    if not any(m.scheduling == "pool" for m in platform.config.models):
        pytest.skip(f"stack {platform.stack} pools no model; CI runs dev")
    scenarios.one_users_burst_does_not_hold_back_another(platform)


@pytest.mark.disruptive
def test_refusals_keep_their_status_while_an_endpoint_picker_is_gone(platform: Live) -> None:
    """Runs where a model is pooled (dev in CI): one of its pickers deleted, its replacement
    held off by cordoned nodes; a request without a key still gets 401, one with a key 200."""
    if not any(m.scheduling == "pool" for m in platform.config.models):
        pytest.skip(f"stack {platform.stack} pools no model; CI runs dev")
    scenarios.refusals_keep_their_status_while_a_picker_is_gone(platform)


@pytest.mark.disruptive
def test_a_model_scales_on_its_queue(platform: Live) -> None:
    """Runs where a model has `autoscaling` (dev-oidc in CI): a burst grows it to maxReplicas,
    and idle it returns to minReplicas."""
    scenarios.model_scales_on_its_queue(platform)
