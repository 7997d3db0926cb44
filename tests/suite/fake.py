"""A fake platform: a local HTTP gateway that behaves like the deployed stack, or misbehaves.

It cannot prove Kuadrant; it shows the end-to-end scenarios' own logic. Behaving, it
answers as the platform must, with the real platform's inconveniences (a new Secret is
seen a few requests late, the tokenizer's count is not the word count, a model may have
two replicas, the warm-up of a key is metered like any request). Given a `Faults`, it
misbehaves in exactly the way one scenario targets, and that scenario must fail.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import math
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from components.access import self_service, tiers
from components.access.realm import STACK_USERS_GROUP
from components.cluster.security import pod_security
from components.config import Rate, StackConfig, TierConfig
from components.config.types import window_seconds
from components.names import ADMIN_HEADER, MODEL_HEADER, TIER_HEADER, USER_HEADER, VIA_HEADER
from components.pins import upstream
from components.serving import endpoint_picker
from components.serving import gateway as gw
from tests.e2e.cluster import GENERATED_METRIC, SERVED_METRIC, Response, request
from tests.e2e.platform import (
    CUT_AFTER_BYTES,
    GENERATION_PATHS,
    Component,
    Key,
    Model,
    Origin,
    Platform,
    seconds,
    token_claims,
)
from tests.support.keycloak_admin import Realm

# What the gateway's Lua filter answers on the shared host (components/serving/lua/request_body.lua).
NO_MODEL = {"error": {"message": "no model", "type": "invalid_request_error", "code": "model_required"}}
UNKNOWN_MODEL = {"error": {"message": "unknown", "type": "invalid_request_error", "code": "model_not_found"}}

# How long the fake's Keycloak tokens live (Keycloak's default is 5 minutes).
TOKEN_LIFETIME_S = 2.0
COMPLETION_TOKENS = 16
# What the fake model generates for a request that ignores end-of-sequence: its max_tokens,
# else its context's length.
MAX_MODEL_LEN = 32768
# Told by FakePlatform._send_cut: the client reads the stream's first bytes and closes.
CUT_HEADER = "x-fake-client-cuts"
# Tokens a chat request costs beyond its words (role and template markers).
TEMPLATE_TOKENS = 5


@dataclass(frozen=True)
class Faults:
    """What the fake gets wrong; the defaults are a platform that behaves."""

    ignore_selector: bool = False  # A3: a Secret without our label grants access
    tier_check: bool = True  # A11: False admits a tier the table does not have
    leak_denied: bool = False  # a denied request reaches the model all the same
    no_policy_guard: bool = False  # a host Kuadrant has no action set for is served, unjudged
    # Kuadrant's config past its cap: the models after this many (catalog order) have no
    # action set on their hosts, ever (the operator logged the failed write, issue 27).
    unwritten_after: int | None = None
    deployed_limits: dict[str, int] = field(default_factory=dict)  # L1: limits unlike the config's
    users_share_counters: bool = False  # L3
    window_never_resets: bool = False  # L2
    only_shortest_window: bool = False  # L20: a limit's longer windows are not enforced
    model_quotas_ignored: bool = False  # L21: a model's own quota in a tier gives way to the tier's
    tokens_per_word: float = 1.3  # the tokenizer
    token_limit_late: int = 0  # L5: tokens admitted beyond the limit
    stream_usage_unrequested: bool = True  # L16: False, the gateway does not ask streams for usage
    old_key_lingers: bool = False  # A7
    revocation_ignored: bool = False  # A6
    counters_reset_on_restart: bool = False  # L10
    memory_counters_survive: bool = False  # R5: in memory, counters survive a restart
    authorino_restarts_on_key_change: bool = False  # A5
    expired_tokens_accepted: bool = False  # A10
    metering_drops_warmup: bool = False  # L9
    probe: dict[tuple[str, str], int] = field(default_factory=dict)  # S5: (origin, target) -> exit
    exposed: dict[str, str] = field(default_factory=dict)  # S6: Service -> type
    pod_security: dict[str, str] = field(default_factory=dict)  # S7: pod -> refusal
    namespace_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # S7: namespace -> labels
    auth_down_status: int = 500  # R6: what a request gets while Authorino is down
    limits_failure_inverted: bool = False  # R6: Limitador down does the opposite of the config
    replicas: int = 2
    model_tiers_ignored: bool = False  # A14: a restricted model answers every tier
    listing_billed: bool = False  # GET /v1/models counted against the limits
    routing_header_trusted: bool = False  # A17: a client's model header picks the model
    body_ignored: bool = False  # the shared host sends every request to the first model
    tier_header_trusted: bool = False  # A17: a client's tier header picks the model list
    list_ignores_tier: bool = False  # A15: the shared host lists every model to everyone
    list_open: bool = False  # A15: the model list answers without a credential
    unrouted_status: int | None = None  # A16: what an unknown or missing model gets, if not 404/400
    hosts_counted_apart: bool = False  # one budget per host instead of per model
    shared_host_unmetered: bool = False  # L9: the shared host's requests missing from metering
    realm_extra: dict[str, set[str]] = field(default_factory=dict)  # day 2: tier -> users left behind
    scaling_ignored: bool = False  # a model that should follow its queue stays at minReplicas
    stays_scaled: bool = False  # a model that grew on its queue never shrinks back
    priority_ignored: bool = False  # a saturated pool serves its queue first come, first served
    # The picker's fairness policy within a band, if not the one its config names.
    fairness: str | None = None
    plain_401: bool = False  # A18: a 401 with Authorino's own plain body, not OpenAI's
    plain_429: bool = False  # A18: Kuadrant's own plain 429 reaches the client unshaped
    plain_413: bool = False  # A18: Envoy's own plain 413 reaches the client unshaped
    body_limit_unset: bool = False  # maxRequestBytes not applied: Envoy's default 1 MiB holds
    # Endpoint pickers per pooled model, if not the config's scheduler.replicas.
    picker_replicas: int | None = None
    client_priority_trusted: bool = False  # a client's objective header sets its priority
    tier_caps_ignored: bool = False  # a request asks for as many tokens and choices as it likes
    max_tokens_unfilled: bool = False  # a request that names no max_tokens is not given one
    # The key service's route (tests/suite/fake_keys.py): the gateway forwards a client's own
    # x-maas-* headers instead of setting them from the verified identity.
    identity_headers_trusted: bool = False
    # Limitador's HTTP API answers each read with the counters as the read before found them.
    usage_counters_stale: bool = False
    # Authorino keeps the tier a key had when it first saw it: a relabelled key keeps it.
    key_tier_cached: bool = False
    # The key service's RateLimitPolicy has no limit on mints (its limit on every call stays).
    mints_unlimited: bool = False
    budget_caps_ignored: bool = False  # L23: a money budget's cap is declared but never enforced
    budget_caps_per_model: bool = False  # L23: a budget's cap counts each model apart


# A pooled model's replicas, as the fake runs them: two requests at a time each (dev's
# simulators: --max-num-seqs=2), each taking the fake's `service_s` where the cluster's
# simulator takes about this long (--time-to-first-token=200ms); the queue timeout shrinks
# in the same proportion.
POOL_SLOTS_PER_REPLICA = 2
# A route added later: the requests that reach its host before Kuadrant has written its
# action sets (the operator reconciles after the route is accepted).
UNWRITTEN_REQUESTS = 2
CLUSTER_SERVICE_S = 0.2


# How often the picker's saturation detector reads the replicas' metrics on the cluster
# (llm-d/llm-d-router@v0.10.0 pkg/epp/datalayer/runtime.go: a 50 ms refresh); scaled like the
# service time in the fake.
CLUSTER_REFRESH_S = 0.05


class _Pool:
    """A pooled model behind llm-d's endpoint picker (llm-d-router v0.10.0). The replicas run
    `slots` requests at once and queue the rest first come, first served. Flow control holds
    a request back only while its saturation detector says the pool is saturated (the replicas'
    mean queue at `depth`: llm-d/llm-d-router@v0.10.0 saturationdetector/utilization/README.md),
    and the detector reads the replicas' metrics every `refresh_s`, not at each arrival: a burst
    into an idle pool is dispatched as it arrives, first come first served. Held requests wait
    in their priority band, one queue per flow (the fairness id: the user) with its oldest
    request first (fcfs-ordering-policy, the default); the highest non-empty band goes first
    once a replica is free and nobody dispatched waits for it, and within it the band's fairness
    policy picks the flow: global-strict the oldest head of any flow (llm-d/llm-d-router@v0.10.0
    fairness/globalstrict/global_strict.go), round-robin the next flow after the last one
    served, in sorted order, skipping empty ones (fairness/roundrobin/roundrobin.go). A held
    request waits at most the queue timeout (`ttl_s`), then is refused."""

    def __init__(
        self,
        slots: int,
        replicas: int,
        depth: int,
        fifo: bool,
        fairness: str,
        service_s: float,
        ttl_s: float | None,
    ):
        self.ready = threading.Condition()
        self.free, self.fifo, self.service_s, self.ttl_s = slots, fifo, service_s, ttl_s
        # A pool that ignores priority (the fault) serves its queue first come, first served.
        self.round_robin = fairness == "round-robin-fairness-policy" and not fifo
        self.threshold = depth * replicas
        self.refresh_s = CLUSTER_REFRESH_S * service_s / CLUSTER_SERVICE_S
        # Tickets (held, band, flow, arrival): held 0 is dispatched to a replica's queue, 1 is
        # held by flow control; band is -priority, so the highest priority sorts first.
        self.waiting: list[tuple[int, int, str, int]] = []
        self.arrivals = itertools.count()
        self.last_flow: dict[int, str] = {}
        self.at_replicas = 0
        self.saturated, self.measured = False, 0.0

    def _observe(self) -> None:
        """The detector's reading, taken every `refresh_s` on the clock, not at events: the
        replicas' queue as it stood at the last tick passed since the previous event (it is
        constant between events), so a reading is not biased to the moments requests arrive."""
        now = time.monotonic()
        if self.refresh_s <= 0 or now // self.refresh_s > self.measured // self.refresh_s:
            self.saturated = self.at_replicas >= self.threshold
        self.measured = now

    def _next(self) -> tuple[int, int, str, int]:
        dispatched = [t for t in self.waiting if t[0] == 0]
        if dispatched:
            return min(dispatched, key=lambda t: t[3])
        band = min(t[1] for t in self.waiting)
        queued = [t for t in self.waiting if t[1] == band]
        if not self.round_robin:
            return min(queued, key=lambda t: t[3])
        flows = sorted({t[2] for t in queued})
        after = [f for f in flows if f > self.last_flow.get(band, "")]
        flow = (after or flows)[0]
        return min((t for t in queued if t[2] == flow), key=lambda t: t[3])

    def serve(self, priority: int, flow: str) -> bool:
        """Waits for a slot and holds it for the service time; False when the request was
        held past the queue timeout and refused instead (flow control's EvictedTTL)."""
        with self.ready:
            self._observe()
            # Flow control dispatches at once only into an unsaturated pool with nobody held;
            # otherwise the request joins the held.
            held = self.saturated or any(waiting[0] == 1 for waiting in self.waiting)
            ticket = (1 if held else 0, 0 if self.fifo else -priority, flow, next(self.arrivals))
            self.at_replicas += 0 if held else 1
            self.waiting.append(ticket)
            if not self.ready.wait_for(
                lambda: self.free > 0 and self._next() == ticket, self.ttl_s if held else None
            ):
                self.waiting.remove(ticket)
                self.ready.notify_all()
                return False
            self.waiting.remove(ticket)
            if held:
                self.last_flow[ticket[1]] = flow
            self.free -= 1
            self._observe()
            self.at_replicas -= 0 if held else 1
            self.ready.notify_all()
        time.sleep(self.service_s)
        with self.ready:
            self.free += 1
            self.ready.notify_all()
        return True


@dataclass
class _Tokens:
    """A response's tokens, for the limits' counter and the metering (either may be None)."""

    counter: _Counter | None
    metered: list[int] | None
    tokens: int
    # what the model generates for it (its servers' count)
    generated: int = COMPLETION_TOKENS

    def bill(self) -> None:
        if self.counter is not None:
            self.counter.spend(self.tokens, time.monotonic())
        if self.metered is not None:
            self.metered[1] += self.tokens


def _completion(body: dict[str, Any]) -> int:
    """The tokens the fake model generates: a few, or for a request that ignores the end of
    sequence, its max_tokens (else its context's length) for each choice."""
    if not body.get("ignore_eos"):
        return COMPLETION_TOKENS
    return int(body.get("max_tokens") or MAX_MODEL_LEN) * int(body.get("n") or 1)


@dataclass
class _Window:
    """One Limitador counter: its value until it expires, `seconds` after the hit that found
    it expired (Kuadrant/limitador@v2.4.0 limitador/src/storage/atomic_expiring_value.rs: `update`
    stores the delta and a new expiry once expired, `value_at` reads 0 after it)."""

    limit: int
    seconds: float
    never_resets: bool
    value: int = 0
    expires: float = 0.0

    def value_at(self, now: float) -> int:
        return self.value if self.never_resets or now < self.expires else 0

    def add(self, delta: int, now: float) -> None:
        if now >= self.expires and not (self.never_resets and self.expires):
            self.value, self.expires = 0, now + self.seconds
        self.value += delta


@dataclass
class _Counter:
    """The counters one user's requests for one model meet: one per rate (window) of the
    request limit and of the token limit that apply. Limitador admits a request only if
    every counter has room, and then adds to every one of them (Kuadrant/limitador@v2.4.0
    limitador/src/storage/in_memory.rs check_and_update)."""

    requests: list[_Window]
    tokens: list[_Window]
    # The money budget's request cap the user meets (tiers.py _budget_limits), if any: its
    # windows, the same objects in each of the user's counters, as it counts across models.
    budget: list[_Window] = field(default_factory=list)

    def count(self, now: float) -> None:
        for window in self.request_windows():
            window.add(1, now)

    def spend(self, tokens: int, now: float) -> None:
        for window in self.token_windows():
            window.add(tokens, now)

    def request_windows(self) -> list[_Window]:
        return [*self.requests, *self.budget]

    def token_windows(self) -> list[_Window]:
        return self.tokens


class FakeGateway:
    """The gateway, Authorino, Limitador, the models and Prometheus, in one object."""

    def __init__(self, config: StackConfig, faults: Faults, propagation: int = 2, service_s: float = 0.0):
        self.config, self.faults, self.propagation = config, faults, propagation
        self.lock = threading.Lock()
        self.clock = 0.0
        self.keys: dict[str, tuple[str, str, bool]] = {}  # value -> (user, tier, selected), as seen
        # Each realm user's tier (Keycloak's groups), as a token carries it.
        self.user_tiers: dict[str, str] = {u.name: u.tier for u in config.users}
        # Where the stack runs a key service (tests/suite/fake_keys.py): its URL, and Authorino's
        # watch of key Secrets, which gives the key changes seen since it was last asked.
        self.key_service: str | None = None
        self.watch: Callable[[], list[tuple[str, tuple[str, str, bool] | None]]] | None = None
        self.pending: list[
            tuple[int, str, tuple[str, str, bool] | None]
        ] = []  # (at request n, value, record)
        self.requests_seen = 0
        self.restarts = 0  # Authorino's
        self.routes: dict[str, str] = {f"{m.host}.{config.domain}": m.name for m in config.models}
        self.api_host = f"{config.gateway.api_host}.{config.domain}"
        self.by_served = {m.served_name: m.name for m in config.models}
        self.server = {m.name: m.served_by or m.name for m in config.models}
        # Hosts Kuadrant has not configured: requests left until it has.
        self.unwritten: dict[str, int] = (
            {f"{m.host}.{config.domain}": sys.maxsize for m in config.models[faults.unwritten_after :]}
            if faults.unwritten_after is not None
            else {}
        )
        self.counters: dict[tuple[str, str, str, str], _Counter] = {}  # (user, model, host, tier)
        # The key service's limits (self_service.rate_limit_spec): (user, limit) -> its windows.
        self.key_counters: dict[tuple[str, str], list[_Window]] = {}
        # The money budgets a cap holds (tiers.py budget_caps): (user, cap) -> its windows.
        self.caps = tiers.stack_budget_caps(config)
        self.budget_counters: dict[tuple[str, str], list[_Window]] = {}
        self.metered: dict[tuple[str, str, str], list[int]] = {}  # (user, tier, model) -> [requests, tokens]
        self.tokens_scraped: dict[tuple[str, str, str], int] = {}
        # Each model's running pods, what every pod (gone ones too) answered, and when a pod
        # went: a scaled-down pod leaves with its counter, which only Prometheus still has.
        self.running: dict[str, list[str]] = {m.name: [] for m in config.models}
        self.answered: dict[str, int] = {}
        # Tokens each pod generated (vllm:generation_tokens_total).
        self.generated: dict[str, int] = {}
        self.gone: dict[str, tuple[str, float]] = {}  # pod -> (model, when it went)
        self._names = {m.name: itertools.count() for m in config.models}
        self._turn = itertools.count()
        self.answered_at: dict[str, list[float]] = {}
        self.down: set[str] = set()
        # Endpoint pickers gone, per pooled model.
        self.pickers_gone: dict[str, int] = {}
        slots = POOL_SLOTS_PER_REPLICA * faults.replicas
        # No service time, no queue worth timing out (a request waits only for a free slot).
        ttl_s = window_seconds(config.scheduler.queue_timeout) * service_s / CLUSTER_SERVICE_S or None
        # The policy the picker's config gives every band (none named: the picker's default).
        band = endpoint_picker.picker_config(config.scheduler)["flowControl"].get("defaultPriorityBand", {})
        fairness = faults.fairness or band.get("fairnessPolicyRef", "global-strict-fairness-policy")
        self.pools = {
            m.name: _Pool(
                slots,
                faults.replicas,
                config.scheduler.saturation.queue_depth,
                faults.priority_ignored,
                fairness,
                service_s,
                ttl_s,
            )
            for m in config.models
            if m.scheduling == "pool"
        }
        self.priorities = tiers.priorities(config.tiers)
        # Set while the lock is held: the pool and priority the request being handled waits for.
        self._scheduled: tuple[str, _Pool, int, str, _Tokens] | None = None

    # Authorino sees Secret changes a few gateway requests late, as a watch would.
    def change_key(self, value: str, record: tuple[str, str, bool] | None) -> None:
        with self.lock:
            self._change_key(value, record)

    def _change_key(self, value: str, record: tuple[str, str, bool] | None) -> None:
        self.restarts += 1 if self.faults.authorino_restarts_on_key_change else 0
        self.pending.append((self.requests_seen + self.propagation, value, record))

    def _catch_up(self) -> None:
        due = [p for p in self.pending if p[0] <= self.requests_seen]
        self.pending = [p for p in self.pending if p[0] > self.requests_seen]
        for _, value, record in due:
            if record is None:
                if not self.faults.revocation_ignored:
                    self.keys.pop(value, None)
            else:
                self.keys[value] = record

    def handle(
        self, method: str, host: str, path: str, headers: dict[str, str], body: bytes, now: float
    ) -> Response:
        with self.lock:
            self.requests_seen += 1
            for value, record in self.watch() if self.watch else ():
                self._change_key(value, record)
            self._catch_up()
            service = self.key_service
            if service is not None and _key_service_path(path):
                judged = self._key_service_identity(method, path, headers, now)
            else:
                judged = None
                reply = self._handle(method, host.split(":")[0], path, headers, body, now)
            scheduled, self._scheduled = self._scheduled, None
        if judged is not None and service is not None:
            # Forwarded outside the lock: the service reads Limitador, which reads the counters.
            return judged if isinstance(judged, Response) else _forward(service, method, path, judged, body)
        if scheduled is not None:
            # Admitted to a pooled model: it waits its turn in the pool, outside the lock, and
            # reaches the model only if it gets one (the limits have counted it either way).
            model, pool, priority, flow, tokens = scheduled
            if not pool.serve(priority, flow):
                return _json(429, _error(_REFUSALS["shed"]))
            with self.lock:
                self._serve(model, tokens.generated)
                tokens.bill()
        return reply

    def _handle(
        self, method: str, host: str, path: str, headers: dict[str, str], body: bytes, now: float
    ) -> Response:
        routed = path in (*GENERATION_PATHS, "/v1/models")
        # The request-body filter buffers the body first, up to the listener's buffer limit.
        limit = 1024 * 1024 if self.faults.body_limit_unset else self.config.gateway.max_request_bytes
        if len(body) > limit:
            if self.faults.plain_413:
                return Response(413, {"content-type": "text/plain"}, b"Payload Too Large")
            return _json(413, _error(_REFUSALS["413"]))
        if host == self.api_host:
            if method == "GET" and path == "/v1/models":
                return self._model_list(headers)
            if method != "POST" or path not in GENERATION_PATHS:
                return _json(404, {"error": "no route"})
            found = self._route_by_body(headers, body)
            if isinstance(found, Response):
                return found
            model: str | None = found
        else:
            model = self.routes.get(host)
            forged = self.by_served.get(headers.get(MODEL_HEADER, ""))
            if self.faults.routing_header_trusted and model is not None and forged:
                model = forged
        if model is None or not routed:
            return _json(404, {"error": "no route"})
        pickers = self.faults.picker_replicas or self.config.scheduler.replicas
        if model in self.pools and path in GENERATION_PATHS and self.pickers_gone.get(model, 0) >= pickers:
            # Every request on a pooled model's route opens a stream to its picker, a refusal
            # too (Envoy runs a local reply through the ext_proc filter, docs/models.md "Scheduling
            # and tier priority"); with none left, FailClose makes it a 500.
            return _json(500, {"error": "ext_proc stream failed"})
        if "authorino" in self.down:
            return self._deny(model, _json(self.faults.auth_down_status, {"error": "auth unavailable"}), path)
        identity = self._identity(headers)
        if self.unwritten.get(host, 0) > 0:
            # Kuadrant has no action set for the host yet (or could not write it): its filter
            # passes the request unjudged (Kuadrant/wasm-shim@v0.14.1 kuadrant_filter.rs), and the
            # gateway's guard refuses it for the missing marker (lua/policy_guard.lua).
            self.unwritten[host] -= 1
            if not self.faults.no_policy_guard:
                return _json(gw.NO_POLICY_STATUS, json.loads(gw.NO_POLICY_BODY))
            self._serve(model)
            return self._answer(model, path, json.loads(body) if body else {})[0]
        if identity is None:
            return self._deny(model, self._unauthenticated(), path)
        elif not self._admits(model, identity[1]):
            return self._deny(model, _json(403, FORBIDDEN), path)
        user, tier = identity or ("anonymous", self.config.tier_names[-1])
        request_body = json.loads(body) if body else {}
        counter = self._counter(user, model, tier, now, host)
        if "limitador" in self.down:
            closed = self.config.limitador.failure_mode == "closed"
            if closed != self.faults.limits_failure_inverted:
                return self._deny(model, _json(500, {"error": "limits unavailable"}), path)
        elif self._limited(counter, now) and (path in GENERATION_PATHS or self.faults.listing_billed):
            return self._deny(model, self._too_many(counter, tier, now), path)
        if path in GENERATION_PATHS and not self.faults.tier_caps_ignored:
            # The Lua filter after Kuadrant (lua/request_body.lua cap_request): the tier's caps.
            # A tier it does not know gets the smallest caps, as the filter gives it.
            known = [t for t in self.config.tiers if t.name == tier]
            tokens_cap = min(t.max_tokens for t in known or self.config.tiers)
            choices_cap = min(t.max_choices for t in known or self.config.tiers)
            for name, cap in (("max_tokens", tokens_cap), ("n", choices_cap)):
                if request_body.get(name) is not None and request_body[name] > cap:
                    return _json(400, {"error": {"message": "over", "type": "invalid_request_error",
                                                 "code": "over_tier_cap"}})  # fmt: skip
            if request_body.get("max_tokens") is None and not self.faults.max_tokens_unfilled:
                request_body["max_tokens"] = tokens_cap
        reply, tokens = self._answer(model, path, request_body)
        billed = path in GENERATION_PATHS or self.faults.listing_billed
        counted = counter if billed and "limitador" not in self.down else None
        metered = (
            self.metered.setdefault((user, tier, model), [0, 0])
            if billed and not (host == self.api_host and self.faults.shared_host_unmetered)
            else None
        )
        if counted is not None:
            counted.count(now)
        if metered is not None:
            metered[0] += 1
        if headers.get(CUT_HEADER) and request_body.get("stream"):
            # The wasm-shim reads usage from a stream's last chunk, which a cut stream never
            # delivers (Kuadrant/wasm-shim@v0.14.1 token_usage.rs): nothing is reported.
            tokens = 0
        tokens_billed = _Tokens(counted, metered, tokens, _completion(request_body))
        if model in self.pools and path in GENERATION_PATHS:
            # Its tokens count once it is served: a shed request's 429 carries no usage.
            # The flow is the user, the fairness id Authorino sets (components/access/tiers.py).
            priority = self._priority(model, tier, headers)
            self._scheduled = (model, self.pools[model], priority, user, tokens_billed)
        else:
            tokens_billed.bill()
        return reply

    def _key_service_identity(
        self, method: str, path: str, headers: dict[str, str], now: float
    ) -> Response | dict[str, str]:
        """The key service route's AuthPolicy (components/access/tiers.py key_service_auth_spec):
        its page is public; elsewhere a Keycloak token, or an API key on the usage path only,
        becomes the x-maas-* headers, set over any copy the client sent (misbehaving: the
        client's copies win); then its RateLimitPolicy counts the verified user. The headers
        to forward, or Authorino's 401, or the limits' 429."""
        sent = {k: v for k, v in headers.items() if k in ("content-type", "accept")}
        # Envoy appends the address it saw (the service records it as the caller's source).
        sent["x-forwarded-for"] = "127.0.0.1"
        forged = {k: v for k, v in headers.items() if k in IDENTITY_HEADERS}
        if urllib.parse.urlsplit(path).path.startswith(self_service.PAGE_PATH):
            return {**sent, **forged} if self.faults.identity_headers_trusted else sent
        auth = headers.get("authorization", "")
        identity: dict[str, str] | None = None
        if auth.startswith("Bearer "):
            claims = token_claims(auth.removeprefix("Bearer ")) or {}
            fresh = claims.get("exp", 0) >= time.time() or self.faults.expired_tokens_accepted
            user = claims.get("preferred_username")
            if fresh and user in self.user_tiers:
                identity = {USER_HEADER: user, TIER_HEADER: self.user_tiers[user], VIA_HEADER: "token"}
                identity[ADMIN_HEADER] = "false"
        elif auth.startswith("APIKEY ") and urllib.parse.urlsplit(path).path in self_service.KEY_PATHS:
            record = self.keys.get(auth.removeprefix("APIKEY "))
            if record is not None and (record[2] or self.faults.ignore_selector):
                identity = {USER_HEADER: record[0], TIER_HEADER: record[1], VIA_HEADER: "key"}
                identity[ADMIN_HEADER] = "false"
        if identity is None:
            return self._unauthenticated()
        refused = self._key_service_limited(identity[USER_HEADER], method, path, now)
        if refused is not None:
            return refused
        return (
            {**sent, **identity, **forged} if self.faults.identity_headers_trusted else {**sent, **identity}
        )

    def _key_service_limited(self, user: str, method: str, path: str, now: float) -> Response | None:
        """The key service's RateLimitPolicy (components/access/self_service.py rate_limit_spec)
        as Limitador applies it: the user's counters of every limit whose conditions hold, all
        admitted and counted, or none counted and a 429."""
        config = self.config.key_service
        limits = [(self_service.CALL_LIMIT, config.calls)]
        minting = method == "POST" and urllib.parse.urlsplit(path).path == self_service.MINT_PATH
        if minting and not self.faults.mints_unlimited:
            limits.append((self_service.MINT_LIMIT, config.mints))
        windows = [
            window
            for name, rates in limits
            for window in self.key_counters.setdefault((user, name), self._windows(rates))
        ]
        full = [w for w in windows if w.value_at(now) + 1 > w.limit]
        if full:
            return self._requests_429(full, now)
        for window in windows:
            window.add(1, now)
        return None

    def _route_by_body(self, headers: dict[str, str], body: bytes) -> str | Response:
        """The gateway's Lua filter: the model the body names, or its 400/404."""
        forged = self.by_served.get(headers.get(MODEL_HEADER, ""))
        if self.faults.routing_header_trusted and forged:
            return forged
        try:
            named = json.loads(body).get("model")
        except (ValueError, AttributeError):
            named = None
        if not isinstance(named, str):
            return _json(self.faults.unrouted_status or 400, NO_MODEL)
        if self.faults.body_ignored:
            return self.config.models[0].name
        if named not in self.by_served:
            return _json(self.faults.unrouted_status or 404, UNKNOWN_MODEL)
        return self.by_served[named]

    def _model_list(self, headers: dict[str, str]) -> Response:
        """Authorino, then the static server: the caller's tier's models."""
        identity = self._identity(headers)
        if identity is None and not self.faults.list_open:
            return self._unauthenticated()
        tier = identity[1] if identity else ""
        if self.faults.tier_header_trusted and headers.get(TIER_HEADER):
            tier = headers[TIER_HEADER]
        listed = [
            m.served_name
            for m in self.config.models
            if self.faults.list_ignores_tier or (tier in self.config.tier_names and m.admits(tier))
        ]
        return _json(200, {"object": "list", "data": [{"id": i, "object": "model"} for i in listed]})

    def _unauthenticated(self) -> Response:
        """Authorino's 401, with the AuthPolicy's body (components/access/tiers.py)."""
        if self.faults.plain_401:
            return Response(401, {"content-type": "text/plain"}, b"Unauthorized")
        return _json(401, json.loads(tiers.UNAUTHENTICATED_BODY))

    def _admits(self, model: str, tier: str) -> bool:
        """Authorino's two rules: the tier is in the table, and the model admits it."""
        if tier not in self.config.tier_names and self.faults.tier_check:
            return False
        config = next(m for m in self.config.models if m.name == model)
        return config.tiers is None or tier in config.tiers or self.faults.model_tiers_ignored

    def _identity(self, headers: dict[str, str]) -> tuple[str, str] | None:
        auth = headers.get("authorization", "")
        if auth.startswith("Bearer "):
            claims = token_claims(auth.removeprefix("Bearer "))
            if claims is None:
                return None
            if claims.get("exp", 0) < time.time() and not self.faults.expired_tokens_accepted:
                return None
            user = claims.get("preferred_username")
            return (user, self.user_tiers[user]) if user in self.user_tiers else None
        if not auth.startswith("APIKEY "):
            return None
        record = self.keys.get(auth.removeprefix("APIKEY "))
        if record is None or not (record[2] or self.faults.ignore_selector):
            return None
        return record[0], record[1]

    def _windows(self, rates: Sequence[Rate], deployed: int | None = None) -> list[_Window]:
        """A limit's counters, one per rate; misbehaving, the shortest window only, or its
        limit as `deployed` rather than the config's."""
        ordered = sorted(rates, key=lambda rate: seconds(rate.window))
        kept = ordered[:1] if self.faults.only_shortest_window else ordered
        return [
            _Window(
                deployed if deployed is not None and index == 0 else rate.limit,
                seconds(rate.window),
                self.faults.window_never_resets,
            )
            for index, rate in enumerate(kept)
        ]

    def _counter(self, user: str, model: str, tier: str, now: float, host: str) -> _Counter:
        # A tier's limits are its own Limitador limits: a user who changes tier meets new counters.
        key = (
            "shared" if self.faults.users_share_counters else user,
            model,
            host if self.faults.hosts_counted_apart else "",
            tier,
        )
        table = self._tier(tier)
        if key not in self.counters:
            # The one limit of each kind a request meets: the model's own quota in the tier,
            # else the tier's (components/access/tiers.py _limits).
            config = next(m for m in self.config.models if m.name == model)
            ignored = self.faults.model_quotas_ignored
            requests = (None if ignored else config.own_rates(tier, "requests")) or (
                table.requests if table else ()
            )
            tokens = (None if ignored else config.own_rates(tier, "tokens")) or (
                table.tokens if table else ()
            )
            deployed = self.faults.deployed_limits.get(tier)
            self.counters[key] = _Counter(self._windows(requests, deployed), self._windows(tokens))
            self._add_budget(self.counters[key], user, tier, model)
        return self.counters[key]

    def _add_budget(self, counter: _Counter, user: str, tier: str, model: str) -> None:
        """The cap a user meets (components/access/tiers.py _budget_limits): the user's own
        from any tier, else the tier's unless the user has a budget of their own; one set of
        windows across the user's models (misbehaving: one per model, or none)."""
        if self.faults.budget_caps_ignored:
            return
        own = user in self.config.prices.budgets.users
        cap = next(
            (c for c in self.caps if (c.user == user if own else c.user is None and c.tier == tier)), None
        )
        if cap is None:
            return
        key = (f"{user}/{model}" if self.faults.budget_caps_per_model else user, cap.name)
        if key not in self.budget_counters:
            self.budget_counters[key] = [
                _Window(limit, seconds(window), self.faults.window_never_resets)
                for limit, window in cap.rates
            ]
        counter.budget = self.budget_counters[key]

    def _too_many(self, counter: _Counter, tier: str, now: float) -> Response:
        """Kuadrant's 429 as the gateway's refusals.lua leaves it: a request limit's says when
        its window frees (Retry-After, from Limitador's X-RateLimit-Reset: the longest wait of
        the full windows), a token limit's gives the longest token window of any tier (the
        filter never learns the tier)."""
        if self.faults.plain_429:
            return Response(429, {"content-type": "text/plain"}, b"Too Many Requests\n")
        full = [w for w in counter.request_windows() if w.value_at(now) + 1 > w.limit]
        if not full:
            longest = max(math.ceil(seconds(r.window)) for t in self.config.tiers for r in t.tokens)
            body = _error(_REFUSALS["tokens"])
            return Response(
                429,
                {"content-type": "application/json", "retry-after": str(longest)},
                json.dumps(body).encode(),
            )
        return self._requests_429(full, now)

    def _requests_429(self, full: list[_Window], now: float) -> Response:
        """A request limit's 429 as refusals.lua leaves it, whichever route's limit it is: the
        longest wait of the full windows as Retry-After."""
        if self.faults.plain_429:
            return Response(429, {"content-type": "text/plain"}, b"Too Many Requests\n")
        reset = max(0, max(math.ceil(w.expires - now) for w in full))
        body = _error({**_REFUSALS["requests"], "message": f"Try again in {reset}s."})
        return Response(
            429, {"content-type": "application/json", "retry-after": str(reset)}, json.dumps(body).encode()
        )

    def _tier(self, name: str) -> TierConfig | None:
        return next((t for t in self.config.tiers if t.name == name), None)

    def _limited(self, counter: _Counter, now: float) -> bool:
        """A request is refused when any of its request counters has no room for it, or any
        of its token counters has reached its limit (the token check adds nothing:
        Kuadrant/kuadrant-operator@v1.5.2 internal/controller/ratelimit_workflow_helpers.go,
        hits_addend 0)."""
        return any(w.value_at(now) + 1 > w.limit for w in counter.request_windows()) or any(
            w.value_at(now) >= w.limit + self.faults.token_limit_late for w in counter.token_windows()
        )

    def _priority(self, model: str, tier: str, headers: dict[str, str]) -> int:
        """The tier's priority (Authorino names its objective), or, misbehaving, the one of
        the objective a client named."""
        named = headers.get(upstream.OBJECTIVE_HEADER, "")
        forged = [t for t in self.priorities if tiers.objective_name(model, t) == named]
        if self.faults.client_priority_trusted and forged:
            return self.priorities[forged[0]]
        # An unknown objective is priority 0 (llm-d/llm-d-router@v0.10.0 requestcontrol/director.go).
        return self.priorities.get(tier, 0)

    def _deny(self, model: str, reply: Response, path: str) -> Response:
        if self.faults.leak_denied and path in GENERATION_PATHS:
            self._serve(model)
        return reply

    def _serve(self, model: str, completion: int = COMPLETION_TOKENS) -> None:
        # A model served by another is answered by that one's pods (maas:models[].servedBy).
        model = self.server[model]
        pods = self._pods(model)
        pod = pods[next(self._turn) % len(pods)]
        self.answered[pod] += 1
        self.generated[pod] += completion
        self.answered_at.setdefault(model, []).append(time.monotonic())

    def pods(self, model: str) -> list[str]:
        with self.lock:
            return list(self._pods(self.server[model]))

    def _pods(self, model: str) -> list[str]:
        """The model's running pods, as many as its replicas are now: a model that follows
        its queue runs maxReplicas while busy, else minReplicas; the others `replicas`. A
        new pod's counter starts at zero; a pod that goes keeps its own."""
        scaling = next(m.autoscaling for m in self.config.models if m.name == model)
        wanted = self.faults.replicas
        if scaling is not None:
            grown = self.busy(model) and not self.faults.scaling_ignored
            wanted = scaling.max_replicas if grown else scaling.min_replicas
        pods = self.running[model]
        while len(pods) < wanted:
            pods.append(f"{model}-predictor-{next(self._names[model])}")
            self.answered[pods[-1]] = self.generated[pods[-1]] = 0
        while len(pods) > wanted:
            self.gone[pods.pop()] = (model, time.monotonic())
        return pods

    def metrics(self, pod: str) -> str:
        """A running pod's /metrics; a gone pod answers nothing."""
        with self.lock:
            assert any(pod in pods for pods in self.running.values()), f"pod {pod} is not running"
            count, generated = self.answered[pod], self.generated[pod]
        return (
            f'# TYPE {SERVED_METRIC} counter\n{SERVED_METRIC}{{model_name="{pod}"}} {count}\n'
            f'# TYPE {GENERATED_METRIC} counter\n{GENERATED_METRIC}{{model_name="{pod}"}} {generated}\n'
        )

    def departed(self, model: str, within_s: float) -> dict[str, float]:
        """Prometheus's last scrape of each of the model's pods that went within `within_s`
        (scraped at every request: the fake has no scrape interval)."""
        with self.lock:
            now = time.monotonic()
            return {
                pod: float(self.answered[pod])
                for pod, (of, when) in self.gone.items()
                if of == model and now - when <= within_s
            }

    def busy(self, model: str) -> bool:
        """Whether the model is in a burst: 10 requests within a second, the last of them in
        the last second (its queue would grow)."""
        times = self.answered_at.get(model, [])
        recent = [t for t in times if time.monotonic() - t < 1.0]
        grown = len(recent) >= 10
        return grown or (
            self.faults.stays_scaled and any(b - a < 1.0 for a, b in zip(times, times[9:], strict=False))
        )

    def _answer(self, model: str, path: str, body: dict[str, Any]) -> tuple[Response, int]:
        if path == "/v1/models":
            return _json(200, {"object": "list", "data": [{"id": model}]}), 0
        completion = _completion(body)
        if model not in self.pools:  # a pooled model serves once the pool lets it (handle)
            self._serve(model, completion)
        words = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        prompt = round(words * self.faults.tokens_per_word) + TEMPLATE_TOKENS
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        # A simulator names itself in every answer, whichever of its names was asked for.
        served = next(m.served_name for m in self.config.models if m.name == self.server[model])
        if not body.get("stream"):
            choice = {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
            answer = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": served,
                "choices": [choice],
                "usage": usage,
            }
            return _json(200, answer), usage["total_tokens"]
        asked = bool(body.get("stream_options", {}).get("include_usage"))
        with_usage = asked or self.faults.stream_usage_unrequested
        chunks: list[dict[str, Any]] = [{"choices": [{"delta": {"content": "hi"}}]}]
        if with_usage:
            chunks.append({"choices": [], "usage": usage})
        text = "".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n"
        return Response(200, {"content-type": "text/event-stream"}, text.encode()), usage[
            "total_tokens"
        ] if with_usage else 0

    def query(self, expr: str) -> float | None:
        metric = re.fullmatch(r"sum\(sum_over_time\(maas:(requests|tokens):increase\{(.*)\}\[1h\]\)\)", expr)
        if metric:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', metric.group(2)))
            found = self.metered.get((labels["user"], labels["tier"], labels["model"]))
            if found is None:
                return None
            requests, tokens = found
            if self.faults.metering_drops_warmup:
                requests -= 1
            if metric.group(1) == "requests":
                return float(requests)
            # A response's tokens are reported after its request was counted (the wasm-shim
            # reports usage from the response body): the tokens' series shows what it held
            # one scrape before, as seen by the previous query.
            series = (labels["user"], labels["tier"], labels["model"])
            shown, self.tokens_scraped[series] = self.tokens_scraped.get(series, 0), tokens
            return float(shown)
        if expr.startswith(("max(kuadrant_ready)", "max(kuadrant_dependency_detected", "max(up{")):
            return 1.0
        raise AssertionError(f"the fake Prometheus does not know {expr!r}")


FORBIDDEN = json.loads(tiers.FORBIDDEN_BODY)
IDENTITY_HEADERS = (USER_HEADER, TIER_HEADER, VIA_HEADER, ADMIN_HEADER)


def _forward(service: str, method: str, path: str, headers: dict[str, str], body: bytes) -> Response:
    """The request as the route sends it to the key service at `service`, and its answer."""
    sent = urllib.request.Request(service + path, data=body or None, method=method, headers=headers)
    try:
        with urllib.request.urlopen(sent, timeout=10) as answer:
            status, data, kind = answer.status, answer.read(), answer.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        status, data, kind = error.code, error.read(), error.headers.get("content-type", "")
    return Response(status, {"content-type": kind or "application/octet-stream"}, data)


def _key_service_path(path: str) -> bool:
    """Whether the key service's routes take the path (PathPrefix: whole segments)."""
    path = urllib.parse.urlsplit(path).path
    prefixes = (*self_service.API_PATHS, self_service.PAGE_PATH)
    return any(path == prefix or path.startswith(prefix.rstrip("/") + "/") for prefix in prefixes)


# The types and codes of lua/refusals.lua's replies (tests/serving/test_refusals.py runs it).
_REFUSALS = {
    "requests": {"type": "requests", "code": "rate_limit_exceeded"},
    "tokens": {"type": "tokens", "code": "rate_limit_exceeded"},
    "shed": {"type": "server_overloaded", "code": "queue_full"},
    "413": {"type": "invalid_request_error", "code": "request_too_large"},
}


def _error(shape: dict[str, str]) -> dict[str, Any]:
    return {"error": {"message": "Rate limit reached.", **shape}}


def _json(status: int, body: dict[str, Any]) -> Response:
    return Response(status, {"content-type": "application/json"}, json.dumps(body).encode())


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _reply(self, method: str) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = self.server.fake.handle(
            method, headers.get("host", ""), self.path, headers, body, self.server.now()
        )
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def do_GET(self) -> None:
        self._reply("GET")

    def do_POST(self) -> None:
        self._reply("POST")

    def do_DELETE(self) -> None:
        self._reply("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Bursts of concurrent clients (the priority scenario) must not overflow the backlog.
    request_queue_size = 256

    def __init__(self, fake: FakeGateway):
        import time

        super().__init__(("127.0.0.1", 0), _Handler)
        self.fake = fake
        self.now = time.monotonic


class FakePlatform(Platform):
    """The scenarios' Platform over a FakeGateway served on a local port."""

    def __init__(
        self,
        config: StackConfig,
        faults: Faults,
        port: int,
        gateway: FakeGateway,
        stack: str = "fake",
        realm: Realm | None = None,
    ):
        models = [Model(m.name, f"{m.host}.{config.domain}", m.served_name) for m in config.models]
        super().__init__(stack, config, models, scale=0.02, poll_s=0.01)
        self.faults, self.port, self.gateway = faults, port, gateway
        # The Keycloak admin API the key service's tier sync reads (where it runs).
        self.realm = realm

    def _send(self, host: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Response:
        return request(self.port, host, path, body, headers, timeout_s=10)

    def gateway_port(self) -> int:
        return self.port

    def put_key(self, key: Key) -> None:
        self.gateway.change_key(key.value, (key.user, key.tier, key.selected))
        # A rotation replaces the Secret's value: the old one goes (unless the fault keeps it).
        for value, record in list(self.gateway.keys.items()):
            if record[0] == key.user and value != key.value and not self.faults.old_key_lingers:
                self.gateway.change_key(value, None)

    def delete_key(self, key: Key) -> None:
        self.gateway.change_key(key.value, None)

    def pods(self, model: str) -> list[str]:
        return self.gateway.pods(model)

    def departed(self, model: str, within_s: float) -> dict[str, float]:
        return self.gateway.departed(model, within_s)

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        role = {name: role for role, name in self.config.namespaces_in_use().items()}[namespace]
        return self.faults.namespace_labels.get(namespace, pod_security(role))

    def _metrics(self, pod: str) -> str:
        return self.gateway.metrics(pod)

    def _send_cut(self, host: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> Response:
        return request(
            self.port, host, path, body, {**headers, CUT_HEADER: "1"}, timeout_s=10, first=CUT_AFTER_BYTES
        )

    @contextlib.contextmanager
    def extra_route(self, host: str, model: Model) -> Iterator[None]:
        with self.gateway.lock:
            self.gateway.routes[host] = model.name
            self.gateway.unwritten[host] = UNWRITTEN_REQUESTS
        self.hosts[host] = model.name
        try:
            yield
        finally:
            with self.gateway.lock:
                self.gateway.routes.pop(host, None)

    def probe(self, origin: Origin, url: str, host: str | None = None) -> int:
        from tests.e2e.scenarios import servers_strangers_must_not_reach

        # Every server the stack runs that strangers must not reach (Keycloak, PostgreSQL and
        # Redis where the config has them), by its first word: "limitador", "authorino", ...
        doors = {
            f"{address}.svc.cluster.local:{port}": name.split("'")[0].split()[0].lower()
            for name, (address, port) in servers_strangers_must_not_reach(self).items()
        }
        address = urllib.parse.urlsplit(url).netloc
        target = doors.get(address) or ("model" if "-predictor." in url else "gateway")
        services = {f"{server}-predictor" for server in self.gateway.server.values()}
        if target == "model" and address.split(".")[0] not in services:
            return 6  # curl: could not resolve the host (no such Service)
        correct = {
            ("outside", "gateway"): 0,
            ("outside", "model"): 28,
            ("gateway-peer", "model"): 0,
            **{("outside", server): 28 for server in doors.values()},
            # curl's HTTP/1.1 to a gRPC server: an empty reply
            **{("gateway-peer", server): 52 for server in ("limitador", "authorino")},
        }
        return {**correct, **self.faults.probe}.get((origin, target), 0)

    def query(self, expr: str) -> float | None:
        return self.gateway.query(expr)

    @contextlib.contextmanager
    def unavailable(self, component: Component) -> Iterator[None]:
        self.gateway.down.add(component)
        try:
            yield
        finally:
            self.gateway.down.discard(component)

    @contextlib.contextmanager
    def picker_replica_gone(self, model: Model) -> Iterator[None]:
        with self.gateway.lock:
            self.gateway.pickers_gone[model.name] = self.gateway.pickers_gone.get(model.name, 0) + 1
        try:
            yield
        finally:
            with self.gateway.lock:
                self.gateway.pickers_gone[model.name] -= 1

    def restart(self, component: Component) -> None:
        # In memory, Limitador's counters go with its pod (docs/access.md: dev's limits reset on restart).
        in_memory = self.config.limitador.storage != "redis" and not self.faults.memory_counters_survive
        if component == "limitador" and (in_memory or self.faults.counters_reset_on_restart):
            self.gateway.counters.clear()
            self.gateway.key_counters.clear()

    def restarts(self, component: Component) -> dict[str, int]:
        return {f"{component}-0": self.gateway.restarts}

    def service_types(self) -> dict[str, str]:
        gateway = gw.SERVICE_NAME
        types = {
            gateway: self.config.gateway.service_type,
            **{f"{server}-predictor": "ClusterIP" for server in self.gateway.server.values()},
        }
        return {**types, **self.faults.exposed}

    def pod_security_problems(self, level: str, pods: list[str]) -> dict[str, str]:
        return {pod: why for pod, why in self.faults.pod_security.items() if pod in pods}

    def oidc_token(self, user: str) -> str:
        """An unsigned token shaped like Keycloak's, living TOKEN_LIFETIME_S."""
        claims = {"preferred_username": user, "exp": time.time() + TOKEN_LIFETIME_S}
        return ".".join(
            base64.urlsafe_b64encode(json.dumps(part).encode()).decode().rstrip("=")
            for part in ({"alg": "none"}, claims, {})
        )

    def keys_call(
        self,
        method: str,
        path: str,
        token: str,
        body: dict[str, Any] | None = None,
        scheme: str = "Bearer",
        headers: dict[str, str] | None = None,
    ) -> Response:
        sent = {**(headers or {}), "Authorization": f"{scheme} {token}"}
        return request(self.port, self.api_host, path, body, sent, timeout_s=10, method=method)

    def move_to_group(self, user: str, leave: str, join: str) -> None:
        assert self.realm is not None, "the fake runs no key service here (fake_platform(key_service=True))"
        assert user in self.realm.groups[leave], (user, leave)
        self.realm.move(user, join)
        # Its next token carries the new group.
        with self.gateway.lock:
            self.gateway.user_tiers[user] = join

    def realm_members(self) -> dict[str, set[str]]:
        members: dict[str, set[str]] = {tier.name: set() for tier in self.config.tiers}
        members[STACK_USERS_GROUP] = set()
        for user in self.config.users:
            members[user.tier].add(user.name)
            members[STACK_USERS_GROUP].add(user.name)
        # Users the sync failed to remove: the stack file's once, so still in its group.
        for tier, users in self.faults.realm_extra.items():
            members[tier] |= users
            members[STACK_USERS_GROUP] |= users
        return members


@contextlib.contextmanager
def fake_platform(
    config: StackConfig,
    faults: Faults | None = None,
    service_s: float = 0.0,
    stack: str = "fake",
    key_service: bool = False,
) -> Iterator[FakePlatform]:
    """The fake, serving `stack`'s `config`; `service_s`: how long a pooled model takes per
    request (0: at once; enough to saturate its pool where a scenario needs it); `key_service`:
    the real key service behind the gateway where the config runs one (tests/suite/fake_keys.py)."""
    from tests.suite.fake_keys import key_service_behind

    gateway = FakeGateway(config, faults or Faults(), service_s=service_s)
    server = _Server(gateway)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    try:
        with contextlib.ExitStack() as stack_of:
            realm = None
            if key_service and config.key_service_on:
                realm = stack_of.enter_context(key_service_behind(gateway))
            yield FakePlatform(config, faults or Faults(), server.server_address[1], gateway, stack, realm)
    finally:
        server.shutdown()
        server.server_close()
