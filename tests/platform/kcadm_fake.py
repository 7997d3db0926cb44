"""A stand-in for Keycloak's admin CLI (kcadm.sh), holding one realm's users, groups and
clients.

    kcadm_fake.py COMMAND ARGS...

Answers the commands components/access/keycloak_users.sh uses, the way Keycloak 26's CLI
and admin API do (sources in that script's test): a session from `config credentials` kept
in the `--config` file, csv output without quotes or header, `-i` printing the new id, exact
username and clientId lookups, group members, a body from standard input (`-f -`), `update
-m` merging it over the stored client (objects deeply, arrays replaced) and without `-m`
sending it as the whole client, a service account made with its client, `add-roles`. Its
realm lives in $KCADM_STATE (JSON); each call is appended to $KCADM_LOG, and each body read
from standard input to $KCADM_LOG.bodies. A command it does not know fails, as kcadm does.
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
        if arg in ("-i", "-n", "-m", "--noquotes"):
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


def _merge(source: dict[str, Any], dest: dict[str, Any]) -> None:
    """kcadm's `update -m`: the body over the stored representation, objects merged deeply,
    anything else (arrays too) replaced."""
    for name, node in source.items():
        if isinstance(dest.get(name), dict) and isinstance(node, dict):
            _merge(node, dest[name])
        else:
            dest[name] = node


def _body(values: dict[str, list[str]]) -> dict[str, Any]:
    """The JSON body of `-f -`: only standard input is read (the script passes no files)."""
    assert values.get("-f") == ["-"], "a body comes through standard input"
    text = sys.stdin.read()
    with open(os.environ["KCADM_LOG"] + ".bodies", "a") as log:
        log.write(text + "\n")
    return dict(json.loads(text))


def _service_account(state: dict[str, Any], client: dict[str, Any]) -> None:
    """Keycloak makes a client's service-account user when its service accounts are enabled."""
    users = state["users"]
    if client.get("serviceAccountsEnabled") and not any(
        u.get("serviceAccountClientId") == client["clientId"] for u in users.values()
    ):
        users[str(uuid.uuid4())] = {
            "username": f"service-account-{client['clientId']}",
            "serviceAccountClientId": client["clientId"],
            "groups": [],
            "clientRoles": {},
        }


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
    if words[:2] == ["update", f"realms/{state['realm']}"] and "-r" not in values:
        # The realm itself: a representation's attributes replace all of the realm's
        # (DefaultExportImportManager updateRealm); with -m, kcadm sends the realm read first
        # with the body merged over it.
        realm = state.setdefault("realm_rep", {"attributes": {}})
        body = _body(values)
        if "-m" in flags:
            _merge(body, realm)
        else:
            state["realm_rep"] = {**realm, **body}
        STATE.write_text(json.dumps(state))
        return 0
    if values.get("-r") != [state["realm"]]:
        print("Realm not found", file=sys.stderr)
        return 1
    users, groups = state["users"], state["groups"]
    clients = state.setdefault("clients", {})
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
    elif verb == "get" and path == ["clients"]:
        # Exact unless search=true (ClientsResource getClients).
        assert "search" not in query
        found = [
            {"id": c, **client} for c, client in clients.items() if client["clientId"] == query["clientId"]
        ]
        out = _csv(found, values["--fields"][0])
    elif verb == "create" and path == ["clients"]:
        body = _body(values)
        if any(c["clientId"] == body["clientId"] for c in clients.values()):
            print(f"Client {body['clientId']} already exists", file=sys.stderr)
            return 1
        new = str(uuid.uuid4())
        clients[new] = body
        _service_account(state, body)
        if "-i" in flags:
            out = new + "\n"
        else:
            print(f"Created new client with id '{new}'", file=sys.stderr)
    elif verb == "update" and len(path) == 2 and path[0] == "clients":
        body = _body(values)
        if "-m" in flags:
            _merge(body, clients[path[1]])
        else:
            clients[path[1]] = body
        _service_account(state, clients[path[1]])
    elif verb == "get" and len(path) == 3 and path[0] == "clients" and path[2] == "service-account-user":
        client_id = clients[path[1]]["clientId"]
        found = [
            {"id": u, **user} for u, user in users.items() if user.get("serviceAccountClientId") == client_id
        ]
        if not found:
            print("Service account not enabled for the client", file=sys.stderr)
            return 1
        out = _csv(found, values["--fields"][0])
    elif verb == "get" and len(path) == 5 and path[2:4] == ["role-mappings", "clients"]:
        held = users[path[1]].get("clientRoles", {}).get(path[4], [])
        out = _csv([{"name": name} for name in held], values["--fields"][0])
    elif verb == "add-roles":
        user, client = values["--uid"][0], values["--cid"][0]
        for name in values["--rolename"]:
            if name not in clients[client].get("roles", []):
                print(f"Role not found for name: {name}", file=sys.stderr)
                return 1
            held = users[user].setdefault("clientRoles", {}).setdefault(client, [])
            if name not in held:
                held.append(name)
    else:
        print(f"unknown command: {argv}", file=sys.stderr)
        return 1
    STATE.write_text(json.dumps(state))
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
