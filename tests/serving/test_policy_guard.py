"""The gateway's policy guard (lua/policy_guard.lua), run in LuaJIT (Envoy's Lua runtime)
after the request-body filter, as the gateway chains them: a metered request that no policy
judged (Kuadrant's filter passes a host it has no action set for) is refused; one that
Authorino admitted passes; a client cannot forge the marker."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from components.names import TIER_HEADER
from components.serving import gateway
from tests.support.configs import simulator

RUNNER = Path(__file__).parent / "lua" / "run_filter.lua"
DOMAIN = "maas.local"
CATALOG = (simulator("small"),)
CHAT = b'{"model": "small", "messages": []}'


def _filter(
    luajit: str, source: str, headers: list[tuple[str, str]], body: bytes, work: Path
) -> tuple[list[tuple[str, str]], list[str] | None]:
    """One filter on one request: (headers passed on, local reply or None)."""
    work.mkdir()
    (work / "filter.lua").write_text(source)
    (work / "0.headers").write_text("".join(f"{n}\t{v}\n" for n, v in headers))
    (work / "0.body").write_bytes(body)
    done = subprocess.run(
        [luajit, str(RUNNER), str(work / "filter.lua"), str(work), "1"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = (work / "0.headers.out").read_text().splitlines()
    passed = [(name, value) for name, value in (line.split("\t", 1) for line in lines)]
    raw = (work / "0.response").read_text()
    return passed, (raw.split("\n", 1) if raw else None)


def _through_the_gateway(
    luajit: str, tmp_path: Path, path: str, judged: bool, sent: tuple[tuple[str, str], ...] = ()
) -> list[str] | None:
    """The request-body filter, then Kuadrant's (which, when a policy judged the request,
    sets the tier as Authorino's success response says), then the guard: its reply or None."""
    headers = [(":method", "POST"), (":authority", f"small.{DOMAIN}"), (":path", path), *sent]
    source = gateway.request_filter_source(f"api.{DOMAIN}", CATALOG, DOMAIN, ())
    passed, reply = _filter(luajit, source, headers, CHAT, tmp_path / "body")
    assert reply is None
    if judged:
        passed = [h for h in passed if h[0] != TIER_HEADER] + [(TIER_HEADER, "free")]
    _, reply = _filter(luajit, gateway.policy_guard_source(), list(passed), CHAT, tmp_path / "guard")
    return reply


@pytest.mark.parametrize("path", ["/v1/chat/completions", "/v1/embeddings", "/v1/models?x=1"])
def test_a_metered_request_no_policy_judged_is_refused_in_openais_shape(
    luajit: str, tmp_path: Path, path: str
) -> None:
    reply = _through_the_gateway(luajit, tmp_path, path, judged=False)
    assert reply is not None
    status, content_type = reply[0].split("\t")
    assert (status, content_type) == (str(gateway.NO_POLICY_STATUS), "application/json")
    assert set(json.loads(reply[1])["error"]) == {"message", "type", "code"}


def test_a_request_a_policy_admitted_passes(luajit: str, tmp_path: Path) -> None:
    assert _through_the_gateway(luajit, tmp_path, "/v1/chat/completions", judged=True) is None


def test_a_client_cannot_send_the_marker(luajit: str, tmp_path: Path) -> None:
    """The request-body filter removes a client's tier header before Kuadrant's runs."""
    sent = ((TIER_HEADER, "enterprise"),)
    assert _through_the_gateway(luajit, tmp_path, "/v1/chat/completions", judged=False, sent=sent) is not None


def test_other_paths_are_left_to_the_router(luajit: str, tmp_path: Path) -> None:
    """No route takes them: the router answers 404, as before any policy."""
    assert _through_the_gateway(luajit, tmp_path, "/v1/responses", judged=False) is None


def test_the_guard_runs_after_kuadrants_filter_and_before_the_pools(stack_of: Any) -> None:
    """Istio applies EnvoyFilters in ascending priority, each inserted before the router:
    the request-body filter (-10), Kuadrant's wasm-shim (0), the guard, the pool filter."""
    assert gateway.REQUEST_BODY_PRIORITY < 0 < gateway.POLICY_GUARD_PRIORITY < gateway.TIER_CAPS_PRIORITY
    assert gateway.TIER_CAPS_PRIORITY < gateway.PICKER_ORDER_PRIORITY
    stack = stack_of("dev")
    guard = stack.one("EnvoyFilter", "inference-gateway-policy-guard").inputs["spec"]
    assert guard["priority"] == gateway.POLICY_GUARD_PRIORITY
    (patch,) = guard["configPatches"]
    assert patch["patch"]["operation"] == "INSERT_BEFORE"
    assert patch["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"] == gateway.ROUTER
