"""The key page (components/access/key_service/page.html) in Debian's headless Chromium, driven
by Playwright: a person logs in at a stand-in Keycloak (authorization code + PKCE), mints a
key and sees it once, lists, hits the cap, revokes, and reads usage, through a stand-in
gateway (tests/support/portal_gateway.py) in front of the real server.py on the stand-in
Kubernetes API. Screenshots go to $MAAS_SCREENSHOTS_DIR/portal when set, else to the test's
tmp_path; each test names the misbehaviour it catches.
"""

from __future__ import annotations

import base64
import contextlib
import html
import http.client
import json
import os
import re
import shutil
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from components.access import tiers
from components.access.key_service import portal
from components.serving.model_list import POLICY_ROUTE
from harness.program import typed_config
from tests.support.json_server import json_server
from tests.support.key_service import NAMESPACE, KeyService, key_service
from tests.support.keycloak_oidc import Realm, keycloak_oidc, s256
from tests.support.kube_api import KubeApi, kube_api
from tests.support.limitador import Count, limitador_api, limits_of, variable
from tests.support.portal_gateway import Gateway, portal_gateway
from tests.support.prerequisites import tool

TIERS = {"free": {"maxKeys": 2, "maxLifetimeDays": 30}, "premium": {"maxKeys": 5, "maxLifetimeDays": 90}}
USERS = {"alice": ("alice-pw", ["free"]), "bob": ("bob-pw", ["premium"])}
CLIENT = "maas-portal"
# dev's limits: free's two request windows, premium's quota on simulator-large.
DEV = typed_config("dev")
MODELS_NS = DEV.namespaces_in_use()["models"]
LIMITS = [
    *limits_of(tiers.rate_limit_spec(DEV.tiers, POLICY_ROUTE, DEV.models), "r", MODELS_NS, False),
    *limits_of(tiers.token_limit_spec(DEV.tiers, POLICY_ROUTE, DEV.models), "t", MODELS_NS, True),
]


def _counts() -> list[Count]:
    """alice has called simulator (both of free's request windows and its token window); bob
    has called simulator-large, which premium's own quota for it counts."""
    found = []
    called = [
        ("alice", "free", "simulator-model", None),
        ("bob", "premium", "simulator-large-model", "simulator-large"),
    ]
    for user, tier, model, quota in called:
        for limit in LIMITS:
            kind: tiers.Kind = "requests" if limit["name"].endswith("-requests") else "tokens"
            own = tiers.request_limit_name(tier) if kind == "requests" else tiers.token_limit_name(tier)
            name = tiers.model_limit_name(tier, quota, kind) if quota else own
            if limit["name"] == name:
                used = 2 if kind == "requests" else 1234
                variables = {variable(tiers.USER_ID): user, variable(tiers.MODEL): model}
                found.append(Count(limit, variables, used, limit["seconds"] - 5))
    return found


@contextlib.contextmanager
def _prometheus() -> Iterator[str]:
    """Prometheus's instant query API (prometheus/prometheus@01db19c docs/querying/api.md):
    2 requests, 1234 tokens and 0.003144 USD in every window."""

    def answer(path: str) -> object:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)["query"][0]
        sample = (
            ({"currency": "USD"}, "0.003144")
            if "cost" in query
            else ({}, "2" if "requests" in query else "1234")
        )
        return {
            "status": "success",
            "data": {"resultType": "vector", "result": [{"metric": sample[0], "value": [0, sample[1]]}]},
        }

    with json_server(answer) as url:
        yield url


@dataclass
class Stack:
    realm: Realm
    kube: KubeApi
    service: KeyService
    gateway: Gateway
    shots: Path

    @property
    def page_url(self) -> str:
        return f"{self.gateway.url}/portal/"

    def live(self, user: str) -> list[dict[str, Any]]:
        return [
            s
            for s in self.kube.store.secrets(NAMESPACE)
            if s["metadata"].get("labels", {}).get("maas-platform/api-key") == "true"
            and s["metadata"]["annotations"]["secret.kuadrant.io/user-id"] == user
        ]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = tool("chromium", "scripts/install-test-tools.sh installs Debian's chromium")
    with sync_playwright() as playwright:
        # Playwright's own browser builds cannot be downloaded here; Debian's Chromium can.
        launched = playwright.chromium.launch(executable_path=chromium)
        yield launched
        launched.close()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    realm = Realm("maas", CLIENT, dict(USERS))
    shots = Path(os.environ.get("MAAS_SCREENSHOTS_DIR") or tmp_path) / "portal"
    shots.mkdir(parents=True, exist_ok=True)
    with keycloak_oidc(realm), kube_api() as kube:
        # As the ConfigMap ships them: server.py unchanged beside the rendered page.
        app = tmp_path / "app"
        app.mkdir()
        server = Path(portal.PAGE).with_name("server.py")
        shutil.copy(server, app / "server.py")
        (app / "page.html").write_text(portal.render(realm.issuer, CLIENT))
        with (
            limitador_api(LIMITS, _counts) as limitador,
            _prometheus() as prometheus_url,
            key_service(
                kube,
                tmp_path,
                TIERS,
                program=app / "server.py",
                env={
                    "LIMITADOR_URL": limitador.url,
                    "LIMITADOR_NAMESPACE": f"{MODELS_NS}/{POLICY_ROUTE}",
                    "PROMETHEUS_URL": prometheus_url,
                },
            ) as service,
            portal_gateway(realm, service.url, list(TIERS)) as gateway,
        ):
            realm.redirect_uris.append(f"{gateway.url}/portal/")
            realm.web_origins.append(gateway.url)
            yield Stack(realm, kube, service, gateway, shots)


@pytest.fixture
def page(browser: Browser, stack: Stack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=stack.gateway.url)
    opened = context.new_page()
    opened.set_default_timeout(5000)
    yield opened
    context.close()


def log_in(page: Page, stack: Stack, user: str = "alice", shot: str = "") -> None:
    page.goto(stack.page_url)
    if shot:
        page.screenshot(path=stack.shots / shot, full_page=True)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{stack.realm.issuer}/**")
    page.get_by_label("Username").fill(user)
    page.get_by_label("Password").fill(USERS[user][0])
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_text(f"Signed in as {user}")).to_be_visible()


def on_page(page: Page) -> str:
    """What the page holds for a person to see or a script to read: its text and every
    field's value (a value set from script is no attribute, so page.content() misses it)."""
    script = "document.body.innerText + [...document.querySelectorAll('input')].map(i => i.value)"
    return str(page.evaluate(script))


def storage(page: Page) -> str:
    return str(page.evaluate("JSON.stringify([sessionStorage, localStorage])"))


def test_a_person_logs_in_mints_sees_the_key_once_lists_and_revokes(page: Page, stack: Stack) -> None:
    """Catches: a login without PKCE S256, the code left in the address bar, a minted key that
    is not the stored one, the key still shown after hiding or reloading, another user's key
    listed, a revoke without confirmation (or despite Cancel), a revoked key still listed, a
    logout that keeps the token."""
    bobs = stack.service.call("POST", "/v1/api-keys", {"name": "bobs-ci"}, user="bob", tier="premium")
    assert bobs.status == 201, bobs

    log_in(page, stack, shot="00-login.png")
    assert stack.realm.exchanges == [("alice", "S256")]
    # The code is spent; the address bar keeps none of it.
    assert page.url == stack.page_url
    expect(page.get_by_text("You have no live keys.")).to_be_visible()
    page.screenshot(path=stack.shots / "01-logged-in.png", full_page=True)

    # The keyboard alone: the name field, Enter submits.
    page.get_by_label("Name").focus()
    page.keyboard.type("laptop")
    page.keyboard.press("Enter")
    shown = page.get_by_label("Key laptop")
    expect(shown).to_be_visible()
    key = shown.input_value()
    (secret,) = stack.live("alice")
    assert base64.b64decode(secret["data"]["api_key"]).decode() == key
    page.get_by_role("button", name="Copy").click()
    expect(page.get_by_text("Copied.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == key
    row = page.get_by_role("row", name="laptop")
    expect(row).to_contain_text("free")
    listed = stack.service.call("GET", "/v1/api-keys").body["data"][0]
    expect(row).to_contain_text(listed["created"][:10])
    expect(row).to_contain_text(listed["expires"][:10])
    page.screenshot(path=stack.shots / "02-minted-shown-once.png", full_page=True)

    # A reload while the key is shown: nothing brings it back (form restoration, storage).
    page.reload()
    expect(page.get_by_role("row", name="laptop")).to_be_visible()
    assert key not in on_page(page)
    assert key not in storage(page)
    assert page.evaluate("localStorage.length") == 0
    expect(page.get_by_text("bobs-ci")).to_have_count(0)
    page.screenshot(path=stack.shots / "03-listed-after-reload.png", full_page=True)

    page.get_by_role("button", name="Revoke laptop").click()
    expect(page.get_by_role("dialog")).to_contain_text("Revoke key laptop?")
    page.screenshot(path=stack.shots / "04-confirm-revoke.png", full_page=True)
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    expect(page.get_by_role("row", name="laptop")).to_be_visible()
    assert len(stack.live("alice")) == 1
    page.get_by_role("button", name="Revoke laptop").click()
    page.get_by_role("dialog").get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("Key laptop revoked.")).to_be_visible()
    expect(page.get_by_role("row", name="laptop")).to_have_count(0)
    assert stack.live("alice") == []
    assert [s["metadata"]["annotations"]["maas-platform/name"] for s in stack.live("bob")] == ["bobs-ci"]
    page.screenshot(path=stack.shots / "05-revoked.png", full_page=True)
    assert stack.gateway.refused == []

    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('token')") is None


def test_the_service_error_message_is_shown_at_the_cap(page: Page, stack: Stack) -> None:
    """Catches: an error swallowed or shown as a bare status instead of the service's message,
    a refused mint that hides the key shown before, a hidden key still in the page."""
    log_in(page, stack)
    for name in ("one", "two", "three"):
        page.get_by_label("Name").fill(name)
        page.get_by_role("button", name="Create key").click()
        if name != "three":
            expect(page.get_by_label(f"Key {name}")).to_be_visible()
    expect(page.get_by_role("alert").filter(has_text="allows 2 live keys")).to_have_text(
        "Tier free allows 2 live keys; revoke one before minting another."
    )
    expect(page.get_by_label("Key three")).to_have_count(0)
    assert len(stack.live("alice")) == 2
    # The refused mint leaves the last key shown: it may not have been copied yet.
    two = page.get_by_label("Key two").input_value()
    assert two.startswith("sk-maas-")
    page.screenshot(path=stack.shots / "06-cap-reached.png", full_page=True)
    page.get_by_role("button", name="I have copied it, hide it").click()
    assert two not in on_page(page)


def test_an_ended_session_sends_the_person_back_to_login(page: Page, stack: Stack) -> None:
    """Catches: a page that keeps showing keys (or retries without a token) once the gateway
    refuses its token."""
    log_in(page, stack)
    # The first loads of keys and usage are done, so the one refused call is the refresh.
    expect(page.get_by_text("You have no live keys.")).to_be_visible()
    expect(page.locator("#usage-error:not(:empty), #usage:not([hidden])")).to_have_count(1)
    stack.realm.secret = b"rotated"  # every token issued so far no longer verifies
    page.get_by_role("button", name="Refresh usage").click()
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    expect(page.get_by_text("Your session has ended. Log in again.")).to_be_visible()
    expect(page.get_by_role("heading", name="Your keys")).to_be_hidden()
    assert "token" not in json.loads(storage(page))[0]
    assert stack.gateway.refused == [("GET", "/v1/usage", 401)]
    page.screenshot(path=stack.shots / "08-session-ended.png", full_page=True)


@pytest.mark.parametrize("user", ["alice", "bob"])
def test_usage_shows_what_the_service_answers(page: Page, stack: Stack, user: str) -> None:
    """Catches: usage rows that disagree with the service's own answer, a quota's row shown as
    the tier's, and a cost a person cannot read. alice (free) has two request windows; bob
    (premium) has called a model with its own quota."""
    tier = USERS[user][1][0]
    answer = stack.service.call("GET", "/v1/usage", user=user, tier=tier)
    assert answer.status == 200, answer
    quotas = {w["quota"] for w in answer.body["windows"]} - {None}
    assert quotas == ({"simulator-large"} if user == "bob" else set()), answer.body
    log_in(page, stack, user)
    rows = page.locator("#usage tbody tr")
    expect(rows).to_have_count(len(answer.body["windows"]))
    for row, window in zip(rows.all(), answer.body["windows"], strict=True):
        limit = (
            window["limit"]
            if window["quota"] is None
            else f"{window['limit']} ({window['quota']}'s own quota)"
        )
        model = "none called yet" if window["model"] is None else window["model"]
        cells = [limit, model, *(window[k] for k in ("window", "limit_value", "used", "remaining"))]
        expect(row.locator("td")).to_have_text([str(c) for c in cells])
    costs = page.locator("#cost dd")
    expect(costs).to_have_count(len(answer.body["cost"]))
    for (name, value), shown in zip(answer.body["cost"].items(), costs.all(), strict=True):
        # What a person reads: each currency's amount to the service's 1e-6, then the currency.
        amounts = ", ".join(f"{amount:.6f} {currency}" for currency, amount in value.items())
        expect(page.locator("#cost")).to_contain_text(f"Cost: {name}")
        expect(shown).to_have_text(amounts or "nothing billed")
    page.screenshot(path=stack.shots / f"07-usage-{user}.png", full_page=True)


def _authorize(realm: Realm, challenge: str | None) -> dict[str, str]:
    """What the login form posted for alice sends back to the page: a code, or an error."""
    redirect = realm.redirect_uris[0]
    request = {
        "response_type": "code",
        "client_id": CLIENT,
        "redirect_uri": redirect,
        "state": "s",
        "code_challenge_method": "S256",
    }
    if challenge is not None:
        request["code_challenge"] = challenge
    form = {"request": urllib.parse.urlencode(request), "username": "alice", "password": "alice-pw"}
    where = urllib.parse.urlsplit(realm.issuer)
    connection = http.client.HTTPConnection(where.netloc, timeout=5)
    connection.request(
        "POST",
        f"{where.path}/protocol/openid-connect/auth",
        urllib.parse.urlencode(form),
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    answer = connection.getresponse()
    connection.close()
    assert answer.status == 302
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(answer.headers["Location"]).query))


def test_the_stand_in_keycloak_checks_pkce_as_keycloak_does() -> None:
    """Catches a stand-in that would pass a page sending no or the wrong verifier."""
    realm = Realm("maas", CLIENT, dict(USERS), redirect_uris=["http://page/portal/"])
    verifier = "v" * 43
    with keycloak_oidc(realm):
        base = {
            "grant_type": "authorization_code",
            "client_id": CLIENT,
            "redirect_uri": "http://page/portal/",
        }
        wrong = realm.exchange(
            {**base, "code": _authorize(realm, s256(verifier))["code"], "code_verifier": "w" * 43}
        )
        assert wrong == (
            400,
            {"error": "invalid_grant", "error_description": "PKCE verification failed: Code mismatch"},
        )
        missing = realm.exchange({**base, "code": _authorize(realm, s256(verifier))["code"]})
        assert missing[1]["error_description"] == "PKCE code verifier not specified"
        short = realm.exchange(
            {**base, "code": _authorize(realm, s256("v" * 42))["code"], "code_verifier": "v" * 42}
        )
        assert short[1]["error_description"] == "PKCE verification failed: Invalid code verifier"
        code = _authorize(realm, s256(verifier))["code"]
        status, token = realm.exchange({**base, "code": code, "code_verifier": verifier})
        assert status == 200
        claims = realm.verify(token["access_token"])
        assert claims is not None
        assert claims["preferred_username"] == "alice"
        again = realm.exchange({**base, "code": code, "code_verifier": verifier})
        assert again[1]["error_description"] == "Code not valid"
        refused = _authorize(realm, None)
        assert refused["error_description"] == "Missing parameter: code_challenge"
        assert "code" not in refused
    assert realm.exchanges == [("alice", "S256")]


def test_a_login_keycloak_refuses_shows_its_reason(page: Page, stack: Stack) -> None:
    """Catches a page that hangs or says nothing when Keycloak sends back an error (here: a
    client whose required PKCE method is not the one the page sends)."""
    stack.realm.pkce_method = "plain"
    page.goto(stack.page_url)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert").filter(has_text="Login failed")).to_have_text(
        "Login failed: Invalid parameter: code challenge method is not matching the configured one"
    )
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    assert page.url == stack.page_url
    assert stack.realm.exchanges == []
    page.screenshot(path=stack.shots / "09-login-refused.png", full_page=True)


def test_the_page_is_rendered_with_the_login_server_escaped() -> None:
    """Catches an issuer or client id that could close the attribute and inject markup."""
    text = portal.render('https://sso.example/realms/maas"><script>x()</script>', "maas-portal")
    assert '<meta name="maas-oidc-issuer" content="https://sso.example/realms/maas&quot;&gt;&lt;' in text
    assert "<script>x()" not in text
    assert '<meta name="maas-oidc-client-id" content="maas-portal">' in text


def test_the_rendered_page_runs_its_own_script_only_and_talks_to_the_issuer_only() -> None:
    """Catches a policy that lets an injected script run or send the token elsewhere; the
    browser tests above fail if it blocks the page's own script or its token request."""
    text = portal.render("https://sso.example:8443/realms/maas", "maas-portal")
    (content,) = re.findall(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', text)
    rules = dict(rule.strip().split(" ", 1) for rule in html.unescape(content).split(";"))
    assert rules["default-src"] == "'none'"
    assert rules["script-src"].startswith("'sha256-")
    assert rules["connect-src"] == "'self' https://sso.example:8443"
    with pytest.raises(ValueError, match="http"):
        portal.render("javascript:alert(1)", "maas-portal")
