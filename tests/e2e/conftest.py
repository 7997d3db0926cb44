"""End-to-end tests against a deployed stack; skipped unless MAAS_E2E_STACK names one.

Run them after `make deploy-dev` with `make e2e` (or MAAS_E2E_STACK=<stack> pytest tests/e2e).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from components.serving import gateway as gw
from tests.e2e.cluster import Deployment, port_forward, stack_outputs

STACK_ENV = "MAAS_E2E_STACK"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.path):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def deployment() -> Deployment:
    stack = os.environ.get(STACK_ENV)
    if not stack:
        pytest.skip(
            f"needs a deployed stack: run `make deploy-dev`, then `make e2e` ({STACK_ENV}=dev); "
            "this machine has no cluster"
        )
    missing = [tool for tool in ("kubectl", "pulumi") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")
    return Deployment(stack, stack_outputs(stack))


@pytest.fixture(scope="session")
def gateway_port(deployment: Deployment) -> Iterator[int]:
    namespace, service = str(deployment.outputs["gatewayService"]).split("/")
    deployment.wait("Programmed", f"gateway/{service.removesuffix('-istio')}", namespace)
    with port_forward(deployment, namespace, service, gw.HTTP_PORT) as port:
        yield port
