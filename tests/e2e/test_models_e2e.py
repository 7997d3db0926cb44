"""Models and exposure on a real cluster (CHECKLIST S5, S6, S7)."""

from __future__ import annotations

from tests.e2e import scenarios
from tests.e2e.platform import Live


def test_a_model_is_unreachable_except_through_the_gateway(platform: Live) -> None:
    scenarios.models_only_through_the_gateway(platform, platform.models_namespace, platform.gateway_service)


def test_only_the_gateway_service_is_exposed(platform: Live) -> None:
    scenarios.only_the_gateway_is_exposed(platform, platform.gateway_service)


def test_model_pods_meet_the_pod_security_level_readme_claims(platform: Live) -> None:
    scenarios.pods_meet_their_pod_security_level(platform)
