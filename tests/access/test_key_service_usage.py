"""GET /v1/usage of the key service (components/access/key_service/server.py), run as a process.

What enforced is the fake gateway (tests/suite/fake.py), which admits or refuses each request
from its own counters as Limitador does; a Limitador HTTP API stand-in (tests/support/limitador.py)
serves those very counters, under the limits Kuadrant writes from our policies. What billed is
a real Prometheus running the stack's recording rules over Limitador-shaped counters of what the
fake metered. The oracle compares the service's answer with the fake's counters and the price
table; each misbehaviour (another user's counter, a wrong limit, a rule other than the bill's)
is a copy of server.py with that one change, and the oracle must fail on it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from components.access import tiers
from components.access.key_service import server
from components.config import StackConfig
from components.metering import chargeback
from components.serving.model_list import POLICY_ROUTE
from harness.program import typed_config
from tests.e2e.cluster import Response
from tests.suite.fake import FakeGateway, Faults
from tests.support.key_service import KeyService, Reply, key_service
from tests.support.kube_api import KubeApi, kube_api
from tests.support.limitador import Count, LimitadorApi, limitador_api, limits_of, variable
from tests.support.ports import free_port
from tests.support.prometheus import Exporter, Prometheus, Series, prometheus, series, serve

TIERS = {"free": {"maxKeys": 3, "maxLifetimeDays": 30}, "premium": {"maxKeys": 5, "maxLifetimeDays": 90}}
KEY = "sk-maas-0123456789abcdef_secret"


def _token(user: str) -> str:
    """An unsigned token shaped like Keycloak's, as the fake gateway reads it."""
    claims = {"preferred_username": user, "exp": time.time() + 3600}
    return ".".join(
        base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
        for part in ({"alg": "none"}, claims, {})
    )


@dataclass
class World:
    config: StackConfig
    gateway: FakeGateway
    limitador: LimitadorApi
    prometheus: Prometheus
    namespace: str

    def tier_of(self, user: str) -> str:
        return next(u.tier for u in self.config.users if u.name == user)

    def send(self, user: str, via: str, model: str) -> Response:
        """A chat request through the fake gateway, by token or by the key."""
        found = next(m for m in self.config.models if m.name == model)
        auth = f"Bearer {_token(user)}" if via == "token" else f"APIKEY {KEY}"
        body = {"model": found.served_name, "messages": [{"role": "user", "content": "hello there"}]}
        return self.gateway.handle(
            "POST",
            f"{found.host}.{self.config.domain}",
            "/v1/chat/completions",
            {"authorization": auth, "content-type": "application/json"},
            json.dumps(body).encode(),
            time.monotonic(),
        )

    def counts(self) -> list[Count]:
        """The fake's counters, as Limitador holds them: one per limit, user and model."""
        served = {m.name: m.served_name for m in self.config.models}
        found = []
        with self.gateway.lock:
            for (user, model, _), counter in self.gateway.counters.items():
                tier = self.tier_of(user)
                for limit in self.limitador.limits:
                    kind = {
                        tiers.request_limit_name(tier): "requests",
                        tiers.token_limit_name(tier): "tokens",
                    }
                    if limit["name"] not in kind:
                        continue
                    value = counter.requests if kind[limit["name"]] == "requests" else counter.tokens
                    left = counter.started + limit["seconds"] - time.monotonic()
                    found.append(
                        Count(
                            limit,
                            {variable(tiers.USER_ID): user, variable(tiers.MODEL): served[model]},
                            value,
                            left,
                        )
                    )
        return found

    def metered(self) -> Series:
        """What Limitador's metrics would count for what the fake metered (docs/metering.md:
        an admitted request with t tokens adds 2 calls and 1 + t hits)."""
        with self.gateway.lock:
            return {
                **{
                    series("authorized_calls", user=u, tier=t, model=m): 2 * requests
                    for (u, t, m), (requests, _) in self.gateway.metered.items()
                },
                **{
                    series("authorized_hits", user=u, tier=t, model=m): requests + tokens
                    for (u, t, m), (requests, tokens) in self.gateway.metered.items()
                },
            }

    def env(self) -> dict[str, str]:
        return {
            "LIMITADOR_URL": self.limitador.url,
            "LIMITADOR_NAMESPACE": self.namespace,
            "PROMETHEUS_URL": self.prometheus.url,
        }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """dev's tiers and models after some traffic: premiumuser1 by token on both models,
    premiumuser2 by key, freeuser1 by token; Prometheus has billed all of it."""
    config = typed_config("dev")
    namespace = f"{config.namespaces_in_use()['models']}/{POLICY_ROUTE}"
    policies = config.namespaces_in_use()["models"]
    limits = [
        *limits_of(tiers.rate_limit_spec(config.tiers, POLICY_ROUTE), "tiers-requests", policies, False),
        *limits_of(tiers.token_limit_spec(config.tiers, POLICY_ROUTE), "tiers-tokens", policies, True),
    ]
    gateway = FakeGateway(config, Faults(), propagation=0)
    gateway.change_key(KEY, ("premiumuser2", "premium", True))
    exporter = Exporter()
    rules = chargeback.rule_groups(config.tiers, config.models, config.prices, interval="1s")
    holder: list[World] = []
    with (
        limitador_api(limits, lambda: holder[0].counts()) as limitador,
        serve(exporter) as address,
        prometheus(tmp_path_factory.mktemp("prometheus"), rules, {"limitador": address}) as server,
    ):
        world = World(config, gateway, limitador, server, namespace)
        holder.append(world)
        traffic = [("premiumuser1", "token", "simulator")] * 3 + [
            ("premiumuser1", "token", "simulator-large")
        ]
        traffic += [("premiumuser2", "key", "simulator")] * 2 + [("freeuser1", "token", "simulator")] * 2
        for user, via, model in traffic:
            assert world.send(user, via, model).status == 200
        exporter.set(world.metered())
        totals: dict[str, list[int]] = {}
        for (user, _, _), (requests, tokens) in gateway.metered.items():
            total = totals.setdefault(user, [0, 0])
            total[0], total[1] = total[0] + requests, total[1] + tokens
        for user, (requests, tokens) in totals.items():
            server.wait_for(f'sum(sum_over_time(maas:requests:increase{{user="{user}"}}[1m])) == {requests}')
            server.wait_for(f'sum(sum_over_time(maas:tokens:increase{{user="{user}"}}[1m])) == {tokens}')
        yield world


def check_usage(service: KeyService, world: World, user: str, via: str) -> None:
    """The oracle: the service's answer is what the fake's counters enforce and what the
    price table makes of what it metered."""
    tier = world.tier_of(user)
    reply = service.call("GET", "/v1/usage", user=user, tier=tier, via=via)
    assert reply.status == 200, reply
    body = reply.body
    assert (body["user"], body["tier"], body["via"]) == (user, tier, via)
    table = next(t for t in world.config.tiers if t.name == tier)
    served = {m.name: m.served_name for m in world.config.models}
    expected = {}
    with world.gateway.lock:
        for (who, model, _), counter in world.gateway.counters.items():
            if who != user:
                continue
            for kind, rate, used in (
                ("requests", table.requests, counter.requests),
                ("tokens", table.tokens, counter.tokens),
            ):
                expected[(kind, rate.window, served[model])] = (rate.limit, used, max(rate.limit - used, 0))
    answered = {
        (w["limit"], w["window"], w["model"]): (w["limit_value"], w["used"], w["remaining"])
        for w in body["windows"]
    }
    assert len(answered) == len(body["windows"]), body["windows"]
    assert answered == expected
    for w in body["windows"]:
        assert 0 < w["resets_in_seconds"] <= w["window_seconds"]
    with world.gateway.lock:
        rows = [(t, m, r, k) for (u, t, m), (r, k) in world.gateway.metered.items() if u == user]
    cost = sum(
        r * world.config.prices.price(t, m).per_request
        + k / 1000 * world.config.prices.price(t, m).per_thousand_tokens
        for t, m, r, k in rows
    )
    windows = sorted({(w["window_seconds"], w["window"]) for w in body["windows"]})
    assert [(u["window_seconds"], u["window"]) for u in body["usage"]] == windows
    for used in body["usage"]:
        assert used["requests"] == sum(r for _, _, r, _ in rows)
        assert used["tokens"] == sum(k for _, _, _, k in rows)
        assert used["cost"] == {world.config.prices.currency: pytest.approx(round(cost, 6), abs=1e-9)}
        assert body["cost"][used["window"]] == used["cost"]


@pytest.fixture
def kube() -> Iterator[KubeApi]:
    with kube_api() as api:
        yield api


def test_names_match_the_policies_and_the_billing_rules() -> None:
    # server.py cannot import the program: the limits it reads and the rules it sums are these.
    assert variable(tiers.USER_ID) == server.USER_VARIABLE
    assert server.limit_kind(tiers.request_limit_name("gold"), "gold") == "requests"
    assert server.limit_kind(tiers.token_limit_name("gold"), "gold") == "tokens"
    assert server.limit_kind(tiers.token_limit_name("gold"), "silver") is None
    assert (server.REQUESTS_RULE, server.TOKENS_RULE, server.COST_RULE) == (
        chargeback.REQUESTS,
        chargeback.TOKENS,
        chargeback.COST,
    )


def test_usage_of_a_token_caller_is_what_enforced_and_what_billed(
    world: World, kube: KubeApi, tmp_path: Path
) -> None:
    with key_service(kube, tmp_path, TIERS, env=world.env()) as service:
        check_usage(service, world, "premiumuser1", "token")
        check_usage(service, world, "freeuser1", "token")
        # Each model is a budget of its own (tiers.py counters: user and model).
        body = service.call("GET", "/v1/usage", user="premiumuser1", tier="premium").body
        models = {w["model"] for w in body["windows"]}
        assert models == {"simulator-model", "simulator-large-model"}


def test_usage_of_a_key_caller_is_what_enforced_and_what_billed(
    world: World, kube: KubeApi, tmp_path: Path
) -> None:
    with key_service(kube, tmp_path, TIERS, env=world.env()) as service:
        check_usage(service, world, "premiumuser2", "key")


def test_a_caller_without_counters_has_every_limit_whole(world: World, kube: KubeApi, tmp_path: Path) -> None:
    with key_service(kube, tmp_path, TIERS, env=world.env()) as service:
        body = service.call("GET", "/v1/usage", user="enterpriseuser1", tier="enterprise").body
    table = next(t for t in world.config.tiers if t.name == "enterprise")
    assert [(w["limit"], w["window"], w["model"], w["used"], w["remaining"]) for w in body["windows"]] == [
        ("requests", table.requests.window, None, 0, table.requests.limit),
        ("tokens", table.tokens.window, None, 0, table.tokens.limit),
    ]
    assert all(u["requests"] == 0 and u["tokens"] == 0 and u["cost"] == {} for u in body["usage"])


def test_remaining_is_what_the_gateway_still_admits(world: World, kube: KubeApi, tmp_path: Path) -> None:
    """freeuser2 spends the request limit: while usage says some remain, the gateway admits;
    when it says none, the gateway refuses with 429."""
    with key_service(kube, tmp_path, TIERS, env=world.env()) as service:

        def remaining() -> int:
            reply = service.call("GET", "/v1/usage", user="freeuser2", tier="free")
            assert reply.status == 200, reply
            left = [w for w in reply.body["windows"] if w["limit"] == "requests"]
            assert len(left) == 1, left
            value: int = left[0]["remaining"]
            return value

        spent = 0
        while remaining() > 0:
            assert world.send("freeuser2", "token", "simulator").status == 200
            spent += 1
        assert spent == next(t for t in world.config.tiers if t.name == "free").requests.limit
        assert world.send("freeuser2", "token", "simulator").status == 429


# Each: what server.py gets wrong, as one replacement in its source.
MISBEHAVIOURS = {
    "counts another user's counter": (
        ' or counter["set_variables"].get(USER_VARIABLE) != user:',
        ":",
    ),
    "bills every user": ('selector = f"{{user={promql_string(user)}}}"', 'selector = ""'),
    "reads a wrong limit": ('limit_kind(limit.get("name"), tier)', 'limit_kind(limit.get("name"), "free")'),
    "costs from another rule": ('COST_RULE = "maas:cost:increase"', 'COST_RULE = "maas:price_per_request"'),
}


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
def test_each_misbehaviour_fails_the_oracle(
    misbehaviour: str, world: World, kube: KubeApi, tmp_path: Path
) -> None:
    old, new = MISBEHAVIOURS[misbehaviour]
    source = Path(server.__file__).read_text()
    assert source.count(old) == 1, old
    program = tmp_path / "app" / "server.py"
    program.parent.mkdir()
    program.write_text(source.replace(old, new))
    with key_service(kube, tmp_path, TIERS, env=world.env(), program=program) as service:
        with pytest.raises(AssertionError):
            check_usage(service, world, "premiumuser1", "token")
        with pytest.raises(AssertionError):
            check_usage(service, world, "premiumuser2", "key")


def _openai_error(reply: Reply, status: int, code: str) -> None:
    assert reply.status == status, reply
    assert set(reply.body) == {"error"}
    assert set(reply.body["error"]) == {"message", "type", "code"}
    assert reply.body["error"]["code"] == code, reply.body
    assert reply.body["error"]["message"]


def test_unreachable_sources_are_a_502_never_a_number(world: World, kube: KubeApi, tmp_path: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    for env, code in (
        ({**world.env(), "LIMITADOR_URL": closed}, "limitador_unavailable"),
        ({**world.env(), "PROMETHEUS_URL": closed}, "prometheus_unavailable"),
        # Prometheus answers, but not the query API (a wrong URL): no numbers either.
        ({**world.env(), "PROMETHEUS_URL": world.limitador.url}, "prometheus_unavailable"),
    ):
        with key_service(kube, tmp_path, TIERS, env=env) as service:
            reply = service.call("GET", "/v1/usage", user="premiumuser1", tier="premium")
            _openai_error(reply, 502, code)
            assert reply.body["error"]["type"] == "api_error"


@contextlib.contextmanager
def _answering(body: object) -> Iterator[str]:
    """A server answering 200 with `body` as JSON at every path."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_answers_of_another_shape_are_a_502_never_a_number(
    world: World, kube: KubeApi, tmp_path: Path
) -> None:
    for variable_name, body, code in (
        ("LIMITADOR_URL", [{"name": "premium-requests"}], "limitador_unavailable"),
        ("LIMITADOR_URL", {"counters": []}, "limitador_unavailable"),
        ("PROMETHEUS_URL", {"status": "success", "data": {}}, "prometheus_unavailable"),
        ("PROMETHEUS_URL", {"status": "success", "data": {"result": [{"value": [0, "x"]}]}},
         "prometheus_unavailable"),
    ):  # fmt: skip
        with (
            _answering(body) as url,
            key_service(kube, tmp_path, TIERS, env={**world.env(), variable_name: url}) as service,
        ):
            reply = service.call("GET", "/v1/usage", user="premiumuser1", tier="premium")
            _openai_error(reply, 502, code)


def test_usage_needs_a_caller_and_its_sources(kube: KubeApi, tmp_path: Path) -> None:
    with key_service(kube, tmp_path, TIERS) as service:
        _openai_error(service.call("GET", "/v1/usage", user=None), 401, "unauthenticated")
        _openai_error(service.call("GET", "/v1/usage", via="key"), 503, "usage_not_configured")


def test_a_token_counter_past_its_limit_reads_as_spent(world: World, kube: KubeApi, tmp_path: Path) -> None:
    """A token report may take a counter past its limit; Limitador's `remaining` then wraps
    in u64 (tests/support/limitador.py): the service reads the value back, and 0 remaining."""
    (limit,) = [x for x in world.limitador.limits if x["name"] == tiers.token_limit_name("free")]
    over = Count(
        limit, {variable(tiers.USER_ID): "dora", variable(tiers.MODEL): "m"}, limit["max_value"] + 500, 30
    )
    with (
        limitador_api(world.limitador.limits, lambda: [over]) as limitador,
        key_service(kube, tmp_path, TIERS, env={**world.env(), "LIMITADOR_URL": limitador.url}) as service,
    ):
        body = service.call("GET", "/v1/usage", user="dora", tier="free").body
    (tokens,) = [w for w in body["windows"] if w["limit"] == "tokens"]
    assert (tokens["used"], tokens["remaining"]) == (limit["max_value"] + 500, 0)
