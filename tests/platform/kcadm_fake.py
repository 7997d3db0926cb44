"""A stand-in for Keycloak's admin CLI (kcadm.sh), holding one realm's users and groups.

    kcadm_fake.py COMMAND ARGS...

Answers the commands components/access/keycloak_users.sh uses, the way Keycloak 26's CLI
and admin API do (sources in that script's test): a session from `config credentials` kept
in the `--config` file, csv output without quotes or header, `-i` printing the new id, exact
username lookup, group members. Its realm lives in $KCADM_STATE (JSON); each call is
appended to $KCADM_LOG. A command it does not know fails, as kcadm does.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

STATE = Path(os.environ["KCADM_STATE"])


def _options(argv: list[str]) -> tuple[list[str], dict[str, list[str]], set[str]]:
    """Positional words, options with a value (repeatable: -s, -q), and flags (-i, -n)."""
    words: list[str] = []
    values: dict[str, list[str]] = {}
    flags: set[str] = set()
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg in ("-i", "-n", "--noquotes"):
            flags.add(arg)
        elif arg.startswith("-"):
            values.setdefault(arg, []).append(argv[index + 1])
            index += 1
        else:
            words.append(arg)
        index += 1
    return words, values, flags


def _settings(pairs: list[str]) -> dict[str, Any]:
    """`-q` pairs as strings; `-s` values as kcadm reads them: JSON where they parse as JSON."""
    return dict(pair.split("=", 1) for pair in pairs)


def _json_values(pairs: list[str]) -> dict[str, Any]:
    settings: dict[str, Any] = {}
    for key, text in _settings(pairs).items():
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError:
            settings[key] = text
    return settings


def _csv(rows: list[dict[str, Any]], fields: str) -> str:
    return "".join(",".join(str(row[f]) for f in fields.split(",")) + "\n" for row in rows)


def main(argv: list[str]) -> int:
    with open(os.environ["KCADM_LOG"], "a") as log:
        log.write(json.dumps(argv) + "\n")
    state = json.loads(STATE.read_text())
    words, values, flags = _options(argv)
    config = Path(values["--config"][0])
    if words[:2] == ["config", "credentials"]:
        if state.get("down_logins", 0) > 0:
            state["down_logins"] -= 1
            STATE.write_text(json.dumps(state))
            print("Failed to send request - Connect to keycloak-service:8080 refused", file=sys.stderr)
            return 1
        # kcadm takes the password from --password, else KC_CLI_PASSWORD (BaseConfigCredentialsCmd).
        password = values.get("--password", [os.environ.get("KC_CLI_PASSWORD")])
        good = values["--user"] == [state["admin"][0]] and password == [state["admin"][1]]
        if not good or values["--realm"] != ["master"] or values["--server"] != [state["server"]]:
            print("Invalid user credentials", file=sys.stderr)
            return 1
        config.write_text("session")
        return 0
    if not config.is_file():
        print("No server specified. Use --server, or 'kcadm.sh config credentials'", file=sys.stderr)
        return 1
    if values.get("-r") != [state["realm"]]:
        print("Realm not found", file=sys.stderr)
        return 1
    users, groups = state["users"], state["groups"]
    query = _settings(values.get("-q", []))
    sets = _json_values(values.get("-s", []))
    verb, path = words[0], (words[1].split("/") if len(words) > 1 else [])
    out = ""
    # Groups are kept by id -> path ("/free", "/ops/free" for a subgroup); `get groups` lists
    # the top-level ones.
    if verb == "get" and path == ["groups"]:
        top = [
            {"id": g, "path": p, "name": p.rsplit("/", 1)[-1]} for g, p in groups.items() if p.count("/") == 1
        ]
        out = _csv(top, values["--fields"][0])
    elif verb == "create" and path == ["groups"]:
        new = str(uuid.uuid4())
        groups[new] = f"/{sets['name']}"
        out = new + "\n" if "-i" in flags else f"Created new group with id '{new}'\n"
    elif verb == "get" and path == ["users"]:
        assert query.get("exact") == "true", "a lookup by username must be exact"
        found = [{"id": u, **user} for u, user in users.items() if user["username"] == query["username"]]
        out = _csv(found, values["--fields"][0])
    elif verb == "create" and path == ["users"]:
        new = str(uuid.uuid4())
        credentials = sets.pop("credentials", [])
        if any(not c.get("value") for c in credentials):
            print("Password policy not met", file=sys.stderr)
            return 1
        given = next((c["value"] for c in credentials if c.get("type") == "password"), None)
        users[new] = {**sets, "groups": [], "password": given}
        out = new + "\n" if "-i" in flags else f"Created new user with id '{new}'\n"
    elif verb == "set-password":
        users[values["--userid"][0]]["password"] = values["--new-password"][0]
    elif verb == "get" and len(path) == 3 and path[2] == "groups":
        rows = [
            {"id": g, "path": groups[g], "name": groups[g].rsplit("/", 1)[-1]}
            for g in users[path[1]]["groups"]
        ]
        out = _csv(rows, values["--fields"][0])
    elif verb == "update" and len(path) == 4 and path[2] == "groups":
        assert sets == {"realm": state["realm"], "userId": path[1], "groupId": path[3]}, sets
        users[path[1]]["groups"].append(path[3])
    elif verb == "delete" and len(path) == 4 and path[2] == "groups":
        users[path[1]]["groups"].remove(path[3])
    elif verb == "get" and len(path) == 3 and path[2] == "members":
        assert query.get("max") == "-1", "members are paged (100 by default): ask for all"
        rows = [{"id": u, **user} for u, user in users.items() if path[1] in user["groups"]]
        out = _csv(rows, values["--fields"][0])
    elif verb == "delete" and len(path) == 2 and path[0] == "users":
        del users[path[1]]
    else:
        print(f"unknown command: {argv}", file=sys.stderr)
        return 1
    STATE.write_text(json.dumps(state))
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
