"""Models on a real cluster: answers through the gateway, unreachable around it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import pytest

from components.pins import versions
from components.serving import gateway as gw
from tests.e2e.cluster import Deployment, chat, request, until
from tests.e2e.identities import any_key_header


@pytest.fixture(scope="module")
def models(deployment: Deployment) -> dict[str, dict[str, str]]:
    namespace = str(deployment.outputs["gatewayService"]).split("/")[0]
    for name in deployment.outputs["models"]:
        deployment.wait("Ready", f"inferenceservice/{name}", namespace, timeout_s=1800)
    found: dict[str, dict[str, str]] = deployment.outputs["models"]
    return found


def test_chat_completion_through_the_gateway_returns_usage(
    deployment: Deployment, gateway_port: int, models: dict[str, dict[str, str]]
) -> None:
    for name, model in models.items():
        host = model["url"].split("//")[1].split(":")[0]
        reply = request(
            gateway_port,
            host,
            "/v1/chat/completions",
            chat(model["servedModelName"]),
            any_key_header(deployment),
        )
        assert reply.status == 200, f"{name}: {reply.status} {reply.body[:200]!r}"
        usage = reply.json()["usage"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


@contextlib.contextmanager
def _outsider_namespace(deployment: Deployment) -> Iterator[str]:
    namespace = f"maas-e2e-{uuid.uuid4().hex[:8]}"
    deployment.kubectl("create", "namespace", namespace)
    # Pods are refused until the controller has made the namespace's default ServiceAccount
    # (kubernetes plugin/pkg/admission/serviceaccount/admission.go).
    until(
        lambda: (
            deployment.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode
            == 0
        ),
        60,
        f"the default ServiceAccount of {namespace}",
    )
    try:
        yield namespace
    finally:
        deployment.kubectl("delete", "namespace", namespace, "--wait=false", check=False)


def _probe(deployment: Deployment, namespace: str, url: str, host: str | None = None) -> int:
    """Exit code of curl run in a pod of `namespace` (0: an HTTP answer came back)."""
    header = ["-H", f"Host: {host}"] if host else []
    done = deployment.kubectl(
        "run", f"probe-{uuid.uuid4().hex[:8]}", "-n", namespace, "--rm", "-i", "--restart=Never",
        f"--image={versions.E2E_PROBE_IMAGE}", "--command", "--",
        "curl", "-sS", "-o", "/dev/null", "--max-time", "5", *header, url,
        check=False, timeout=180,
    )  # fmt: skip
    return done.returncode


def test_a_model_is_unreachable_except_through_the_gateway(
    deployment: Deployment, models: dict[str, dict[str, str]]
) -> None:
    models_namespace, gateway_service = str(deployment.outputs["gatewayService"]).split("/")
    with _outsider_namespace(deployment) as outsider:
        some_host = next(iter(models.values()))["url"].split("//")[1].split(":")[0]
        gateway_url = (
            f"http://{gateway_service}.{models_namespace}.svc.cluster.local:{gw.HTTP_PORT}/v1/models"
        )
        assert _probe(deployment, outsider, gateway_url, some_host) == 0, (
            "control: the gateway itself answers"
        )
        for name in models:
            direct = f"http://{name}-predictor.{models_namespace}.svc.cluster.local/v1/models"
            assert _probe(deployment, outsider, direct) != 0, f"{name}: reachable without the gateway"
