"""Metering on a real cluster: Prometheus's per-user numbers match the traffic (L9, L15)."""

from __future__ import annotations

import pytest

from tests.e2e import scenarios
from tests.e2e.platform import Live


@pytest.fixture(autouse=True)
def observed(platform: Live) -> None:
    if not platform.config.observability.enabled:
        pytest.skip(f"stack {platform.stack} has no observability (maas:observability.enabled is false)")


@pytest.mark.parametrize("shared", [False, True], ids=["model host", "shared host"])
def test_per_user_requests_and_tokens_match_what_was_sent(platform: Live, shared: bool) -> None:
    scenarios.metering_matches_traffic(platform, shared=shared)


def test_kuadrant_reports_ready_with_istio_detected(platform: Live) -> None:
    scenarios.kuadrant_reports_ready(platform)


def test_every_component_has_a_healthy_scrape_target(platform: Live) -> None:
    scenarios.every_component_is_scraped(platform)
