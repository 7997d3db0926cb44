"""What a deployed stack's objects must look like (S1, S2, S3, S8, S10, R8), judged the
same way on what the cluster runs (tests/e2e/test_inventory_e2e.py, objects as
`kubectl get -o json` gives them) and, offline, on what the program declares
(tests/suite/test_inventory.py): each function returns the problems it finds, so a check
that could not fail shows offline.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

from components.access import tiers as tier_labels
from components.config import StackConfig

# A container image that names a version: a digest, or a tag other than `latest`.
_VERSIONED = re.compile(r"^[^@]+@sha256:[0-9a-f]{64}$|^[^@]*:(?!latest$)[\w][\w.-]*$")


def _key_value(secret: Mapping[str, Any]) -> str:
    """The key as stored: `stringData` as declared, or base64 `data` as the API returns it."""
    if tier_labels.API_KEY_DATA in (secret.get("stringData") or {}):
        return str(secret["stringData"][tier_labels.API_KEY_DATA])
    encoded = (secret.get("data") or {}).get(tier_labels.API_KEY_DATA, "")
    return base64.b64decode(encoded).decode(errors="replace")


def key_secret_problems(secrets: Iterable[Mapping[str, Any]], config: StackConfig) -> list[str]:
    """S3: every configured user's key Secret carries Authorino's watch label, our selector
    label, the user and tier annotations (the tier the config gives the user); S2: each key
    is at least 32 characters."""
    problems = []
    ours = {
        s["metadata"].get("annotations", {}).get(tier_labels.USER_ANNOTATION): s
        for s in secrets
        if s["metadata"].get("labels", {}).get(tier_labels.API_KEY_LABEL) == "true"
    }
    for user in config.users if config.auth.api_keys else ():
        secret = ours.get(user.name)
        if secret is None:
            problems.append(f"{user.name}: no key Secret labelled {tier_labels.API_KEY_LABEL}=true")
            continue
        labels = secret["metadata"].get("labels", {})
        for label, value in tier_labels.AUTHORINO_WATCH.items():
            if labels.get(label) != value:
                problems.append(f"{user.name}: label {label}={labels.get(label)!r}, not {value!r}")
        if labels.get(tier_labels.TIER_LABEL) != user.tier:
            problems.append(f"{user.name}: tier label {labels.get(tier_labels.TIER_LABEL)!r}")
        if len(_key_value(secret)) < 32:
            problems.append(f"{user.name}: a key of {len(_key_value(secret))} characters, under 32")
    return problems


def container_problems(pods: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """R8: every container of the pods we define (name -> pod spec) has a readiness and a
    liveness probe, and CPU and memory requests and limits."""
    problems = []
    for pod, spec in pods.items():
        for container in spec.get("containers", []):
            where = f"{pod}/{container.get('name')}"
            for probe in ("readinessProbe", "livenessProbe"):
                if not container.get(probe):
                    problems.append(f"{where}: no {probe}")
            resources = container.get("resources") or {}
            for kind in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if not (resources.get(kind) or {}).get(resource):
                        problems.append(f"{where}: no {resource} {kind[:-1]}")
    return problems


def image_problems(images: Mapping[str, str]) -> list[str]:
    """S8: every image (where it runs -> image) names its version: a digest, or a tag other
    than `latest` (an untagged image is `latest`)."""
    return [f"{where}: {image}" for where, image in images.items() if not _VERSIONED.match(image)]


def plaintext_problems(objects: Iterable[Mapping[str, Any]], credentials: Iterable[str]) -> list[str]:
    """S1: no credential's value appears in an object that is not a Secret."""
    values = [c for c in credentials if len(c) >= 8]
    problems = []
    for item in objects:
        if item.get("kind") == "Secret":
            continue
        text, metadata = json.dumps(item), item.get("metadata", {})
        name = f"{item.get('kind')} {metadata.get('namespace')}/{metadata.get('name')}"
        problems += [f"{name} holds a credential in clear" for value in values if value in text][:1]
    return problems


def keycloak_mode_problems(spec: Mapping[str, Any]) -> list[str]:
    """S10: Keycloak's server container runs `start`, never `start-dev` (dev mode's H2 and
    open hostname), whatever else its arguments add."""
    problems = []
    for container in spec.get("containers", []):
        words = [*container.get("command", []), *container.get("args", [])]
        if "start-dev" in words:
            problems.append(f"{container.get('name')}: start-dev")
        elif "start" not in words:
            problems.append(f"{container.get('name')}: not `start` ({words})")
    return problems
