"""maas:keyService and each tier's keys: the defaults, and one message per problem naming the key."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import DEFAULT_TIERS
from harness.program import stack_names, typed_config
from tests.support.configs import assert_refused, evaluate_variant


def _tiers(**keys: Any) -> list[dict[str, Any]]:
    """The default tier table as a stack file writes it, with `keys` on its first tier."""
    table = [t.model_dump(by_alias=True, exclude_defaults=True) for t in DEFAULT_TIERS]
    table[0]["keys"] = keys
    return table


def test_defaults_follow_oidc() -> None:
    for stack in stack_names():
        config = typed_config(stack)
        assert config.key_service_on == config.auth.oidc.enabled
        assert config.key_service.replicas == 2
        assert config.key_service.sweep_interval == "30s"
        assert config.key_service.tier_sync_interval == "60s"
        assert [(r.limit, r.window) for r in config.key_service.mints] == [(10, "1m")]
        assert [(r.limit, r.window) for r in config.key_service.calls] == [(120, "1m")]
        assert all((t.keys.max_keys, t.keys.max_lifetime_days) == (5, 90) for t in config.tiers)


def test_a_tier_sets_its_own_cap_and_lifetime() -> None:
    result = evaluate_variant("dev-oidc", {"maas:tiers": _tiers(maxKeys=2, maxLifetimeDays=7)})
    assert result.error is None, result.error
    container = result.one("Deployment", "key-service").inputs["spec"]["template"]["spec"]["containers"][0]
    (variable,) = [e for e in container["env"] if e["name"] == "KEY_TIERS"]
    assert '"free": {"maxKeys": 2, "maxLifetimeDays": 7}' in variable["value"]


def test_switched_off_it_declares_nothing() -> None:
    result = evaluate_variant("dev-oidc", {"maas:keyService": {"enabled": False}})
    assert result.error is None, result.error
    assert not [d for d in result.objects("Deployment") if d.object_name == "key-service"]


@pytest.mark.parametrize(
    ("stack", "changes", "expected"),
    [
        (
            "dev",
            {"maas:keyService": {"enabled": True}},
            "maas:keyService.enabled: the key service knows users",
        ),
        (
            "dev-oidc",
            {
                "maas:keyService": {"enabled": True},
                "maas:auth": {"oidc": {"enabled": True}, "apiKeys": False},
            },
            "maas:keyService.enabled: the keys it mints would be refused",
        ),
        ("dev-oidc", {"maas:keyService": {"sweepInterval": "2h"}}, "must be between 1s and 1h"),
        ("dev-oidc", {"maas:keyService": {"replicas": 0}}, "replicas"),
        ("dev-oidc", {"maas:keyService": {"mints": {"limit": 5, "window": "1d"}}}, "write 24h"),
        (
            "dev-oidc",
            {"maas:keyService": {"calls": {"limit": 5, "window": "1500ms"}}},
            "whole number of seconds",
        ),
        ("dev-oidc", {"maas:keyService": {"calls": []}}, "an empty list would limit nothing"),
        (
            "dev-oidc",
            {"maas:keyService": {"mints": [{"limit": 5, "window": "1m"}, {"limit": 3, "window": "1h"}]}},
            "maas:keyService.mints[1].limit: 3 per 1h is less than",
        ),
        (
            "dev-oidc",
            {"maas:keyService": {"calls": [{"limit": 5, "window": "60s"}, {"limit": 9, "window": "1m"}]}},
            "maas:keyService.calls[1].window: '1m' is the window of maas:keyService.calls[0] too",
        ),
        ("dev-oidc", {"maas:tiers": _tiers(maxLifetimeDays=0)}, "maxLifetimeDays"),
        ("dev-oidc", {"maas:tiers": _tiers(maxKeys=1000)}, "maxKeys"),
        (
            "dev-oidc",
            {"maas:tiers": [{**_tiers()[0], "name": "maas-admins"}], "maas:users": []},
            "'maas-admins' is the realm's group of key administrators",
        ),
    ],
)
def test_each_problem_names_its_key(stack: str, changes: dict[str, Any], expected: str) -> None:
    assert_refused(stack, changes, expected)
