"""Credentials the deployed stack hands out (its secret outputs)."""

from __future__ import annotations

from tests.e2e.cluster import Deployment


def any_key_header(deployment: Deployment) -> dict[str, str]:
    """An Authorization header for some user with the highest limits; none when the stack has no keys."""
    keys: dict[str, str] = deployment.outputs.get("apiKeys", {})
    if not keys:
        return {}
    users: dict[str, str] = deployment.outputs["users"]
    tiers: list[str] = deployment.outputs["tiers"]
    best = max(keys, key=lambda user: tiers.index(users[user]))
    return {"Authorization": f"APIKEY {keys[best]}"}
