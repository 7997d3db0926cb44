"""The key service (components/access/key_service/server.py) run as a process against the
stand-in Kubernetes API (tests/support/kube_api.py) and Keycloak admin API, driven over HTTP
as the gateway would call it. Each test names the misbehaviour it catches."""

from __future__ import annotations

import ast
import base64
import concurrent.futures
import datetime
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.access import tiers
from components.access.key_service import server
from tests.support.key_service import NAMESPACE, KeyService, Reply, key_service, wait_for
from tests.support.keycloak_admin import keycloak
from tests.support.kube_api import KubeApi, kube_api
from tests.support.ports import free_port

TIERS = {"free": {"maxKeys": 3, "maxLifetimeDays": 30}, "premium": {"maxKeys": 5, "maxLifetimeDays": 90}}


@pytest.fixture
def kube() -> Iterator[KubeApi]:
    with kube_api() as api:
        yield api


@pytest.fixture
def service(kube: KubeApi, tmp_path: Path) -> Iterator[KeyService]:
    with key_service(kube, tmp_path, TIERS) as running:
        yield running


def _openai_error(reply: Reply, status: int, kind: str, code: str) -> None:
    """OpenAI's error shape, exactly: {"error": {"message", "type", "code"}}."""
    assert reply.status == status, reply
    assert set(reply.body) == {"error"}, reply.body
    assert set(reply.body["error"]) == {"message", "type", "code"}, reply.body
    assert reply.body["error"]["type"] == kind, reply.body
    assert reply.body["error"]["code"] == code, reply.body
    assert reply.body["error"]["message"]


def _live(kube: KubeApi) -> list[dict[str, Any]]:
    return [
        s for s in kube.store.secrets(NAMESPACE) if s["metadata"].get("labels", {}).get(server.API_KEY_LABEL)
    ]


def test_labels_match_the_policy_side() -> None:
    # server.py cannot import the program; the AuthPolicy selects by these names.
    assert dict([server.AUTHORINO_WATCH]) == tiers.AUTHORINO_WATCH
    assert server.API_KEY_LABEL == tiers.API_KEY_LABEL
    assert server.USER_ANNOTATION == tiers.USER_ANNOTATION
    assert server.API_KEY_DATA == tiers.API_KEY_DATA


def test_server_imports_the_standard_library_only() -> None:
    # It runs on a stock python image from a ConfigMap: nothing can be pip-installed there.
    tree = ast.parse(Path(server.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert {name.split(".")[0] for name in imported} - {"__future__"} <= sys.stdlib_module_names


def test_mint_shows_the_key_once_and_stores_it_for_authorino(service: KeyService, kube: KubeApi) -> None:
    minted = service.call("POST", "/v1/api-keys", {"name": "laptop"})
    assert minted.status == 201, minted
    assert minted.body["key"].startswith(f"sk-maas-{minted.body['id']}_")
    assert minted.body["tier"] == "free"
    expires = datetime.datetime.fromisoformat(minted.body["expires"])
    created = datetime.datetime.fromisoformat(minted.body["created"])
    assert expires - created == datetime.timedelta(days=30)  # the tier's maximum by default
    (secret,) = kube.store.secrets(NAMESPACE)
    labels, notes = secret["metadata"]["labels"], secret["metadata"]["annotations"]
    assert labels[server.API_KEY_LABEL] == "true"
    assert labels["authorino.kuadrant.io/managed-by"] == "authorino"
    assert labels[server.TIER_LABEL] == "free"
    assert notes[server.USER_ANNOTATION] == "alice"
    assert base64.b64decode(secret["data"]["api_key"]).decode() == minted.body["key"]

    listed = service.call("GET", "/v1/api-keys")
    assert listed.status == 200
    assert listed.body["object"] == "list"
    assert listed.body["data"] == [{k: v for k, v in minted.body.items() if k != "key"}]
    assert minted.body["key"] not in str(listed.body)
    assert minted.body["key"] not in str(service.call("GET", "/v1/admin/api-keys", admin=True).body)
    assert minted.body["key"] not in "\n".join(service.lines)


def test_list_holds_only_the_callers_keys(service: KeyService) -> None:
    mine = service.call("POST", "/v1/api-keys", {"name": "mine"}).body
    theirs = service.call("POST", "/v1/api-keys", {"name": "theirs"}, user="bob").body
    assert [k["id"] for k in service.call("GET", "/v1/api-keys").body["data"]] == [mine["id"]]
    assert [k["id"] for k in service.call("GET", "/v1/api-keys", user="bob").body["data"]] == [theirs["id"]]


def test_revoke_tombstones_the_key_and_frees_its_slot(service: KeyService, kube: KubeApi) -> None:
    key = service.call("POST", "/v1/api-keys", {"name": "k"}).body
    revoked = service.call("DELETE", f"/v1/api-keys/{key['id']}")
    assert revoked.status == 200, revoked
    assert revoked.body == {"id": key["id"], "revoked": True}
    assert _live(kube) == []
    assert service.call("GET", "/v1/api-keys").body["data"] == []
    (tombstone,) = kube.store.secrets(NAMESPACE)
    meta = tombstone["metadata"]
    # Out of Authorino's reach: no key data, no api-key label, not even its watch label.
    assert "data" not in tombstone or server.API_KEY_DATA not in tombstone["data"]
    assert server.API_KEY_LABEL not in meta["labels"]
    assert meta["labels"][server.TOMBSTONE_LABEL] == "true"
    assert meta["annotations"][server.REVOKED_BY] == "alice"
    assert meta["annotations"][server.REVOKED_REASON] == "revoked"
    # What Authorino's watch sees: the key turned into a tombstone without its data in one
    # write, a record created, the slot deleted.
    slot = [(kind, o) for kind, o in kube.store.events if o["metadata"]["name"].startswith("mk-")]
    assert [kind for kind, _ in slot] == ["ADDED", "MODIFIED", "DELETED"]
    assert server.API_KEY_LABEL not in slot[1][1]["metadata"]["labels"]
    assert server.API_KEY_DATA not in slot[1][1].get("data", {})
    # Revoking again is a 404 like any unknown key.
    _openai_error(
        service.call("DELETE", f"/v1/api-keys/{key['id']}"), 404, "not_found_error", "key_not_found"
    )


def test_another_users_key_can_be_neither_listed_nor_revoked(service: KeyService, kube: KubeApi) -> None:
    bobs = service.call("POST", "/v1/api-keys", {"name": "bob's"}, user="bob").body
    assert service.call("GET", "/v1/api-keys").body["data"] == []
    unknown = service.call("DELETE", "/v1/api-keys/0123456789abcdef")
    stolen = service.call("DELETE", f"/v1/api-keys/{bobs['id']}")
    _openai_error(stolen, 404, "not_found_error", "key_not_found")
    # The same answer as an unknown id: nothing tells alice the key exists.
    assert stolen.body["error"]["type"] == unknown.body["error"]["type"]
    assert len(_live(kube)) == 1


def test_a_secret_with_my_owner_label_but_another_user_is_not_mine(
    service: KeyService, kube: KubeApi
) -> None:
    # The owner label is a truncated hash; the user annotation is what decides.
    forged = {
        "metadata": {
            "name": "mk-forged-0",
            "labels": {server.OWNER_LABEL: server.owner_hash("alice"), server.API_KEY_LABEL: "true"},
            "annotations": {server.USER_ANNOTATION: "mallory", server.KEY_ID: "f0f0f0f0f0f0f0f0"},
        }
    }
    kube.store.create(NAMESPACE, forged)
    assert service.call("GET", "/v1/api-keys").body["data"] == []
    _openai_error(
        service.call("DELETE", "/v1/api-keys/f0f0f0f0f0f0f0f0"), 404, "not_found_error", "key_not_found"
    )


def test_cap_refuses_the_key_over_the_tier_maximum(service: KeyService, kube: KubeApi) -> None:
    for n in range(3):
        assert service.call("POST", "/v1/api-keys", {"name": f"k{n}"}).status == 201
    _openai_error(
        service.call("POST", "/v1/api-keys", {"name": "k3"}), 403, "permission_error", "key_cap_reached"
    )
    assert len(_live(kube)) == 3
    first = service.call("GET", "/v1/api-keys").body["data"][0]["id"]
    service.call("DELETE", f"/v1/api-keys/{first}")
    assert service.call("POST", "/v1/api-keys", {"name": "again"}).status == 201


def test_concurrent_mints_for_the_last_slots_stop_at_the_cap(service: KeyService, kube: KubeApi) -> None:
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        replies = list(pool.map(lambda n: service.call("POST", "/v1/api-keys", {"name": f"r{n}"}), range(12)))
    assert sorted(r.status for r in replies) == [201] * 3 + [403] * 9
    assert len(_live(kube)) == 3
    assert len({r.body["id"] for r in replies if r.status == 201}) == 3


def test_lifetime_beyond_the_tier_maximum_is_refused(service: KeyService, kube: KubeApi) -> None:
    _openai_error(
        service.call("POST", "/v1/api-keys", {"name": "k", "expiresInDays": 31}),
        400,
        "invalid_request_error",
        "expires_too_long",
    )
    assert kube.store.secrets(NAMESPACE) == []
    ok = service.call("POST", "/v1/api-keys", {"name": "k", "expiresInDays": 7}).body
    assert datetime.datetime.fromisoformat(ok["expires"]) - datetime.datetime.fromisoformat(
        ok["created"]
    ) == datetime.timedelta(days=7)


@pytest.mark.parametrize(
    ("call", "status", "kind", "code"),
    [
        ({"user": None}, 401, "authentication_error", "unauthenticated"),
        ({"via": "key"}, 403, "permission_error", "token_required"),
        ({"tier": "gold"}, 403, "permission_error", "no_tier"),
        ({"body": {"name": ""}}, 400, "invalid_request_error", "invalid_name"),
        ({"body": {"name": "k", "expiresInDays": "7"}}, 400, "invalid_request_error", "invalid_expiry"),
        ({"body": [1]}, 400, "invalid_request_error", "invalid_json"),
        ({"body": {"name": "x" * 20_000}}, 400, "invalid_request_error", "body_too_large"),
    ],
)
def test_refused_mints_answer_in_openai_shape(
    service: KeyService, kube: KubeApi, call: dict[str, Any], status: int, kind: str, code: str
) -> None:
    body = call.pop("body", {"name": "k"})
    _openai_error(service.call("POST", "/v1/api-keys", body, **call), status, kind, code)
    assert kube.store.secrets(NAMESPACE) == []


def test_a_key_authenticated_caller_can_neither_list_nor_revoke(service: KeyService) -> None:
    key = service.call("POST", "/v1/api-keys", {"name": "k"}).body
    _openai_error(service.call("GET", "/v1/api-keys", via="key"), 403, "permission_error", "token_required")
    _openai_error(
        service.call("DELETE", f"/v1/api-keys/{key['id']}", via="key"),
        403,
        "permission_error",
        "token_required",
    )
    assert len(service.call("GET", "/v1/api-keys").body["data"]) == 1


def test_unknown_route_answers_in_openai_shape(service: KeyService) -> None:
    _openai_error(service.call("GET", "/v1/nothing"), 404, "not_found_error", "not_found")


def _expire(kube: KubeApi, key_id: str) -> None:
    """Move a key's expiry into the past, as time passing would."""
    (secret,) = [s for s in _live(kube) if s["metadata"]["annotations"][server.KEY_ID] == key_id]
    past = {server.EXPIRES: "2000-01-01T00:00:00Z"}
    meta = {"resourceVersion": secret["metadata"]["resourceVersion"], "annotations": past}
    kube.store.patch(NAMESPACE, secret["metadata"]["name"], {"metadata": meta})


def test_sweeper_revokes_expired_keys_only(kube: KubeApi, tmp_path: Path) -> None:
    with key_service(kube, tmp_path, TIERS, {"SWEEP_INTERVAL_SECONDS": "0.1"}) as service:
        old = service.call("POST", "/v1/api-keys", {"name": "old"}).body
        new = service.call("POST", "/v1/api-keys", {"name": "new"}).body
        _expire(kube, old["id"])

        def tombstones() -> list[dict[str, Any]]:
            return [s for s in kube.store.secrets(NAMESPACE) if s["metadata"]["name"] == f"mt-{old['id']}"]

        # A revoke is three writes (the tombstone patch, its copy, the slot's delete): wait for all.
        wait_for(lambda: len(_live(kube)) == 1 and tombstones())
        assert [k["id"] for k in service.call("GET", "/v1/api-keys").body["data"]] == [new["id"]]
        (tombstone,) = tombstones()
        assert tombstone["metadata"]["annotations"][server.REVOKED_REASON] == "expired"
        wait_for(
            lambda: any(e["event"] == "audit.revoke" and e["reason"] == "expired" for e in service.audit())
        )


def test_tombstones_go_after_retention(kube: KubeApi, tmp_path: Path) -> None:
    with key_service(
        kube, tmp_path, TIERS, {"SWEEP_INTERVAL_SECONDS": "0.1", "TOMBSTONE_RETENTION_DAYS": "0"}
    ) as service:
        keep = service.call("POST", "/v1/api-keys", {"name": "keep"}).body
        gone = service.call("POST", "/v1/api-keys", {"name": "gone"}).body
        service.call("DELETE", f"/v1/api-keys/{gone['id']}")
        wait_for(lambda: len(kube.store.secrets(NAMESPACE)) == 1)
        (left,) = kube.store.secrets(NAMESPACE)
        assert left["metadata"]["annotations"][server.KEY_ID] == keep["id"]


def test_revoke_retries_when_another_writer_changed_the_key(service: KeyService, kube: KubeApi) -> None:
    key = service.call("POST", "/v1/api-keys", {"name": "k"}).body
    # A tier sync relabels the key between the service's read and its patch: 409 Conflict.
    kube.store.before_patch.append(lambda s: s["metadata"]["labels"].update({server.TIER_LABEL: "premium"}))
    assert service.call("DELETE", f"/v1/api-keys/{key['id']}").status == 200
    assert kube.store.before_patch == []
    assert _live(kube) == []


def test_a_leftover_tombstone_in_a_slot_is_retired_by_the_sweeper(kube: KubeApi, tmp_path: Path) -> None:
    with key_service(kube, tmp_path, TIERS, {"SWEEP_INTERVAL_SECONDS": "0.1"}) as service:
        key = service.call("POST", "/v1/api-keys", {"name": "k"}).body
        # A replica that died between the tombstone patch and the move leaves this behind.
        (secret,) = _live(kube)
        meta = {
            "resourceVersion": secret["metadata"]["resourceVersion"],
            "labels": {server.API_KEY_LABEL: None},
            "annotations": {server.REVOKED_AT: server.rfc3339(server.now())},
        }
        kube.store.patch(NAMESPACE, secret["metadata"]["name"], {"metadata": meta, "data": {"api_key": None}})
        wait_for(
            lambda: [s["metadata"]["name"] for s in kube.store.secrets(NAMESPACE)] == [f"mt-{key['id']}"]
        )


def test_tier_follows_the_keycloak_group(kube: KubeApi, tmp_path: Path) -> None:
    with keycloak({"free": ["alice", "bob"], "premium": []}) as kc:
        secret_file = tmp_path / "client-secret"
        secret_file.write_text(kc.realm.client_secret)
        env = {
            "KEYCLOAK_URL": kc.url,
            "KEYCLOAK_REALM": kc.realm.name,
            "KEYCLOAK_CLIENT_ID": kc.realm.client_id,
            "KEYCLOAK_CLIENT_SECRET_FILE": str(secret_file),
            "TIER_SYNC_INTERVAL_SECONDS": "0.1",
        }
        with key_service(kube, tmp_path, TIERS, env) as service:
            alices = service.call("POST", "/v1/api-keys", {"name": "a"}).body
            service.call("POST", "/v1/api-keys", {"name": "b"}, user="bob")

            def tier_of(user: str) -> set[str]:
                return {k["tier"] for k in service.call("GET", "/v1/api-keys", user=user).body["data"]}

            kc.realm.move("alice", "premium")
            wait_for(lambda: tier_of("alice") == {"premium"})
            assert tier_of("bob") == {"free"}
            wait_for(
                lambda: any(
                    e["event"] == "audit.tier" and e["id"] == alices["id"] and e["new"] == "premium"
                    for e in service.audit()
                )
            )
            # Out of every tier group: the user's keys are revoked, nobody else's.
            kc.realm.move("alice", None)
            wait_for(lambda: tier_of("alice") == set())
            assert tier_of("bob") == {"free"}
            tombstone = kube.store.get(NAMESPACE, f"mt-{alices['id']}")
            assert tombstone["metadata"]["annotations"][server.REVOKED_REASON] == "no-tier"


def test_admin_lists_and_bulk_revokes_with_a_dry_run(service: KeyService, kube: KubeApi) -> None:
    a = service.call("POST", "/v1/api-keys", {"name": "a"}).body
    b = service.call("POST", "/v1/api-keys", {"name": "b"}, user="bob", tier="premium").body
    c = service.call("POST", "/v1/api-keys", {"name": "c"}, user="carol", tier="premium").body
    listed = service.call("GET", "/v1/admin/api-keys", user="root", admin=True).body["data"]
    assert {(k["id"], k["user"]) for k in listed} == {
        (a["id"], "alice"),
        (b["id"], "bob"),
        (c["id"], "carol"),
    }
    premium = service.call("GET", "/v1/admin/api-keys?tier=premium", user="root", admin=True).body["data"]
    assert {k["id"] for k in premium} == {b["id"], c["id"]}
    bobs = service.call("GET", "/v1/admin/api-keys?user=bob", user="root", admin=True).body["data"]
    assert [k["id"] for k in bobs] == [b["id"]]

    dry = service.call("POST", "/v1/admin/api-keys/revoke", {"tier": "premium", "dryRun": True}, admin=True)
    assert dry.status == 200
    assert dry.body["dryRun"] is True
    assert sorted(dry.body["revoked"]) == sorted([b["id"], c["id"]])
    assert len(_live(kube)) == 3  # a dry run revokes nothing

    done = service.call("POST", "/v1/admin/api-keys/revoke", {"tier": "premium", "dryRun": False}, admin=True)
    assert sorted(done.body["revoked"]) == sorted([b["id"], c["id"]])
    assert [s["metadata"]["annotations"][server.KEY_ID] for s in _live(kube)] == [a["id"]]
    wait_for(
        lambda: [e["dryRun"] for e in service.audit() if e["event"] == "audit.bulk_revoke"] == [True, False]
    )
    _openai_error(
        service.call("POST", "/v1/admin/api-keys/revoke", {"dryRun": False}, admin=True),
        400,
        "invalid_request_error",
        "no_target",
    )
    _openai_error(
        service.call("POST", "/v1/admin/api-keys/revoke", {"user": "alice"}, admin=True),
        400,
        "invalid_request_error",
        "invalid_dry_run",
    )


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/v1/admin/api-keys", None),
        ("POST", "/v1/admin/api-keys/revoke", {"user": "bob", "dryRun": False}),
        ("GET", "/v1/admin/audit", None),
    ],
)
def test_admin_routes_refuse_others(
    service: KeyService, kube: KubeApi, method: str, path: str, body: Any
) -> None:
    service.call("POST", "/v1/api-keys", {"name": "b"}, user="bob")
    _openai_error(service.call(method, path, body), 403, "permission_error", "admin_required")
    # An administrator's key is no administrator's login.
    _openai_error(
        service.call(method, path, body, admin=True, via="key"), 403, "permission_error", "token_required"
    )
    assert len(_live(kube)) == 1


def test_audit_records_each_event(service: KeyService) -> None:
    kept = service.call("POST", "/v1/api-keys", {"name": "kept"}).body
    dropped = service.call("POST", "/v1/api-keys", {"name": "dropped"}).body
    service.call("DELETE", f"/v1/api-keys/{dropped['id']}")
    service.call("POST", "/v1/api-keys", {"name": "bob's"}, user="bob")
    trail = service.call("GET", "/v1/admin/audit?user=alice", user="root", admin=True).body["data"]
    assert {e["id"] for e in trail if e["event"] == "mint"} == {kept["id"], dropped["id"]}
    (revoke,) = [e for e in trail if e["event"] == "revoke"]
    assert revoke["id"] == dropped["id"]
    assert revoke["by"] == "alice"
    assert revoke["from"] == "127.0.0.1"
    assert {e["user"] for e in trail} == {"alice"}
    # The same events as JSON lines on stdout, for the log pipeline.
    wanted = {("audit.mint", kept["id"]), ("audit.revoke", dropped["id"])}
    wait_for(lambda: wanted <= {(e["event"], e.get("id")) for e in service.audit()})


def test_probes_and_the_page(kube: KubeApi, tmp_path: Path) -> None:
    program = tmp_path / "app" / "server.py"
    program.parent.mkdir()
    program.write_text(Path(server.__file__).read_text())
    with key_service(kube, tmp_path, TIERS, program=program) as service:
        _openai_error(service.call("GET", "/portal/"), 404, "not_found_error", "not_found")
        (program.parent / "page.html").write_text("<!doctype html><title>keys</title>")
        page = service.call("GET", "/portal/")
        assert page.status == 200
        assert page.body == "<!doctype html><title>keys</title>"
        assert service.call("GET", "/readyz", user=None).status == 200
        # Not ready without the key store (here: a token the API server refuses).
        (tmp_path / "serviceaccount" / "token").write_text("rotated-away")
        _openai_error(service.call("GET", "/readyz", user=None), 502, "api_error", "store_unavailable")


def test_an_unreachable_api_server_is_a_502_in_openai_shape(kube: KubeApi, tmp_path: Path) -> None:
    nowhere = {"KUBE_API_URL": f"http://127.0.0.1:{free_port()}"}
    with key_service(kube, tmp_path, TIERS, nowhere) as service:
        _openai_error(service.call("GET", "/readyz", user=None), 502, "api_error", "store_unavailable")
        _openai_error(
            service.call("POST", "/v1/api-keys", {"name": "k"}), 502, "api_error", "store_unavailable"
        )
