"""A stand-in for the shared gateway in front of the key service, as the service's route and
AuthPolicy are meant to behave for a browser: the page is public; every /v1/ call needs a
Keycloak token, whose claims become the x-maas-* headers (client-sent copies are dropped);
anything else is not routed. The contract of those headers: the key service's docstrings.
"""

from __future__ import annotations

import contextlib
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.keycloak_oidc import Realm

ADMIN_GROUP = "maas-admins"


@dataclass
class Gateway:
    url: str = ""
    # (method, path, status) of each call the gateway refused for want of a valid token.
    refused: list[tuple[str, str, int]] = field(default_factory=list)


def _handler(realm: Realm, upstream: str, tiers: list[str], gateway: Gateway) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _identity(self) -> dict[str, str] | None:
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            claims = realm.verify(token) if scheme == "Bearer" else None
            if claims is None:
                return None
            groups = claims.get("groups", [])
            tier = next((t for t in tiers if t in groups), "")
            return {
                "x-maas-user": claims["preferred_username"],
                "x-maas-tier": tier,
                "x-maas-via": "token",
                "x-maas-admin": "true" if ADMIN_GROUP in groups else "false",
            }

        def _forward(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            path = self.path.split("?")[0]
            # Only these reach the service: a client's own x-maas-* headers never do.
            sent = {k: self.headers[k] for k in ("Content-Type", "Accept") if self.headers[k]}
            if path.startswith("/v1/"):
                identity = self._identity()
                if identity is None:
                    gateway.refused.append((method, path, 401))
                    self._answer(401, b"", {"WWW-Authenticate": 'Bearer realm="maas"'})
                    return
                sent.update(identity)
            elif not (method == "GET" and path == "/portal/"):
                self._answer(404, b"", {})
                return
            request = urllib.request.Request(upstream + self.path, data=body, method=method, headers=sent)
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    status, data, kind = response.status, response.read(), response.headers["Content-Type"]
            except urllib.error.HTTPError as error:
                status, data, kind = error.code, error.read(), error.headers["Content-Type"]
            self._answer(status, data, {"Content-Type": kind or "application/octet-stream"})

        def do_GET(self) -> None:
            self._forward("GET")

        def do_POST(self) -> None:
            self._forward("POST")

        def do_DELETE(self) -> None:
            self._forward("DELETE")

    return Handler


@contextlib.contextmanager
def portal_gateway(realm: Realm, upstream: str, tiers: list[str]) -> Iterator[Gateway]:
    """The gateway on a free local port in front of `upstream`; `tiers` in the order a user
    in several tier groups is matched, as the AuthPolicy's tier rules are."""
    gateway = Gateway()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(realm, upstream, tiers, gateway))
    server.daemon_threads = True
    gateway.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield gateway
    finally:
        server.shutdown()
        server.server_close()
