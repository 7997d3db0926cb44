"""Credentials for end-to-end tests: the stack's own, and short-lived ones made per run.

A per-run key is a Secret shaped exactly like the program's (same labels, annotations and
namespace), with a user id no earlier run used: its counters start at zero, so limit
tests do not depend on what ran in the last window.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from components.access import tiers as tiers_module
from tests.e2e.cluster import Deployment, port_forward, until


def any_key_header(deployment: Deployment) -> dict[str, str]:
    """An Authorization header for some user with the highest limits; none when the stack has no keys."""
    keys: dict[str, str] = deployment.outputs.get("apiKeys", {})
    if not keys:
        return {}
    users: dict[str, str] = deployment.outputs["users"]
    tier_order: list[str] = deployment.outputs["tiers"]
    best = max(keys, key=lambda user: tier_order.index(users[user]))
    return {"Authorization": f"APIKEY {keys[best]}"}


def kuadrant_namespace(deployment: Deployment) -> str:
    found = deployment.get("kuadrant", "-A")["items"]
    assert found, "no Kuadrant instance"
    namespace: str = found[0]["metadata"]["namespace"]
    return namespace


@dataclass
class TemporaryKey:
    user: str
    tier: str
    key: str
    secret: str

    @property
    def header(self) -> dict[str, str]:
        return {"Authorization": f"APIKEY {self.key}"}


def _secret_manifest(name: str, namespace: str, user: str, tier: str, key: str, selected: bool) -> str:
    labels = {**tiers_module.AUTHORINO_WATCH, **({tiers_module.API_KEY_LABEL: "true"} if selected else {})}
    return json.dumps(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "labels": labels,
                "annotations": {tiers_module.USER_ANNOTATION: user, tiers_module.TIER_ANNOTATION: tier},
            },
            "data": {tiers_module.API_KEY_DATA: base64.b64encode(key.encode()).decode()},
        }
    )


def apply_key(deployment: Deployment, key: TemporaryKey, namespace: str, selected: bool = True) -> None:
    manifest = _secret_manifest(key.secret, namespace, key.user, key.tier, key.key, selected)
    deployment.kubectl("apply", "-f", "-", stdin=manifest)


@contextlib.contextmanager
def temporary_key(deployment: Deployment, tier: str, selected: bool = True) -> Iterator[TemporaryKey]:
    """A new user of `tier` with a fresh key, removed afterwards."""
    run = uuid.uuid4().hex[:10]
    key = TemporaryKey(f"e2e-{run}", tier, secrets.token_urlsafe(36), f"apikey-e2e-{run}")
    namespace = kuadrant_namespace(deployment)
    apply_key(deployment, key, namespace, selected)
    try:
        yield key
    finally:
        deployment.kubectl("delete", "secret", key.secret, "-n", namespace, "--ignore-not-found", check=False)


def oidc_token(deployment: Deployment, user: str) -> str:
    """A Keycloak access token for a realm user, by the password grant through a port-forward."""
    password = deployment.outputs["keycloakPasswords"][user]
    issuer = str(deployment.outputs["oidcIssuer"])
    service, namespace = issuer.split("//")[1].split(".")[:2]
    path = "/" + issuer.split("/", 3)[3] + "/protocol/openid-connect/token"
    form = urllib.parse.urlencode(
        {
            "grant_type": "password",
            "client_id": deployment.outputs["oidcClientId"],
            "username": user,
            "password": password,
        }
    ).encode()
    with port_forward(deployment, namespace, service, 8080) as local:

        def fetch() -> str:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{local}{path}", data=form, timeout=10
                ) as reply:
                    token: str = json.load(reply).get("access_token", "")
                    return token
            except OSError:
                return ""

        return until(fetch, timeout_s=60, what=f"a token for {user}")
