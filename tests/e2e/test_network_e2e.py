"""Zero-trust ingress on a real cluster (CHECKLIST S11): kind's kindnetd enforces NetworkPolicy
(kind images/kindnetd, kube-network-policies; README "Network")."""

from __future__ import annotations

from tests.e2e import scenarios
from tests.e2e.platform import Live


def test_strangers_reach_only_the_front_door(platform: Live) -> None:
    scenarios.strangers_reach_only_the_front_door(
        platform, platform.models_namespace, platform.gateway_service
    )
