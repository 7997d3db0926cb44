"""The response half of the gateway's request-body filter (lua/refusals.lua), run in LuaJIT
(Envoy's Lua runtime) as part of the filter's whole source, on the replies it meets as Envoy
encodes them: the plain-text refusals of Kuadrant (Kuadrant/wasm-shim@v0.14.1
src/configuration/legacy_translation.rs build_ratelimit_on_reply: 429, "Too Many Requests\\n",
Limitador's response headers), the endpoint picker (llm-d/llm-d-router@v0.10.0
pkg/common/error/error.go BuildErrResponse, pkg/epp/handlers/server.go eviction) and Envoy
(413) leave in OpenAI's error shape; a request-limit 429 carries Retry-After from
Limitador's X-RateLimit-Reset (Kuadrant/limitador@v2.4.0 limitador/src/lib.rs response_header); what
is already JSON, and every other status, passes untouched and unbuffered."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from components.config.model import Rate, TierConfig
from components.serving import gateway
from tests.support.configs import simulator

RUNNER = Path(__file__).parent / "lua" / "run_response.lua"
DOMAIN = "maas.local"
# Token windows of one minute and one hour: a token-limit 429 waits at most the longest.
TIERS = (
    TierConfig(name="free", requests=(Rate(limit=5, window="1m"),), tokens=(Rate(limit=100, window="1h"),)),
    TierConfig(name="gold", requests=(Rate(limit=50, window="1m"),), tokens=(Rate(limit=1000, window="1m"),)),
)
SOURCE = gateway.request_filter_source(f"api.{DOMAIN}", (simulator("small"),), DOMAIN, TIERS)


def _respond(
    luajit: str, tmp_path: Path, status: int, headers: dict[str, str], body: bytes
) -> tuple[dict[str, str], bytes, bool]:
    """One response through the filter: (headers, body, whether the body was buffered)."""
    (tmp_path / "filter.lua").write_text(SOURCE)
    lines = [(":status", str(status)), *headers.items()]
    (tmp_path / "headers").write_text("".join(f"{n}\t{v}\n" for n, v in lines))
    (tmp_path / "body").write_bytes(body)
    done = subprocess.run(
        [luajit, str(RUNNER), str(tmp_path / "filter.lua"), str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = dict(line.split("\t", 1) for line in (tmp_path / "headers.out").read_text().splitlines())
    return out, (tmp_path / "body.out").read_bytes(), (tmp_path / "read").read_text() == "1"


def _error(headers: dict[str, str], body: bytes) -> dict[str, str]:
    assert headers["content-type"] == "application/json"
    assert headers["content-length"] == str(len(body))
    error: dict[str, str] = json.loads(body)["error"]
    assert set(error) == {"message", "type", "code"}
    return error


LIMITADOR = {"x-ratelimit-limit": "5, 5;w=120", "x-ratelimit-remaining": "0", "x-ratelimit-reset": "73"}


def test_a_request_limit_429_says_when_the_window_frees(luajit: str, tmp_path: Path) -> None:
    headers, body, _ = _respond(luajit, tmp_path, 429, LIMITADOR, b"Too Many Requests\n")
    error = _error(headers, body)
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded")
    assert "73s" in error["message"]
    assert headers["retry-after"] == "73"


def test_a_token_limit_429_waits_at_most_the_longest_token_window(luajit: str, tmp_path: Path) -> None:
    """Limitador's CheckRateLimit answers with no headers, and the filter runs before the
    tier is known: the longest token window of any tier bounds the wait."""
    headers, body, _ = _respond(luajit, tmp_path, 429, {}, b"Too Many Requests\n")
    error = _error(headers, body)
    assert (error["type"], error["code"]) == ("tokens", "rate_limit_exceeded")
    assert headers["retry-after"] == "3600"


@pytest.mark.parametrize(
    "text",
    [
        b"inference error: ResourceExhausted - request dropped by flow control",
        b"request evicted by flow control",
    ],
)
def test_the_pickers_shed_429_is_openai_shaped(luajit: str, tmp_path: Path, text: bytes) -> None:
    headers, body, _ = _respond(luajit, tmp_path, 429, {"content-type": "text/plain"}, text)
    error = _error(headers, body)
    assert (error["type"], error["code"]) == ("server_overloaded", "queue_full")
    assert "retry-after" not in headers


def test_envoys_413_is_openai_shaped(luajit: str, tmp_path: Path) -> None:
    headers, body, _ = _respond(luajit, tmp_path, 413, {"content-type": "text/plain"}, b"Payload Too Large")
    error = _error(headers, body)
    assert (error["type"], error["code"]) == ("invalid_request_error", "request_too_large")


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (429, {"content-type": "application/json"}, b'{"error": {"message": "busy"}}'),
        (200, {"content-type": "text/event-stream"}, b"data: {}\n\n"),
        (200, {}, b"plain"),
        (503, {"content-type": "text/plain"}, b"no healthy upstream"),
    ],
)
def test_other_responses_pass_untouched_and_unbuffered(
    luajit: str, tmp_path: Path, status: int, headers: dict[str, str], body: bytes
) -> None:
    out, passed, buffered = _respond(luajit, tmp_path, status, headers, body)
    assert passed == body
    assert out == {":status": str(status), **headers}
    assert not buffered
