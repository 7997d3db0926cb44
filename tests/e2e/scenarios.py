"""The end-to-end scenarios: each checks one behaviour of CHECKLIST.md against a `Platform`.

They run against a deployed stack (tests/e2e/test_*_e2e.py) and, offline, against a fake
gateway that can misbehave (tests/suite/), which shows that each scenario fails when the
platform does what it must not. Expected values come from the stack's config file.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from components.access import tiers
from components.names import KEYCLOAK_NAMESPACE, MODEL_HEADER, TIER_HEADER, USER_HEADER, VIA_HEADER
from tests.e2e.cluster import Response
from tests.e2e.platform import Key, Model, Platform, Sent, chat_body, seconds, token_claims

# Words in the warm-up prompt of a new key: enough to measure what the tokenizer makes of a word.
WARMUP_WORDS = 50


def warmup_prompt(words: int = WARMUP_WORDS) -> str:
    return " ".join(["token"] * words)


@contextlib.contextmanager
def live_key(p: Platform, tier: str, model: Model | None = None, selected: bool = True) -> Iterator[Key]:
    """A new key that has answered once: it waits for Authorino to see the Secret (answers
    before that are 401 and count for nothing) and accounts for that first admitted
    request and its tokens, so a limit test counts from a known spend."""
    model = model or p.open_model
    with p.new_key(tier, selected) as key:
        first = p.until(
            lambda: _ok(p.chat(model, key.header, content=warmup_prompt())), 60, f"the new {tier} key to work"
        )
        assert first is not None
        usage = first.json()["usage"]
        key.requests, key.tokens = 1, int(usage["total_tokens"])
        key.tokens_per_word = int(usage["prompt_tokens"]) / WARMUP_WORDS
        yield key


def rest_of_window(p: Platform, key: Key, limit: int) -> list[int]:
    """The statuses of the requests `key` has left under `limit` in its window, and one more."""
    return [p.chat(p.open_model, key.header).status for _ in range(limit - key.requests + 1)]


def exactly(limit: int, key: Key) -> list[int]:
    """What the rest of a window looks like when the limit holds exactly: 200s, then 429."""
    return [200] * (limit - key.requests) + [429]


def _ok(reply: Response) -> Response | None:
    return reply if reply.status == 200 else None


def host(p: Platform) -> str:
    return p.open_model.host


def requires(holds: bool, reason: str) -> None:
    """Skips the scenario where the stack lacks what it needs, on a cluster and offline
    alike (the offline suite runs every scenario on every kind stack's config, and fails
    a scenario that no kind stack runs: CI would prove it nowhere)."""
    if not holds:
        pytest.skip(reason)


# --- Access -----------------------------------------------------------------------------


def answers_with_usage(p: Platform) -> None:
    """A4: a valid key gets 200 and an OpenAI body with usage, on every model (with a key
    of a tier the model admits)."""
    for model in p.models:
        with live_key(p, p.tier_for(model), model) as key:
            reply = p.chat(model, key.header)
            assert reply.status == 200, f"{model.name}: {reply.status} {reply.body[:200]!r}"
            usage = reply.json()["usage"]
            assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0


def denied_without_a_valid_key(p: Platform) -> None:
    """A1, A2, A8: no key, an unknown key, or a key sent any other way: 401, with OpenAI's
    error body (A18)."""
    model = p.open_model
    with live_key(p, p.tier_names[-1]) as key:
        denied = {
            "no credentials (A1)": {},
            "unknown key (A2)": {"Authorization": f"APIKEY {uuid.uuid4().hex}{uuid.uuid4().hex}"},
            "key as a Bearer token (A8)": {"Authorization": f"Bearer {key.value}"},
            "key in another header (A8)": {"X-Api-Key": key.value},
            "key without its prefix (A8)": {"Authorization": key.value},
        }
        for case, headers in denied.items():
            _openai_error(p.chat(model, headers), 401, case)


def unselected_secret_grants_nothing(p: Platform) -> None:
    """A3: a valid key in a Secret our policy does not select: 401, once Authorino has seen
    it (a selected key made at the same time already works), and 200 once relabelled."""
    model = p.open_model
    with p.new_key(p.tier_names[0], selected=False) as outside, live_key(p, p.tier_names[0]):
        assert p.chat(model, outside.header).status == 401, "a Secret without our label granted access"
        outside.selected = True
        p.put_key(outside)
        p.until(
            lambda: p.chat(model, outside.header).status == 200, 60, "the relabelled key to work (control)"
        )


def unconfigured_tier_is_forbidden(p: Platform) -> None:
    """A11: an identity whose tier is not in the table: 403."""
    model = p.open_model
    with p.new_key(f"not-a-tier-{uuid.uuid4().hex[:6]}") as key:
        p.until(lambda: p.chat(model, key.header).status == 403, 60, "403 for an unknown tier")


def keys_follow_their_secrets(p: Platform) -> None:
    """A5, A6, A7: a new key works, a rotated key's old value stops, a removed key stops;
    nothing restarts (Authorino's pods and their restart counts are the same after)."""
    model = p.open_model
    authorino = p.restarts("authorino")
    with live_key(p, p.tier_names[-1]) as key:
        old = dict(key.header)
        key.value = uuid.uuid4().hex + uuid.uuid4().hex
        p.put_key(key)
        p.until(lambda: p.chat(model, key.header).status == 200, 60, "the rotated key (A7)")
        p.until(lambda: p.chat(model, old).status == 401, 60, "the old value to stop (A7)")
        p.delete_key(key)
        p.until(lambda: p.chat(model, key.header).status == 401, 60, "revocation (A6)")
    assert p.restarts("authorino") == authorino, f"Authorino restarted on key changes: {authorino}"


def late_route_is_protected(p: Platform) -> None:
    """A13: a route added later, with no policy of its own, never answers without a key.

    Until a key is served on the new host (the control), every keyless answer must be a
    non-200: 404 while the gateway does not know the host yet, 503 while Kuadrant has no
    action set for it (the gateway's policy guard, lua/policy_guard.lua), 401 after."""
    model = p.open_model
    late = f"late-{uuid.uuid4().hex[:6]}.{model.host.split('.', 1)[1]}"
    with live_key(p, p.tier_names[-1]) as key, p.extra_route(late, model):
        keyless: list[int] = []

        def served_with_a_key() -> bool:
            keyless.append(p.chat(model, {}, host=late).status)
            return p.chat(model, key.header, host=late).status == 200

        p.until(served_with_a_key, 120, "the late route to serve a key (control)")
        keyless.extend(p.chat(model, {}, host=late).status for _ in range(3))
        assert 200 not in keyless, f"the late route answered without a key: {keyless}"
        assert keyless[-3:] == [401] * 3, keyless


# Where Kuadrant's configuration broke with the tier policies on the Gateway: 38 models at
# 3 tiers on one listener (issue 27; policies/maas_policies/kuadrant_size.py estimates it).
LARGE_CATALOG = 38


def a_large_catalog_is_in_force(p: Platform) -> None:
    """Issue 27: in a catalog of at least 38 models every model is protected and metered. On
    each model's own host a request without a key gets 401, one with a key of a tier the
    model admits 200, and Prometheus meters that request under the model's own name."""
    requires(
        len(p.models) >= LARGE_CATALOG,
        f"stack {p.stack} serves {len(p.models)} models, fewer than {LARGE_CATALOG}",
    )
    expected: dict[tuple[str, str], int] = {}  # (tier, model) -> requests, warm-ups included
    with contextlib.ExitStack() as stack:
        keys: dict[str, Key] = {}
        for model in p.models:
            tier = p.tier_for(model)
            if tier not in keys:
                keys[tier] = stack.enter_context(live_key(p, tier, model))
                expected[(tier, model.name)] = 1
            refused = p.chat(model, {})
            assert refused.status == 401, f"{model.name} without a key: {refused.status}"
            reply = p.chat(model, keys[tier].header)
            assert reply.status == 200, f"{model.name} with a {tier} key: {reply.status} {reply.body[:200]!r}"
            expected[(tier, model.name)] = expected.get((tier, model.name), 0) + 1
        unmetered: list[str] = []

        def metered() -> bool:
            unmetered[:] = [
                f"{name} ({p.query(_requests_of(keys[tier].user, tier, name))} of {count})"
                for (tier, name), count in expected.items()
                if p.query(_requests_of(keys[tier].user, tier, name)) != count
            ]
            return not unmetered

        try:
            p.until(metered, 180, f"the requests to each of {len(p.models)} models metered under its name")
        except AssertionError as error:
            raise AssertionError(f"{error}; not metered: {', '.join(unmetered)}") from None


def _requests_of(user: str, tier: str, model: str) -> str:
    """PromQL: the requests Prometheus's rules recorded for a user on a model (as the export sums them)."""
    return f'sum(sum_over_time(maas:requests:increase{{user="{user}", tier="{tier}", model="{model}"}}[1h]))'


def only_metered_endpoints_are_published(p: Platform, path: str) -> None:
    """The model servers answer these paths; the routes do not publish them: 404."""
    model = p.open_model
    with live_key(p, p.tier_names[-1]) as key:
        reply = p.call(model.host, path, {"model": model.served, "input": "Hi"}, key.header)
        assert reply.status == 404, f"{path}: {reply.status} {reply.body[:200]!r}"


def model_outside_the_tier_is_forbidden(p: Platform) -> None:
    """A14: a model restricted to some tiers answers a caller of another tier 403, in
    OpenAI's error shape; a caller of an admitted tier gets 200."""
    restricted = [(m, p.model_config(m).tiers or ()) for m in p.models if p.model_config(m).tiers]
    requires(bool(restricted), f"stack {p.stack} restricts no model to some tiers (maas:models[].tiers)")
    for model, admitted in restricted:
        outside = [t for t in p.tier_names if t not in admitted]
        for tier in outside:
            with live_key(p, tier) as key:
                reply = p.chat(model, key.header)
                assert reply.status == 403, f"{tier} on {model.name}: {reply.status}"
                error = reply.json()["error"]
                assert {"message", "type", "code"} <= set(error), error
        with live_key(p, admitted[0], model) as key:
            assert p.chat(model, key.header).status == 200, f"{admitted[0]} on {model.name}"


def listing_models_is_free(p: Platform) -> None:
    """GET /v1/models is answered but neither limited nor billed: after more listings than
    the tier's request limit, the key still has its whole request budget."""
    tier = p.tier(p.tier_names[0])
    with live_key(p, tier.name) as key:
        listings = [
            p.call(p.open_model.host, "/v1/models", None, key.header).status
            for _ in range(tier.shortest_requests.limit + 1)
        ]
        assert set(listings) == {200}, f"listing models was limited: {listings}"
        statuses = rest_of_window(p, key, tier.shortest_requests.limit)
        assert statuses == exactly(tier.shortest_requests.limit, key), f"listings were billed: {statuses}"


def oidc_tokens_work_like_keys(p: Platform) -> None:
    """A10: a Keycloak token gets 200 and its tier's limits; garbage gets 401."""
    requires(p.config.auth.oidc.enabled, f"stack {p.stack} has no Keycloak (auth.oidc.enabled is false)")
    model = p.open_model
    user = next(u.name for u in p.config.users if u.tier == p.tier_names[0])
    tier = p.tier(p.tier_names[0])
    bearer = {"Authorization": f"Bearer {p.oidc_token(user)}"}
    assert p.chat(model, {"Authorization": "Bearer not.a.token"}).status == 401
    # A realm user's counter may hold an earlier run's requests: start in a fresh window.
    p.until(
        lambda: p.chat(model, bearer).status == 200,
        seconds(tier.shortest_requests.window) * 1.5,
        "200 with a token",
        scaled=False,
    )
    statuses = [p.chat(model, bearer).status for _ in range(tier.shortest_requests.limit)]
    assert 429 in statuses, f"{user} never limited: {statuses}"
    assert set(statuses[: statuses.index(429)]) == {200}, statuses


def expired_token_is_refused(p: Platform) -> None:
    """A10: a Keycloak token past its `exp` gets 401 (while a fresh one gets 200). Waits
    for the token's own lifetime, from its `exp` claim (Keycloak's default: 5 minutes)."""
    import time

    requires(p.config.auth.oidc.enabled, f"stack {p.stack} has no Keycloak (auth.oidc.enabled is false)")
    user = next(u.name for u in p.config.users if u.tier == p.tier_names[-1])
    token = p.oidc_token(user)
    claims = token_claims(token)
    assert claims is not None, "the token is not a JWT"
    expires = float(claims["exp"])
    assert p.chat(p.open_model, {"Authorization": f"Bearer {token}"}).status == 200, "control: a fresh token"
    # Time itself, not the platform: unscaled, with a margin for the skew between this
    # machine's clock and Authorino's (5 s; the fake has one clock: scaled).
    skew_s = 5 * p.scale
    p.until(
        lambda: time.time() > expires + skew_s,
        expires - time.time() + 2 * skew_s + 1,
        "the token to expire",
        scaled=False,
    )
    status = p.chat(p.open_model, {"Authorization": f"Bearer {token}"}).status
    assert status == 401, f"an expired token got {status}"


# --- The shared host: one OpenAI base URL -----------------------------------------------


def _openai_error(reply: Response, status: int, what: str) -> dict[str, Any]:
    assert reply.status == status, f"{what}: {reply.status} {reply.body[:200]!r}"
    try:
        error: dict[str, Any] = reply.json()["error"]
    except (ValueError, KeyError, TypeError):
        raise AssertionError(f"{what}: not OpenAI's error shape: {reply.body[:200]!r}") from None
    assert {"message", "type", "code"} <= set(error), f"{what}: not OpenAI's error shape: {error}"
    return error


def shared_host_serves_every_model(p: Platform) -> None:
    """The body's `model` picks the model on the shared host: each model answers there (with
    a key of a tier it admits), as itself, with usage."""
    for model in p.models:
        with live_key(p, p.tier_for(model), model) as key:
            reply = p.chat(model, key.header, host=p.api_host)
            assert reply.status == 200, f"{model.name} on {p.api_host}: {reply.status} {reply.body[:200]!r}"
            assert reply.json()["model"] == p.answers_as(model), "answered by another model"
            assert reply.json()["usage"]["total_tokens"] > 0


def shared_host_lists_each_tiers_models(p: Platform) -> None:
    """A15: GET /v1/models on the shared host lists exactly the caller's tier's models, in
    OpenAI's list format; without a credential, 401."""
    assert p.call(p.api_host, "/v1/models").status == 401, "the model list answered without a credential"
    for tier in p.tier_names:
        with live_key(p, tier) as key:
            reply = p.call(p.api_host, "/v1/models", None, key.header)
            assert reply.status == 200, f"{tier}: {reply.status} {reply.body[:200]!r}"
            listed = reply.json()
            assert listed["object"] == "list"
            assert [m["id"] for m in listed["data"]] == p.models_for(tier), f"{tier}'s list"


def shared_host_refuses_what_it_cannot_route(p: Platform) -> None:
    """A16, A14 on the shared host: an unknown model 404, no model (or not a string) 400, a
    model outside the caller's tier 403, each in OpenAI's error shape; none reaches a model
    or spends budget (the leak oracle, and the control: the key's whole budget is left)."""
    tier = p.tier(p.tier_names[0])
    with live_key(p, tier.name) as key:
        unknown = {**chat_body(p.open_model), "model": f"no-such-model-{uuid.uuid4().hex[:6]}"}
        _openai_error(p.call(p.api_host, "/v1/chat/completions", unknown, key.header), 404, "unknown model")
        for case, body in (
            ("no model", {"messages": [{"role": "user", "content": "Hi"}]}),
            ("model not a string", {**chat_body(p.open_model), "model": 5}),
        ):
            _openai_error(p.call(p.api_host, "/v1/chat/completions", body, key.header), 400, case)
        for model in p.models:
            if not p.model_config(model).admits(tier.name):
                _openai_error(p.chat(model, key.header, host=p.api_host), 403, f"{tier.name} on {model.name}")
        limit = tier.shortest_requests.limit
        statuses = rest_of_window(p, key, limit)
        assert statuses == exactly(limit, key), f"refused requests were billed: {statuses}"


def client_routing_headers_change_nothing(p: Platform) -> None:
    """A17: a client-sent model or tier header is removed before it counts: it neither picks
    the model (the body does, on the shared host; the host does, on a model's host), nor
    lets a tier reach a model outside it, nor changes the model list."""
    low = p.tier_names[0]
    restricted = [m for m in p.models if not p.model_config(m).admits(low)]
    # Without a model the lowest tier may not use, a forged header has nothing to reach.
    requires(bool(restricted), f"stack {p.stack}: every model admits {low}; A17 needs one that does not")
    with live_key(p, low) as key:
        forged = {**key.header, MODEL_HEADER: restricted[0].served, TIER_HEADER: p.tier_names[-1]}
        reply = p.chat(p.open_model, forged, host=p.api_host)
        assert reply.status == 200, f"a client header picked the model: {reply.status} {reply.body[:200]!r}"
        assert reply.json()["model"] == p.open_model.served, "a client header picked the model"
        key.requests += 1
        forged_open = {**key.header, MODEL_HEADER: p.open_model.served, TIER_HEADER: p.tier_names[-1]}
        for model in restricted:
            for host in (model.host, p.api_host):
                _openai_error(p.chat(model, forged_open, host=host), 403, f"{low} on {model.name} via {host}")
        listed = p.call(p.api_host, "/v1/models", None, forged).json()
        assert [m["id"] for m in listed["data"]] == p.models_for(low), "a client header changed the list"


def budgets_span_both_hosts(p: Platform) -> None:
    """One route per model holds both hosts, so one budget: requests on the model's host and
    on the shared host spend the same request limit, then 429 on either."""
    tier = p.tier(p.tier_names[0])
    model = p.open_model
    with live_key(p, tier.name) as key:
        left = tier.shortest_requests.limit - key.requests
        hosts = [p.api_host if i % 2 else model.host for i in range(left)]
        statuses = [p.chat(model, key.header, host=h).status for h in hosts]
        assert statuses == [200] * len(hosts), statuses
        after = [p.chat(model, key.header, host=h).status for h in (model.host, p.api_host)]
        assert after == [429, 429], f"the hosts keep separate budgets: {after}"


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_openai_example() -> str:
    """README's OpenAI SDK example: its one Python block."""
    blocks: list[str] = re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL)
    (block,) = blocks
    return block


def openai_sdk_example(p: Platform) -> None:
    """README's OpenAI SDK example, run as written but for the forwarded port and the
    model name, with a key of the lowest tier: it lists that tier's models and gets an
    answer with usage through the shared host."""
    requires(
        p.gateway_listener[0] == "http",
        f"stack {p.stack} serves HTTPS only: README's example is dev's plain-HTTP port-forward "
        "(over HTTPS a client needs the host's DNS name, for SNI)",
    )
    tier = p.tier_names[0]
    example = readme_openai_example()
    for written in ("127.0.0.1:8000", '"simulator-model"', '"api.maas.local"'):
        assert written in example, f"README's example no longer has {written}"
    code = example.replace("127.0.0.1:8000", f"127.0.0.1:{p.gateway_port()}")
    code = code.replace('"simulator-model"', json.dumps(p.open_model.served))
    code = code.replace('"api.maas.local"', json.dumps(p.api_host))
    with live_key(p, tier) as key:
        done = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "MAAS_API_KEY": key.value},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        # What the example sent, for the leak oracle: a listing and one completion.
        p.traffic.append(Sent("readme-list", p.api_host, "/v1/models", 200, None))
        p.traffic.append(Sent("readme-chat", p.api_host, "/v1/chat/completions", 200, p.open_model.name))
        assert done.returncode == 0, f"README's OpenAI example failed: {done.stderr[-1500:]}"
        listed, tokens = done.stdout.splitlines()
        assert listed == str(p.models_for(tier)), f"README's example listed {listed}"
        assert int(tokens) > 0


# --- Limits -----------------------------------------------------------------------------


def request_limit(p: Platform, tier_name: str) -> None:
    """L1: a tier's request limit from the stack config, exactly: then 429."""
    limit = p.tier(tier_name).shortest_requests.limit
    with live_key(p, tier_name) as key:
        statuses = rest_of_window(p, key, limit)
        assert statuses == exactly(limit, key), f"{tier_name} (limit {limit}): {statuses}"


def limited_request_gets_an_openai_shaped_429(p: Platform) -> None:
    """A18: past its tier's request limit a request gets 429 in OpenAI's error shape, with a
    Retry-After (whole seconds, at most the window) that OpenAI's SDKs wait before retrying
    (components/serving/lua/refusals.lua: Limitador's X-RateLimit-Reset)."""
    tier = p.tier(p.tier_names[0])
    with live_key(p, tier.name) as key:
        statuses = rest_of_window(p, key, tier.shortest_requests.limit)
        assert statuses[-1] == 429, f"never limited: {statuses}"
        reply = p.chat(p.open_model, key.header)
        error = _openai_error(reply, 429, "past the request limit")
        assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded"), error
        wait = reply.headers.get("retry-after", "")
        assert wait.isdigit(), f"Retry-After {wait!r}"
        assert int(wait) <= seconds(tier.shortest_requests.window), f"Retry-After {wait!r}"


def an_oversized_body_gets_an_openai_shaped_413(p: Platform) -> None:
    """A18: a body past maas:gateway.maxRequestBytes gets 413 in OpenAI's error shape, before
    authentication; one past Envoy's default 1 MiB but within the configured limit is not
    refused as too large (the limit set is the limit applied)."""
    limit = p.config.gateway.max_request_bytes
    with live_key(p, p.tier_names[0]) as key:
        over = p.chat(p.open_model, key.header, content="x" * limit)
        error = _openai_error(over, 413, f"a body over {limit} bytes")
        assert error["code"] == "request_too_large", error
        within = p.chat(p.open_model, key.header, content="x" * min(2 * 1024 * 1024, limit - 4096))
        assert within.status != 413, f"a body within {limit} bytes refused as too large"


def users_are_counted_apart(p: Platform) -> None:
    """L3: one user at 429 while another of the same tier still gets 200."""
    tier = p.tier_names[0]
    limit = p.tier(tier).shortest_requests.limit
    with live_key(p, tier) as first, live_key(p, tier) as second:
        statuses = rest_of_window(p, first, limit)
        assert statuses[-1] == 429, f"the first user was never limited: {statuses}"
        assert p.chat(p.open_model, second.header).status == 200, (
            "the second user was limited by the first's requests"
        )


def window_resets(p: Platform) -> None:
    """L2: after the window, 200 again (waits at most a window and a half)."""
    tier = p.tier(p.tier_names[0])
    with live_key(p, tier.name) as key:
        statuses = rest_of_window(p, key, tier.shortest_requests.limit)
        assert statuses[-1] == 429, statuses
        p.until(
            lambda: p.chat(p.open_model, key.header).status == 200,
            seconds(tier.shortest_requests.window) * 1.5,
            "a new window",
            scaled=False,
        )


def longer_window_outlasts_a_shorter_one(p: Platform) -> None:
    """L20: a request limit of several windows holds each: the shortest refuses at its limit,
    and once it has reset the next one, still counting what was spent, refuses at its own
    limit while the shortest has room (waits at most a short window and a half)."""
    tier = next((t for t in p.config.tiers if len(t.requests) > 1), None)
    requires(tier is not None, "no tier has a request limit of several windows")
    assert tier is not None
    short, long = sorted(tier.requests, key=lambda rate: seconds(rate.window))[:2]
    requires(
        long.limit - short.limit - 1 < short.limit,
        f"{tier.name}'s second window ({long.limit} per {long.window}) outlasts two of its first",
    )
    with live_key(p, tier.name) as key:
        statuses = rest_of_window(p, key, short.limit)
        assert statuses == exactly(short.limit, key), f"{tier.name} per {short.window}: {statuses}"
        p.until(
            lambda: p.chat(p.open_model, key.header).status == 200,
            seconds(short.window) * 1.5,
            f"the {short.window} window to reset",
            scaled=False,
        )
        left = long.limit - short.limit - 1
        statuses = [p.chat(p.open_model, key.header).status for _ in range(left + 1)]
        assert statuses == [200] * left + [429], (
            f"{tier.name}: {long.limit} per {long.window} after the {short.window} window reset: {statuses}"
        )


def a_models_own_quota_holds_apart(p: Platform) -> None:
    """L21: a model's own request quota in a tier holds exactly, in place of the tier's limit
    for that model, and apart from it: past the quota the model refuses while the tier's
    other models still answer."""
    found = [(m, t) for m in p.config.models for t in p.tier_names if m.own_rates(t, "requests")]
    requires(bool(found), "no model has a request quota of its own in a tier")
    config, tier = found[0]
    model = next(m for m in p.models if m.name == config.name)
    quota = min(config.own_rates(tier, "requests") or (), key=lambda rate: seconds(rate.window))
    with live_key(p, tier, model) as key:
        statuses = [p.chat(model, key.header).status for _ in range(quota.limit - key.requests + 1)]
        assert statuses == exactly(quota.limit, key), (
            f"{tier} on {model.name}, its own {quota.limit} per {quota.window}: {statuses}"
        )
        assert p.chat(p.open_model, key.header).status == 200, (
            f"{model.name}'s own quota held back {tier}'s other models"
        )


def a_budget_stops_spending(p: Platform) -> None:
    """L23: a user's money budget that a request cap holds exactly (every model the user's
    tier reaches paid per request alone) stops the user's spending at the budget, counted
    across models: requests alternating between two models are admitted up to the cap and
    refused from then on, while the tier's request limit still has room. The cap is the
    user's own (dev-oidc: premiumuser2, whom no other scenario calls as); it counts per user,
    so a run within the budget's window of an earlier one finds it spent."""
    caps = [c for c in tiers.stack_budget_caps(p.config) if c.user is not None]
    requires(bool(caps), "no user's money budget is held exactly by a request cap")
    cap = caps[0]
    assert cap.user is not None
    budget, window = min(cap.rates)
    tier = p.tier(cap.tier)
    models = [
        m
        for m in p.models
        if p.model_config(m).admits(tier.name)
        and p.model_config(m).own_rates(tier.name, "requests") is None
        and p.model_config(m).own_rates(tier.name, "tokens") is None
    ][:2]
    requires(len(models) == 2, f"tier {tier.name} reaches fewer than two models on its own limits")
    requires(
        budget < tier.shortest_requests.limit,
        f"{cap.user}'s cap of {budget} requests is not below tier {tier.name}'s request limit",
    )
    with p.new_key(tier.name, user=cap.user) as key:
        # Until Authorino has seen the key, answers are 401 and count for nothing.
        first = p.until(lambda: _seen(p.chat(models[0], key.header)), 60, f"{cap.user}'s new key to work")
        assert first is not None
        assert first.status == 200, (
            f"{cap.user}'s first request: {first.status} (its cap spent by a run in the last {window}?)"
        )
        statuses = [
            first.status,
            *(p.chat(models[turn % 2], key.header).status for turn in range(1, budget + 1)),
        ]
    assert statuses == [200] * budget + [429], (
        f"{cap.user}'s cap of {budget} requests per {window} across {[m.name for m in models]}: {statuses}"
        + ("; requests admitted after the cap was spent" if statuses[-1] == 200 else "")
    )


def _seen(reply: Response) -> Response | None:
    return reply if reply.status != 401 else None


# A client that streams without stream_options is charged too (L16): the gateway adds it.
STREAMING: dict[str, dict[str, Any]] = {
    "not streamed": {},
    "streamed, asking for usage": {"stream": True, "stream_options": {"include_usage": True}},
    "streamed without stream_options": {"stream": True},
}


def token_limit(p: Platform, mode: str, tier_name: str | None = None) -> None:
    """L5, L6, L16, R2: 429 on the first request after a user's tokens pass the tier's limit
    (the lowest tier's unless named).

    The prompt is sized from what the warm-up cost, so the token limit is passed after
    about half the request limit, whatever the tokenizer makes of a word."""
    tier = p.tier(tier_name or p.tier_names[0])
    tokens, requests = tier.shortest_tokens.limit, tier.shortest_requests.limit
    extra, stream = STREAMING[mode], "stream" in STREAMING[mode]
    with live_key(p, tier.name) as key:
        target = math.ceil(tokens / max((requests - key.requests) // 2, 1))
        prompt = warmup_prompt(max(1, math.ceil(target / key.tokens_per_word)))
        spent, passed_before = key.tokens, []
        for _ in range(requests - key.requests):
            reply = p.chat(p.open_model, key.header, content=prompt, **extra)
            if reply.status != 200:
                break
            passed_before.append(spent >= tokens)
            spent += usage_tokens(reply, stream)
        assert reply.status == 429, f"no 429 after {spent} of {tokens} tokens: {reply.status}"
        assert spent >= tokens, f"429 at {spent} of {tokens} tokens: not the token limit"
        assert not any(passed_before), f"requests admitted after the {tokens}-token limit was passed"


def usage_tokens(reply: Response, stream: bool) -> int:
    if not stream:
        return int(reply.json()["usage"]["total_tokens"])
    chunks = [json.loads(line[6:]) for line in reply.body.decode().splitlines() if line.startswith("data: {")]
    usage = [c["usage"] for c in chunks if c.get("usage")]
    assert usage, "a streamed response without usage"
    return int(usage[-1]["total_tokens"])


def counters_reset_on_a_limitador_restart_in_memory(p: Platform) -> None:
    """R5, as docs/access.md documents for counters kept in memory (dev): a Limitador restart
    forgets every spend, so a user at 429 gets 200 again in the same window."""
    requires(
        p.config.limitador.storage != "redis",
        f"stack {p.stack} keeps counters in Redis (limitador.storage); they survive (L10)",
    )
    tier = p.tier(p.tier_names[0])
    with live_key(p, tier.name) as key:
        statuses = rest_of_window(p, key, tier.shortest_requests.limit)
        assert statuses[-1] == 429, statuses
        p.restart("limitador")
        assert p.chat(p.open_model, key.header).status == 200, (
            "in-memory counters survived a Limitador restart; docs/access.md documents that they reset"
        )


def counters_survive_a_limitador_restart(p: Platform) -> None:
    """L10: with Redis storage, a user's spend survives a Limitador restart."""
    requires(
        p.config.limitador.storage == "redis",
        f"stack {p.stack} keeps counters in memory (limitador.storage); they reset, as documented",
    )
    tier = p.tier(p.tier_names[0])
    with live_key(p, tier.name) as key:
        assert p.chat(p.open_model, key.header).status == 200
        key.requests += 1
        p.restart("limitador")
        statuses = rest_of_window(p, key, tier.shortest_requests.limit)
        assert statuses == exactly(tier.shortest_requests.limit, key), statuses


# --- Metering ---------------------------------------------------------------------------


def metering_matches_traffic(p: Platform, shared: bool = False) -> None:
    """L9: Prometheus's per-user requests and tokens equal what was sent, warm-up included,
    streamed or not, on the model's host or (`shared`) the shared host."""
    model, tier = p.open_model, p.tier_names[-1]
    host = p.api_host if shared else model.host
    with live_key(p, tier) as key:
        for extra in (STREAMING["not streamed"], STREAMING["streamed without stream_options"]) * 2:
            reply = p.chat(model, key.header, host=host, **extra)
            assert reply.status == 200, reply.body[:200]
            key.requests += 1
            key.tokens += usage_tokens(reply, "stream" in extra)
        selector = f'{{user="{key.user}", tier="{tier}", model="{model.name}"}}'
        # Rules run every evaluation interval (30s) after a scrape: a bounded wait. What they
        # recorded per evaluation, summed as the export sums them.
        requests, tokens = (
            f"sum(sum_over_time(maas:{m}:increase{selector}[1h]))" for m in ("requests", "tokens")
        )
        # Each counter is waited for apart: a response's tokens are reported after its request
        # was counted, so they may land in a later scrape.
        p.until(lambda: p.query(requests) == key.requests, 180, "requests metered")
        p.until(lambda: p.query(tokens) == key.tokens, 180, "tokens metered")


def a_cut_stream_takes_at_most_the_tiers_cap(p: Platform) -> None:
    """A stream its client closes before the end is charged nothing (the wasm-shim reads
    usage only from a stream's last chunk), so what one request can take is bounded by its
    tier's caps, set at the gateway (docs/metering.md): asking for more is 400, and a stream
    that asks for no limit and ignores the end of sequence, cut after its first bytes, makes
    the model's servers generate at most max_tokens x max_choices."""
    model, tier = p.open_model, p.tier(p.tier_names[0])
    bound = tier.max_tokens * tier.max_choices
    with live_key(p, tier.name) as key:
        over = p.chat(model, key.header, stream=True, max_tokens=tier.max_tokens + 1)
        assert over.status == 400, f"max_tokens over the tier's cap: {over.status}"
        assert over.json()["error"]["code"] == "over_tier_cap", over.body[:200]
        before = p.generated(model.name)
        cut = p.cut_stream(model, key.header, max_tokens=None, ignore_eos=True)
        assert cut.status == 200, cut.status
        # The servers count a request's tokens when its processing ends.
        grew = p.until(lambda: p.generated(model.name) - before or None, 120, "the cut stream's tokens")
        assert grew is not None
        assert grew <= bound, (
            f"a stream cut by its client generated {grew:g} tokens, charged none; the documented "
            f"bound is {bound} (tier {tier.name}'s maxTokens x maxChoices)"
        )


def kuadrant_reports_ready(p: Platform) -> None:
    """L15: kuadrant_ready == 1 and kuadrant_dependency_detected{dependency="istio"} == 1."""
    p.until(lambda: p.query("max(kuadrant_ready)") == 1, 180, "kuadrant_ready")
    assert p.query('max(kuadrant_dependency_detected{dependency="istio"})') == 1


def every_component_is_scraped(p: Platform) -> None:
    for component in ("limitador", "authorino", "gateway", "model", "kuadrant-operator"):
        healthy = functools.partial(_equals, p, f'max(up{{maas_component="{component}"}})', 1.0)
        p.until(healthy, 180, f"a healthy {component} target")


def _equals(p: Platform, expr: str, expected: float) -> bool:
    return p.query(expr) == expected


# --- Security and reliability -----------------------------------------------------------


def models_only_through_the_gateway(p: Platform, namespace: str, gateway: str) -> None:
    """S5: from outside, a model's Service drops the connection (a timeout, not a name
    error); a pod the NetworkPolicy admits reaches it, and anyone reaches the gateway."""
    scheme, port = p.gateway_listener
    gateway_url = f"{scheme}://{gateway}.{namespace}.svc.cluster.local:{port}/v1/models"
    assert p.probe("outside", gateway_url, host(p)) == 0, "control: the gateway answers from outside"
    # Each server's Service: a model served by another has none of its own (servedBy).
    for server in dict.fromkeys(p.server_of(m.name) for m in p.models):
        direct = f"http://{server}-predictor.{namespace}.svc.cluster.local/v1/models"
        assert p.probe("gateway-peer", direct) == 0, f"control: {server} answers a pod it admits"
        code = p.probe("outside", direct)
        assert code == 28, f"{server} from outside: curl exit {code}, expected 28 (timed out)"


def servers_strangers_must_not_reach(p: Platform) -> dict[str, tuple[str, int]]:
    """S11: what the issue lists as reachable only from documented clients: name -> (host, port)."""
    from components.pins import upstream
    from components.platform import counter_store, keycloak

    kuadrant = p.config.namespaces.kuadrant
    servers = {
        "Limitador's HTTP API": (
            f"{upstream.LIMITADOR_SERVICE}.{kuadrant}",
            upstream.LIMITADOR_PODS.ports["http"],
        ),
        "Limitador's gRPC": (
            f"{upstream.LIMITADOR_SERVICE}.{kuadrant}",
            upstream.LIMITADOR_PODS.ports["grpc"],
        ),
        "Authorino": (f"{upstream.AUTHORINO_SERVICE}.{kuadrant}", upstream.AUTHORINO_PODS.ports["grpc"]),
    }
    if p.config.auth.oidc.enabled:
        servers["Keycloak"] = (f"{keycloak.SERVICE}.{KEYCLOAK_NAMESPACE}", keycloak.HTTP_PORT)
        servers["PostgreSQL"] = (f"{keycloak.DB_SERVICE}.{KEYCLOAK_NAMESPACE}", 5432)
    if p.config.limitador.storage == "redis" and p.config.limitador_redis_url is None:
        servers["Redis"] = (f"{counter_store.NAME}.{kuadrant}", counter_store.PORT)
    return servers


def strangers_reach_only_the_front_door(p: Platform, namespace: str, gateway: str) -> None:
    """S11: from a pod in a namespace of nobody's, Limitador (its HTTP API spends and lists
    every budget), Authorino, Keycloak, PostgreSQL and Redis drop the connection (curl's
    timeout, not a name error), while the gateway path still answers. The gateway's pods,
    which the doors name, still reach Limitador and Authorino (the control)."""
    scheme, port = p.gateway_listener
    gateway_url = f"{scheme}://{gateway}.{namespace}.svc.cluster.local:{port}/v1/models"
    assert p.probe("outside", gateway_url, host(p)) == 0, "control: the gateway answers from outside"
    for name, (address, server_port) in servers_strangers_must_not_reach(p).items():
        url = f"http://{address}.svc.cluster.local:{server_port}/"
        code = p.probe("outside", url)
        assert code == 28, f"{name} from outside: curl exit {code}, expected 28 (timed out)"
        if name in ("Limitador's gRPC", "Authorino"):
            # A gRPC server answers curl's HTTP/1.1 with an error, not silence.
            allowed = p.probe("gateway-peer", url)
            assert allowed not in (6, 7, 28), f"control: {name} from a gateway pod: curl exit {allowed}"


def model_scales_on_its_queue(p: Platform, burst_s: float = 90.0, callers: int = 6) -> None:
    """A model that follows its queue: idle, it runs minReplicas; while `callers` keys of the
    highest tier (each its own budget) keep it busy, it grows to maxReplicas; idle again, it
    returns to minReplicas."""
    import concurrent.futures
    import time

    scaled = [m for m in p.models if p.model_config(m).autoscaling is not None]
    requires(bool(scaled), f"stack {p.stack} scales no model on its queue (maas:models[].autoscaling)")
    model = scaled[0]
    bounds = p.model_config(model).autoscaling
    assert bounds is not None
    assert len(p.pods(model.name)) == bounds.min_replicas, "idle, the model runs its minReplicas"
    top = p.tier_names[-1]
    with contextlib.ExitStack() as stack:
        keys = [stack.enter_context(live_key(p, top, model)) for _ in range(callers)]
        deadline = time.monotonic() + burst_s

        def busy(key: Key) -> int:
            sent = 0
            while time.monotonic() < deadline and p.chat(model, key.header).status == 200:
                sent += 1
            return sent

        with concurrent.futures.ThreadPoolExecutor(callers) as pool:
            sent = sum(pool.map(busy, keys))
            grown = p.until(lambda: len(p.pods(model.name)) >= bounds.max_replicas, 240, "a scale-up")
        assert grown, f"{model.name} stayed at {len(p.pods(model.name))} replicas after {sent} requests"
    # Idle again, it shrinks back: after the scale-down stabilization, 300 s in KServe's chart
    # (kserve/kserve@v0.20.0 charts/_common/common-sections.yaml scaleDownStabilizationWindowSeconds)
    # and the HPA's own default.
    shrunk = p.until(lambda: len(p.pods(model.name)) == bounds.min_replicas, 900, "a scale-down")
    assert shrunk, f"{model.name} stayed at {len(p.pods(model.name))} replicas when idle"


@contextlib.contextmanager
def _saturated(p: Platform, model: Model, tier: str) -> Iterator[None]:
    """The pooled model saturated, and seen so by its picker, for the block: keys of `tier`
    keep more requests in flight than the replicas run and queue together (the saturation
    detector's threshold), and the block starts once as many of them were answered since as
    the replicas run at once, which takes a service time, several of the detector's
    refreshes.

    The detector is reactive: it reads the replicas' metrics every 50 ms and dispatches what
    arrives in between (llm-d/llm-d-router@v0.10.0 saturationdetector/utilization/README.md,
    datalayer/runtime.go), so a burst into an idle pool is served first come, first served;
    sent into a pool seen saturated, it is held in the picker's queues, by priority and flow."""
    import concurrent.futures
    import threading
    import time

    config = p.model_config(model)
    # More in flight than the replicas run (`--max-num-seqs`, 2 in dev's args) and queue up
    # to the detector's threshold (`queueDepth` waiting per replica), and then some.
    seqs = _max_num_seqs(config.args)
    requires(
        seqs is not None, f"{model.name} sets no --max-num-seqs: the test cannot tell how many saturate it"
    )
    assert seqs is not None
    running = config.replicas * seqs
    saturating = running + p.config.scheduler.saturation.queue_depth * config.replicas
    fillers = saturating + 2
    stop = threading.Event()
    lock = threading.Lock()
    inflight: list[int] = [0]
    saturated_at: list[float] = []
    answered: list[float] = []

    def fill(key: Key) -> None:
        while not stop.is_set() and key.requests < p.tier(tier).shortest_requests.limit - 1:
            with lock:
                inflight[0] += 1
                if inflight[0] >= saturating and not saturated_at:
                    saturated_at.append(time.monotonic())
            status = p.chat(model, key.header).status
            with lock:
                inflight[0] -= 1
                answered.append(time.monotonic())
            if status != 200:
                return
            key.requests += 1

    with contextlib.ExitStack() as stack:
        fill_keys = [stack.enter_context(live_key(p, tier, model)) for _ in range(fillers)]
        with concurrent.futures.ThreadPoolExecutor(fillers) as filling:
            try:
                futures = [filling.submit(fill, key) for key in fill_keys]
                p.until(
                    lambda: saturated_at and sum(1 for t in answered if t > saturated_at[0]) >= running,
                    60,
                    "the fillers to saturate the pool",
                )
                yield
            finally:
                stop.set()
            for future in futures:
                future.result()


def higher_tiers_are_served_first_when_saturated(p: Platform, callers: int = 8) -> None:
    """L17: a burst at a pooled model that is already saturated (`_saturated`, by keys of a
    middle tier): half from `callers` keys of its lowest tier, half from as many of its
    highest, the lowest sent first. The pool serves the highest tier first, so its median
    request finishes in well under the lowest's median time (a refused request counting as
    never answered), and no more of its requests wait past the queue timeout and are
    refused. Every lowest-tier request carries the highest tier's objective, under both its
    names: that changes nothing (only Authorino's header counts)."""
    import concurrent.futures
    import statistics
    import time

    pooled = [m for m in p.models if p.model_config(m).scheduling == "pool"]
    requires(bool(pooled), f"stack {p.stack} pools no model (maas:models[].scheduling)")
    model = pooled[0]
    admitted = [t for t in p.tier_names if p.model_config(model).admits(t)]
    low, middle, top = admitted[0], admitted[len(admitted) // 2], admitted[-1]
    # Within every key's request budget: its warm-up request counts too.
    each = min(4, p.tier(low).shortest_requests.limit - 1, p.tier(top).shortest_requests.limit - 1)
    forged = {
        name: tiers.objective_name(model.name, top)
        for name in ("x-llm-d-inference-objective", "x-gateway-inference-objective")
    }
    with contextlib.ExitStack() as stack:
        keys = [stack.enter_context(live_key(p, tier, model)) for tier in (low, top) for _ in range(callers)]
        with _saturated(p, model, middle):
            burst = [key for key in keys for _ in range(each)]
            start = time.monotonic()

            def call(key: Key) -> tuple[str, int, float]:
                reply = p.chat(model, {**key.header, **(forged if key.tier == low else {})})
                return key.tier, reply.status, time.monotonic() - start

            with concurrent.futures.ThreadPoolExecutor(len(burst)) as pool:
                results = list(pool.map(call, burst))
    assert {status for _, status, _ in results} <= {200, 429, 503}, results
    # A refused request never gets its answer: it counts as the longest wait, so the answered
    # alone (the lucky early ones) cannot make a tier look fast.
    median = {
        tier: statistics.median(t if status == 200 else math.inf for who, status, t in results if who == tier)
        for tier in (low, top)
    }
    refused = {
        tier: sum(1 for who, status, _ in results if who == tier and status != 200) for tier in (low, top)
    }
    assert median[top] < 0.6 * median[low], (
        f"median seconds to an answer per tier, in a saturated pool: {median} (refused {refused})"
    )
    # The queue timeout sheds what waits too long: the lower tier, which waits behind the
    # higher (dev: 2 s, Pulumi.dev.yaml maas:scheduler.queueTimeout).
    assert refused[top] <= refused[low], f"refused per tier: {refused} (median seconds {median})"


def _max_num_seqs(args: tuple[str, ...]) -> int | None:
    """How many requests a replica runs at once, where the model's args say (the simulator's
    and vLLM's `--max-num-seqs`)."""
    for arg in args:
        if arg.startswith("--max-num-seqs="):
            return int(arg.split("=", 1)[1])
    return None


def one_users_burst_does_not_hold_back_another(
    p: Platform, burst: int = 48, head_start_s: float = 0.5
) -> None:
    """L19: within a tier, users share the saturated pool's turns. Into a pool already
    saturated and seen so (`_saturated`, by keys of the lowest tier the model admits, so the
    burst's band goes before them), one user sends a burst far beyond what its replicas run
    together, and `head_start_s` later a second user of the same tier sends one request. It
    is answered, and before at least half of the burst's requests still unanswered when it
    was sent: the picker gives the band's flows (one per user) their turns in rotation. First
    come, first served within the tier (llm-d's default fairness) would answer it after all
    of them, or shed it."""
    import concurrent.futures
    import time

    pooled = [m for m in p.models if p.model_config(m).scheduling == "pool"]
    requires(bool(pooled), f"stack {p.stack} pools no model (maas:models[].scheduling)")
    model = pooled[0]
    admitted = [t for t in p.tier_names if p.model_config(model).admits(t)]
    # The tier with the largest budget the model admits: the burst fits in one window.
    tier = admitted[-1]
    size = min(burst, p.tier(tier).shortest_requests.limit - 1)
    with (
        live_key(p, tier, model) as bursting,
        live_key(p, tier, model) as other,
        _saturated(p, model, admitted[0]),
    ):
        start = time.monotonic()

        def call(key: Key) -> tuple[int, float]:
            status = p.chat(model, key.header).status
            return status, time.monotonic() - start

        with concurrent.futures.ThreadPoolExecutor(size) as pool:
            sent = [pool.submit(call, bursting) for _ in range(size)]
            time.sleep(head_start_s)
            sent_at = time.monotonic() - start
            status, answered_at = call(other)
            results = [f.result() for f in sent]
    assert {status for status, _ in results} <= {200, 429}, results
    assert status == 200, f"the second user's one request: {status} after {answered_at - sent_at:.2f} s"
    pending = [t for _, t in results if t > sent_at]
    after = [t for t in pending if t > answered_at]
    assert len(after) >= len(pending) / 2, (
        f"the second user's one request waited {answered_at - sent_at:.2f} s: of the burst's "
        f"{len(pending)} requests pending when it was sent, {len(after)} finished after it"
    )


def refusals_keep_their_status_while_a_picker_is_gone(p: Platform) -> None:
    """R12: with one of a pooled model's endpoint pickers gone, the model still answers (200)
    and a refused request keeps its status (401): the other pickers serve the gateway's calls,
    a refusal's included."""
    pooled = [m for m in p.models if p.model_config(m).scheduling == "pool"]
    requires(bool(pooled), f"stack {p.stack} pools no model (maas:models[].scheduling)")
    model = pooled[0]
    with live_key(p, p.tier_names[-1], model) as key, p.picker_replica_gone(model):
        seen = [(p.chat(model, {}).status, p.chat(model, key.header).status) for _ in range(5)]
    assert set(seen) == {(401, 200)}, f"one endpoint picker gone, (without a key, with one): {seen}"


def realm_follows_the_stack_file(p: Platform) -> None:
    """Keycloak day 2: after `pulumi up`, the realm's group of stack-file users holds exactly
    the stack file's users (the user sync ran; no one removed is left), each in its tier's group
    and no other tier's. Other members of a tier group are self-service users, not the file's."""
    from components.access.realm import STACK_USERS_GROUP

    requires(p.config.auth.oidc.enabled, f"stack {p.stack} has no Keycloak (auth.oidc.enabled is false)")
    members = p.realm_members()
    listed = {u.name for u in p.config.users}
    assert members.get(STACK_USERS_GROUP, set()) == listed, f"realm group {STACK_USERS_GROUP}: {members}"
    for tier in p.config.tiers:
        wanted = {u.name for u in p.config.users if u.tier == tier.name}
        found = members.get(tier.name, set())
        assert found & listed == wanted, f"realm group {tier.name}: {found}"


def only_the_gateway_is_exposed(p: Platform, gateway: str) -> None:
    """S6: every Service in the models' namespace is ClusterIP, except the gateway's, whose
    type the config chooses."""
    types = p.service_types()
    assert types.pop(gateway) == p.config.gateway.service_type
    assert set(types.values()) == {"ClusterIP"}, types


def pods_meet_their_pod_security_level(p: Platform) -> None:
    """S7: as docs/models.md claims: every namespace of ours enforces its role's level ("restricted"
    where every pod meets it, else "baseline") and reports what "restricted" would refuse;
    the simulator's pods are admitted under "restricted", vLLM's under "baseline" (its image
    runs as root)."""
    from components.cluster.security import POD_SECURITY_LEVELS

    for role, namespace in p.config.namespaces_in_use().items():
        labels = p.namespace_labels(namespace)
        levels = {
            mode: labels.get(f"pod-security.kubernetes.io/{mode}") for mode in ("enforce", "warn", "audit")
        }
        wanted = {"enforce": POD_SECURITY_LEVELS[role], "warn": "restricted", "audit": "restricted"}
        assert levels == wanted, namespace
    for model in p.config.models:
        level = "restricted" if model.runtime == "simulator" else "baseline"
        pods = p.pods(model.name)
        assert pods, f"no running pod of {model.name}"
        assert p.pod_security_problems(level, pods) == {}, f"{model.name} under {level}"


def failure_modes(p: Platform) -> None:
    """R6, as docs/access.md documents: Authorino down fails closed (5xx, never 200); Limitador down
    fails as `maas:limitador.failureMode` says: open, a valid key gets 200; closed, 5xx. A
    missing key still gets 401 from Authorino."""
    model = p.open_model
    closed = p.config.limitador.failure_mode == "closed"
    with live_key(p, p.tier_names[-1]) as key:
        with p.unavailable("authorino"):
            for headers in (key.header, {}):
                status = p.chat(model, headers).status
                assert status >= 500, f"Authorino down: {status} (documented: 500, fail closed)"
        p.until(lambda: p.chat(model, key.header).status == 200, 120, "Authorino back")
        with p.unavailable("limitador"):
            status = p.chat(model, key.header).status
            if closed:
                assert status >= 500, f"Limitador down: {status} (configured: fail closed)"
            else:
                assert status == 200, f"Limitador down: {status} (configured: fail open)"
            assert p.chat(model, {}).status == 401
        p.until(lambda: p.chat(model, key.header).status == 200, 120, "Limitador back")


# --- Self-service keys (components/access/self_service.py) --------------------------------

# Authorino drops a deleted or relabelled key at its watch's latency, no cache in the path
# (docs/access.md "Self-service keys"); tests/e2e/test_keys_e2e.py holds the same bound.
KEY_WATCH_BOUND_S = 10


def _runs_key_service(p: Platform) -> None:
    requires(p.config.key_service_on, f"stack {p.stack} runs no key service (maas:keyService)")


def _user_of(p: Platform, tier: str) -> str:
    return next(u.name for u in p.config.users if u.tier == tier)


@contextlib.contextmanager
def minted_key(p: Platform, user: str, name: str) -> Iterator[dict[str, Any]]:
    """A key the user mints after logging in, admitted once Authorino has seen its Secret;
    revoked afterwards whatever happened (a 404 then: already revoked)."""
    reply = p.keys_call("POST", "/v1/api-keys", p.oidc_token(user), {"name": name})
    assert reply.status == 201, f"minting a key for {user}: {reply.status} {reply.body[:200]!r}"
    minted: dict[str, Any] = reply.json()
    try:
        p.until(
            lambda: _key_chat(p, minted["key"]).status == 200, KEY_WATCH_BOUND_S, "the minted key admitted"
        )
        yield minted
    finally:
        p.keys_call("DELETE", f"/v1/api-keys/{minted['id']}", p.oidc_token(user))


def _key_chat(p: Platform, key: str) -> Response:
    return p.chat(p.open_model, {"Authorization": f"APIKEY {key}"})


def _listed(p: Platform, user: str, headers: dict[str, str] | None = None) -> list[str]:
    reply = p.keys_call("GET", "/v1/api-keys", p.oidc_token(user), headers=headers)
    assert reply.status == 200, f"{user}'s listing: {reply.status} {reply.body[:200]!r}"
    return [key["id"] for key in reply.json()["data"]]


def a_revoked_key_is_refused(p: Platform) -> None:
    """A user revokes their own key: it leaves their list, and the gateway refuses it (401)
    within the documented bound, with nothing restarted."""
    _runs_key_service(p)
    user = _user_of(p, p.tier_names[-1])
    with minted_key(p, user, "revoke-me") as minted:
        assert minted["id"] in _listed(p, user), "the minted key is not listed"
        reply = p.keys_call("DELETE", f"/v1/api-keys/{minted['id']}", p.oidc_token(user))
        assert reply.status == 200, f"revoking: {reply.status} {reply.body[:200]!r}"
        assert minted["id"] not in _listed(p, user), "a revoked key is still listed"
        p.until(
            lambda: _key_chat(p, minted["key"]).status == 401, KEY_WATCH_BOUND_S, "the revoked key refused"
        )


def another_users_key_is_neither_listed_nor_revoked(p: Platform) -> None:
    """Another user neither lists nor revokes a user's key, by their own token or with the
    identity headers the service trusts forged on it (the gateway sets them from the token)."""
    _runs_key_service(p)
    owner, stranger = _user_of(p, p.tier_names[-1]), _user_of(p, p.tier_names[0])
    forged = {USER_HEADER: owner, VIA_HEADER: "token"}
    with minted_key(p, owner, "mine") as minted:
        for how, headers in (("by token", {}), ("with a forged x-maas-user", forged)):
            listed = _listed(p, stranger, headers)
            assert minted["id"] not in listed, f"another user's key listed to {stranger} {how}: {listed}"
            path = f"/v1/api-keys/{minted['id']}"
            reply = p.keys_call("DELETE", path, p.oidc_token(stranger), headers=headers)
            assert reply.status == 404, f"another user's key revoked by {stranger} {how}: {reply.status}"
        assert minted["id"] in _listed(p, owner), "control: the owner lists the key"
        assert _key_chat(p, minted["key"]).status == 200, "control: the owner's key is admitted"


def usage_agrees_with_the_counters(p: Platform) -> None:
    """GET /v1/usage with a key tells what the gateway enforces: after each admitted request
    every request window of the model's limit shows it used, and the request after the one
    that leaves none remaining is refused (429), not before."""
    _runs_key_service(p)
    tier = p.tier_names[0]
    model = p.open_model
    quota = model.name if p.model_config(model).own_rates(tier, "requests") else None

    def windows(key: str) -> dict[int, tuple[int, int]]:
        reply = p.keys_call("GET", "/v1/usage", key, scheme="APIKEY")
        assert reply.status == 200, f"usage: {reply.status} {reply.body[:200]!r}"
        return {
            w["window_seconds"]: (w["used"], w["remaining"])
            for w in reply.json()["windows"]
            if w["limit"] == "requests" and w["quota"] == quota and w["model"] in (model.served, None)
        }

    with minted_key(p, _user_of(p, tier), "usage") as minted:
        key = minted["key"]
        start = windows(key)
        assert start, f"usage shows no request window of {model.name}"
        # Each round ends in a 200 (one more admitted) or returns.
        for admitted in range(max(limit for _, limit in start.values()) + 1):
            now = windows(key)
            expected = {seconds: used + admitted for seconds, (used, _) in start.items()}
            assert {s: used for s, (used, _) in now.items()} == expected, (
                f"usage disagrees with the counters: {now} (used, remaining) per window, "
                f"the gateway admitted {admitted} since {start}"
            )
            left = min(remaining for _, remaining in now.values())
            status = _key_chat(p, key).status
            if left == 0:
                assert status == 429, f"usage said none remaining, the gateway answered {status}"
                return
            assert status == 200, f"usage said {left} remaining, the gateway answered {status}"
        raise AssertionError(f"usage never said the limit was reached: {windows(key)}")


def a_key_follows_its_users_tier(p: Platform) -> None:
    """Moving a user to another tier's group moves their existing key to that tier's limits,
    within the tier sync and the watch: it acts as the new tier (usage says so) and is
    admitted past the old tier's request limit."""
    _runs_key_service(p)
    low, high = p.tier(p.tier_names[0]), p.tier(p.tier_names[-1])
    assert high.shortest_requests.limit > low.shortest_requests.limit + 1, (
        "no higher request limit to move to"
    )
    user = _user_of(p, low.name)
    bound = seconds(p.config.key_service.tier_sync_interval) + KEY_WATCH_BOUND_S
    with minted_key(p, user, "tier") as minted:
        assert minted["tier"] == low.name, minted
        key = minted["key"]

        def tier_of_key() -> str:
            reply = p.keys_call("GET", "/v1/usage", key, scheme="APIKEY")
            return str(reply.json().get("tier")) if reply.status == 200 else f"{reply.status}"

        p.move_to_group(user, leave=low.name, join=high.name)
        try:
            p.until(lambda: tier_of_key() == high.name, bound, f"the key to act as {high.name}")
            statuses = [_key_chat(p, key).status for _ in range(low.shortest_requests.limit + 1)]
            assert set(statuses) == {200}, f"the key kept {low.name}'s limit: {statuses}"
        finally:
            p.move_to_group(user, leave=high.name, join=low.name)


def minting_is_rate_limited(p: Platform) -> None:
    """A user who mints (and revokes at once, so the live-key cap never refuses) past the
    shortest window of maas:keyService.mints gets 429 in OpenAI's shape with a Retry-After
    within the window, and nothing is minted; another user still mints (the limit counts per
    user); after the window the first mints again (components/access/self_service.py
    rate_limit_spec). Earlier mints in the window count too: the 429 may come sooner."""
    _runs_key_service(p)
    rate = min(p.config.key_service.mints, key=lambda r: seconds(r.window))
    user, other = _user_of(p, p.tier_names[0]), _user_of(p, p.tier_names[-1])
    assert user != other, "one user in the lowest and highest tiers: no second user to compare"

    def mint(who: str) -> Response:
        reply = p.keys_call("POST", "/v1/api-keys", p.oidc_token(who), {"name": "churn"})
        if reply.status == 201:
            p.keys_call("DELETE", f"/v1/api-keys/{reply.json()['id']}", p.oidc_token(who))
        return reply

    live = _listed(p, user)
    statuses = []
    for _ in range(rate.limit + 1):
        statuses.append(mint(user).status)
        if statuses[-1] != 201:
            break
    assert statuses[-1] == 429, f"minting was never limited ({rate.limit} per {rate.window}): {statuses}"
    assert set(statuses[:-1]) <= {201}, f"mints refused otherwise before the limit: {statuses}"
    refused = p.keys_call("POST", "/v1/api-keys", p.oidc_token(user), {"name": "churn"})
    error = _openai_error(refused, 429, "a mint past the limit")
    assert (error["type"], error["code"]) == ("requests", "rate_limit_exceeded"), error
    wait = refused.headers.get("retry-after", "")
    assert wait.isdigit(), f"Retry-After {wait!r}"
    assert int(wait) <= seconds(rate.window), f"Retry-After {wait!r}"
    assert _listed(p, user) == live, "a refused mint left a key"
    assert mint(other).status == 201, f"{other} was limited by {user}'s mints"
    p.until(
        lambda: mint(user).status == 201, seconds(rate.window) * 1.5, "a mint in a new window", scaled=False
    )
