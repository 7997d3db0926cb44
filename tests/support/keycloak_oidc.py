"""A stand-in for a Keycloak realm's browser login: the authorization endpoint with a login
form, and the token endpoint's authorization-code grant with PKCE, for one public client.

It refuses what Keycloak refuses on that path (keycloak/keycloak@26.7.4, the version
components/pins/versions.py pins):
- the token request: a code is good once ("Code not valid" otherwise), its redirect_uri must
  equal the one of the authorization request ("Incorrect redirect_uri"), and for a client that
  requires S256 the verifier must be present ("PKCE code verifier not specified"), 43 to 128
  characters of [0-9a-zA-Z-._~] ("PKCE verification failed: Invalid code verifier") and hash to
  the challenge ("PKCE verification failed: Code mismatch"), all as 400 invalid_grant
  (services/src/main/java/org/keycloak/protocol/oidc/grants/AuthorizationCodeGrantType.java
  process; services/src/main/java/org/keycloak/protocol/oidc/utils/PkceUtils.java
  verifyCodeVerifier, generateS256CodeChallenge: base64url of SHA-256 over the verifier).
- the authorization request, for a client whose `pkce.code.challenge.method` is set
  (`pkce_method` here; services/src/main/java/org/keycloak/protocol/oidc/OIDCConfigAttributes.java
  PKCE_CODE_CHALLENGE_METHOD): no method, another method, no challenge or a malformed one are
  refused as invalid_request with Keycloak's descriptions
  (services/src/main/java/org/keycloak/protocol/oidc/endpoints/AuthorizationEndpointChecker.java
  checkParamsForPkceEnforcedClient), sent back to the client's redirect URI; an unregistered
  redirect URI gets a 400 page and no redirect (same file, checkRedirectUri).
- CORS on the token endpoint only for the client's web origins, so a page on an origin the
  client does not list cannot read the token.
Access tokens are JWTs signed HS256 with a per-run secret (Keycloak signs RS256; the
standard library has no RSA), checked by `verify` as the gateway's stand-in does.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import html
import json
import re
import secrets
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# RFC 7636's alphabet and lengths, for verifiers and challenges alike.
VERIFIER = re.compile(r"^[0-9a-zA-Z\-.~_]{43,128}$")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def s256(verifier: str) -> str:
    return b64url(hashlib.sha256(verifier.encode("ascii")).digest())


@dataclass
class Grant:
    user: str
    redirect_uri: str
    challenge: str
    method: str


@dataclass
class Realm:
    name: str
    client_id: str
    # username -> (password, groups)
    users: dict[str, tuple[str, list[str]]]
    redirect_uris: list[str] = field(default_factory=list)
    pkce_method: str = "S256"
    web_origins: list[str] = field(default_factory=list)
    url: str = ""
    secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    codes: dict[str, Grant] = field(default_factory=dict)
    # (user, challenge method) of each code exchanged for a token.
    exchanges: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def issuer(self) -> str:
        return f"{self.url}/realms/{self.name}"

    def token(self, user: str, lifetime: int = 300) -> str:
        issued = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": hashlib.sha256(user.encode()).hexdigest()[:32],
            "azp": self.client_id,
            "typ": "Bearer",
            "iat": issued,
            "exp": issued + lifetime,
            "preferred_username": user,
            "groups": self.users[user][1],
        }
        head = b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        body = b64url(json.dumps(claims).encode())
        signature = hmac.new(self.secret, f"{head}.{body}".encode(), hashlib.sha256).digest()
        return f"{head}.{body}.{b64url(signature)}"

    def verify(self, token: str) -> dict[str, Any] | None:
        """The claims of a token this realm signed that has not expired, else None."""
        parts = token.split(".")
        if len(parts) != 3:
            return None
        expected = hmac.new(self.secret, f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
        if not hmac.compare_digest(b64url(expected), parts[2]):
            return None
        claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
        if claims.get("iss") != self.issuer or claims.get("exp", 0) <= time.time():
            return None
        return claims

    def exchange(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """The token endpoint's authorization_code grant for this public client."""

        def invalid(description: str) -> tuple[int, dict[str, Any]]:
            return 400, {"error": "invalid_grant", "error_description": description}

        if form.get("client_id") != self.client_id:
            return 401, {
                "error": "unauthorized_client",
                "error_description": "Invalid client or Invalid client credentials",
            }
        if form.get("grant_type") != "authorization_code":
            return 400, {"error": "unsupported_grant_type", "error_description": "Unsupported grant_type"}
        if "code" not in form:
            return 400, {"error": "invalid_request", "error_description": "Missing parameter: code"}
        with self.lock:
            # The code is used up by this request, whatever its outcome.
            grant = self.codes.pop(form["code"], None)
        if grant is None:
            return invalid("Code not valid")
        if grant.redirect_uri != form.get("redirect_uri"):
            return invalid("Incorrect redirect_uri")
        verifier = form.get("code_verifier")
        if verifier is None:
            return invalid("PKCE code verifier not specified")
        if not VERIFIER.match(verifier):
            return invalid("PKCE verification failed: Invalid code verifier")
        if s256(verifier) != grant.challenge:
            return invalid("PKCE verification failed: Code mismatch")
        with self.lock:
            self.exchanges.append((grant.user, grant.method))
        return 200, {
            "access_token": self.token(grant.user),
            "token_type": "Bearer",
            "expires_in": 300,
            "scope": "openid",
        }


LOGIN_FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head>
<body><h1>Sign in to {realm}</h1><p role="alert">{message}</p>
<form method="post"><input type="hidden" name="request" value="{request}">
<label for="username">Username</label> <input id="username" name="username">
<label for="password">Password</label> <input id="password" name="password" type="password">
<button type="submit">Sign In</button></form></body></html>"""


def _handler(realm: Realm) -> type[BaseHTTPRequestHandler]:
    base = f"/realms/{realm.name}/protocol/openid-connect"

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _send(self, code: int, body: bytes, kind: str, headers: dict[str, str] | None = None) -> None:
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)

        def _form(self) -> dict[str, str]:
            length = int(self.headers.get("Content-Length") or 0)
            return dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))

        def _login_page(self, query: str, message: str = "") -> None:
            page = LOGIN_FORM.format(
                realm=realm.name, message=html.escape(message), request=html.escape(query)
            )
            self._send(200, page.encode(), "text/html; charset=utf-8")

        def _pkce(self, params: dict[str, str]) -> str:
            """Why Keycloak refuses the PKCE parameters of this authorization request, or ''."""
            method, challenge = params.get("code_challenge_method"), params.get("code_challenge")
            if method is None:
                return "Missing parameter: code_challenge_method"
            if method != realm.pkce_method:
                return "Invalid parameter: code challenge method is not matching the configured one"
            if challenge is None:
                return "Missing parameter: code_challenge"
            if not VERIFIER.match(challenge):
                return "Invalid parameter: code_challenge"
            return ""

        def _authorize(self, query: str, login: dict[str, str] | None) -> None:
            """The authorization request in `query`: the login form, or (login posted) a code."""
            params = dict(urllib.parse.parse_qsl(query))
            if params.get("client_id") != realm.client_id:
                self._send(400, b"Client not found.", "text/plain")
                return
            redirect = params.get("redirect_uri", "")
            if redirect not in realm.redirect_uris:
                self._send(400, b"Invalid parameter: redirect_uri", "text/plain")
                return
            back: dict[str, str] = {"state": params.get("state", ""), "iss": realm.issuer}
            problem = self._pkce(params)
            user = (login or {}).get("username", "")
            signed_in = (
                login is not None and user in realm.users and realm.users[user][0] == login.get("password")
            )
            if params.get("response_type") != "code":
                back.update(error="unsupported_response_type")
            elif problem:
                back.update(error="invalid_request", error_description=problem)
            elif login is None:
                self._login_page(query)
                return
            elif not signed_in:
                self._login_page(query, "Invalid username or password.")
                return
            else:
                code = secrets.token_urlsafe(24)
                with realm.lock:
                    realm.codes[code] = Grant(
                        user, redirect, params["code_challenge"], params["code_challenge_method"]
                    )
                back.update(code=code)
            self._send(302, b"", "text/plain", {"Location": f"{redirect}?{urllib.parse.urlencode(back)}"})

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            if url.path == f"{base}/auth":
                self._authorize(url.query, None)
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            form = self._form()
            if url.path == f"{base}/auth":
                self._authorize(form.get("request", ""), form)
            elif url.path == f"{base}/token":
                status, body = realm.exchange(form)
                origin = self.headers.get("Origin", "")
                cors = {"Access-Control-Allow-Origin": origin} if origin in realm.web_origins else {}
                self._send(status, json.dumps(body).encode(), "application/json", cors)
            else:
                self._send(404, b"not found", "text/plain")

    return Handler


@contextlib.contextmanager
def keycloak_oidc(realm: Realm) -> Iterator[Realm]:
    """The realm served on a free local port for the length of the block."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(realm))
    server.daemon_threads = True
    realm.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        yield realm
    finally:
        server.shutdown()
        server.server_close()
