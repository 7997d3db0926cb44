"""The key service behind the fake gateway, on a stack that runs one (OIDC stacks: dev-oidc).

The gateway (tests/suite/fake.py) does what the service route's AuthPolicy does and forwards
the request to the real components/access/key_service/server.py, run as a process against:
the stand-in Kubernetes API (tests/support/kube_api.py), whose watch events reach the fake's
Authorino; a Limitador HTTP API (tests/support/limitador.py) serving the very counters the
fake enforces; a Prometheus query API answering the billing rules' sums from what the fake
metered; and the stand-in Keycloak admin API (tests/support/keycloak_admin.py) the service's
tier sync reads.
"""

from __future__ import annotations

import base64
import contextlib
import json
import re
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from components.access import self_service, tiers
from components.config import StackConfig
from components.names import KEY_SERVICE
from components.serving.model_list import POLICY_ROUTE
from tests.support import authorino
from tests.support.json_server import Refused, json_server
from tests.support.key_service import NAMESPACE, key_service
from tests.support.keycloak_admin import Realm, keycloak
from tests.support.kube_api import JSON, Store, kube_api
from tests.support.limitador import Count, fake_counts, limitador_api, limits_of, tier_limits

if TYPE_CHECKING:
    from tests.suite.fake import FakeGateway

# How often the service's own loops run behind the fake (the config's are scaled for a cluster).
SYNC_S = 0.1
Record = tuple[str, str, bool]


@dataclass
class Watch:
    """Authorino's watch of the key Secrets in its namespace (Kuadrant/authorino@v0.26.2
    controllers/secret_controller.go: Secrets with its `managed-by` label; each apiKey rule
    holds those its selector matches, Kuadrant/authorino@v0.26.2
    pkg/evaluators/identity/api_key.go loadSecrets). Each call gives the
    key changes of the events since the last one: a value and its (user, tier, selected), or
    None for a value gone. The tier is the rule's that selects the Secret (one rule per tier,
    selecting the `maas-platform/tier` label): a Secret no rule selects is an unselected key."""

    store: Store
    config: StackConfig
    # Misbehaving: a key keeps the tier it had when first seen (a cache by value).
    tier_cached: bool = False
    seen: int = 0
    values: dict[str, tuple[str, Record]] = field(default_factory=dict)  # Secret -> (value, record)

    def _record(self, secret: JSON) -> tuple[str, Record] | None:
        labels = secret["metadata"].get("labels") or {}
        value = (secret.get("data") or {}).get(tiers.API_KEY_DATA)
        if not all(labels.get(k) == v for k, v in tiers.AUTHORINO_WATCH.items()) or value is None:
            return None
        user = (secret["metadata"].get("annotations") or {}).get(tiers.USER_ANNOTATION, "")
        rules = tiers.api_key_rules(self.config.tiers)
        selecting = [
            rule["overrides"]["tier"]["value"]
            for rule in rules.values()
            if authorino.selects(rule["apiKey"]["selector"], labels)
        ]
        tier = selecting[0] if selecting else labels.get(tiers.TIER_LABEL, "")
        return base64.b64decode(value).decode(), (user, tier, bool(selecting))

    def __call__(self) -> list[tuple[str, Record | None]]:
        with self.store.lock:
            events = self.store.events[self.seen :]
            self.seen += len(events)
        changes: list[tuple[str, Record | None]] = []
        for kind, secret in events:
            if secret["metadata"].get("namespace") != NAMESPACE:
                continue
            name = secret["metadata"]["name"]
            old = self.values.pop(name, None)
            found = None if kind == "DELETED" else self._record(secret)
            if old is not None and (found is None or found[0] != old[0]):
                changes.append((old[0], None))
            if found is not None:
                if self.tier_cached and old is not None and old[0] == found[0]:
                    found = (found[0], (found[1][0], old[1][1], old[1][2]))
                self.values[name] = found
                changes.append(found)
        return changes


_USED = re.compile(r'sum\(sum_over_time\(maas:(requests|tokens):increase\{user="([^"]*)"\}\[\w+\]\)\)')


@contextlib.contextmanager
def _prometheus(gateway: FakeGateway) -> Iterator[str]:
    """The instant query API (prometheus/prometheus@01db19c docs/querying/api.md) for the
    service's sums of the billing rules: a user's requests and tokens, from what the fake
    metered (the fake has no windows there: everything metered so far); no cost series."""

    def answer(path: str) -> object:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(path).query)).get("query", "")
        used = _USED.fullmatch(query)
        result: list[JSON] = []
        if used:
            with gateway.lock:
                rows = [v for (u, _, _), v in gateway.metered.items() if u == used[2]]
            if rows:
                total = sum(row[0 if used[1] == "requests" else 1] for row in rows)
                result = [{"metric": {}, "value": [time.time(), str(total)]}]
        elif not query.startswith("sum by (currency)"):
            return Refused(400)
        return {"status": "success", "data": {"resultType": "vector", "result": result}}

    with json_server(answer) as url:
        yield url


@contextlib.contextmanager
def key_service_behind(gateway: FakeGateway) -> Iterator[Realm]:
    """The key service and its stand-ins behind `gateway`, for the block; yields the realm,
    where moving a user between tier groups is what an administrator does in Keycloak."""
    config = gateway.config
    policies = config.namespaces_in_use()["models"]
    limits = [
        *tier_limits(config),
        # In the key service route's namespace, beside the tier limits' (the service runs there).
        *limits_of(
            self_service.rate_limit_spec(config.key_service, KEY_SERVICE), KEY_SERVICE, policies, False
        ),
    ]
    last: list[list[Count]] = []

    def counts() -> list[Count]:
        current = fake_counts(gateway, limits, time.monotonic())
        if not gateway.faults.usage_counters_stale:
            return current
        # Misbehaving: each read answers what the read before found.
        served = last[0] if last else current
        last[:] = [current]
        return served

    groups = {t.name: [u for u, tier in gateway.user_tiers.items() if tier == t.name] for t in config.tiers}
    with (
        tempfile.TemporaryDirectory() as tmp,
        kube_api() as kube,
        limitador_api(limits, counts) as limitador,
        _prometheus(gateway) as prometheus,
        keycloak(groups) as realm,
    ):
        secret = Path(tmp) / "client-secret"
        secret.write_text(realm.realm.client_secret)
        env = {
            "LIMITADOR_URL": limitador.url,
            "LIMITADOR_NAMESPACE": f"{policies}/{POLICY_ROUTE}",
            "PROMETHEUS_URL": prometheus,
            "KEYCLOAK_URL": realm.url,
            "KEYCLOAK_REALM": realm.realm.name,
            "KEYCLOAK_CLIENT_ID": realm.realm.client_id,
            "KEYCLOAK_CLIENT_SECRET_FILE": str(secret),
            "TIER_SYNC_INTERVAL_SECONDS": str(SYNC_S),
            "SWEEP_INTERVAL_SECONDS": str(SYNC_S),
        }
        key_tiers = json.loads(self_service.key_tiers(config.tiers))
        with key_service(kube, Path(tmp), key_tiers, env=env) as service:
            watch = Watch(kube.store, config, gateway.faults.key_tier_cached)
            with gateway.lock:
                gateway.watch, gateway.key_service = watch, service.url
            try:
                yield realm.realm
            finally:
                with gateway.lock:
                    gateway.watch = gateway.key_service = None
