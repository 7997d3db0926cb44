"""The fake gateway's key service route (tests/suite/fake_keys.py): what the route's AuthPolicy
does before the real service answers, and Authorino's watch of the Secrets it writes."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest

from components.access import tiers
from tests.suite.fake import FakePlatform, Faults, fake_platform
from tests.suite.fake_keys import Watch
from tests.suite.test_scenarios import _config
from tests.support.kube_api import Store

STACK = "dev-oidc"
UNAUTHENTICATED = json.loads(tiers.UNAUTHENTICATED_BODY)


@pytest.fixture(scope="module")
def p() -> Iterator[FakePlatform]:
    with fake_platform(_config(STACK), Faults(), stack=STACK, key_service=True) as platform:
        yield platform


def test_a_key_reads_its_usage_and_nothing_else_of_the_service(p: FakePlatform) -> None:
    token = p.oidc_token("premiumuser1")
    minted = p.keys_call("POST", "/v1/api-keys", token, {"name": "k"})
    assert minted.status == 201, minted.body
    key = minted.json()["key"]
    p.until(lambda: p.keys_call("GET", "/v1/usage", key, scheme="APIKEY").status == 200, 10, "the key seen")
    for method, path in (("GET", "/v1/api-keys"), ("POST", "/v1/api-keys"), ("GET", "/v1/admin/audit")):
        reply = p.keys_call(method, path, key, {"name": "x"} if method == "POST" else None, scheme="APIKEY")
        assert (reply.status, reply.json()) == (401, UNAUTHENTICATED), (method, path, reply.body)
    assert p.keys_call("GET", "/v1/api-keys", "not.a.token").status == 401
    # The page is public; a path beside the routes' prefixes is not theirs.
    assert p.call(p.api_host, "/portal/", None, {}).status == 200
    assert p.keys_call("GET", "/v1/usagex", token).status == 404


def _secret(labels: dict[str, str], value: str = "sk-1") -> dict[str, object]:
    return {
        "metadata": {
            "name": "mk-1",
            "labels": {**tiers.AUTHORINO_WATCH, tiers.API_KEY_LABEL: "true", **labels},
            "annotations": {tiers.USER_ANNOTATION: "alice"},
        },
        "data": {tiers.API_KEY_DATA: base64.b64encode(value.encode()).decode()},
    }


def test_the_watch_gives_the_tier_of_the_rule_that_selects_a_secret() -> None:
    store = Store()
    watch = Watch(store, _config(STACK))
    store.create("kuadrant-system", _secret({tiers.TIER_LABEL: "free"}))
    assert watch() == [("sk-1", ("alice", "free", True))]
    # A tier no rule selects: an unselected key.
    store.patch(
        "kuadrant-system", "mk-1", {"metadata": {"resourceVersion": "2", "labels": {tiers.TIER_LABEL: "x"}}}
    )
    assert watch() == [("sk-1", ("alice", "x", False))]
    # Revoked (label and data gone in one write), then deleted: the value goes once.
    store.patch(
        "kuadrant-system",
        "mk-1",
        {"metadata": {"resourceVersion": "3", "labels": {tiers.API_KEY_LABEL: None}}, "data": None},
    )
    assert watch() == [("sk-1", None)]
    store.delete("kuadrant-system", "mk-1", {})
    assert watch() == []
    # Another namespace's Secret is not Authorino's.
    store.create("elsewhere", _secret({tiers.TIER_LABEL: "free"}))
    assert watch() == []
