"""OpenShift only: clients reach the platform through the Routes on the apps domain, no
port-forward, and the same keys and refusals hold there (docs/openshift.md)."""

from __future__ import annotations

import urllib.parse

import pytest

from tests.e2e.cluster import until
from tests.e2e.platform import Live


@pytest.fixture(autouse=True)
def on_openshift(platform: Live) -> None:
    if platform.config.flavour != "openshift":
        pytest.skip(f"stack {platform.stack} is not on OpenShift (maas:flavour {platform.config.flavour})")


def test_the_shared_host_answers_through_its_route_with_a_key_and_refuses_without(platform: Live) -> None:
    host = str(urllib.parse.urlsplit(str(platform.outputs["apiUrl"])).hostname)
    with platform.new_key(platform.config.tiers[0].name) as key:
        # Authorino learns of a new key's Secret within moments (it watches them).
        until(
            lambda: platform.via_route(host, "/v1/models", key.header).status == 200,
            60,
            f"a 200 from {host} through its Route",
        )
        assert platform.via_route(host, "/v1/models", {}).status == 401


def test_every_models_host_has_its_route(platform: Live) -> None:
    for model in platform.models:
        answered = platform.via_route(model.host, "/v1/models", {})
        # The router found the Route and the gateway answered: Kuadrant refuses the keyless call.
        assert answered.status == 401, (model.host, answered.status)
