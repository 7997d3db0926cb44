"""Metering on a real cluster: Prometheus's per-user numbers match the traffic (L9, L15)."""

from __future__ import annotations

import json
import urllib.parse
from functools import partial
from typing import Any

import pytest

from components.platform import monitoring
from tests.e2e.cluster import Deployment, chat, port_forward, request, until
from tests.e2e.identities import temporary_key


def _query(port: int, expr: str) -> list[dict[str, Any]]:
    reply = request(port, "localhost", f"/api/v1/query?{urllib.parse.urlencode({'query': expr})}")
    body = json.loads(reply.body)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _value(port: int, expr: str) -> float | None:
    found = _query(port, expr)
    return float(found[0]["value"][1]) if found else None


def _equals(port: int, expr: str, expected: float) -> bool:
    return _value(port, expr) == expected


@pytest.fixture(scope="module")
def prometheus_port(deployment: Deployment) -> Any:
    if "prometheusPortForward" not in deployment.outputs:
        pytest.skip("this stack has no observability (maas:observability.enabled is false)")
    namespace = str(deployment.outputs["prometheusPortForward"]).split(" -n ")[1].split()[0]
    with port_forward(
        deployment, namespace, monitoring.PROMETHEUS_SERVICE, monitoring.PROMETHEUS_PORT
    ) as port:
        yield port


def test_per_user_requests_and_tokens_match_what_was_sent(
    deployment: Deployment, gateway_port: int, prometheus_port: int
) -> None:
    name, model = next(iter(deployment.outputs["models"].items()))
    host = model["url"].split("//")[1].split(":")[0]
    tier = deployment.outputs["tiers"][-1]
    sent, tokens = 3, 0
    with temporary_key(deployment, tier) as key:
        until(
            lambda: request(gateway_port, host, "/v1/models", None, key.header).status in (200, 404),
            30,
            "the key",
        )
        for _ in range(sent):
            reply = request(
                gateway_port, host, "/v1/chat/completions", chat(model["servedModelName"]), key.header
            )
            assert reply.status == 200, reply.body[:200]
            tokens += int(reply.json()["usage"]["total_tokens"])
        selector = f'{{user="{key.user}", tier="{tier}", model="{name}"}}'
        # Rules run every evaluation interval (30s) after a scrape: bounded wait, no sleep.
        until(
            lambda: _value(prometheus_port, f"maas:requests:total{selector}") == sent, 180, "requests metered"
        )
        assert _value(prometheus_port, f"maas:tokens:total{selector}") == tokens
        labelled = _query(prometheus_port, f'authorized_calls{{user="{key.user}"}}')
        assert {sample["metric"]["tier"] for sample in labelled} == {tier}


def test_kuadrant_reports_ready_with_istio_detected(deployment: Deployment, prometheus_port: int) -> None:
    """L15: kuadrant_ready == 1 and kuadrant_dependency_detected{dependency="istio"} == 1."""
    until(lambda: _value(prometheus_port, "max(kuadrant_ready)") == 1, 180, "kuadrant_ready")
    assert _value(prometheus_port, 'max(kuadrant_dependency_detected{dependency="istio"})') == 1


def test_every_component_has_a_healthy_scrape_target(deployment: Deployment, prometheus_port: int) -> None:
    for component in ("limitador", "authorino", "gateway", "model", "kuadrant-operator"):
        query = f'max(up{{maas_component="{component}"}})'
        until(partial(_equals, prometheus_port, query, 1.0), 180, f"a healthy {component} target")
