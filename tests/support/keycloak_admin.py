"""A stand-in for the parts of Keycloak's admin API the key service reads: the token
endpoint with client credentials, a group by path, and a group's members in pages.

Imitates keycloak/keycloak@main
services/src/main/java/org/keycloak/services/resources/admin/RealmAdminResource.java
getGroupByPath (404 for an unknown path) and GroupResource.java getMembers (`first`, `max`,
max defaulting to 100); admin calls without the issued bearer token get 401.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.support.json_server import JsonHandler
from tests.support.ports import free_port


@dataclass
class Realm:
    name: str
    client_id: str
    client_secret: str
    # group name -> member usernames; tests move users between groups.
    groups: dict[str, list[str]] = field(default_factory=dict)
    tokens: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def move(self, user: str, group: str | None) -> None:
        with self.lock:
            for members in self.groups.values():
                if user in members:
                    members.remove(user)
            if group is not None:
                self.groups[group].append(user)


def _handler(realm: Realm) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_POST(self) -> None:
            if self.path != f"/realms/{realm.name}/protocol/openid-connect/token":
                self.reply(404, {"error": "not found"})
                return
            form = dict(urllib.parse.parse_qsl(self.rfile.read(int(self.headers["Content-Length"])).decode()))
            if form != {
                "grant_type": "client_credentials",
                "client_id": realm.client_id,
                "client_secret": realm.client_secret,
            }:
                self.reply(401, {"error": "unauthorized_client"})
                return
            token = secrets.token_hex(16)
            realm.tokens.add(token)
            self.reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": 300})

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            admin = f"/admin/realms/{realm.name}/"
            if self.headers.get("Authorization", "").removeprefix("Bearer ") not in realm.tokens:
                self.reply(401, {"error": "HTTP 401 Unauthorized"})
                return
            rest = url.path.removeprefix(admin)
            with realm.lock:
                if rest.startswith("group-by-path/"):
                    name = urllib.parse.unquote(rest.removeprefix("group-by-path/")).strip("/")
                    if name not in realm.groups:
                        self.reply(404, {"error": "Group path does not exist"})
                        return
                    self.reply(200, {"id": f"id-{name}", "name": name, "path": f"/{name}"})
                    return
                parts = rest.split("/")
                if len(parts) == 3 and parts[0] == "groups" and parts[2] == "members":
                    name = parts[1].removeprefix("id-")
                    query = dict(urllib.parse.parse_qsl(url.query))
                    first, count = int(query.get("first", 0)), int(query.get("max", 100))
                    members = realm.groups.get(name, [])[first : first + count]
                    self.reply(200, [{"id": f"uid-{m}", "username": m} for m in members])
                    return
            self.reply(404, {"error": "not found"})

    return Handler


@dataclass
class Keycloak:
    url: str
    realm: Realm


@contextlib.contextmanager
def keycloak(groups: dict[str, list[str]]) -> Iterator[Keycloak]:
    realm = Realm("maas", "key-service", secrets.token_hex(8), {g: list(m) for g, m in groups.items()})
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(realm))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield Keycloak(f"http://127.0.0.1:{server.server_address[1]}", realm)
    finally:
        server.shutdown()
        server.server_close()
