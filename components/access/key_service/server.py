"""The key service: users mint, list and revoke their own API keys and read what they used
and have left (from Limitador's counters and the billing rules); administrators list,
bulk-revoke and read the audit trail (docs/self-service.md).

Runs alone in a pod from a ConfigMap on a stock python image, so it imports the standard
library only and repeats the label names of components/access/tiers.py (a test keeps them equal).
Each key is one Secret in the keys namespace, where Authorino reads API keys.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import json
import os
import secrets
import ssl
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

JSON = dict[str, Any]

AUTHORINO_WATCH = ("authorino.kuadrant.io/managed-by", "authorino")
API_KEY_LABEL = "maas-platform/api-key"
TIER_LABEL = "maas-platform/tier"
OWNER_LABEL = "maas-platform/owner"
MINTED_BY_LABEL = "maas-platform/minted-by"
MINTED_BY = "key-service"
TOMBSTONE_LABEL = "maas-platform/tombstone"
USER_ANNOTATION = "secret.kuadrant.io/user-id"
KEY_ID = "maas-platform/key-id"
NAME = "maas-platform/name"
CREATED = "maas-platform/created"
EXPIRES = "maas-platform/expires-at"
MINTED_FROM = "maas-platform/minted-from"
REVOKED_AT = "maas-platform/revoked-at"
REVOKED_BY = "maas-platform/revoked-by"
REVOKED_FROM = "maas-platform/revoked-from"
REVOKED_REASON = "maas-platform/revoked-reason"
API_KEY_DATA = "api_key"
KEY_PREFIX = "sk-maas-"
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
MAX_BODY = 16 * 1024

# Usage. Kuadrant writes one Limitador limit per rate of each policy limit, named by the
# policy's limit key (components/access/tiers.py request_limit_name, token_limit_name,
# model_limit_name; limit_of reads them back), in the
# namespace "<policy route namespace>/<policy route name>"
# (Kuadrant/kuadrant-operator@v1.5.2 internal/controller/limitador_limits_reconciler.go
# processPolicyRules).
LIMIT_KINDS = ("requests", "tokens")
# A counter expression becomes the limit variable `descriptors[0]["<expression>"]`
# (Kuadrant/kuadrant-operator@v1.5.2 internal/cel/transformer.go TransformCounterVariable), and
# a counter's `set_variables` is keyed by that source
# (Kuadrant/limitador@v2.4.0 limitador/src/limit.rs resolve_variables): this one holds the
# user (components/access/tiers.py USER_ID).
USER_VARIABLE = 'descriptors[0]["auth.identity.userid"]'
# Limitador computes `remaining` as max_value - value in u64, which a token report past the
# limit wraps in its release build
# (Kuadrant/limitador@v2.4.0 limitador/src/storage/in_memory.rs get_counters, and
# Kuadrant/limitador@v2.4.0 limitador/src/storage/redis/redis_async.rs get_counters; its
# Cargo.toml sets no overflow-checks).
U64 = 2**64
# The billing rules (components/metering/chargeback.py REQUESTS, TOKENS, COST): what each
# evaluation added per user, tier and model, summed over a window as commands/usage.py does.
REQUESTS_RULE = "maas:requests:increase"
TOKENS_RULE = "maas:tokens:increase"
COST_RULE = "maas:cost:increase"
USAGE_TIMEOUT_SECONDS = 5


def now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def rfc3339(at: datetime.datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)


def owner_hash(user: str) -> str:
    # A label value holds at most 63 characters of a restricted alphabet; a user id may not.
    return hashlib.sha256(user.encode()).hexdigest()[:40]


def slot_name(user: str, slot: int) -> str:
    return f"mk-{owner_hash(user)[:16]}-{slot}"


@dataclass(frozen=True)
class Tier:
    max_keys: int
    max_lifetime_days: int


@dataclass(frozen=True)
class Config:
    namespace: str
    tiers: dict[str, Tier]
    port: int
    kube_url: str
    sa_dir: Path
    sweep_seconds: float
    retention_days: float
    keycloak_url: str
    keycloak_realm: str
    keycloak_client_id: str
    keycloak_secret_file: str
    sync_seconds: float
    limitador_url: str = ""
    limitador_namespace: str = ""
    prometheus_url: str = ""
    # A bearer token to send Prometheus, read from this file, and the CA its certificate is
    # signed by: for a Prometheus behind an authorizing proxy (OpenShift's Thanos querier).
    prometheus_token_file: str = ""
    prometheus_ca_file: str = ""

    @staticmethod
    def from_env(env: dict[str, str]) -> Config:
        tiers = {
            name: Tier(int(t.get("maxKeys", 5)), int(t.get("maxLifetimeDays", 90)))
            for name, t in json.loads(env["KEY_TIERS"]).items()
        }
        return Config(
            namespace=env["KEYS_NAMESPACE"],
            tiers=tiers,
            port=int(env.get("PORT", "8080")),
            kube_url=env.get("KUBE_API_URL", "https://kubernetes.default.svc"),
            sa_dir=Path(env.get("KUBE_SA_DIR", SA_DIR)),
            sweep_seconds=float(env.get("SWEEP_INTERVAL_SECONDS", "30")),
            retention_days=float(env.get("TOMBSTONE_RETENTION_DAYS", "90")),
            keycloak_url=env.get("KEYCLOAK_URL", ""),
            keycloak_realm=env.get("KEYCLOAK_REALM", ""),
            keycloak_client_id=env.get("KEYCLOAK_CLIENT_ID", ""),
            keycloak_secret_file=env.get("KEYCLOAK_CLIENT_SECRET_FILE", ""),
            sync_seconds=float(env.get("TIER_SYNC_INTERVAL_SECONDS", "60")),
            limitador_url=env.get("LIMITADOR_URL", "").rstrip("/"),
            limitador_namespace=env.get("LIMITADOR_NAMESPACE", ""),
            prometheus_url=env.get("PROMETHEUS_URL", "").rstrip("/"),
            prometheus_token_file=env.get("PROMETHEUS_BEARER_TOKEN_FILE", ""),
            prometheus_ca_file=env.get("PROMETHEUS_CA_FILE", ""),
        )


class KubeError(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason


class Kube:
    """Secrets in one namespace through the API server's REST API."""

    def __init__(self, config: Config) -> None:
        self.base = f"{config.kube_url}/api/v1/namespaces/{config.namespace}/secrets"
        self.sa_dir = config.sa_dir
        ca = config.sa_dir / "ca.crt"
        self.context = ssl.create_default_context(cafile=str(ca)) if ca.exists() else None

    def _call(self, method: str, path: str, body: JSON | None = None, content_type: str = "") -> JSON:
        # The projected token is rotated by the kubelet, so it is read on every call.
        token = (self.sa_dir / "token").read_text().strip()
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", content_type or "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10, context=self.context) as response:
                result: JSON = json.loads(response.read())
                return result
        except urllib.error.HTTPError as error:
            try:
                status = json.loads(error.read())
            except ValueError:
                status = {}
            raise KubeError(error.code, status.get("reason", ""), status.get("message", "")) from None
        except OSError as error:
            # Unreachable or timed out (URLError is an OSError): no answer is one more failure.
            raise KubeError(0, "Unreachable", str(error)) from None

    def create(self, secret: JSON) -> JSON:
        return self._call("POST", "", secret)

    def get(self, name: str) -> JSON:
        return self._call("GET", f"/{name}")

    def list(self, selector: str) -> Iterator[JSON]:
        # Pages keep each response small however many keys exist.
        token = ""
        while True:
            query = {"labelSelector": selector, "limit": "500"}
            if token:
                query["continue"] = token
            page = self._call("GET", "?" + urllib.parse.urlencode(query))
            yield from page.get("items") or []
            token = page.get("metadata", {}).get("continue", "")
            if not token:
                return

    def merge_patch(self, name: str, patch: JSON) -> JSON:
        return self._call("PATCH", f"/{name}", patch, "application/merge-patch+json")

    def delete(self, name: str, resource_version: str) -> None:
        body = {
            "kind": "DeleteOptions",
            "apiVersion": "v1",
            "preconditions": {"resourceVersion": resource_version},
        }
        self._call("DELETE", f"/{name}", body)


def audit(event: str, **fields: Any) -> None:
    line = json.dumps({"event": f"audit.{event}", "at": rfc3339(now()), **fields}, sort_keys=True)
    print(line, flush=True)


def key_view(secret: JSON, with_user: bool = False) -> JSON:
    meta = secret["metadata"]
    notes = meta.get("annotations", {})
    view = {
        "id": notes.get(KEY_ID, ""),
        "name": notes.get(NAME, ""),
        "tier": meta.get("labels", {}).get(TIER_LABEL, ""),
        "created": notes.get(CREATED, ""),
        "expires": notes.get(EXPIRES, ""),
    }
    if with_user:
        view["user"] = notes.get(USER_ANNOTATION, "")
    return view


class ApiError(Exception):
    def __init__(self, status: int, kind: str, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.kind = kind
        self.code = code


class Keys:
    """What the HTTP routes, the sweeper and the tier sync do to key Secrets."""

    def __init__(self, config: Config, kube: Kube) -> None:
        self.config = config
        self.kube = kube

    def own(self, user: str) -> list[JSON]:
        selector = f"{OWNER_LABEL}={owner_hash(user)},{API_KEY_LABEL}=true"
        # The owner label is a hash; the annotation rules out a collision.
        return [
            s
            for s in self.kube.list(selector)
            if s["metadata"].get("annotations", {}).get(USER_ANNOTATION) == user
        ]

    def mint(self, user: str, tier_name: str, name: str, days: int, source: str) -> JSON:
        tier = self.config.tiers[tier_name]
        key_id = secrets.token_hex(8)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        created = now()
        expires = created + datetime.timedelta(days=days)
        taken = {s["metadata"]["name"] for s in self.kube.list(f"{OWNER_LABEL}={owner_hash(user)}")}
        for slot in range(tier.max_keys):
            if slot_name(user, slot) in taken:
                continue
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "Opaque",
                "metadata": {
                    "name": slot_name(user, slot),
                    "labels": {
                        AUTHORINO_WATCH[0]: AUTHORINO_WATCH[1],
                        API_KEY_LABEL: "true",
                        TIER_LABEL: tier_name,
                        OWNER_LABEL: owner_hash(user),
                        MINTED_BY_LABEL: MINTED_BY,
                    },
                    "annotations": {
                        USER_ANNOTATION: user,
                        KEY_ID: key_id,
                        NAME: name,
                        CREATED: rfc3339(created),
                        EXPIRES: rfc3339(expires),
                        MINTED_FROM: source,
                    },
                },
                "data": {API_KEY_DATA: base64.b64encode(key.encode()).decode()},
            }
            try:
                self.kube.create(secret)
            except KubeError as error:
                # Another request took this slot first: the API server's AlreadyExists is
                # what makes the cap hold under concurrent mints.
                if error.reason == "AlreadyExists":
                    continue
                raise
            audit(
                "mint",
                id=key_id,
                user=user,
                tier=tier_name,
                name=name,
                expires=rfc3339(expires),
                source=source,
            )
            return {**key_view(secret), "key": key}
        raise ApiError(
            403,
            "permission_error",
            "key_cap_reached",
            f"Tier {tier_name} allows {tier.max_keys} live keys; revoke one before minting another.",
        )

    def revoke(self, secret: JSON, by: str, source: str, reason: str) -> bool:
        """Tombstone the key (Authorino drops it), then move the tombstone out of its slot.
        False when someone else revoked it first."""
        name = secret["metadata"]["name"]
        while True:
            meta = secret["metadata"]
            if meta.get("labels", {}).get(API_KEY_LABEL) != "true":
                return False
            patch = {
                "metadata": {
                    "resourceVersion": meta["resourceVersion"],
                    "labels": {API_KEY_LABEL: None},
                    "annotations": {
                        REVOKED_AT: rfc3339(now()),
                        REVOKED_BY: by,
                        REVOKED_FROM: source,
                        REVOKED_REASON: reason,
                    },
                },
                "data": {API_KEY_DATA: None},
            }
            try:
                tombstone = self.kube.merge_patch(name, patch)
                break
            except KubeError as error:
                if error.status == 404:
                    return False
                # Changed since read (a tier sync, another revoke): read again and retry.
                if error.reason != "Conflict":
                    raise
                try:
                    secret = self.kube.get(name)
                except KubeError as gone:
                    if gone.status == 404:
                        return False
                    raise
        view = key_view(tombstone, with_user=True)
        audit("revoke", **view, by=by, source=source, reason=reason)
        self.retire(tombstone)
        return True

    def retire(self, tombstone: JSON) -> None:
        """Copy a tombstone in a slot to mt-<key id> and free the slot, so a revoked key
        stops counting against the cap while its record stays for the audit retention."""
        meta = tombstone["metadata"]
        labels = {k: v for k, v in meta.get("labels", {}).items() if k != AUTHORINO_WATCH[0]}
        record = {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "Opaque",
            "metadata": {
                "name": f"mt-{meta['annotations'][KEY_ID]}",
                "labels": {**labels, TOMBSTONE_LABEL: "true"},
                "annotations": meta.get("annotations", {}),
            },
        }
        try:
            self.kube.create(record)
        except KubeError as error:
            if error.reason != "AlreadyExists":
                raise
        try:
            self.kube.delete(meta["name"], meta["resourceVersion"])
        except KubeError as error:
            # Gone or changed: another replica retired it already.
            if error.status not in (404, 409):
                raise

    def sweep(self) -> None:
        """Revoke expired keys, finish interrupted retirements, drop tombstones past retention."""
        moment = now()
        for secret in self.kube.list(f"{MINTED_BY_LABEL}={MINTED_BY},{API_KEY_LABEL}=true"):
            if parse_time(secret["metadata"]["annotations"][EXPIRES]) <= moment:
                self.revoke(secret, "key-service", "", "expired")
        leftovers = f"{MINTED_BY_LABEL}={MINTED_BY},!{API_KEY_LABEL},!{TOMBSTONE_LABEL}"
        for secret in self.kube.list(leftovers):
            self.retire(secret)
        horizon = moment - datetime.timedelta(days=self.config.retention_days)
        for secret in self.kube.list(f"{TOMBSTONE_LABEL}=true"):
            meta = secret["metadata"]
            if parse_time(meta["annotations"][REVOKED_AT]) <= horizon:
                try:
                    self.kube.delete(meta["name"], meta["resourceVersion"])
                except KubeError as error:
                    if error.status not in (404, 409):
                        raise

    def set_tiers(self, tier_of: dict[str, str]) -> None:
        """Give every live key its owner's current tier; revoke the keys of a user in no tier."""
        for secret in self.kube.list(f"{MINTED_BY_LABEL}={MINTED_BY},{API_KEY_LABEL}=true"):
            while True:
                meta = secret["metadata"]
                user = meta["annotations"][USER_ANNOTATION]
                old = meta["labels"].get(TIER_LABEL)
                new = tier_of.get(user)
                if new is None:
                    self.revoke(secret, "key-service", "", "no-tier")
                    break
                if new == old:
                    break
                patch = {
                    "metadata": {"resourceVersion": meta["resourceVersion"], "labels": {TIER_LABEL: new}}
                }
                try:
                    self.kube.merge_patch(meta["name"], patch)
                except KubeError as error:
                    if error.status == 404:
                        break
                    if error.reason != "Conflict":
                        raise
                    secret = self.kube.get(meta["name"])
                    if secret["metadata"].get("labels", {}).get(API_KEY_LABEL) != "true":
                        break
                    continue
                audit("tier", id=meta["annotations"][KEY_ID], user=user, old=old, new=new)
                break


class Keycloak:
    """Members of each tier's group, read with a confidential client's service account.

    Endpoints: the token endpoint (client_credentials), GET group-by-path/{path}
    (keycloak/keycloak@main
    services/src/main/java/org/keycloak/services/resources/admin/RealmAdminResource.java
    getGroupByPath) and GET groups/{id}/members?first=&max= (max defaults to 100; same
    folder, GroupResource.java getMembers).
    """

    def __init__(self, config: Config) -> None:
        self.config = config

    def _json(self, request: urllib.request.Request) -> Any:
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def tier_of(self) -> dict[str, str]:
        c = self.config
        form = urllib.parse.urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": c.keycloak_client_id,
                "client_secret": Path(c.keycloak_secret_file).read_text().strip(),
            }
        ).encode()
        token_url = f"{c.keycloak_url}/realms/{c.keycloak_realm}/protocol/openid-connect/token"
        token = self._json(urllib.request.Request(token_url, data=form))["access_token"]
        admin = f"{c.keycloak_url}/admin/realms/{c.keycloak_realm}"
        result: dict[str, str] = {}
        # A user in several tier groups gets the first tier of the table that holds them.
        for tier in reversed(list(c.tiers)):
            get = urllib.request.Request(f"{admin}/group-by-path/{urllib.parse.quote(tier)}")
            get.add_header("Authorization", f"Bearer {token}")
            group = self._json(get)
            first = 0
            while True:
                page = urllib.request.Request(f"{admin}/groups/{group['id']}/members?first={first}&max=100")
                page.add_header("Authorization", f"Bearer {token}")
                members = self._json(page)
                for member in members:
                    result[member["username"]] = tier
                if len(members) < 100:
                    break
                first += 100
        return result


def duration(seconds: int) -> str:
    """A window in seconds as a Prometheus duration, in its largest whole unit."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def promql_string(text: str) -> str:
    # PromQL string literals take Go's escapes
    # (prometheus/prometheus@main docs/querying/basics.md, "String literals"); json.dumps
    # without ensure_ascii writes only \\, \", \n-style and \u00XX ones, never a surrogate pair.
    return json.dumps(text, ensure_ascii=False)


def limit_of(name: Any, tier: str) -> tuple[str, str | None] | None:
    """Which of the tier's limits a Limitador limit is, by its name as tiers.py compiles it:
    (kind, None) for the tier's own (`<tier>-requests`, `<tier>-tokens`: request_limit_name,
    token_limit_name), (kind, model) for a model's own quota in the tier
    (`<tier>.<model>-<kind>`: model_limit_name), None for another tier's or anything else.
    A tier and a model are DNS labels, so neither holds the dot."""
    if not isinstance(name, str):
        return None
    for kind in LIMIT_KINDS:
        if name == f"{tier}-{kind}":
            return kind, None
        model = name.removeprefix(f"{tier}.").removesuffix(f"-{kind}")
        if name == f"{tier}.{model}-{kind}" and model and "." not in model:
            return kind, model
    return None


class UsageError(Exception):
    def __init__(self, source: str, message: str) -> None:
        super().__init__(f"{source}: {message}")
        self.source = source


class Usage:
    """What a caller used and has left, read where it is enforced (Limitador's counters) and
    where it is billed (Prometheus's recording rules); nothing is computed from the tier table."""

    def __init__(self, config: Config) -> None:
        self.config = config

    def _prometheus_context(self) -> ssl.SSLContext | None:
        """The CA is read on every query: the cluster may fill its file after the pod starts,
        and rotates it; until it is there, usage has no answer, and minting is untouched."""
        ca = self.config.prometheus_ca_file
        if not ca:
            return None
        try:
            return ssl.create_default_context(cafile=ca)
        except (OSError, ssl.SSLError) as error:
            raise UsageError("prometheus", f"no CA to trust yet: {error}") from None

    def _get(self, source: str, url: str, token_file: str = "", context: ssl.SSLContext | None = None) -> Any:
        request = urllib.request.Request(url)
        try:
            if token_file:
                # A projected token is rotated by the kubelet, so it is read on every call.
                request.add_header("Authorization", f"Bearer {Path(token_file).read_text().strip()}")
            with urllib.request.urlopen(request, timeout=USAGE_TIMEOUT_SECONDS, context=context) as response:
                return json.loads(response.read())
        except (OSError, ValueError) as error:
            # HTTPError and URLError are OSErrors: any failure is no answer, never a zero.
            raise UsageError(source, str(error)) from None

    def limits(self, user: str, tier: str) -> list[JSON]:
        """One entry per rate (window) of each of the caller's limits and model the caller has
        a counter for in that window; a rate without one has its whole value left (model null).

        The caller's limits are the tier's (`quota` null), which count every model without a
        quota of its own in the tier, and each model's own quota in the tier (`quota` the
        model's catalog name), which counts that model in place of the tier's: each billed
        request meets one limit of each kind (components/access/tiers.py _limits). `name` is
        the limit's name in Limitador.

        GET /limits/{namespace} and /counters/{namespace}
        (Kuadrant/limitador@v2.4.0 limitador-server/src/http_api/server.rs; the JSON:
        Kuadrant/limitador@v2.4.0 limitador-server/src/http_api/request_types.rs Limit,
        Counter). The namespace holds a slash: percent-encoded, and the path parameter is
        decoded in full (actix/actix-web@1505730 actix-router/src/de.rs FULL_QUOTER)."""
        base = self.config.limitador_url
        namespace = urllib.parse.quote(self.config.limitador_namespace, safe="")
        limits = self._get("limitador", f"{base}/limits/{namespace}")
        counters = self._get("limitador", f"{base}/counters/{namespace}")
        try:
            # Limitador tells limits apart by their seconds, not their names: one per rate.
            mine = {
                (limit["name"], limit["seconds"]): (which, limit["max_value"])
                for limit in limits
                if (which := limit_of(limit.get("name"), tier)) and USER_VARIABLE in limit["variables"]
            }
            entries: dict[tuple[str, int], list[JSON]] = {key: [] for key in mine}
            for counter in counters:
                limit = counter["limit"]
                key = (limit.get("name"), limit["seconds"])
                # Counted for this user only: every user's counters share the namespace.
                if key not in mine or counter["set_variables"].get(USER_VARIABLE) != user:
                    continue
                others = [v for k, v in counter["set_variables"].items() if k != USER_VARIABLE]
                used = (limit["max_value"] - counter["remaining"]) % U64
                entries[key].append(
                    {
                        "model": others[0] if len(others) == 1 else None,
                        "limit_value": limit["max_value"],
                        "used": used,
                        "remaining": max(limit["max_value"] - used, 0),
                        "resets_in_seconds": counter["expires_in_seconds"],
                    }
                )
        except (AttributeError, KeyError, TypeError) as error:
            raise UsageError("limitador", f"unexpected answer: {error!r}") from None

        def order(item: tuple[tuple[str, int], tuple[tuple[str, str | None], int]]) -> tuple[Any, ...]:
            (_, seconds), ((kind, quota), _) = item
            return LIMIT_KINDS.index(kind), quota is not None, str(quota), seconds

        result = []
        for (name, seconds), ((kind, quota), max_value) in sorted(mine.items(), key=order):
            found = entries[(name, seconds)] or [
                {
                    "model": None,
                    "limit_value": max_value,
                    "used": 0,
                    "remaining": max_value,
                    "resets_in_seconds": None,
                }
            ]
            for entry in sorted(found, key=lambda e: str(e["model"])):
                result.append(
                    {
                        "limit": kind,
                        "name": name,
                        "quota": quota,
                        "window": duration(seconds),
                        "window_seconds": seconds,
                        **entry,
                    }
                )
        return result

    def _vector(self, query: str) -> list[tuple[dict[str, str], float]]:
        """An instant query's result: status, data.result[].value [time, "v"]
        (prometheus/prometheus@01db19c docs/querying/api.md, "Instant queries"). Query parameters
        of PROMETHEUS_URL go with every query (a tenancy proxy's `namespace`)."""
        base, _, fixed = self.config.prometheus_url.partition("?")
        params = "&".join(p for p in (fixed, urllib.parse.urlencode({"query": query})) if p)
        c = self.config
        body = self._get(
            "prometheus", f"{base}/api/v1/query?{params}", c.prometheus_token_file, self._prometheus_context()
        )
        if not isinstance(body, dict) or body.get("status") != "success":
            raise UsageError("prometheus", f"refused {query!r}")
        try:
            return [(dict(s["metric"]), float(s["value"][1])) for s in body["data"]["result"]]
        except (AttributeError, KeyError, TypeError, IndexError, ValueError) as error:
            raise UsageError("prometheus", f"unexpected answer: {error!r}") from None

    def used(self, user: str, seconds: int) -> JSON:
        """Requests, tokens and cost the billing rules recorded for the user over the window
        ending now, every tier and model together; rounded as the usage export rounds."""
        window = duration(seconds)
        selector = f"{{user={promql_string(user)}}}"
        totals = {}
        for measure, rule in (("requests", REQUESTS_RULE), ("tokens", TOKENS_RULE)):
            found = self._vector(f"sum(sum_over_time({rule}{selector}[{window}]))")
            totals[measure] = round(found[0][1]) if found else 0
        cost = {
            labels.get("currency", ""): round(value, 6)
            for labels, value in self._vector(
                f"sum by (currency) (sum_over_time({COST_RULE}{selector}[{window}]))"
            )
        }
        return {"window": window, "window_seconds": seconds, **totals, "cost": cost}

    def of(self, user: str, tier: str, via: str) -> JSON:
        limits = self.limits(user, tier)
        windows = sorted({entry["window_seconds"] for entry in limits})
        used = [self.used(user, seconds) for seconds in windows]
        return {
            "object": "usage",
            "user": user,
            "tier": tier,
            "via": via,
            "windows": limits,
            "usage": used,
            "cost": {entry["window"]: entry["cost"] for entry in used},
        }


def every(seconds: float, work: Callable[[], None], name: str, stop: threading.Event) -> None:
    def loop() -> None:
        while not stop.is_set():
            try:
                work()
            except Exception as error:  # noqa: BLE001 - a failed round must not end the loop
                print(json.dumps({"event": f"{name}.error", "error": str(error)}), flush=True)
            stop.wait(seconds)

    threading.Thread(target=loop, name=name, daemon=True).start()


class Handler(BaseHTTPRequestHandler):
    keys: Keys
    usage: Usage
    page: Path
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        # Stdout carries the audit lines; access logs are the gateway's.
        return

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, body: JSON) -> None:
        self._send(status, json.dumps(body).encode())

    def _error(self, error: ApiError) -> None:
        self._json(error.status, {"error": {"message": str(error), "type": error.kind, "code": error.code}})

    def _source(self) -> str:
        # The gateway (Envoy) appends the address it saw to X-Forwarded-For; the last entry is it.
        forwarded = self.headers.get("X-Forwarded-For", "")
        return forwarded.split(",")[-1].strip() if forwarded else self.client_address[0]

    def _body(self) -> JSON:
        length = int(self.headers.get("Content-Length") or 0)
        # A mint or bulk revoke is a few dozen bytes; refuse before reading a large body.
        if length > MAX_BODY:
            raise ApiError(
                400, "invalid_request_error", "body_too_large", f"The body exceeds {MAX_BODY} bytes."
            )
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            raise ApiError(400, "invalid_request_error", "invalid_json", "The body is not JSON.") from None
        if not isinstance(body, dict):
            raise ApiError(400, "invalid_request_error", "invalid_json", "The body must be a JSON object.")
        return body

    def _caller(self, token_only: bool) -> str:
        user = self.headers.get("x-maas-user", "")
        if not user:
            raise ApiError(401, "authentication_error", "unauthenticated", "No authenticated user.")
        if token_only and self.headers.get("x-maas-via") != "token":
            raise ApiError(
                403,
                "permission_error",
                "token_required",
                "Keys are managed after logging in, not with a key.",
            )
        return user

    def _admin(self) -> str:
        user = self._caller(token_only=True)
        if self.headers.get("x-maas-admin") != "true":
            raise ApiError(403, "permission_error", "admin_required", "Administrators only.")
        return user

    def do_GET(self) -> None:
        self._route("GET")

    def do_POST(self) -> None:
        self._route("POST")

    def do_DELETE(self) -> None:
        self._route("DELETE")

    def _route(self, method: str) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        path = url.path
        try:
            if method == "GET" and path == "/healthz":
                self._json(200, {"status": "ok"})
            elif method == "GET" and path == "/readyz":
                next(iter(self.keys.kube.list(f"{API_KEY_LABEL}=none")), None)
                self._json(200, {"status": "ready"})
            elif method == "GET" and path == "/portal/":
                if not self.page.is_file():
                    raise ApiError(404, "not_found_error", "not_found", "No page here.")
                self._send(200, self.page.read_bytes(), "text/html; charset=utf-8")
            elif path == "/v1/api-keys" and method == "POST":
                self._mint()
            elif path == "/v1/api-keys" and method == "GET":
                user = self._caller(token_only=True)
                self._json(200, {"object": "list", "data": [key_view(s) for s in self.keys.own(user)]})
            elif path.startswith("/v1/api-keys/") and method == "DELETE":
                self._revoke_own(path.removeprefix("/v1/api-keys/"))
            elif path == "/v1/usage" and method == "GET":
                self._usage()
            elif path == "/v1/admin/api-keys" and method == "GET":
                self._admin()
                self._json(200, {"object": "list", "data": [key_view(s, True) for s in self._select(query)]})
            elif path == "/v1/admin/api-keys/revoke" and method == "POST":
                self._bulk_revoke()
            elif path == "/v1/admin/audit" and method == "GET":
                self._admin()
                self._json(200, {"object": "list", "data": self._audit(query.get("user"))})
            else:
                raise ApiError(404, "not_found_error", "not_found", f"No route for {method} {path}.")
        except ApiError as error:
            self._error(error)
        except KubeError as error:
            print(json.dumps({"event": "kube.error", "error": str(error)}), flush=True)
            self._error(ApiError(502, "api_error", "store_unavailable", "The key store did not answer."))
        except UsageError as error:
            print(json.dumps({"event": "usage.error", "error": str(error)}), flush=True)
            self._error(
                ApiError(
                    502,
                    "api_error",
                    f"{error.source}_unavailable",
                    f"Usage is read from {error.source.capitalize()}, which did not answer.",
                )
            )

    def _usage(self) -> None:
        user = self._caller(token_only=False)
        c = self.usage.config
        if not (c.limitador_url and c.limitador_namespace and c.prometheus_url):
            raise ApiError(
                503, "api_error", "usage_not_configured", "Usage is not available on this platform."
            )
        via = self.headers.get("x-maas-via", "")
        self._json(200, self.usage.of(user, self.headers.get("x-maas-tier", ""), via))

    def _mint(self) -> None:
        user = self._caller(token_only=True)
        tier_name = self.headers.get("x-maas-tier", "")
        tier = self.keys.config.tiers.get(tier_name)
        if tier is None:
            raise ApiError(403, "permission_error", "no_tier", "Your account has no tier that grants keys.")
        body = self._body()
        name = body.get("name")
        if not isinstance(name, str) or not 0 < len(name) <= 100:
            raise ApiError(400, "invalid_request_error", "invalid_name", "name must be 1 to 100 characters.")
        days = body.get("expiresInDays", tier.max_lifetime_days)
        if not isinstance(days, int) or isinstance(days, bool) or days < 1:
            raise ApiError(
                400, "invalid_request_error", "invalid_expiry", "expiresInDays must be a positive integer."
            )
        if days > tier.max_lifetime_days:
            raise ApiError(
                400,
                "invalid_request_error",
                "expires_too_long",
                f"Tier {tier_name} allows keys of at most {tier.max_lifetime_days} days.",
            )
        self._json(201, self.keys.mint(user, tier_name, name, days, self._source()))

    def _revoke_own(self, key_id: str) -> None:
        user = self._caller(token_only=True)
        for secret in self.keys.own(user):
            found = secret["metadata"]["annotations"].get(KEY_ID) == key_id
            if found and self.keys.revoke(secret, user, self._source(), "revoked"):
                self._json(200, {"id": key_id, "revoked": True})
                return
        # Unknown, already revoked and someone else's all read the same: no existence leak.
        raise ApiError(404, "not_found_error", "key_not_found", f"No key {key_id} of yours.")

    def _select(self, query: dict[str, str]) -> list[JSON]:
        selector = f"{MINTED_BY_LABEL}={MINTED_BY},{API_KEY_LABEL}=true"
        if query.get("user"):
            selector += f",{OWNER_LABEL}={owner_hash(query['user'])}"
        if query.get("tier"):
            if query["tier"] not in self.keys.config.tiers:
                raise ApiError(400, "invalid_request_error", "unknown_tier", f"No tier {query['tier']}.")
            selector += f",{TIER_LABEL}={query['tier']}"
        user = query.get("user")
        return [
            s
            for s in self.keys.kube.list(selector)
            if user is None or s["metadata"]["annotations"].get(USER_ANNOTATION) == user
        ]

    def _bulk_revoke(self) -> None:
        admin = self._admin()
        body = self._body()
        dry_run = body.get("dryRun")
        if not isinstance(dry_run, bool):
            raise ApiError(400, "invalid_request_error", "invalid_dry_run", "dryRun must be true or false.")
        if not body.get("user") and not body.get("tier"):
            raise ApiError(400, "invalid_request_error", "no_target", "Give a user, a tier or both.")
        selected = self._select({k: str(body[k]) for k in ("user", "tier") if body.get(k)})
        source = self._source()
        if dry_run:
            revoked = [key_view(s)["id"] for s in selected]
        else:
            revoked = [key_view(s)["id"] for s in selected if self.keys.revoke(s, admin, source, "admin")]
        audit("bulk_revoke", by=admin, source=source, user=body.get("user"), tier=body.get("tier"),
              dryRun=dry_run, ids=revoked)  # fmt: skip
        self._json(200, {"dryRun": dry_run, "revoked": revoked})

    def _audit(self, user: str | None) -> list[JSON]:
        owner = f",{OWNER_LABEL}={owner_hash(user)}" if user else ""
        events = []
        for selector in (f"{API_KEY_LABEL}=true", f"{TOMBSTONE_LABEL}=true"):
            for secret in self.keys.kube.list(f"{MINTED_BY_LABEL}={MINTED_BY},{selector}{owner}"):
                notes = secret["metadata"]["annotations"]
                if user and notes.get(USER_ANNOTATION) != user:
                    continue
                base = {"id": notes[KEY_ID], "user": notes[USER_ANNOTATION], "name": notes.get(NAME, "")}
                events.append(
                    {"event": "mint", "at": notes[CREATED], "from": notes.get(MINTED_FROM, ""), **base}
                )
                if REVOKED_AT in notes:
                    events.append(
                        {
                            "event": "revoke",
                            "at": notes[REVOKED_AT],
                            "by": notes.get(REVOKED_BY, ""),
                            "from": notes.get(REVOKED_FROM, ""),
                            "reason": notes.get(REVOKED_REASON, ""),
                            **base,
                        }
                    )
        return sorted(events, key=lambda e: (e["at"], e["event"] == "revoke"))


def main() -> None:
    config = Config.from_env(dict(os.environ))
    keys = Keys(config, Kube(config))
    stop = threading.Event()
    every(config.sweep_seconds, keys.sweep, "sweep", stop)
    if config.keycloak_url:
        keycloak = Keycloak(config)
        every(config.sync_seconds, lambda: keys.set_tiers(keycloak.tier_of()), "tier-sync", stop)
    Handler.keys = keys
    Handler.usage = Usage(config)
    Handler.page = Path(__file__).with_name("page.html")
    server = ThreadingHTTPServer(("0.0.0.0", config.port), Handler)
    server.daemon_threads = True
    print(json.dumps({"event": "started", "port": config.port, "tiers": sorted(config.tiers)}), flush=True)
    try:
        server.serve_forever()
    finally:
        stop.set()


if __name__ == "__main__":
    main()
