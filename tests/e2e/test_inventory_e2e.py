"""What the cluster runs, read back (CHECKLIST S1, S2, S3, S8, S10, R8): the same checks
tests/suite/test_inventory.py runs on what the program declares (tests/e2e/inventory.py)."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from components.access import tiers as tier_labels
from components.names import KEYCLOAK_NAMESPACE
from harness.program import Evaluation, evaluate
from tests.e2e import inventory
from tests.e2e.platform import Live

OURS = "app.kubernetes.io/part-of=maas-platform"


@cache
def _declared(stack: str) -> Evaluation:
    return evaluate(stack)


def _namespaces(platform: Live) -> list[str]:
    return [n["metadata"]["name"] for n in platform.get("namespaces", "-l", OURS)["items"]]


def _running(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pods if p.get("status", {}).get("phase") == "Running"]


def test_key_secrets_carry_their_labels_annotations_and_long_keys(platform: Live) -> None:
    secrets = platform.get(
        "secrets", "-n", platform.kuadrant_namespace, "-l", f"{tier_labels.API_KEY_LABEL}=true"
    )["items"]
    assert inventory.key_secret_problems(secrets, platform.config) == []


def test_every_container_we_define_has_probes_requests_and_limits(platform: Live) -> None:
    """The running pods of each Deployment, StatefulSet and InferenceService the stack
    declares (found by the selector it declares, KServe's label for a model)."""
    pods: dict[str, Any] = {}
    for resource in _declared(platform.stack).resources:
        kind = resource.type.rsplit(":", 1)[-1]
        if kind in ("Deployment", "StatefulSet"):
            labels = resource.inputs["spec"]["selector"]["matchLabels"]
            selector = ",".join(f"{k}={v}" for k, v in labels.items())
        elif kind == "InferenceService":
            selector = f"serving.kserve.io/inferenceservice={resource.inputs['metadata']['name']}"
        else:
            continue
        namespace = resource.inputs["metadata"]["namespace"]
        found = _running(platform.get("pods", "-n", namespace, "-l", selector)["items"])
        assert found, f"no running pod of {kind} {namespace}/{resource.inputs['metadata']['name']}"
        pods |= {f"{namespace}/{p['metadata']['name']}": p["spec"] for p in found}
    assert inventory.container_problems(pods) == []


def test_every_image_running_in_our_namespaces_names_its_version(platform: Live) -> None:
    images = {}
    for namespace in _namespaces(platform):
        for pod in platform.get("pods", "-n", namespace)["items"]:
            spec = pod["spec"]
            for container in [*spec.get("initContainers", []), *spec["containers"]]:
                images[f"{namespace}/{pod['metadata']['name']}/{container['name']}"] = container["image"]
    assert images
    assert inventory.image_problems(images) == []


def test_no_credential_is_kept_in_clear_outside_a_secret(platform: Live) -> None:
    """The stack's keys and passwords (its outputs) appear in no ConfigMap, workload or
    custom resource of our namespaces."""
    outputs = platform.outputs
    credentials = [
        *(outputs.get("apiKeys") or {}).values(),
        *(outputs.get("keycloakPasswords") or {}).values(),
        *([outputs["keycloakAdmin"]["password"]] if outputs.get("keycloakAdmin") else []),
    ]
    assert credentials, "the stack outputs no credential to look for"
    kinds = "configmaps,deployments,statefulsets,jobs"
    if platform.config.auth.oidc.enabled:
        kinds += ",keycloaks.k8s.keycloak.org,keycloakrealmimports.k8s.keycloak.org"
    objects = [
        item for namespace in _namespaces(platform) for item in platform.get(kinds, "-n", namespace)["items"]
    ]
    assert inventory.plaintext_problems(objects, credentials) == []


def test_keycloak_runs_in_production_mode(platform: Live) -> None:
    """S10: the operator's StatefulSet for the Keycloak resource (named after it, in its
    namespace) runs `start`; the tokens test shows it answers."""
    if not platform.config.auth.oidc.enabled:
        pytest.skip(f"stack {platform.stack} has no Keycloak (auth.oidc.enabled is false)")
    statefulset = platform.get("statefulset", "keycloak", "-n", KEYCLOAK_NAMESPACE)
    assert inventory.keycloak_mode_problems(statefulset["spec"]["template"]["spec"]) == []
