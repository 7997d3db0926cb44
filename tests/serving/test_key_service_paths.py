"""The key service's paths through the gateway's own filters, run in LuaJIT as the gateway
chains them: the request-body filter neither routes, refuses nor rewrites them and removes a
client's identity headers; the policy guard, which refuses metered requests no policy judged,
leaves them to the key service's AuthPolicy; the tier caps ignore them."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.config import DEFAULT_TIERS
from components.serving import gateway
from tests.serving.test_policy_guard import CATALOG, DOMAIN, _filter

FORGED = [
    ("x-maas-user", "admin"),
    ("x-maas-tier", "enterprise"),
    ("x-maas-via", "token"),
    ("x-maas-admin", "true"),
]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/api-keys", b'{"name": "laptop", "expiresInDays": 30}'),
        ("GET", "/v1/api-keys", b""),
        ("DELETE", "/v1/api-keys/0123abcd", b""),
        ("GET", "/v1/usage", b""),
        ("POST", "/v1/admin/api-keys/revoke", b'{"tier": "free", "dryRun": true}'),
        ("GET", "/portal/", b""),
    ],
)
def test_key_service_requests_pass_the_gateways_filters_as_sent(
    luajit: str, tmp_path: Path, method: str, path: str, body: bytes
) -> None:
    headers = [(":method", method), (":authority", f"api.{DOMAIN}"), (":path", path), *FORGED]
    source = gateway.request_filter_source(f"api.{DOMAIN}", CATALOG, DOMAIN, ())
    passed, reply = _filter(luajit, source, headers, body, tmp_path / "body")
    assert reply is None, reply
    names = [name for name, _ in passed]
    assert not {name for name, _ in FORGED} & set(names), passed
    assert "x-maas-model" not in names
    assert (tmp_path / "body" / "0.out").read_bytes() == body
    # no policy's marker: the guard still passes what is not a metered path
    _, reply = _filter(luajit, gateway.policy_guard_source(), list(passed), body, tmp_path / "guard")
    assert reply is None, reply
    # and the tier caps after Kuadrant take nothing from it
    caps = gateway.tier_caps_source(DEFAULT_TIERS, CATALOG)
    _, reply = _filter(luajit, caps, [*passed, ("x-maas-tier", "free")], body, tmp_path / "caps")
    assert reply is None, reply
