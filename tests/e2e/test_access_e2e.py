"""Access and limits on a real cluster (CHECKLIST A1-A13, L1-L6)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.e2e.cluster import Deployment, Response, chat, model_requests_served, request, until
from tests.e2e.identities import TemporaryKey, apply_key, kuadrant_namespace, oidc_token, temporary_key


@pytest.fixture(scope="module")
def enforced(deployment: Deployment) -> str:
    """Waits until every policy on the gateway reports Enforced; returns the models namespace."""
    namespace = str(deployment.outputs["gatewayService"]).split("/")[0]
    for kind in ("authpolicy", "ratelimitpolicy", "tokenratelimitpolicy"):
        for item in deployment.get(kind, "-n", namespace)["items"]:
            deployment.wait("Enforced", f"{kind}/{item['metadata']['name']}", namespace, timeout_s=300)
    return namespace


@pytest.fixture(scope="module")
def target(deployment: Deployment) -> tuple[str, str, str]:
    """(model name, host, served name) of the first model: the simulator on dev."""
    name, model = next(iter(deployment.outputs["models"].items()))
    return name, model["url"].split("//")[1].split(":")[0], model["servedModelName"]


def _tier_table(deployment: Deployment) -> dict[str, dict[str, Any]]:
    namespace = str(deployment.outputs["gatewayService"]).split("/")[0]
    policies = deployment.get("ratelimitpolicy", "-n", namespace)["items"]
    tokens = deployment.get("tokenratelimitpolicy", "-n", namespace)["items"]
    table: dict[str, dict[str, Any]] = {tier: {} for tier in deployment.outputs["tiers"]}
    for name, limit in policies[0]["spec"]["limits"].items():
        table[name.removesuffix("-requests")]["requests"] = limit["rates"][0]
    for name, limit in tokens[0]["spec"]["limits"].items():
        table[name.removesuffix("-tokens")]["tokens"] = limit["rates"][0]
    return table


def _call(port: int, host: str, served: str, headers: dict[str, str], **extra: Any) -> Response:
    return request(port, host, "/v1/chat/completions", chat(served, **extra), headers)


def _until_429(
    port: int, host: str, served: str, key: TemporaryKey, at_most: int, **extra: Any
) -> list[Response]:
    replies = []
    for _ in range(at_most):
        replies.append(_call(port, host, served, key.header, **extra))
        if replies[-1].status == 429:
            break
    return replies


def test_unauthenticated_and_misaddressed_requests_get_401_and_never_reach_the_model(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str]
) -> None:
    name, host, served = target
    before = model_requests_served(deployment, enforced, name)
    with temporary_key(deployment, deployment.outputs["tiers"][-1]) as key:
        until(lambda: _call(gateway_port, host, served, key.header).status == 200, 30, "the new key to work")
        after_valid = model_requests_served(deployment, enforced, name)
        denied = {
            "no credentials (A1)": {},
            "unknown key (A2)": {"Authorization": f"APIKEY {uuid.uuid4().hex}{uuid.uuid4().hex}"},
            "key as a Bearer token (A8)": {"Authorization": f"Bearer {key.key}"},
            "key in another header (A8)": {"X-Api-Key": key.key},
            "key without its prefix (A8)": {"Authorization": key.key},
        }
        for case, headers in denied.items():
            assert _call(gateway_port, host, served, headers).status == 401, case
        assert model_requests_served(deployment, enforced, name) == after_valid, (
            "a denied request reached the model"
        )
    assert after_valid > before


def test_a_key_in_a_secret_the_policy_does_not_select_gets_401(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str]
) -> None:
    _, host, served = target
    with temporary_key(deployment, deployment.outputs["tiers"][0], selected=False) as key:
        assert _call(gateway_port, host, served, key.header).status == 401


def test_an_identity_of_an_unconfigured_tier_gets_403(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str]
) -> None:
    _, host, served = target
    with temporary_key(deployment, f"not-a-tier-{uuid.uuid4().hex[:6]}") as key:
        assert until(lambda: _call(gateway_port, host, served, key.header).status == 403, 30, "403")


def test_keys_work_at_once_rotate_and_revoke_without_restarts(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str]
) -> None:
    """A5, A6, A7: Authorino follows Secret changes; nothing is restarted."""
    _, host, served = target
    namespace = kuadrant_namespace(deployment)
    with temporary_key(deployment, deployment.outputs["tiers"][-1]) as key:
        until(
            lambda: _call(gateway_port, host, served, key.header).status == 200, 30, "a new key to work (A5)"
        )
        old = key.header
        key.key = uuid.uuid4().hex + uuid.uuid4().hex
        apply_key(deployment, key, namespace)
        until(lambda: _call(gateway_port, host, served, key.header).status == 200, 30, "the rotated key (A7)")
        assert _call(gateway_port, host, served, old).status == 401
        deployment.kubectl("delete", "secret", key.secret, "-n", namespace)
        until(lambda: _call(gateway_port, host, served, key.header).status == 401, 30, "revocation (A6)")


@pytest.mark.parametrize("tier_index", [0, 1, 2])
def test_each_tier_gets_its_request_limit_then_429(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str], tier_index: int
) -> None:
    """L1: free 5, premium 20, enterprise 100 (or whatever the stack's tier table says)."""
    tiers = deployment.outputs["tiers"]
    if tier_index >= len(tiers):
        pytest.skip(f"the stack has {len(tiers)} tiers")
    tier = tiers[tier_index]
    limit = int(_tier_table(deployment)[tier]["requests"]["limit"])
    _, host, served = target
    with temporary_key(deployment, tier) as key:
        until(lambda: _call(gateway_port, host, served, key.header).status == 200, 30, "the new key to work")
        statuses = [_call(gateway_port, host, served, key.header).status for _ in range(limit)]
        assert statuses == [200] * (limit - 1) + [429], f"{tier}: {statuses}"


def test_users_of_one_tier_are_counted_apart(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str]
) -> None:
    """L3: one user at 429 while another of the same tier still gets 200."""
    _, host, served = target
    tier = deployment.outputs["tiers"][0]
    limit = int(_tier_table(deployment)[tier]["requests"]["limit"])
    with temporary_key(deployment, tier) as first, temporary_key(deployment, tier) as second:
        replies = _until_429(gateway_port, host, served, first, at_most=limit + 1)
        assert replies[-1].status == 429
        until(lambda: _call(gateway_port, host, served, second.header).status == 200, 30, "the second user")


def test_the_window_resets_the_count(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str]
) -> None:
    """L2: after the window, 200 again (waits at most one window and a half)."""
    _, host, served = target
    tier = deployment.outputs["tiers"][0]
    rate = _tier_table(deployment)[tier]["requests"]
    window_s = _seconds(rate["window"])
    with temporary_key(deployment, tier) as key:
        assert _until_429(gateway_port, host, served, key, at_most=int(rate["limit"]) + 1)[-1].status == 429
        until(
            lambda: _call(gateway_port, host, served, key.header).status == 200,
            window_s * 1.5,
            "a new window",
            5,
        )


def _seconds(window: str) -> float:
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total, number = 0.0, ""
    for part in window.replace("ms", "X"):
        if part.isdigit():
            number += part
        else:
            total += int(number) * units["ms" if part == "X" else part]
            number = ""
    return total


# A client that streams without stream_options is charged too: the gateway adds it
# (components/serving/lua/stream_usage.lua), so its stream carries usage all the same.
STREAMING: dict[str, dict[str, Any]] = {
    "not streamed": {},
    "streamed, asking for usage": {"stream": True, "stream_options": {"include_usage": True}},
    "streamed without stream_options": {"stream": True},
}


@pytest.mark.parametrize("mode", list(STREAMING))
def test_token_limits_count_usage_total_tokens(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str], mode: str
) -> None:
    """L5/L6: long prompts use up a tier's tokens before its requests, streamed or not."""
    _, host, served = target
    table = _tier_table(deployment)
    tier = deployment.outputs["tiers"][0]
    token_limit, request_limit = int(table[tier]["tokens"]["limit"]), int(table[tier]["requests"]["limit"])
    words = max(200, token_limit // max(request_limit - 2, 1))
    prompt = " ".join(["token"] * words)
    extra, stream = STREAMING[mode], "stream" in STREAMING[mode]
    with temporary_key(deployment, tier) as key:
        until(lambda: _call(gateway_port, host, served, key.header).status == 200, 30, "the new key to work")
        spent, replies = 0, []
        for _ in range(request_limit - 1):
            replies.append(_call(gateway_port, host, served, key.header, content=prompt, **extra))
            if replies[-1].status == 429:
                break
            spent += _total_tokens(replies[-1], stream)
        assert replies[-1].status == 429, f"no 429 after {spent} tokens"
        assert spent >= token_limit, "429 came before the token limit was spent: it was not the token limit"


def _total_tokens(reply: Response, stream: bool) -> int:
    assert reply.status == 200, reply.body[:200]
    if not stream:
        return int(reply.json()["usage"]["total_tokens"])
    chunks = [line[6:] for line in reply.body.decode().splitlines() if line.startswith("data: {")]
    usage = [json.loads(c)["usage"] for c in chunks if json.loads(c).get("usage")]
    assert usage, "a streamed response without usage"
    return int(usage[-1]["total_tokens"])


@pytest.mark.parametrize("path", ["/v1/responses", "/v1/embeddings", "/metrics", "/tokenize", "/health"])
def test_only_metered_endpoints_are_published(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str], path: str
) -> None:
    """The simulator serves these (llm-d-inference-sim v0.10.2 pkg/communication/http.go);
    the route does not, so a valid key gets the gateway's 404 and the model sees nothing."""
    name, host, served = target
    namespace = enforced
    with temporary_key(deployment, deployment.outputs["tiers"][-1]) as key:
        until(lambda: _call(gateway_port, host, served, key.header).status == 200, 30, "the new key to work")
        before = model_requests_served(deployment, namespace, name)
        reply = request(gateway_port, host, path, {"model": served, "input": "Hi"}, key.header)
        assert reply.status == 404, f"{path}: {reply.status} {reply.body[:200]!r}"
        assert model_requests_served(deployment, namespace, name) == before


def test_a_route_added_later_is_protected_by_the_gateway_policies(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str]
) -> None:
    """A13: an HTTPRoute nobody wrote a policy for still needs a key."""
    name, host, served = target
    extra_host = f"late-{uuid.uuid4().hex[:6]}.{host.split('.', 1)[1]}"
    route_name = extra_host.split(".")[0]
    route: dict[str, Any] = {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": route_name, "namespace": enforced},
        "spec": {
            "parentRefs": [{"name": "inference-gateway"}],
            "hostnames": [extra_host],
            "rules": [{"backendRefs": [{"name": f"{name}-predictor", "port": 80}]}],
        },
    }
    deployment.kubectl("apply", "-f", "-", stdin=json.dumps(route))
    try:
        until(
            lambda: _call(gateway_port, extra_host, served, {}).status == 401,
            60,
            "the late route to answer 401",
        )
    finally:
        deployment.kubectl("delete", "httproute", route_name, "-n", enforced, check=False)


def test_keycloak_tokens_work_like_keys_with_the_tier_from_the_group(
    deployment: Deployment, gateway_port: int, enforced: str, target: tuple[str, str, str]
) -> None:
    """A10: a valid token gets 200 and its tier's limits; none or garbage gets 401."""
    if "oidcIssuer" not in deployment.outputs:
        pytest.skip("this stack has no Keycloak (auth.oidc.enabled is false)")
    _, host, served = target
    users: dict[str, str] = deployment.outputs["users"]
    user = next(u for u, tier in users.items() if tier == deployment.outputs["tiers"][0])
    bearer = {"Authorization": f"Bearer {oidc_token(deployment, user)}"}
    assert _call(gateway_port, host, served, {"Authorization": "Bearer not.a.token"}).status == 401
    rate = _tier_table(deployment)[users[user]]["requests"]
    # A realm user's counter may still hold an earlier run's requests: start in a fresh window.
    until(
        lambda: _call(gateway_port, host, served, bearer).status == 200,
        _seconds(rate["window"]) * 1.5,
        "200",
        5,
    )
    statuses = [_call(gateway_port, host, served, bearer).status for _ in range(int(rate["limit"]))]
    assert 429 in statuses, f"{user} never limited: {statuses}"
    assert set(statuses[: statuses.index(429)]) <= {200}, statuses
