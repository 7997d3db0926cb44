"""Zero-trust ingress on a real cluster (CHECKLIST S11): kind's kindnetd enforces NetworkPolicy
(kind images/kindnetd, kube-network-policies; docs/network.md)."""

from __future__ import annotations

import pytest

from tests.e2e import scenarios
from tests.e2e.platform import Live


def test_strangers_reach_only_the_front_door(platform: Live) -> None:
    scenarios.strangers_reach_only_the_front_door(
        platform, platform.models_namespace, platform.gateway_service
    )


def test_an_https_only_gateway_keeps_no_plain_http_listener(platform: Live) -> None:
    """S12, where the config says HTTPS only (dev-oidc in CI, gpu): every listener of the
    Gateway is HTTPS and its Service has no port 80, while every other test of the suite
    speaks HTTPS to it, checking its certificate (tests/e2e/platform.py `_tls`)."""
    from components.names import GATEWAY_NAME

    if not platform.config.gateway.https.only:
        pytest.skip(
            f"stack {platform.stack} serves plain HTTP inside the cluster (gateway.https.only is false)"
        )
    gateway = platform.get("gateway", GATEWAY_NAME, "-n", platform.models_namespace)
    assert {listener["protocol"] for listener in gateway["spec"]["listeners"]} == {"HTTPS"}
    service = platform.get("service", platform.gateway_service, "-n", platform.models_namespace)
    ports = {port["port"] for port in service["spec"]["ports"]}
    assert 443 in ports, ports
    assert 80 not in ports, ports
    assert platform.gateway_listener == ("https", 443)
