"""A stand-in Kubernetes API server for Secrets in namespaces: the calls the key service makes,
answered as the real API server answers them. Each behaviour cites the source it follows
(kubernetes/kubernetes at master, read through the stored index):

- Create of an existing name: 409, reason AlreadyExists, a Status body
  (kubernetes/kubernetes@master staging/src/k8s.io/apimachinery/pkg/api/errors/errors.go NewAlreadyExists).
- Get, patch or delete of a missing name: 404, reason NotFound (errors.go NewNotFound;
  kubernetes/kubernetes@master
  staging/src/k8s.io/apiserver/pkg/storage/errors/storage.go InterpretDeleteError).
- A patch whose result carries a metadata.resourceVersion other than the stored one: 409,
  reason Conflict (kubernetes/kubernetes@master
  staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go Update:
  `newResourceVersion != existingResourceVersion` → NewConflict).
- A delete whose preconditions.resourceVersion differs: 409 Conflict (kubernetes/kubernetes@master
  staging/src/k8s.io/apiserver/pkg/storage/interfaces.go Preconditions.Check → InvalidObj, which
  InterpretDeleteError turns into NewConflict).
- Label selectors parsed and matched as kubernetes/kubernetes@master
  staging/src/k8s.io/apimachinery/pkg/labels/selector.go does (`=`, `==`, `!=`, `in`, `notin`,
  `key`, `!key`; `!=` and `notin` match an object without the key; requirements are ANDed).
- Every write bumps one resourceVersion counter, as etcd's revision does; lists are in name
  order with `limit` and an opaque `continue`.
JSON merge patch (RFC 7386) is the only patch type served: it is the one the service sends.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import re
import threading
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.json_server import JsonHandler
from tests.support.ports import free_port

JSON = dict[str, Any]

# A label value: at most 63 characters, alphanumerics at both ends, `-_.` inside
# (kubernetes/kubernetes@master
# staging/src/k8s.io/apimachinery/pkg/util/validation/validation.go IsValidLabelValue).
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
CONFLICT = "the object has been modified; please apply your changes to the latest version and try again"


class SelectorError(ValueError):
    pass


def _split(selector: str) -> list[str]:
    """Top-level comma-separated requirements; commas inside `in (...)` belong to the set."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()] if selector.strip() else []


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        # Requirement.Matches: `!=` and `notin` hold for an object without the key.
        if self.operator in ("=", "==", "in"):
            return self.key in labels and labels[self.key] in self.values
        if self.operator in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        return (self.key in labels) == (self.operator == "exists")


def parse_selector(selector: str) -> list[Requirement]:
    requirements: list[Requirement] = []
    for part in _split(selector):
        if m := re.fullmatch(r"([\w./-]+)\s+(in|notin)\s+\(([^()]*)\)", part):
            if not m[3].strip():
                raise SelectorError(f"for 'in', 'notin' operators, values set can't be empty: {part}")
            requirements.append(Requirement(m[1], m[2], frozenset(v.strip() for v in m[3].split(","))))
        elif m := re.fullmatch(r"([\w./-]+)\s*(!=|==|=)\s*([\w.-]*)", part):
            requirements.append(Requirement(m[1], m[2], frozenset([m[3]])))
        elif m := re.fullmatch(r"!\s*([\w./-]+)", part):
            requirements.append(Requirement(m[1], "!"))
        elif m := re.fullmatch(r"[\w./-]+", part):
            requirements.append(Requirement(m[0], "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {part!r}")
    return requirements


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def status(code: int, reason: str, message: str, name: str = "") -> JSON:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "kind": "secrets"},
        "code": code,
    }


class ApiStatusError(Exception):
    def __init__(self, body: JSON) -> None:
        super().__init__(body["message"])
        self.body = body


@dataclass
class Store:
    """Secrets by (namespace, name); what the handler serves and the tests inspect."""

    objects: dict[tuple[str, str], JSON] = field(default_factory=dict)
    revision: int = 1
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Another writer's change, made just before the next patch lands: a test's way to make
    # the service's resourceVersion stale.
    before_patch: list[Callable[[JSON], None]] = field(default_factory=list)
    # What a watcher such as Authorino would be sent: (ADDED|MODIFIED|DELETED, object).
    events: list[tuple[str, JSON]] = field(default_factory=list)
    # (namespace, label, value) -> names: lets an equality selector skip a full scan, so the
    # benchmark times the service rather than this stand-in. Results are the same either way.
    by_label: dict[tuple[str, str, str], set[str]] = field(default_factory=dict)

    def _index(self, namespace: str, obj: JSON, add: bool) -> None:
        for key, value in (obj["metadata"].get("labels") or {}).items():
            names = self.by_label.setdefault((namespace, key, value), set())
            if add:
                names.add(obj["metadata"]["name"])
            else:
                names.discard(obj["metadata"]["name"])

    def _bump(self, obj: JSON) -> JSON:
        self.revision += 1
        obj["metadata"]["resourceVersion"] = str(self.revision)
        return obj

    def _missing(self, name: str) -> ApiStatusError:
        return ApiStatusError(status(404, "NotFound", f'secrets "{name}" not found', name))

    @staticmethod
    def _validate(obj: JSON) -> None:
        name = obj["metadata"].get("name", "")
        for key, value in (obj["metadata"].get("labels") or {}).items():
            if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                message = f'Secret "{name}" is invalid: metadata.labels: Invalid value: "{value}" ({key})'
                raise ApiStatusError(status(422, "Invalid", message, name))

    def create(self, namespace: str, obj: JSON) -> JSON:
        name = obj.get("metadata", {}).get("name", "")
        with self.lock:
            if (namespace, name) in self.objects:
                raise ApiStatusError(status(409, "AlreadyExists", f'secrets "{name}" already exists', name))
            obj = copy.deepcopy(obj)
            self._validate(obj)
            obj["metadata"].update(
                namespace=namespace,
                uid=str(uuid.uuid4()),
                creationTimestamp=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            )
            self.objects[(namespace, name)] = self._bump(obj)
            self._index(namespace, obj, add=True)
            self.events.append(("ADDED", copy.deepcopy(obj)))
            return copy.deepcopy(obj)

    def get(self, namespace: str, name: str) -> JSON:
        with self.lock:
            if (namespace, name) not in self.objects:
                raise self._missing(name)
            return copy.deepcopy(self.objects[(namespace, name)])

    def select(self, namespace: str, selector: str, limit: int, after: str) -> tuple[list[JSON], str]:
        try:
            requirements = parse_selector(selector)
        except SelectorError as error:
            raise ApiStatusError(status(400, "BadRequest", str(error))) from None
        with self.lock:
            equal = [r for r in requirements if r.operator in ("=", "==")]
            candidates = (
                self.by_label.get((namespace, equal[0].key, next(iter(equal[0].values))), set())
                if equal
                else {n for (ns, n) in self.objects if ns == namespace}
            )
            names = sorted(n for n in candidates if n > after)
            items: list[JSON] = []
            for name in names:
                obj = self.objects[(namespace, name)]
                labels = obj["metadata"].get("labels") or {}
                if all(r.matches(labels) for r in requirements):
                    if limit and len(items) == limit:
                        return items, items[-1]["metadata"]["name"]
                    items.append(copy.deepcopy(obj))
            return items, ""

    def patch(self, namespace: str, name: str, patch: JSON) -> JSON:
        with self.lock:
            if (namespace, name) not in self.objects:
                raise self._missing(name)
            while self.before_patch:
                self._index(namespace, self.objects[(namespace, name)], add=False)
                self.before_patch.pop()(self.objects[(namespace, name)])
                self._index(namespace, self._bump(self.objects[(namespace, name)]), add=True)
            existing = self.objects[(namespace, name)]
            updated = merge_patch(existing, patch)
            if updated["metadata"].get("resourceVersion") != existing["metadata"]["resourceVersion"]:
                message = f'Operation cannot be fulfilled on secrets "{name}": {CONFLICT}'
                raise ApiStatusError(status(409, "Conflict", message, name))
            self._validate(updated)
            self._index(namespace, existing, add=False)
            self._index(namespace, updated, add=True)
            self.objects[(namespace, name)] = self._bump(updated)
            self.events.append(("MODIFIED", copy.deepcopy(updated)))
            return copy.deepcopy(updated)

    def delete(self, namespace: str, name: str, options: JSON) -> None:
        with self.lock:
            if (namespace, name) not in self.objects:
                raise self._missing(name)
            want = (options.get("preconditions") or {}).get("resourceVersion")
            have = self.objects[(namespace, name)]["metadata"]["resourceVersion"]
            if want is not None and want != have:
                message = (
                    f'Operation cannot be fulfilled on secrets "{name}": Precondition failed: '
                    f"ResourceVersion in precondition: {want}, ResourceVersion in object meta: {have}"
                )
                raise ApiStatusError(status(409, "Conflict", message, name))
            self._index(namespace, self.objects[(namespace, name)], add=False)
            self.events.append(("DELETED", self.objects.pop((namespace, name))))
            self.revision += 1

    def secrets(self, namespace: str) -> list[JSON]:
        with self.lock:
            return [copy.deepcopy(o) for (ns, _), o in sorted(self.objects.items()) if ns == namespace]


PATH = re.compile(r"^/api/v1/namespaces/([^/]+)/secrets(?:/([^/]+))?$")


def _handler(store: Store, token: str) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        protocol_version = "HTTP/1.1"

        def _body(self) -> JSON:
            length = int(self.headers.get("Content-Length") or 0)
            body: JSON = json.loads(self.rfile.read(length) or b"{}")
            return body

        def _serve(self, method: str) -> None:
            url = urllib.parse.urlsplit(self.path)
            body = self._body() if method in ("POST", "PATCH", "DELETE") else {}
            if self.headers.get("Authorization") != f"Bearer {token}":
                self.reply(401, status(401, "Unauthorized", "Unauthorized"))
                return
            match = PATH.match(url.path)
            if not match:
                self.reply(404, status(404, "NotFound", "the server could not find the requested resource"))
                return
            namespace, name = match[1], match[2]
            query = dict(urllib.parse.parse_qsl(url.query))
            try:
                if method == "POST" and name is None:
                    self.reply(201, store.create(namespace, body))
                elif method == "GET" and name is None:
                    after = (
                        base64.urlsafe_b64decode(query["continue"]).decode() if "continue" in query else ""
                    )
                    items, last = store.select(
                        namespace, query.get("labelSelector", ""), int(query.get("limit", 0)), after
                    )
                    meta: JSON = {"resourceVersion": str(store.revision)}
                    if last:
                        meta["continue"] = base64.urlsafe_b64encode(last.encode()).decode()
                    self.reply(
                        200, {"kind": "SecretList", "apiVersion": "v1", "metadata": meta, "items": items}
                    )
                elif method == "GET" and name:
                    self.reply(200, store.get(namespace, name))
                elif method == "PATCH" and name:
                    if self.headers.get("Content-Type") != "application/merge-patch+json":
                        self.reply(
                            415, status(415, "UnsupportedMediaType", "the stand-in serves merge patch only")
                        )
                        return
                    self.reply(200, store.patch(namespace, name, body))
                elif method == "DELETE" and name:
                    store.delete(namespace, name, body)
                    self.reply(
                        200,
                        {
                            "kind": "Status",
                            "apiVersion": "v1",
                            "status": "Success",
                            "details": {"name": name},
                        },
                    )
                else:
                    self.reply(405, status(405, "MethodNotAllowed", f"{method} is not supported"))
            except ApiStatusError as error:
                self.reply(error.body["code"], error.body)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler


@dataclass
class KubeApi:
    url: str
    token: str
    store: Store


@contextlib.contextmanager
def kube_api(token: str = "sa-token") -> Iterator[KubeApi]:
    """The stand-in on a free local port, for the length of the block."""
    store = Store()
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _handler(store, token))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield KubeApi(f"http://127.0.0.1:{server.server_address[1]}", token, store)
    finally:
        server.shutdown()
        server.server_close()
