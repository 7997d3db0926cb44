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
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from components.access import self_service, tiers
from components.access.key_service import server
from components.config import StackConfig
from components.config.types import window_seconds
from components.metering import chargeback
from components.names import KEY_SERVICE
from components.serving.model_list import POLICY_ROUTE, limits_namespace
from harness.program import typed_config
from tests.e2e.cluster import Response
from tests.suite.fake import FakeGateway, Faults
from tests.support.json_server import json_server
from tests.support.key_service import KeyService, Reply, key_service
from tests.support.kube_api import KubeApi, kube_api
from tests.support.limitador import (
    JSON,
    Count,
    LimitadorApi,
    fake_counts,
    limitador_api,
    limits_of,
    tier_limits,
    variable,
)
from tests.support.ports import free_port
from tests.support.prometheus import Exporter, Prometheus, Series, prometheus, series, serve

TIERS = {"free": {"maxKeys": 3, "maxLifetimeDays": 30}, "premium": {"maxKeys": 5, "maxLifetimeDays": 90}}
KEY = "sk-maas-0123456789abcdef_secret"
KINDS: tuple[tiers.Kind, ...] = ("requests", "tokens")


def own_name(tier: str, kind: tiers.Kind) -> str:
    """The tier's own limit of `kind` (tiers.py)."""
    return tiers.request_limit_name(tier) if kind == "requests" else tiers.token_limit_name(tier)


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
    exporter: Exporter

    def bill(self) -> None:
        """Limitador's metrics of what the fake metered so far, and the wait until
        Prometheus's rules have billed all of it."""
        self.exporter.set(self.metered())
        totals: dict[str, list[int]] = {}
        with self.gateway.lock:
            for (user, _, _), (requests, tokens) in self.gateway.metered.items():
                total = totals.setdefault(user, [0, 0])
                total[0], total[1] = total[0] + requests, total[1] + tokens
        for user, (requests, tokens) in totals.items():
            self.prometheus.wait_for(
                f'sum(sum_over_time(maas:requests:increase{{user="{user}"}}[1m])) == {requests}'
            )
            self.prometheus.wait_for(
                f'sum(sum_over_time(maas:tokens:increase{{user="{user}"}}[1m])) == {tokens}'
            )

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
        """The fake's counters, as Limitador holds them: one per limit, window, user and model."""
        return fake_counts(self.gateway, self.limitador.limits, time.monotonic())

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
    """dev's tiers and models after some traffic: premiumuser1 by token on both models (premium
    has its own quota on simulator-large), premiumuser2 by key, freeuser1 by token (free has two
    request windows); Prometheus has billed all of it."""
    config = typed_config("dev")
    namespace = f"{config.namespaces_in_use()['models']}/{POLICY_ROUTE}"
    limits = tier_limits(config)
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
        world = World(config, gateway, limitador, server, namespace, exporter)
        holder.append(world)
        traffic = [("premiumuser1", "token", "simulator")] * 3 + [
            ("premiumuser1", "token", "simulator-large")
        ]
        traffic += [("premiumuser2", "key", "simulator")] * 2 + [("freeuser1", "token", "simulator")] * 2
        for user, via, model in traffic:
            assert world.send(user, via, model).status == 200
        world.bill()
        yield world


def expected_windows(world: World, user: str) -> dict[tuple[str, str, str | None, int, str | None], JSON]:
    """What the fake enforces for `user`, from the config's limits and the fake's windows:
    per kind, the tier's limit (quota None) and each model's own quota in the tier, one entry
    per window and model counted, or one with model None and the limit whole where none is.
    Keyed (kind, limit name, quota, window seconds, served model)."""
    tier = world.tier_of(user)
    table = next(t for t in world.config.tiers if t.name == tier)
    models = {m.name: m for m in world.config.models}
    now = time.monotonic()
    expected: dict[tuple[str, str, str | None, int, str | None], JSON] = {}
    for kind in KINDS:
        limits = [(own_name(tier, kind), None, getattr(table, kind))] + [
            (tiers.model_limit_name(tier, m.name, kind), m.name, rates)
            for m in world.config.models
            if (rates := m.own_rates(tier, kind)) is not None
        ]
        for name, quota, rates in limits:
            for rate in rates:
                seconds = int(window_seconds(rate.window))
                counted: dict[str | None, JSON] = {}
                with world.gateway.lock:
                    for (who, model, _, _), counter in world.gateway.counters.items():
                        applies = models[model].own_rates(tier, kind) is not None
                        if who != user or (model if applies else None) != quota:
                            continue
                        for window in getattr(counter, kind):
                            if int(window.seconds) == seconds and window.expires > now:
                                used = window.value_at(now)
                                counted[models[model].served_name] = {
                                    "limit_value": rate.limit,
                                    "used": used,
                                    "remaining": max(rate.limit - used, 0),
                                    "resets_in": window.expires - now,
                                }
                if not counted:
                    counted[None] = {
                        "limit_value": rate.limit,
                        "used": 0,
                        "remaining": rate.limit,
                        "resets_in": None,
                    }
                for served, entry in counted.items():
                    expected[(kind, name, quota, seconds, served)] = entry
    return expected


def check_usage(service: KeyService, world: World, user: str, via: str) -> None:
    """The oracle: the service's answer is what the fake's counters enforce and what the
    price table makes of what it metered."""
    tier = world.tier_of(user)
    reply = service.call("GET", "/v1/usage", user=user, tier=tier, via=via)
    assert reply.status == 200, reply
    body = reply.body
    assert (body["user"], body["tier"], body["via"]) == (user, tier, via)
    expected = expected_windows(world, user)
    answered = {
        (w["limit"], w["name"], w["quota"], w["window_seconds"], w["model"]): w for w in body["windows"]
    }
    assert len(answered) == len(body["windows"]), body["windows"]
    assert set(answered) == set(expected), body["windows"]
    for key, w in answered.items():
        want = expected[key]
        assert (w["limit_value"], w["used"], w["remaining"]) == (
            want["limit_value"],
            want["used"],
            want["remaining"],
        ), (key, w)
        assert w["window"] == server.duration(w["window_seconds"])
        if want["resets_in"] is None:
            assert w["resets_in_seconds"] is None, w
        else:
            # Limitador's whole seconds, truncated, read a moment before the oracle's clock.
            assert abs(w["resets_in_seconds"] - want["resets_in"]) <= 2, (w, want)
            assert 0 <= w["resets_in_seconds"] <= w["window_seconds"], w
    with world.gateway.lock:
        rows = [(t, m, r, k) for (u, t, m), (r, k) in world.gateway.metered.items() if u == user]
    cost = sum(
        r * world.config.prices.price(t, m).per_request
        + k / 1000 * world.config.prices.price(t, m).per_thousand_tokens
        for t, m, r, k in rows
    )
    windows = sorted({(seconds, server.duration(seconds)) for _, _, _, seconds, _ in expected})
    assert [(u["window_seconds"], u["window"]) for u in body["usage"]] == windows
    for used in body["usage"]:
        assert used["requests"] == sum(r for _, _, r, _ in rows)
        assert used["tokens"] == sum(k for _, _, _, k in rows)
        # Nothing billed is no cost series at all (docs/self-service.md).
        billed = {world.config.prices.currency: pytest.approx(round(cost, 6), abs=1e-9)} if rows else {}
        assert used["cost"] == billed
        assert body["cost"][used["window"]] == used["cost"]


@pytest.fixture
def kube() -> Iterator[KubeApi]:
    with kube_api() as api:
        yield api


def test_names_match_the_policies_and_the_billing_rules() -> None:
    # server.py cannot import the program: the limits it reads and the rules it sums are these.
    assert variable(tiers.USER_ID) == server.USER_VARIABLE
    assert server.limit_of(tiers.request_limit_name("gold"), "gold") == ("requests", None)
    assert server.limit_of(tiers.token_limit_name("gold"), "gold") == ("tokens", None)
    assert server.limit_of(tiers.token_limit_name("gold"), "silver") is None
    assert server.limit_of(tiers.token_limit_name("gold"), "gol") is None
    # A model's own quota in a tier, whatever its name ends in.
    for model in ("big", "big-requests", "tokens-2"):
        for kind in KINDS:
            name = tiers.model_limit_name("gold", model, kind)
            assert server.limit_of(name, "gold") == (kind, model)
            assert server.limit_of(name, "silver") is None
    # Every limit dev's policies hold is one of its tier's, the tier's own or a model's quota.
    config = typed_config("dev")
    for kind in KINDS:
        spec = (tiers.rate_limit_spec if kind == "requests" else tiers.token_limit_spec)(
            config.tiers, POLICY_ROUTE, config.models
        )
        assert set(spec["limits"]) == set(tiers.limit_names(config.tiers, config.models, kind))
        read = {
            name: [(t.name, server.limit_of(name, t.name)) for t in config.tiers] for name in spec["limits"]
        }
        quotas: set[str | None] = set()
        for name, found in read.items():
            ((tier, (which, quota)),) = [(t, r) for t, r in found if r is not None]
            assert which == kind, (name, found)
            assert name == (tiers.model_limit_name(tier, quota, kind) if quota else own_name(tier, kind))
            quotas.add(quota)
        assert quotas - {None} == {
            m.name for m in config.models if any(m.own_rates(t.name, kind) for t in config.tiers)
        }
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
        check_usage(service, world, "enterpriseuser1", "token")
    (table,) = [(t.requests, t.tokens) for t in world.config.tiers if t.name == "enterprise"]
    assert [
        (w["limit"], w["quota"], w["window"], w["model"], w["used"], w["remaining"]) for w in body["windows"]
    ] == [
        (kind, None, rate.window, None, 0, rate.limit)
        for kind, rates in zip(("requests", "tokens"), table, strict=True)
        for rate in rates
    ]
    assert all(u["requests"] == 0 and u["tokens"] == 0 and u["cost"] == {} for u in body["usage"])


def test_remaining_is_what_the_gateway_still_admits(world: World, kube: KubeApi, tmp_path: Path) -> None:
    """freeuser2 spends free's request windows (5 per 2m, 8 per 10m): while usage says some
    remain in every window, the gateway admits; when one has none, it refuses with 429."""
    free = next(t for t in world.config.tiers if t.name == "free")
    assert len(free.requests) > 1
    with key_service(kube, tmp_path, TIERS, env=world.env()) as service:

        def remaining() -> dict[int, int]:
            reply = service.call("GET", "/v1/usage", user="freeuser2", tier="free")
            assert reply.status == 200, reply
            return {
                w["window_seconds"]: w["remaining"] for w in reply.body["windows"] if w["limit"] == "requests"
            }

        assert set(remaining()) == {int(window_seconds(r.window)) for r in free.requests}
        spent = 0
        while min(remaining().values()) > 0:
            assert world.send("freeuser2", "token", "simulator").status == 200
            spent += 1
        assert spent == min(r.limit for r in free.requests)
        left = remaining()
        assert left == {int(window_seconds(r.window)): max(r.limit - spent, 0) for r in free.requests}
        assert world.send("freeuser2", "token", "simulator").status == 429
        world.bill()
        check_usage(service, world, "freeuser2", "token")


def test_a_model_quota_replaces_the_tier_limit_for_that_model(
    world: World, kube: KubeApi, tmp_path: Path
) -> None:
    """premiumuser2 (by key) spends premium's own quota on simulator-large: usage shows it on
    the quota's entries, labelled with the model, until the gateway refuses, and the tier's
    limit, which counts premiumuser2's other model, does not move."""
    large = next(m for m in world.config.models if m.name == "simulator-large")
    quota = large.own_rates("premium", "requests")
    assert quota is not None
    name = tiers.model_limit_name("premium", large.name, "requests")
    with key_service(kube, tmp_path, TIERS, env=world.env()) as service:

        def windows() -> list[JSON]:
            reply = service.call("GET", "/v1/usage", user="premiumuser2", tier="premium", via="key")
            assert reply.status == 200, reply
            found: list[JSON] = reply.body["windows"]
            return found

        def of_quota() -> list[JSON]:
            return [w for w in windows() if w["limit"] == "requests" and w["quota"] == large.name]

        tier_before = [w for w in windows() if w["quota"] is None]
        assert [(w["name"], w["model"], w["used"]) for w in of_quota()] == [(name, None, 0)]
        spent = 0
        while min(w["remaining"] for w in of_quota()) > 0:
            assert world.send("premiumuser2", "key", large.name).status == 200
            spent += 1
        assert spent == min(r.limit for r in quota)
        assert {(w["name"], w["model"], w["used"]) for w in of_quota()} == {(name, large.served_name, spent)}
        assert world.send("premiumuser2", "key", large.name).status == 429
        tier_after = [w for w in windows() if w["quota"] is None]
        assert [(w["name"], w["model"], w["used"]) for w in tier_after] == [
            (w["name"], w["model"], w["used"]) for w in tier_before
        ]
        assert large.served_name not in {w["model"] for w in tier_after}
        world.bill()
        check_usage(service, world, "premiumuser2", "key")


# Each: what server.py gets wrong, as one replacement in its source.
PREMIUM = ("premiumuser1", "premiumuser2")
MISBEHAVIOURS = {
    "counts another user's counter": (
        ' or counter["set_variables"].get(USER_VARIABLE) != user:',
        ":",
        PREMIUM,
    ),
    "bills every user": ('selector = f"{{user={promql_string(user)}}}"', 'selector = ""', PREMIUM),
    "reads a wrong limit": (
        'limit_of(limit.get("name"), tier)',
        'limit_of(limit.get("name"), "free")',
        PREMIUM,
    ),
    "costs from another rule": (
        'COST_RULE = "maas:cost:increase"',
        'COST_RULE = "maas:price_per_request"',
        PREMIUM,
    ),
    # The old model: one limit of each kind per tier, no quotas, one window per limit.
    "ignores model quotas": ("            return kind, model\n", "            return None\n", PREMIUM),
    "reads a quota as the tier's": (
        "            return kind, model\n",
        "            return kind, None\n",
        PREMIUM,
    ),
    "matches a counter to its limit by name only": (
        'key = (limit.get("name"), limit["seconds"])',
        'key = next((k for k in mine if k[0] == limit.get("name")), None)',
        ("freeuser1",),
    ),
}


@pytest.mark.parametrize("misbehaviour", MISBEHAVIOURS)
def test_each_misbehaviour_fails_the_oracle(
    misbehaviour: str, world: World, kube: KubeApi, tmp_path: Path
) -> None:
    old, new, callers = MISBEHAVIOURS[misbehaviour]
    source = Path(server.__file__).read_text()
    assert source.count(old) == 1, old
    program = tmp_path / "app" / "server.py"
    program.parent.mkdir()
    program.write_text(source.replace(old, new))
    with key_service(kube, tmp_path, TIERS, env=world.env(), program=program) as service:
        for caller in callers:
            via = "key" if caller == "premiumuser2" else "token"
            with pytest.raises(AssertionError):
                check_usage(service, world, caller, via)
    with key_service(kube, tmp_path, TIERS, env=world.env()) as service:
        for caller in callers:
            check_usage(service, world, caller, "key" if caller == "premiumuser2" else "token")


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
    with json_server(lambda path: body) as url:
        yield url


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


def test_the_key_services_own_limits_are_never_a_callers_model_limits(
    world: World, kube: KubeApi, tmp_path: Path
) -> None:
    """The key service's RateLimitPolicy (self_service.py rate_limit_spec) puts its limits in
    Limitador beside the tier limits, under its own route's namespace: with the caller's
    counters of them spent in Limitador, usage lists what it listed without them. Their names
    are no tier's either, should they ever share a namespace."""
    models = world.config.namespaces_in_use()["models"]
    own = limits_of(
        self_service.rate_limit_spec(world.config.key_service, KEY_SERVICE), KEY_SERVICE, models, False
    )
    assert {limit["namespace"] for limit in own} == {f"{models}/{KEY_SERVICE}"}
    assert world.namespace == limits_namespace(models) != f"{models}/{KEY_SERVICE}"
    assert all(server.limit_of(limit["name"], t.name) is None for limit in own for t in world.config.tiers)
    user = "premiumuser1"
    spent = [Count(limit, {variable(tiers.USER_ID): user}, 1, limit["seconds"]) for limit in own]
    with limitador_api([*world.limitador.limits, *own], lambda: [*world.counts(), *spent]) as limitador:
        path = urllib.parse.quote(f"{models}/{KEY_SERVICE}", safe="")
        with urllib.request.urlopen(f"{limitador.url}/counters/{path}") as answer:
            assert len(json.load(answer)) == len(own), "the stand-in does not hold the caller's counters"
        env = {**world.env(), "LIMITADOR_URL": limitador.url}
        with key_service(kube, tmp_path, TIERS, env=env) as service:
            check_usage(service, world, user, "token")
