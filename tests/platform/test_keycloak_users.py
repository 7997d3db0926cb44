"""Keycloak day 2: the user sync brings the realm in step with the stack file.

The real script (components/access/keycloak_users.sh), with the files the program gives
it, runs against a stand-in of Keycloak's admin CLI that holds a realm (kcadm_fake.py);
each test asserts on the realm afterwards and on the commands sent.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from components.access import realm as realm_module
from components.access.realm import STACK_USERS_GROUP, USER_SYNC, user_sync_files
from components.access.tiers import ADMIN_GROUP
from components.config import OidcConfig, TierConfig, UserConfig
from components.platform import keycloak
from harness.program import Evaluation, typed_config

FAKE = Path(__file__).with_name("kcadm_fake.py")
SERVER = keycloak.default_hostname()
ADMIN = ("maas-admin", "admin-secret")


def _tiers(*names: str) -> list[TierConfig]:
    limits = {"requests": {"limit": 5, "window": "1m"}, "tokens": {"limit": 100, "window": "1m"}}
    return [TierConfig.model_validate({"name": n, **limits}) for n in names]


def _users(**tiers: str) -> list[UserConfig]:
    return [UserConfig.model_validate({"name": name, "tier": tier}) for name, tier in tiers.items()]


@dataclass
class Realm:
    root: Path

    @property
    def state(self) -> dict[str, Any]:
        return dict(json.loads((self.root / "state.json").read_text()))

    def members(self) -> dict[str, list[str]]:
        """username -> the names of its groups, sorted."""
        state = self.state
        return {
            u["username"]: sorted(state["groups"][g].lstrip("/") for g in u["groups"])
            for u in state["users"].values()
        }

    def user(self, name: str) -> dict[str, Any]:
        return next(u for u in self.state["users"].values() if u["username"] == name)

    def bodies(self) -> str:
        """What kcadm read from standard input (`-f -`) in the last run."""
        log = self.root / "calls.log.bodies"
        return log.read_text() if log.exists() else ""

    def client(self, client_id: str) -> dict[str, Any]:
        return next(c for c in self.state["clients"].values() if c["clientId"] == client_id)

    def writes(self) -> list[list[str]]:
        """The calls that change the realm (all but the login and reads), without --config."""
        return [call[: call.index("--config")] for call in self.calls() if call[0] not in ("config", "get")]

    def calls(self) -> list[list[str]]:
        log = self.root / "calls.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def sync(
        self,
        tiers: list[TierConfig],
        users: list[UserConfig],
        admin: tuple[str, str] = ADMIN,
        passwords: dict[str, str] | None = None,
        declared: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
    ) -> str:
        """Runs the script with the files the program gives it; `declared` is the realm the
        import is made of, `secrets` the client Secrets' files (placeholder -> value)."""
        files = user_sync_files(tiers, users, "maas.local", declared)
        for name, text in files.items():
            (self.root / name).write_text(text)
        secrets_dir = self.root / "client-secrets"
        if secrets:
            secrets_dir.mkdir(exist_ok=True)
            for name, value in secrets.items():
                (secrets_dir / name).write_text(value)
        (self.root / "admin").mkdir(exist_ok=True)
        (self.root / "admin" / "username").write_text(admin[0])
        (self.root / "admin" / "password").write_text(admin[1])
        (self.root / "passwords").mkdir(exist_ok=True)
        for user in users:
            given = (passwords or {}).get(user.name, f"password-of-{user.name}")
            (self.root / "passwords" / user.name).write_text(given)
        shim = self.root / "kcadm.sh"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{FAKE}" "$@"\n')
        shim.chmod(0o755)
        (self.root / "calls.log").unlink(missing_ok=True)
        (self.root / "calls.log.bodies").unlink(missing_ok=True)
        (self.root / "kcadm.config").unlink(missing_ok=True)
        env = {
            "PATH": os.environ["PATH"],
            "KEYCLOAK_URL": SERVER,
            "REALM": "maas",
            "MANAGED_GROUP": STACK_USERS_GROUP,
            "ADMIN_DIR": str(self.root / "admin"),
            "PASSWORDS_DIR": str(self.root / "passwords"),
            "LOGIN_WAIT": "5",
            "USERS_FILE": str(self.root / "users"),
            "TIERS_FILE": str(self.root / "tiers"),
            "GROUPS_FILE": str(self.root / "groups"),
            "CLIENTS_FILE": str(self.root / "clients"),
            "CLIENTS_DIR": str(self.root),
            "ROLES_FILE": str(self.root / "roles"),
            "REALM_FILE": str(self.root / "realm.json"),
            "SECRETS_DIR": str(secrets_dir),
            "KCADM": str(shim),
            "KCADM_CONFIG": str(self.root / "kcadm.config"),
            "KCADM_STATE": str(self.root / "state.json"),
            "KCADM_LOG": str(self.root / "calls.log"),
        }
        done = subprocess.run(
            ["bash", str(self.root / "sync.sh")],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if done.returncode != 0:
            raise RuntimeError(done.stderr)
        return done.stdout


@pytest.fixture
def realm(tmp_path: Path) -> Realm:
    """The realm as the import leaves it: the tier groups and the stack users' group, one stack
    user each in free and premium, and users of others'."""
    state = {
        "server": SERVER,
        "realm": "maas",
        "admin": list(ADMIN),
        "groups": {
            "g-free": "/free",
            "g-premium": "/premium",
            "g-ops": "/ops",
            "g-ops-free": "/ops/free",
            "g-stack": f"/{STACK_USERS_GROUP}",
        },
        # As Keycloak makes every realm: realm-management, whose roles admin clients are granted.
        "clients": {"c-rm": {"clientId": "realm-management", "roles": ["view-users", "manage-users"]}},
        "users": {
            "u-1": {"username": "freeuser1", "groups": ["g-free", "g-stack"], "password": "imported"},
            "u-2": {"username": "premiumuser1", "groups": ["g-premium", "g-stack"], "password": "imported"},
            # An administrator's own user, in no tier group: never the sync's business.
            "u-3": {"username": "operator", "groups": ["g-ops", "g-ops-free"], "password": "theirs"},
            # A self-service user an administrator put in a tier group (issue 29): not the
            # stack file's, so never deleted by it.
            "u-4": {"username": "selfserved", "groups": ["g-free"], "password": "theirs"},
        },
    }
    (tmp_path / "state.json").write_text(json.dumps(state))
    return Realm(tmp_path)


TIERS = _tiers("free", "premium", "enterprise")
IMPORTED = _users(freeuser1="free", premiumuser1="premium")


def test_an_added_user_gets_an_account_with_its_password_in_its_tiers_group(realm: Realm) -> None:
    out = realm.sync(TIERS, [*IMPORTED, *_users(enterprise1="enterprise")])
    stack = STACK_USERS_GROUP
    assert realm.members() == {
        "freeuser1": ["free", stack],
        "premiumuser1": [stack, "premium"],
        "operator": ["ops", "ops/free"],
        "selfserved": ["free"],
        "enterprise1": ["enterprise", stack],
    }
    added = realm.user("enterprise1")
    assert added["password"] == "password-of-enterprise1"
    assert added["enabled"] is True
    assert added["email"] == "enterprise1@maas.local"
    assert added["emailVerified"] is True
    assert "group enterprise created" in out
    assert "user enterprise1 created" in out


def test_a_removed_user_loses_the_account_and_others_are_left_alone(realm: Realm) -> None:
    out = realm.sync(TIERS, _users(premiumuser1="premium"))
    # Only the stack file's users go: an administrator's, and a self-service user in a tier
    # group, stay.
    assert realm.members() == {
        "premiumuser1": [STACK_USERS_GROUP, "premium"],
        "operator": ["ops", "ops/free"],
        "selfserved": ["free"],
    }
    assert out.strip() == "group enterprise created\nuser freeuser1 deleted"


def test_a_stack_user_imported_before_the_stack_users_group_joins_it(realm: Realm) -> None:
    """A realm imported before issue 29: its stack users are put in the group on the next run,
    so a later removal from the file deletes them."""
    state = realm.state
    for user in state["users"].values():
        user["groups"] = [g for g in user["groups"] if g != "g-stack"]
    del state["groups"]["g-stack"]
    (realm.root / "state.json").write_text(json.dumps(state))
    out = realm.sync(TIERS, IMPORTED)
    assert f"group {STACK_USERS_GROUP} created" in out
    assert realm.members()["freeuser1"] == ["free", STACK_USERS_GROUP]
    assert realm.members()["selfserved"] == ["free"]
    assert "user freeuser1 deleted" in realm.sync(TIERS, _users(premiumuser1="premium"))


def test_a_user_moved_to_another_tier_changes_group_and_keeps_its_password(realm: Realm) -> None:
    realm.sync(TIERS, _users(freeuser1="premium", premiumuser1="premium"))
    assert realm.members()["freeuser1"] == [STACK_USERS_GROUP, "premium"]
    assert realm.user("freeuser1")["password"] == "imported"


def test_a_second_run_changes_nothing(realm: Realm) -> None:
    wanted = [*IMPORTED, *_users(enterprise1="enterprise")]
    realm.sync(TIERS, wanted)
    before = realm.state
    assert realm.sync(TIERS, wanted) == ""
    assert realm.state == before
    verbs = {call[0] for call in realm.calls()}
    assert verbs == {"config", "get"}, verbs


def test_names_that_read_as_json_stay_strings(realm: Realm) -> None:
    """A DNS label may be all digits; kcadm would send an unquoted 123 as a number."""
    realm.sync(_tiers("free", "premium", "007"), [*IMPORTED, *_users(**{"123": "007"})])
    assert realm.members()["123"] == ["007", STACK_USERS_GROUP]
    assert realm.user("123")["username"] == "123"
    assert realm.user("123")["lastName"] == "007"


def test_no_password_is_on_a_command_line_but_the_new_users(realm: Realm) -> None:
    realm.sync(TIERS, IMPORTED)
    assert not any(ADMIN[1] in arg for call in realm.calls() for arg in call)


def test_every_call_uses_the_session_file_and_the_realm(realm: Realm) -> None:
    realm.sync(TIERS, IMPORTED, declared=_declared(), secrets={SECRET_FILE: SECRET})
    calls = realm.calls()
    assert calls[0][:2] == ["config", "credentials"]
    for call in calls:
        assert call[call.index("--config") + 1] == str(realm.root / "kcadm.config")
    for call in calls[1:]:
        # The realm itself is addressed by its path (kcadm: `realms/<realm>`, no -r).
        if call[1] == "realms/maas":
            assert "-r" not in call
        else:
            assert call[call.index("-r") + 1] == "maas"
    assert any(call[1] == "realms/maas" for call in calls)


def test_the_realms_origin_follows_the_stack_and_its_other_attributes_stay(realm: Realm) -> None:
    """A realm imported before its frontendUrl and lockout were declared gets them; a new
    origin replaces the old; what an administrator set beside them stays (the realm's fields
    are sent merged over the realm as read: `update -m`, since a realm's attributes are
    replaced whole)."""
    state = realm.state
    state["realm_rep"] = {"displayName": "Ours", "attributes": {"displayNameHtml": "<b>ours</b>"}}
    (realm.root / "state.json").write_text(json.dumps(state))
    realm.sync(TIERS, IMPORTED, declared=_declared(), secrets={SECRET_FILE: SECRET})
    assert realm.state["realm_rep"] == {
        "displayName": "Ours",
        "attributes": {"displayNameHtml": "<b>ours</b>", "frontendUrl": FRONTEND},
        "bruteForceProtected": True,
    }
    elsewhere = "https://api.example.com"
    realm.sync(TIERS, IMPORTED, declared=_declared(frontend=elsewhere), secrets={SECRET_FILE: SECRET})
    assert realm.state["realm_rep"]["attributes"] == {
        "displayNameHtml": "<b>ours</b>",
        "frontendUrl": elsewhere,
    }
    assert ["update", "realms/maas", "-m", "-f", "-"] in realm.writes()


def test_it_waits_for_keycloak_to_answer(realm: Realm) -> None:
    state = realm.state
    state["down_logins"] = 1
    (realm.root / "state.json").write_text(json.dumps(state))
    realm.sync(TIERS, [*IMPORTED, *_users(enterprise1="enterprise")])
    assert realm.members()["enterprise1"] == ["enterprise", STACK_USERS_GROUP]


def test_a_user_whose_password_is_missing_is_not_created(realm: Realm) -> None:
    """Created with its password in one call, or not at all: never an account without one."""
    with pytest.raises(RuntimeError, match="no password for enterprise1"):
        realm.sync(TIERS, [*IMPORTED, *_users(enterprise1="enterprise")], passwords={"enterprise1": ""})
    assert "enterprise1" not in realm.members()


def test_it_fails_loudly_and_changes_nothing_when_the_admin_is_refused(realm: Realm) -> None:
    before = realm.state
    with pytest.raises(RuntimeError, match="Invalid user credentials"):
        realm.sync(TIERS, _users(premiumuser1="premium"), admin=("maas-admin", "wrong"))
    assert realm.state == before
    assert len(realm.calls()) == 1, "a refused login is not retried"


def test_it_stops_at_the_first_failing_call(realm: Realm) -> None:
    """A failed lookup must not read as "no such user" (and create a duplicate)."""
    state = realm.state
    state["realm"] = "elsewhere"
    (realm.root / "state.json").write_text(json.dumps(state))
    with pytest.raises(RuntimeError, match="Realm not found"):
        realm.sync(TIERS, IMPORTED)
    assert realm.state["users"] == state["users"]


def test_the_job_reruns_exactly_when_the_users_change(stack_of: Any) -> None:
    """The digest in the pod template follows the users file: pulumi-kubernetes replaces a
    Job whose template changed (pulumi/pulumi-kubernetes@v4.32.0 provider/pkg/provider/diff.go),
    so a change of users runs a new sync."""
    from tests.support.configs import evaluate_variant

    stack: Evaluation = stack_of("dev-oidc")
    job = stack.one("Job", USER_SYNC)
    # Its name is fixed: the old Job goes first. One that failed is replaced at the next up.
    assert job.delete_before_replace
    assert job.inputs["metadata"]["annotations"]["pulumi.com/replaceUnready"] == "true"
    digest = job.inputs["spec"]["template"]["metadata"]["annotations"]
    users = [u.model_dump(by_alias=True, exclude_none=True) for u in typed_config("dev-oidc").users]
    same = evaluate_variant("dev-oidc", {"maas:users": users})
    more = evaluate_variant("dev-oidc", {"maas:users": [*users, {"name": "newuser", "tier": "free"}]})
    assert same.one("Job", USER_SYNC).inputs["spec"]["template"]["metadata"]["annotations"] == digest
    changed = more.one("Job", USER_SYNC).inputs["spec"]["template"]["metadata"]["annotations"]
    assert changed != digest
    assert "newuser free newuser@" in more.one("ConfigMap", USER_SYNC).inputs["data"]["users"]


# The realm's declared clients and groups (issue 29): the import's own JSON, brought in step
# by the same Job, so a realm imported before the key service gets them.
KEY_SERVICE = realm_module.KEY_SERVICE_CLIENT
PORTAL = realm_module.PORTAL_CLIENT
ADMINS = ADMIN_GROUP
PAGE = ["https://api.maas.local/portal/", "https://api.maas.local:8000/portal/"]
FRONTEND = "https://api.maas.local:8000"
# The key service client's placeholder (`${NAME}` in the import), the file the Job mounts.
SECRET_FILE = realm_module.key_service_client()["secret"][2:-1]
SECRET = "s3cretFromTheMountedSecretFile0"


def _declared(key_service: bool = True, page: list[str] = PAGE, frontend: str = FRONTEND) -> dict[str, Any]:
    """The realm the program imports (components/access/realm.py realm)."""
    return realm_module.realm(
        OidcConfig(),
        TIERS,
        key_service=key_service,
        portal_urls=page,
        frontend=frontend,
    )


def _imported(client_id: str, page: list[str] = PAGE) -> dict[str, Any]:
    """A client as the import made it, its secret filled."""
    (client,) = [c for c in _declared(page=page)["clients"] if c["clientId"] == client_id]
    return {**client, "secret": SECRET} if "secret" in client else dict(client)


def _add(realm: Realm, clients: dict[str, dict[str, Any]], **more: Any) -> None:
    state = realm.state
    state["clients"].update(clients)
    for key, value in more.items():
        state[key].update(value)
    (realm.root / "state.json").write_text(json.dumps(state))


def _account(realm: Realm) -> tuple[str, dict[str, Any]]:
    users = realm.state["users"].items()
    return next((u, user) for u, user in users if user.get("serviceAccountClientId") == KEY_SERVICE)


def _sync(realm: Realm, declared: dict[str, Any] | None = None) -> str:
    return realm.sync(TIERS, IMPORTED, declared=declared or _declared(), secrets={SECRET_FILE: SECRET})


@pytest.fixture
def before_29(realm: Realm) -> Realm:
    """A realm imported before issue 29: the CLI's client only, no key service, no page, no
    administrators' group."""
    _add(realm, {"c-cli": _imported("maas-cli")})
    return realm


def test_a_realm_imported_before_the_key_service_gets_its_clients_group_and_role(before_29: Realm) -> None:
    out = _sync(before_29)
    assert out.splitlines() == [
        "group enterprise created",
        f"group {ADMINS} created",
        f"client {KEY_SERVICE} created",
        f"client {PORTAL} created",
        f"client {KEY_SERVICE} granted realm-management view-users",
    ]
    # Created whole from the import's JSON, the secret from the mounted file.
    assert before_29.client(KEY_SERVICE) == {**_imported(KEY_SERVICE), "secret": SECRET}
    assert before_29.client(PORTAL) == _imported(PORTAL)
    assert before_29.client(PORTAL)["attributes"] == {"pkce.code.challenge.method": "S256"}
    assert f"/{ADMINS}" in before_29.state["groups"].values()
    account, user = _account(before_29)
    assert user["clientRoles"] == {"c-rm": ["view-users"]}
    r = ["-r", "maas"]
    body = ["-f", "-"]
    assert before_29.writes() == [
        ["update", "realms/maas", "-m", *body],
        ["create", "groups", *r, "-s", 'name="enterprise"', "-i"],
        ["create", "groups", *r, "-s", f'name="{ADMINS}"', "-i"],
        ["create", "clients", *r, *body],
        ["create", "clients", *r, *body],
        ["update", "clients/c-cli", *r, "-m", *body],
        ["add-roles", *r, "--uid", account, "--cid", "c-rm", "--rolename", "view-users"],
    ]


def test_existing_clients_get_only_the_fields_the_program_owns(realm: Realm) -> None:
    """New page URLs (Keycloak reached elsewhere), a PKCE method, flows and a secret that
    drifted are brought back; what an administrator set beside them stays."""
    theirs = {
        "name": "groups",
        "protocol": "openid-connect",
        "protocolMapper": "oidc-audience-mapper",
        "config": {"included.client.audience": "maas-key-service"},
    }
    old_page = ["https://keycloak.old.example/portal/"]
    portal = {
        **_imported(PORTAL, page=old_page),
        "enabled": False,
        "implicitFlowEnabled": True,
        "description": "set by an administrator",
        "attributes": {"pkce.code.challenge.method": "plain", "post.logout.redirect.uris": "+"},
        "protocolMappers": [*_imported(PORTAL)["protocolMappers"], theirs],
    }
    key_service = {**_imported(KEY_SERVICE), "secret": "an-old-secret", "attributes": {"x": "1"}}
    _add(
        realm,
        {"c-cli": _imported("maas-cli"), "c-ks": key_service, "c-portal": portal},
        groups={"g-admins": f"/{ADMINS}", "g-enterprise": "/enterprise"},
    )
    state = realm.state
    state["users"]["u-ks"] = {
        "username": f"service-account-{KEY_SERVICE}",
        "serviceAccountClientId": KEY_SERVICE,
        "groups": [],
        "clientRoles": {"c-rm": ["view-users"]},
    }
    (realm.root / "state.json").write_text(json.dumps(state))

    assert _sync(realm) == ""
    got = realm.client(PORTAL)
    assert got["redirectUris"] == PAGE
    assert got["webOrigins"] == ["https://api.maas.local", "https://api.maas.local:8000"]
    assert got["implicitFlowEnabled"] is False
    assert got["attributes"] == {"pkce.code.challenge.method": "S256", "post.logout.redirect.uris": "+"}
    # Not the program's to change: enabled (an administrator may switch the page off), the
    # description, the mappers.
    assert got["enabled"] is False
    assert got["description"] == "set by an administrator"
    assert got["protocolMappers"] == portal["protocolMappers"]
    assert realm.client(KEY_SERVICE) == {**key_service, "secret": SECRET}
    r = ["-r", "maas"]
    merged = ["-m", "-f", "-"]
    assert realm.writes() == [
        ["update", "realms/maas", *merged],
        ["update", "clients/c-ks", *r, *merged],
        ["update", "clients/c-portal", *r, *merged],
        ["update", "clients/c-cli", *r, *merged],
    ]
    # Each update sends the owned fields only.
    realm_body, *sent = [json.loads(line) for line in realm.bodies().splitlines()]
    assert realm_body == {"attributes": {"frontendUrl": FRONTEND}, "bruteForceProtected": True}
    assert [set(body) <= set(realm_module.OWNED_CLIENT_FIELDS) for body in sent] == [True] * 3


def test_a_second_run_changes_no_client_or_group(before_29: Realm) -> None:
    _sync(before_29)
    before = before_29.state
    assert _sync(before_29) == ""
    assert before_29.state == before
    # Only the owned fields are sent again, the same values: no create, no grant, no delete.
    assert {tuple(call[:2]) for call in before_29.writes()} == {("update", "realms/maas")} | {
        ("update", f"clients/{c}")
        for c, client in before["clients"].items()
        if client["clientId"] != "realm-management"
    }


def test_an_existing_admin_group_keeps_its_members(before_29: Realm) -> None:
    state = before_29.state
    state["groups"]["g-admins"] = f"/{ADMINS}"
    state["users"]["u-3"]["groups"].append("g-admins")
    (before_29.root / "state.json").write_text(json.dumps(state))
    _sync(before_29)
    assert before_29.members()["operator"] == [ADMINS, "ops", "ops/free"]
    assert not any("g-admins" in arg for call in before_29.calls() for arg in call)
    assert list(before_29.state["groups"].values()).count(f"/{ADMINS}") == 1


def test_clients_and_groups_no_longer_declared_are_left(before_29: Realm) -> None:
    """No rule tells the program's clients from an administrator's, so none is deleted: with
    the key service switched off, its clients and the administrators' group stay."""
    _sync(before_29)
    before = before_29.state
    before_29.sync(TIERS, IMPORTED, declared=_declared(key_service=False))
    assert before_29.state["clients"] == before["clients"]
    assert before_29.state["groups"] == before["groups"]
    assert {call[0] for call in before_29.writes()} == {"update"}


def test_the_client_secret_reaches_kcadm_only_from_the_mounted_file(before_29: Realm) -> None:
    files = user_sync_files(TIERS, IMPORTED, "maas.local", _declared())
    assert not any(SECRET in text for text in files.values())
    assert f'"secret":"${{{SECRET_FILE}}}"' in files[f"client.{KEY_SERVICE}.json"]
    _sync(before_29)
    assert not any(SECRET in arg for call in before_29.calls() for arg in call)
    assert SECRET in before_29.bodies()
    assert before_29.client(KEY_SERVICE)["secret"] == SECRET


def test_a_secret_with_json_specials_stays_one_string(before_29: Realm) -> None:
    """Filled into the JSON escaped, and taken literally by bash (an `&` included)."""
    odd = 'a"b\\c&d'
    before_29.sync(TIERS, IMPORTED, declared=_declared(), secrets={SECRET_FILE: odd})
    assert before_29.client(KEY_SERVICE)["secret"] == odd


def test_a_client_whose_secret_is_not_mounted_is_not_created(before_29: Realm) -> None:
    """Never a client whose secret is the placeholder's text."""
    with pytest.raises(RuntimeError, match=f"client.{KEY_SERVICE}.json has no secret in"):
        before_29.sync(TIERS, IMPORTED, declared=_declared())
    assert [c["clientId"] for c in before_29.state["clients"].values()] == ["realm-management", "maas-cli"]


def test_new_page_urls_change_the_sync_files_so_the_job_reruns() -> None:
    """The Job's template carries the digest of these files (test above): new page URLs, as
    when Keycloak is reached from browsers elsewhere, run a new sync."""
    old = user_sync_files(TIERS, IMPORTED, "maas.local", _declared(page=["https://old.example/portal/"]))
    new = user_sync_files(TIERS, IMPORTED, "maas.local", _declared())
    assert old[f"owned.{PORTAL}.json"] != new[f"owned.{PORTAL}.json"]
    assert json.loads(new[f"owned.{PORTAL}.json"])["redirectUris"] == PAGE


def test_the_sync_gets_the_imports_clients_and_their_secret_file(stack_of: Any) -> None:
    stack: Evaluation = stack_of("dev-oidc")
    imported = stack.one("KeycloakRealmImport", "realm-maas").inputs["spec"]
    data = stack.one("ConfigMap", USER_SYNC).inputs["data"]
    for client in imported["realm"]["clients"]:
        assert json.loads(data[f"client.{client['clientId']}.json"]) == client
    assert data["groups"].split() == [g["name"] for g in imported["realm"]["groups"]]
    assert data["roles"] == f"{KEY_SERVICE} realm-management view-users\n"
    pod = stack.one("Job", USER_SYNC).inputs["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"]}
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["mountPath"] == env["SECRETS_DIR"]]
    assert mount["readOnly"] is True
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    (source,) = volume["projected"]["sources"]
    # The operator's placeholder for this Secret, a file named like it.
    ref = imported["placeholders"][SECRET_FILE]["secret"]
    assert source["secret"] == {"name": ref["name"], "items": [{"key": ref["key"], "path": SECRET_FILE}]}
