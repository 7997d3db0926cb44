"""The stand-in Kubernetes API (tests/support/kube_api.py) answers as the real one does for
the calls the key service makes; the cases are those of its cited sources."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest

from tests.support.kube_api import ApiStatusError, SelectorError, Store, kube_api, parse_selector

LABELS = {"app": "keys", "tier": "free"}


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("", True),
        ("app=keys", True),
        ("app==keys", True),
        ("app=other", False),
        ("app!=other", True),
        ("missing!=x", True),  # `!=` holds for an object without the key
        ("tier in (free, premium)", True),
        ("tier in (premium)", False),
        ("tier notin (premium)", True),
        ("missing notin (x)", True),
        ("app", True),
        ("missing", False),
        ("!missing", True),
        ("!app", False),
        ("app=keys,tier in (premium)", False),  # requirements are ANDed
        ("app=keys, tier in (free,gold), !missing", True),
    ],
)
def test_selectors_match_as_apimachinery(selector: str, matches: bool) -> None:
    assert all(r.matches(LABELS) for r in parse_selector(selector)) is matches


@pytest.mark.parametrize("selector", ["tier in ()", "a=b=c", "tier in (free"])
def test_bad_selectors_are_refused(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_selector(selector)


def _secret(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "data": {"api_key": "eA=="}}


def test_writes_conflict_and_version_as_the_api_server() -> None:
    store = Store()
    created = store.create("ns", _secret("a", app="keys"))
    version = created["metadata"]["resourceVersion"]
    with pytest.raises(ApiStatusError, match="already exists") as exists:
        store.create("ns", _secret("a"))
    assert exists.value.body["reason"] == "AlreadyExists"
    patched = store.patch("ns", "a", {"metadata": {"resourceVersion": version, "labels": {"app": None}}})
    assert patched["metadata"]["labels"] == {}
    assert int(patched["metadata"]["resourceVersion"]) > int(version)
    with pytest.raises(ApiStatusError, match="has been modified") as stale:
        store.patch("ns", "a", {"metadata": {"resourceVersion": version}})
    assert stale.value.body["code"] == 409
    with pytest.raises(ApiStatusError, match="Precondition failed"):
        store.delete("ns", "a", {"preconditions": {"resourceVersion": version}})
    store.delete("ns", "a", {"preconditions": {"resourceVersion": patched["metadata"]["resourceVersion"]}})
    with pytest.raises(ApiStatusError, match="not found") as missing:
        store.delete("ns", "a", {})
    assert missing.value.body["reason"] == "NotFound"
    with pytest.raises(ApiStatusError, match="Invalid value"):
        store.create("ns", _secret("b", owner="x" * 64))


def test_lists_page_with_continue_over_http() -> None:
    with kube_api() as api:
        for n in range(5):
            api.store.create("ns", _secret(f"s{n}", app="keys"))
        api.store.create("other", _secret("s9", app="keys"))
        names: list[str] = []
        token = ""
        while True:
            query = "labelSelector=app%3Dkeys&limit=2" + (f"&continue={token}" if token else "")
            request = urllib.request.Request(f"{api.url}/api/v1/namespaces/ns/secrets?{query}")
            request.add_header("Authorization", f"Bearer {api.token}")
            with urllib.request.urlopen(request) as response:
                page = json.loads(response.read())
            names += [i["metadata"]["name"] for i in page["items"]]
            token = page["metadata"].get("continue", "")
            if not token:
                break
        assert names == ["s0", "s1", "s2", "s3", "s4"]
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{api.url}/api/v1/namespaces/ns/secrets")
        assert refused.value.code == 401
