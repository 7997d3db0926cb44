"""The cluster's inventory checks (tests/e2e/inventory.py), run on what each kind stack
declares: they pass there, and each fails on a variant that breaks what it checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness.program import evaluate, typed_config
from tests.e2e import inventory
from tests.support.configs import kind_stacks


def _objects(stack: str, kind: str) -> list[dict[str, Any]]:
    return [copy.deepcopy(r.inputs) for r in evaluate(stack).resources if r.type.rsplit(":", 1)[-1] == kind]


def _pods(stack: str) -> dict[str, Any]:
    pods: dict[str, Any] = {}
    for kind in ("Deployment", "StatefulSet"):
        pods |= {o["metadata"]["name"]: o["spec"]["template"]["spec"] for o in _objects(stack, kind)}
    for isvc in _objects(stack, "InferenceService"):
        pods[isvc["metadata"]["name"]] = {"containers": isvc["spec"]["predictor"]["containers"]}
    return pods


@pytest.mark.parametrize("stack", kind_stacks())
def test_key_secrets_s2_s3(stack: str) -> None:
    config = typed_config(stack)
    secrets = _objects(stack, "Secret")
    assert inventory.key_secret_problems(secrets, config) == []
    unwatched = copy.deepcopy(secrets)
    for secret in unwatched:
        secret["metadata"].get("labels", {}).pop("authorino.kuadrant.io/managed-by", None)
    assert len(inventory.key_secret_problems(unwatched, config)) == len(config.users)
    short = copy.deepcopy(secrets)
    for secret in short:
        if "api_key" in secret.get("stringData", {}):
            secret["stringData"]["api_key"] = "x" * 31
    assert any("under 32" in p for p in inventory.key_secret_problems(short, config))


@pytest.mark.parametrize("stack", kind_stacks())
def test_containers_r8(stack: str) -> None:
    pods = _pods(stack)
    assert pods
    assert inventory.container_problems(pods) == []
    unprobed = copy.deepcopy(pods)
    next(iter(unprobed.values()))["containers"][0].pop("livenessProbe")
    assert any("no livenessProbe" in p for p in inventory.container_problems(unprobed))


@pytest.mark.parametrize("stack", kind_stacks())
def test_images_s8(stack: str) -> None:
    images = {
        f"{pod}/{c['name']}": c["image"]
        for pod, spec in _pods(stack).items()
        for c in [*spec.get("initContainers", []), *spec["containers"]]
    }
    assert inventory.image_problems(images) == []
    for unpinned in ("nginx", "nginx:latest", "ghcr.io/x/y@sha256:abc"):
        assert inventory.image_problems({"pod": unpinned}) == [f"pod: {unpinned}"]


@pytest.mark.parametrize("stack", kind_stacks())
def test_credentials_s1(stack: str) -> None:
    declared = [r.inputs for r in evaluate(stack).resources if r.is_k8s_object]
    # The generated values: keys and passwords (usernames are names, not credentials).
    credentials = [
        str(value)
        for o in declared
        if o.get("kind") == "Secret"
        for key, value in (o.get("stringData") or {}).items()
        if "password" in key.lower() or key == "api_key"
    ]
    assert inventory.plaintext_problems(declared, credentials) == []
    leaked = {"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n"}, "data": {"k": credentials[0]}}
    assert inventory.plaintext_problems([*declared, leaked], credentials) == [
        "ConfigMap n/c holds a credential in clear"
    ]


def test_keycloak_mode_s10() -> None:
    assert inventory.keycloak_mode_problems({"containers": [{"name": "keycloak", "args": ["start"]}]}) == []
    assert inventory.keycloak_mode_problems({"containers": [{"name": "keycloak", "args": ["start-dev"]}]})
