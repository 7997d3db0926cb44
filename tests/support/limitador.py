"""A stand-in for Limitador's HTTP API: the two reads the key service makes, answered as
Limitador v2.4.0 answers them, over limits written as Kuadrant v1.5.2 writes ours.

- `GET /limits/{namespace}`: every limit of the namespace, as `Limit` (`id`, `namespace`,
  `max_value`, `seconds`, `name`, `conditions`, `variables`); an unknown namespace answers
  `[]` (Kuadrant/limitador@v2.4.0 limitador-server/src/http_api/server.rs get_limits;
  Kuadrant/limitador@v2.4.0 limitador-server/src/http_api/request_types.rs Limit).
- `GET /counters/{namespace}`: one `Counter` per limit and set of variable values (`limit`,
  `set_variables`, `remaining`, `expires_in_seconds` in whole seconds, truncated; same files,
  get_counters, Counter); a limit of several rates is a limit per rate, so a user's requests
  for a model meet one counter per window; a counter whose window has ended is left out,
  and `remaining` is `max_value - value` in u64, which wraps once a token report has taken
  the value past the limit (Kuadrant/limitador@v2.4.0 limitador/src/storage/in_memory.rs get_counters).
- The namespace arrives percent-encoded and is decoded in full
  (actix/actix-web@1505730 actix-router/src/de.rs FULL_QUOTER).
- Limits from a policy spec as Kuadrant writes them: one per rate, named by the limit's key,
  conditioned on its identifier, variables `descriptors[0]["<counter expression>"]`
  (Kuadrant/kuadrant-operator@v1.5.2 internal/controller/limitador_limits_reconciler.go
  processPolicyRules; the identifier:
  Kuadrant/kuadrant-operator@v1.5.2 internal/controller/ratelimit_workflow_helpers.go
  LimitNameToLimitadorIdentifier, TokenLimitNameToLimitadorIdentifier; the variables:
  Kuadrant/kuadrant-operator@v1.5.2 internal/cel/transformer.go TransformCounterVariable).
- The counters of the fake gateway (tests/suite/fake.py), served as Limitador holds them:
  each `_Window` of a user's and model's `_Counter` is the counter of the limit of its kind
  that applies (the model's own quota in the tier, else the tier's: tiers.py _limits) and
  its window's seconds; each of a user's key service windows, the counter of that limit of
  the key service's policy (self_service.py rate_limit_spec), in its route's namespace; each
  window of a user's money budget cap, the counter of that cap (tiers.py budget_caps).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from components.access import tiers
from components.config import StackConfig
from components.config.types import window_seconds
from components.serving.model_list import POLICY_ROUTE
from tests.support.json_server import Refused, json_server

if TYPE_CHECKING:
    from tests.suite.fake import FakeGateway, _Window

JSON = dict[str, Any]
U64 = 2**64


def variable(expression: str) -> str:
    return f'descriptors[0]["{expression.strip()}"]'


def _identifier(prefix: str, policy: str, namespace: str, key: str) -> str:
    sanitized = re.sub(r"[^\w]", "_", key)
    digest = hashlib.sha256(f"{namespace}/{policy}/{key}".encode()).hexdigest()[:8]
    return f"{prefix}.{sanitized}__{digest}"


def limits_of(spec: JSON, policy: str, policy_namespace: str, token: bool) -> list[JSON]:
    """The Limitador limits Kuadrant writes for one (Token)RateLimitPolicy spec."""
    route = spec["targetRef"]["name"]
    namespace = f"{policy_namespace}/{route}"
    written = []
    for key, limit in spec["limits"].items():
        identifier = _identifier("tokenlimit" if token else "limit", policy, policy_namespace, key)
        for rate in limit["rates"]:
            written.append(
                {
                    "id": None,
                    "namespace": namespace,
                    "max_value": rate["limit"],
                    "seconds": int(window_seconds(rate["window"])),
                    "name": key,
                    "conditions": [f'descriptors[0]["{identifier}"] == "1"'],
                    "variables": [variable(c["expression"]) for c in limit.get("counters", [])],
                }
            )
    return written


def tier_limits(config: StackConfig) -> list[JSON]:
    """The Limitador limits of the stack's tier policies (components/access/tiers.py), as
    Kuadrant writes them for the policy route in the models' namespace."""
    policies = config.namespaces_in_use()["models"]
    requests = tiers.rate_limit_spec(
        config.tiers, POLICY_ROUTE, config.models, tiers.stack_budget_caps(config)
    )
    tokens = tiers.token_limit_spec(config.tiers, POLICY_ROUTE, config.models)
    return [
        *limits_of(requests, "tiers-requests", policies, False),
        *limits_of(tokens, "tiers-tokens", policies, True),
    ]


@dataclass(frozen=True)
class Count:
    """One counter's state: its limit, the variables' values, the value, seconds left."""

    limit: JSON
    set_variables: dict[str, str]
    value: int
    expires_in: float


def fake_counts(gateway: FakeGateway, limits: list[JSON], now: float) -> list[Count]:
    """The fake's counters at `now` (its clock) as Limitador's: one per limit, window, user and
    model, under the limits of the tier the counter was met in. A window the written limits do
    not hold is an error, never left out."""
    served = {m.name: m for m in gateway.config.models}
    found = []
    with gateway.lock:
        for (user, model, _, tier), counter in gateway.counters.items():
            kinds: list[tuple[tiers.Kind, list[_Window]]] = [
                ("requests", counter.requests),
                ("tokens", counter.tokens),
            ]
            for kind, windows in kinds:
                if served[model].own_rates(tier, kind) is not None:
                    name = tiers.model_limit_name(tier, model, kind)
                else:
                    name = (
                        tiers.request_limit_name(tier) if kind == "requests" else tiers.token_limit_name(tier)
                    )
                for window in windows:
                    (limit,) = [
                        x for x in limits if x["name"] == name and x["seconds"] == int(window.seconds)
                    ]
                    found.append(
                        Count(
                            limit,
                            {
                                variable(tiers.USER_ID): user,
                                variable(tiers.MODEL): served[model].served_name,
                            },
                            window.value_at(now),
                            window.expires - now,
                        )
                    )
        # The key service's limits, and the money budgets' caps (tiers.py budget_caps): per user.
        for (user, name), windows in [*gateway.key_counters.items(), *gateway.budget_counters.items()]:
            for window in windows:
                (limit,) = [x for x in limits if x["name"] == name and x["seconds"] == int(window.seconds)]
                found.append(
                    Count(limit, {variable(tiers.USER_ID): user}, window.value_at(now), window.expires - now)
                )
    return found


@dataclass
class LimitadorApi:
    url: str
    limits: list[JSON]
    counts: Callable[[], list[Count]]


def _counter(count: Count) -> JSON:
    return {
        "limit": count.limit,
        "set_variables": dict(sorted(count.set_variables.items())),
        "remaining": (count.limit["max_value"] - count.value) % U64,
        "expires_in_seconds": int(count.expires_in),
    }


@contextlib.contextmanager
def limitador_api(limits: list[JSON], counts: Callable[[], list[Count]]) -> Iterator[LimitadorApi]:
    """Serves `limits` and whatever `counts()` holds at each read, on a free local port."""

    def answer(path: str) -> object:
        match = re.fullmatch(r"/(limits|counters)/([^/]+)", path)
        if match is None:
            return Refused(404)
        namespace = urllib.parse.unquote(match[2])
        if match[1] == "limits":
            return [limit for limit in limits if limit["namespace"] == namespace]
        return [_counter(c) for c in counts() if c.limit["namespace"] == namespace and c.expires_in > 0]

    with json_server(answer) as url:
        yield LimitadorApi(url, limits, counts)
