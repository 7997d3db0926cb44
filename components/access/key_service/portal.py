"""The page (page.html) as shipped: the login server it sends people to, written into it.

The page reads its OIDC issuer and client id from two `<meta>` tags, filled here when the
ConfigMap is built, so server.py serves it as a static file and needs no setting for it.
"""

from __future__ import annotations

import html
from pathlib import Path

PAGE = Path(__file__).with_name("page.html")
ISSUER_META = "maas-oidc-issuer"
CLIENT_META = "maas-oidc-client-id"


def render(issuer: str, client_id: str) -> str:
    """page.html with the realm's issuer URL and the portal's public client id filled in."""
    text = PAGE.read_text()
    for name, value in ((ISSUER_META, issuer), (CLIENT_META, client_id)):
        empty = f'<meta name="{name}" content="">'
        if text.count(empty) != 1:
            raise ValueError(f"page.html must hold exactly one {empty}")
        text = text.replace(empty, f'<meta name="{name}" content="{html.escape(value, quote=True)}">')
    return text
