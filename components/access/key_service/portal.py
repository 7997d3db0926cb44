"""The page (page.html) as shipped: the login server it sends people to, written into it.

The page reads its OIDC issuer and client id from two `<meta>` tags, filled here when the
ConfigMap is built, so server.py serves it as a static file and needs no setting for it.
The same step writes its Content-Security-Policy: the page holds a bearer token, so only its
own script runs and it talks to its own origin and the issuer's, nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
import urllib.parse
from pathlib import Path

PAGE = Path(__file__).with_name("page.html")
ISSUER_META = "maas-oidc-issuer"
CLIENT_META = "maas-oidc-client-id"
SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _fill(text: str, empty: str, filled: str) -> str:
    if text.count(empty) != 1:
        raise ValueError(f"page.html must hold exactly one {empty}")
    return text.replace(empty, filled)


def policy(text: str, issuer: str) -> str:
    """The page's Content-Security-Policy: its one inline script by hash, inline styles, and
    fetches to its own origin and the issuer's (the token endpoint)."""
    url = urllib.parse.urlsplit(issuer)
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ValueError(f"the issuer must be an http(s) URL: {issuer!r}")
    (script,) = SCRIPT.findall(text)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    return (
        f"default-src 'none'; script-src 'sha256-{digest}'; style-src 'unsafe-inline'; "
        f"connect-src 'self' {url.scheme}://{url.netloc}; base-uri 'none'; form-action 'self'"
    )


def render(issuer: str, client_id: str, page: Path = PAGE) -> str:
    """page.html (or `page`) with the realm's issuer URL, the portal's public client id and its
    policy."""
    text = page.read_text()
    for name, value in ((ISSUER_META, issuer), (CLIENT_META, client_id)):
        text = _fill(
            text,
            f'<meta name="{name}" content="">',
            f'<meta name="{name}" content="{html.escape(value, quote=True)}">',
        )
    csp = 'http-equiv="Content-Security-Policy"'
    return _fill(
        text, f'<meta {csp} content="">', f'<meta {csp} content="{html.escape(policy(text, issuer))}">'
    )
