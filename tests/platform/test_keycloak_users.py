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

from components.access.realm import STACK_USERS_GROUP, USER_SYNC, user_sync_files
from components.config import TierConfig, UserConfig
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

    def calls(self) -> list[list[str]]:
        log = self.root / "calls.log"
        return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []

    def sync(
        self,
        tiers: list[TierConfig],
        users: list[UserConfig],
        admin: tuple[str, str] = ADMIN,
        passwords: dict[str, str] | None = None,
    ) -> str:
        files = user_sync_files(tiers, users, "maas.local")
        for name, text in files.items():
            (self.root / name).write_text(text)
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
    realm.sync(TIERS, IMPORTED)
    calls = realm.calls()
    assert calls[0][:2] == ["config", "credentials"]
    for call in calls:
        assert call[call.index("--config") + 1] == str(realm.root / "kcadm.config")
    for call in calls[1:]:
        assert call[call.index("-r") + 1] == "maas"


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
