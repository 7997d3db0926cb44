"""server.py's usage read through an authorizing proxy, as on OpenShift: a stand-in of the
Thanos querier's tenancy port serving TLS with a CA the test makes, refusing as its proxies
do: kube-rbac-proxy a request without the bearer token it accepts or without `namespace`
(brancz/kube-rbac-proxy GetRequestAttributes: no parameter, no attributes to allow), and
prom-label-proxy scoping the query to that namespace
(openshift/cluster-monitoring-operator@release-4.23 assets/thanos-querier/deployment.yaml)."""

from __future__ import annotations

import contextlib
import subprocess
import urllib.parse
from email.message import Message
from pathlib import Path

import pytest

from components.access.key_service import server
from tests.support.json_server import Refused, json_server

TOKEN = "the-pods-own-token"
NAMESPACE = "llm-observability"


def _certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A CA, and a serving certificate for 127.0.0.1 it signs (openssl)."""
    ca_key, ca, key, request, cert = (
        directory / n for n in ("ca.key", "ca.crt", "tls.key", "tls.csr", "tls.crt")
    )
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(ca_key),
        "-out",
        str(ca),
        "-days",
        "1",
        "-subj",
        "/CN=test-service-ca",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(request),
        "-subj",
        "/CN=thanos",
    )
    extensions = directory / "san.cnf"
    extensions.write_text("subjectAltName=IP:127.0.0.1\n")
    run("x509", "-req", "-in", str(request), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial",
        "-out", str(cert), "-days", "1", "-extfile", str(extensions))  # fmt: skip
    return ca, cert, key


def tenancy(cert: Path, key: Path, seen: list[str]) -> contextlib.AbstractContextManager[str]:
    """HTTPS; 401 without the token, 403 without a namespace or with another token; else the
    recorded series of the namespace only, as prom-label-proxy would leave them."""

    def answer(path: str, headers: Message) -> object:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        authorization = headers.get("Authorization")
        if authorization is None:
            return Refused(401)
        if authorization != f"Bearer {TOKEN}" or query.get("namespace") != [NAMESPACE]:
            return Refused(403)
        (promql,) = query["query"]
        seen.append(promql)
        value = {server.REQUESTS_RULE: "7", server.TOKENS_RULE: "420"}
        if server.COST_RULE in promql:
            result = [{"metric": {"currency": "USD"}, "value": [0, "0.25"]}]
        else:
            result = [{"metric": {}, "value": [0, v]} for k, v in value.items() if k in promql]
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    return json_server(answer, tls=(cert, key), headers=True)


def _usage(url: str, token_file: Path | None, ca: Path | None) -> server.Usage:
    env = {"KEY_TIERS": "{}", "KEYS_NAMESPACE": "kuadrant", "PROMETHEUS_URL": url}
    if token_file is not None:
        env["PROMETHEUS_BEARER_TOKEN_FILE"] = str(token_file)
    if ca is not None:
        env["PROMETHEUS_CA_FILE"] = str(ca)
    return server.Usage(server.Config.from_env(env))


def test_usage_is_read_through_the_tenancy_port_with_the_token_and_the_ca(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    seen: list[str] = []
    with tenancy(cert, key, seen) as base:
        used = _usage(f"{base}?namespace={NAMESPACE}", token, ca).used("alice", 3600)
    assert used == {
        "window": "1h",
        "window_seconds": 3600,
        "requests": 7,
        "tokens": 420,
        "cost": {"USD": 0.25},
    }
    assert len(seen) == 3
    assert all('user="alice"' in q for q in seen)


def test_a_refusal_of_the_tenancy_port_is_no_answer_never_a_zero(tmp_path: Path) -> None:
    ca, cert, key = _certificates(tmp_path)
    token, wrong = tmp_path / "token", tmp_path / "wrong"
    token.write_text(TOKEN)
    wrong.write_text("someone-else")
    with tenancy(cert, key, []) as base:
        scoped = f"{base}?namespace={NAMESPACE}"
        for usage, refusal in (
            (_usage(scoped, None, ca), "401"),
            (_usage(scoped, wrong, ca), "403"),
            (_usage(base, token, ca), "403"),
            (_usage(scoped, tmp_path / "absent", ca), "No such file"),
            # The system's CAs do not sign the querier's certificate: the service CA must be given.
            (_usage(scoped, token, None), "CERTIFICATE_VERIFY_FAILED"),
            # The cluster fills the CA's file after the pod may have started: no answer until
            # then, and the service is up meanwhile (the Usage was made without it).
            (_usage(scoped, token, tmp_path / "not-filled-yet.crt"), "no CA to trust yet"),
        ):
            with pytest.raises(server.UsageError, match=refusal) as error:
                usage.used("alice", 3600)
            assert error.value.source == "prometheus"
