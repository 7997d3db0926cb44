"""What the end-to-end scenarios talk to: a deployed platform, seen from outside.

`Platform` holds what every implementation shares: each request is tagged and recorded
with its answer, so a per-test oracle can check that no denied request reached a model;
the limits a test expects come from the stack's config file, never from the cluster
(a cluster must not be checked against itself). `Live` drives a real cluster with
kubectl; the offline suite (tests/suite/) drives the same scenarios against a fake
gateway, to show that each scenario fails when the platform misbehaves as it targets.
"""

from __future__ import annotations

import abc
import base64
import contextlib
import http.client
import json
import math
import os
import secrets
import ssl
import subprocess
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from components.access import tiers as tier_labels
from components.config import ModelConfig, StackConfig, TierConfig
from components.names import MODEL_HEADER, TIER_HEADER
from components.serving.endpoint_picker import PICKER_LABEL
from tests.e2e.cluster import (
    GENERATED_METRIC,
    SERVED_METRIC,
    Addressed,
    Forward,
    Response,
    counted,
    port_forward,
    request,
    served,
    until,
)

T = TypeVar("T")

# Requests tagged with this header can be told apart in the traffic record and in logs.
TAG_HEADER = "x-maas-e2e-request"
# The endpoints a model counts as answered requests.
GENERATION_PATHS = ("/v1/chat/completions", "/v1/completions")
# What a client that cuts a stream reads first: the response's head and its first chunk.
CUT_AFTER_BYTES = 64
# The headers only the gateway may set; a client's must change nothing (A17).
GATEWAY_HEADERS = (MODEL_HEADER, TIER_HEADER)
# How the leak oracle's failure ends.
LEAK = "a denied request reached the model"
Component = Literal["authorino", "limitador"]
Origin = Literal["outside", "gateway-peer"]


@dataclass(frozen=True)
class Model:
    name: str
    host: str
    served: str


@dataclass
class Key:
    user: str
    tier: str
    value: str
    secret: str
    selected: bool = True
    # What the key has used in the current window: requests admitted and tokens charged.
    requests: int = 0
    tokens: int = 0
    # Prompt tokens per word of the warm-up: what the tokenizer makes of a word, the chat
    # template's few tokens included (the simulator's dummy tokenizer: words + 5).
    tokens_per_word: float = 1.0

    @property
    def header(self) -> dict[str, str]:
        return {"Authorization": f"APIKEY {self.value}"}


@dataclass(frozen=True)
class Sent:
    tag: str
    host: str
    path: str
    status: int
    model: str | None


def chat_body(model: Model, content: str = "Hello!", **extra: Any) -> dict[str, Any]:
    return {
        "model": model.served,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": 16,
        **extra,
    }


def seconds(window: str) -> float:
    """A Kuadrant window ("2m", "1h30m", "500ms") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    total, number, text = 0.0, "", window.replace("ms", "X")
    for part in text:
        if part.isdigit():
            number += part
        else:
            total += int(number) * units["ms" if part == "X" else part]
            number = ""
    return total


def token_claims(token: str) -> dict[str, Any] | None:
    """A JWT's payload, unverified (RFC 7519: the second base64url part), or None."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def condition_holds(item: dict[str, Any], kind: str) -> bool:
    """Whether a status condition is True for the object's current generation."""
    generation = item["metadata"].get("generation")
    for condition in item.get("status", {}).get("conditions", []):
        if condition["type"] == kind:
            current = condition.get("observedGeneration", generation) == generation
            return bool(condition["status"] == "True" and current)
    return False


class Platform(abc.ABC):
    """A deployed stack as the scenarios see it."""

    def __init__(
        self, stack: str, config: StackConfig, models: list[Model], scale: float = 1.0, poll_s: float = 1.0
    ):
        self.stack, self.config, self.models = stack, config, models
        # Fakes run the same scenarios with shorter waits.
        self.scale, self.poll_s = scale, poll_s
        self.traffic: list[Sent] = []
        self.hosts: dict[str, str] = {m.host: m.name for m in models}
        # The gateway's listener clients use: HTTPS only where the config says so.
        self.gateway_listener = ("https", 443) if config.gateway.https.only else ("http", 80)
        # The shared host, as the stack's config names it: every model, chosen by the body.
        self.api_host = f"{config.gateway.api_host}.{config.domain}"
        self.by_served: dict[str, str] = {m.served: m.name for m in models}

    # Time: every wait is bounded, never a sleep.
    def until(self, check: Callable[[], T], timeout_s: float, what: str, scaled: bool = True) -> T:
        """Polls until `check` holds. Waits for the platform to react are `scaled` (a fake
        reacts at once); waits for time itself, such as a limit's window, are not."""
        return until(check, timeout_s * (self.scale if scaled else 1), what, self.poll_s)

    # The tier table as the stack's config file says (never as the cluster says).
    def tier(self, name: str) -> TierConfig:
        return next(t for t in self.config.tiers if t.name == name)

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.config.tiers]

    def model_config(self, model: Model) -> ModelConfig:
        return next(m for m in self.config.models if m.name == model.name)

    def server_of(self, model: str) -> str:
        """The model whose pods answer `model`: itself, or the one it is served by."""
        return next(m.served_by or m.name for m in self.config.models if m.name == model)

    def answers_as(self, model: Model) -> str:
        """The `model` an answer names: its server's own served name, which a simulator
        reports for every name it serves (llm-d/llm-d-inference-sim@v0.10.2
        pkg/llm-d-inference-sim/context.go getDisplayedModelName)."""
        server = self.server_of(model.name)
        return next(m.served_name for m in self.config.models if m.name == server)

    @property
    def open_model(self) -> Model:
        """The first model every tier may use: what the tier-agnostic scenarios call."""
        found = [m for m in self.models if self.model_config(m).tiers is None]
        assert found, (
            f"stack {self.stack}: every model restricts its tiers; the scenarios need one open to all"
        )
        return found[0]

    def tier_for(self, model: Model) -> str:
        """The highest tier the model admits."""
        admitted = self.model_config(model).tiers
        return next(t for t in reversed(self.tier_names) if admitted is None or t in admitted)

    # The data plane: everything sent is tagged and recorded.
    def call(
        self, host: str, path: str, body: dict[str, Any] | None = None, headers: dict[str, str] | None = None
    ) -> Response:
        tag = uuid.uuid4().hex
        reply = self._send(host, path, body, {**(headers or {}), TAG_HEADER: tag})
        # On the shared host the body names the model (a JSON decoder's reading of it).
        named = body.get("model") if host == self.api_host and isinstance(body, dict) else None
        model = self.hosts.get(host) or (self.by_served.get(named) if isinstance(named, str) else None)
        self.traffic.append(Sent(tag, host, path, reply.status, model))
        return reply

    def models_for(self, tier: str) -> list[str]:
        """The served names a tier may use, as the stack's config says, in catalog order."""
        return [m.served for m in self.models if self.model_config(m).admits(tier)]

    def chat(self, model: Model, headers: dict[str, str], host: str | None = None, **extra: Any) -> Response:
        return self.call(host or model.host, "/v1/chat/completions", chat_body(model, **extra), headers)

    def cut_stream(self, model: Model, headers: dict[str, str], **extra: Any) -> Response:
        """A streamed chat whose client reads the first bytes of the answer and closes the
        connection, as a client that has what it wanted does."""
        tag = uuid.uuid4().hex
        body = chat_body(model, stream=True, **extra)
        reply = self._send_cut(model.host, "/v1/chat/completions", body, {**headers, TAG_HEADER: tag})
        self.traffic.append(Sent(tag, model.host, "/v1/chat/completions", reply.status, model.name))
        return reply

    @contextlib.contextmanager
    def leak_oracle(self) -> Iterator[None]:
        """Each model's own count of answered requests grows by exactly the requests the
        gateway admitted to it during the block: a 401, 403 or 429 that reached a model
        fails. (The model's counter, not a status, is the witness.) A pod that went during
        the block (a scale-down) took its counter with it: its last count comes from
        Prometheus; a pod that came during the block counted from zero."""
        # One count per server: a model served by another is answered by that one's pods.
        servers = list(dict.fromkeys(self.server_of(m.name) for m in self.models))
        before = {server: self.answered(server) for server in servers}
        # Pods already gone are not this block's (a range reaches a little before it).
        earlier = {server: set(self.departed(server, 0)) - set(before[server]) for server in servers}
        start, started = len(self.traffic), time.monotonic()
        yield
        sent = self.traffic[start:]
        for server in servers:
            mine = [s for s in sent if s.model is not None and self.server_of(s.model) == server]
            admitted = sum(1 for s in mine if s.path in GENERATION_PATHS and s.status < 300)
            now = self.answered(server)
            gone = {
                pod: count
                for pod, count in self.departed(server, time.monotonic() - started).items()
                if pod not in now and pod not in earlier[server]
            }
            lost = set(before[server]) - set(now) - set(gone)
            assert not lost, f"{server}: pods {sorted(lost)} went and nothing kept what they answered"
            after = {**gone, **now}
            grew = sum(count - before[server].get(pod, 0.0) for pod, count in after.items())
            denied = [s.status for s in mine if s.status in (401, 403, 429)]
            assert grew == admitted, (
                f"{server} answered {grew:g} requests, the gateway admitted {admitted} "
                f"(denied meanwhile: {denied}): {LEAK}"
            )

    @abc.abstractmethod
    def _send(
        self, host: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
    ) -> Response: ...

    @abc.abstractmethod
    def _send_cut(self, host: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> Response:
        """Like _send, but reads only the answer's first bytes, then closes the connection."""

    @abc.abstractmethod
    def gateway_port(self) -> int:
        """The local port the gateway answers on, for clients the scenarios do not drive."""

    # The control plane.
    @abc.abstractmethod
    def put_key(self, key: Key) -> None:
        """Creates or updates the key's Secret, shaped like the program's (selected or not)."""

    @abc.abstractmethod
    def delete_key(self, key: Key) -> None: ...

    @contextlib.contextmanager
    def new_key(self, tier: str, selected: bool = True, user: str | None = None) -> Iterator[Key]:
        """A user no earlier run had (its counters start at zero), or a new key of `user`
        (whose counters earlier runs may have moved), removed afterwards."""
        run = uuid.uuid4().hex[:10]
        key = Key(user or f"e2e-{run}", tier, secrets.token_urlsafe(36), f"apikey-e2e-{run}", selected)
        self.put_key(key)
        try:
            yield key
        finally:
            self.delete_key(key)

    def answered(self, model: str) -> dict[str, float]:
        """Requests each of the model's running pods answered (every replica: a Service
        would show one replica's count)."""
        return {pod: served(self._metrics(pod)) for pod in self.pods(model)}

    def generated(self, model: str) -> float:
        """Tokens the model's servers generated, summed over every replica."""
        return sum(counted(self._metrics(pod), GENERATED_METRIC) for pod in self.pods(model))

    @abc.abstractmethod
    def _metrics(self, pod: str) -> str:
        """A model server pod's /metrics text."""

    @abc.abstractmethod
    def departed(self, model: str, within_s: float) -> dict[str, float]:
        """Requests each of the model's pods answered, as Prometheus last scraped it, for
        every pod scraped within the last `within_s` seconds (running or gone since)."""

    @abc.abstractmethod
    def extra_route(self, host: str, model: Model) -> contextlib.AbstractContextManager[None]:
        """An HTTPRoute nobody wrote a policy for, to the model, on `host`, for the block."""

    @abc.abstractmethod
    def probe(self, origin: Origin, url: str, host: str | None = None) -> int:
        """curl's exit code for `url` from a pod outside our namespaces, or from one the
        models' NetworkPolicy admits (a pod labelled like the gateway's): 0 answered,
        28 timed out (a dropped connection), 6 name not resolved, 7 refused."""

    @abc.abstractmethod
    def query(self, expr: str) -> float | None:
        """An instant PromQL query on the stack's Prometheus (the first sample's value)."""

    @abc.abstractmethod
    def unavailable(self, component: Component) -> contextlib.AbstractContextManager[None]:
        """No ready pod of `component` for the block; back to ready after it."""

    @abc.abstractmethod
    def restart(self, component: Component) -> None:
        """Replaces the component's pods and waits until they are ready again."""

    @abc.abstractmethod
    def restarts(self, component: Component) -> dict[str, int]:
        """The component's pods, each with its containers' restart count."""

    @abc.abstractmethod
    def picker_replica_gone(self, model: Model) -> contextlib.AbstractContextManager[None]:
        """One of the pooled model's endpoint pickers gone (not replaced) for the block; all of
        them ready again after it."""

    @abc.abstractmethod
    def service_types(self) -> dict[str, str]:
        """Type of every Service in the models' namespace."""

    @abc.abstractmethod
    def pod_security_problems(self, level: str, pods: list[str]) -> dict[str, str]:
        """What Pod Security `level` says of each named running pod, if admitted again
        into a namespace enforcing that level (server-side dry run); empty: all admitted."""

    @abc.abstractmethod
    def pods(self, model: str) -> list[str]:
        """Names of the model's running pods."""

    @abc.abstractmethod
    def namespace_labels(self, namespace: str) -> dict[str, str]:
        """The labels a namespace carries on the cluster."""

    @abc.abstractmethod
    def oidc_token(self, user: str) -> str:
        """A Keycloak access token for a realm user."""

    @abc.abstractmethod
    def keys_call(
        self,
        method: str,
        path: str,
        token: str,
        body: dict[str, Any] | None = None,
        scheme: str = "Bearer",
        headers: dict[str, str] | None = None,
    ) -> Response:
        """A call to the key service on the shared host (components/access/self_service.py),
        with `token` (a Keycloak token, or a key with scheme APIKEY) and any other `headers`."""

    @abc.abstractmethod
    def move_to_group(self, user: str, leave: str, join: str) -> None:
        """Moves a realm user from the tier group `leave` to `join`, as an administrator would."""

    @abc.abstractmethod
    def realm_members(self) -> dict[str, set[str]]:
        """Each top-level group of the Keycloak realm -> the usernames of its members."""


# The Deployments the operators make for the Kuadrant instance's Authorino and Limitador,
# whose replicas follow their CRs' spec.replicas (applied with forced ownership):
# Kuadrant/authorino-operator@0.25.2 pkg/reconcilers/deployment.go (named after the CR, which
# kuadrant-operator v1.5.2 names "authorino": internal/controller/authorino_reconciler.go),
# Kuadrant/limitador-operator@0.18 pkg/limitador/k8s_objects.go ("limitador-<name>"; also
# kuadrant-operator api/v1beta1/topology.go LinkLimitadorToDeployment).
DEPLOYMENTS = {"authorino": "authorino", "limitador": "limitador-limitador"}
OPERATOR_RESOURCES = {"authorino": "authorino/authorino", "limitador": "limitador/limitador"}
# Their pods' labels: Kuadrant/authorino-operator@0.25.2 pkg/resources/k8s_util.go,
# Kuadrant/limitador-operator@0.18 pkg/limitador/k8s_objects.go.
POD_LABELS = {"authorino": "authorino-resource=authorino", "limitador": "limitador-resource=limitador"}


class Live(Platform):
    """A stack deployed on a cluster, driven through kubectl and a forwarded gateway."""

    def __init__(self, stack: str, config: StackConfig, outputs: dict[str, Any]):
        models = [
            Model(name, str(urllib.parse.urlsplit(model["url"]).hostname), model["servedModelName"])
            for name, model in outputs["models"].items()
        ]
        super().__init__(stack, config, models)
        self.outputs = outputs
        self.context = str(outputs["kubeContext"])
        self.models_namespace, self.gateway_service = str(outputs["gatewayService"]).split("/")
        self.kuadrant_namespace = config.namespaces.kuadrant
        self._forwards = contextlib.ExitStack()
        self._gateway: Forward | None = None
        self._pod_forwards: dict[str, Forward] = {}
        self._prometheus: Forward | None = None
        self._trust: ssl.SSLContext | None = None

    def close(self) -> None:
        self._forwards.close()

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        # Without input, stdin is closed: `kubectl run -i` must not attach the terminal.
        return subprocess.run(
            ["kubectl", "--context", self.context, *args],
            input=stdin,
            stdin=subprocess.DEVNULL if stdin is None else None,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def wait(self, condition: str, target: str, namespace: str, timeout_s: int = 600) -> None:
        self.kubectl(
            "wait",
            f"--for={condition}",
            target,
            "-n",
            namespace,
            f"--timeout={timeout_s}s",
            timeout=timeout_s + 30,
        )

    # What must report ready before any other test: in the models' namespace, and Kuadrant.
    READY = (
        ("gateway", "Programmed"),
        ("authpolicy", "Enforced"),
        ("ratelimitpolicy", "Enforced"),
        ("tokenratelimitpolicy", "Enforced"),
        ("inferenceservice", "Ready"),
        ("kuadrant", "Ready"),
    )
    # One bound for all of it, after a deploy that already waited for the serving path
    # (scripts/first-answer.sh): a broken stack fails in minutes, well inside the job's
    # limit. A stack whose models download their weights may need longer: the variable.
    READY_MINUTES_ENV = "MAAS_E2E_READY_MINUTES"
    READY_MINUTES = 10.0

    def wait_ready(self) -> None:
        """Every object the tests rely on reports its condition, for its current generation,
        within one bound; if not, the failure names what is still not ready."""
        within_s = float(os.environ.get(self.READY_MINUTES_ENV) or self.READY_MINUTES) * 60
        pending: list[str] = []

        def ready() -> bool:
            pending[:] = [
                f"{resource} {condition}"
                for resource, condition in self.READY
                if not self._all(
                    resource, condition, self.kuadrant_namespace if resource == "kuadrant" else None
                )
            ]
            return not pending

        try:
            until(ready, within_s, "the stack to be ready", every_s=5)
        except AssertionError as error:
            raise AssertionError(f"{error}; still not ready: {', '.join(pending)}") from None

    def _all(self, resource: str, condition: str, namespace: str | None = None) -> bool:
        items = self.get(resource, "-n", namespace or self.models_namespace)["items"]
        return bool(items) and all(condition_holds(item, condition) for item in items)

    def forward(self, namespace: str, target: str, port: int) -> contextlib.AbstractContextManager[Forward]:
        command = ["kubectl", "--context", self.context, "port-forward", "-n", namespace, target]
        return port_forward(command, port, f"{namespace}/{target}")

    def _send(self, host: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]) -> Response:
        return request(self.gateway_port(), host, path, body, headers, tls=self._tls())

    def _send_cut(self, host: str, path: str, body: dict[str, Any], headers: dict[str, str]) -> Response:
        return request(self.gateway_port(), host, path, body, headers, tls=self._tls(), first=CUT_AFTER_BYTES)

    def gateway_port(self) -> int:
        """The gateway's forwarded port; a forward that died (kubectl exits when the pod
        behind it goes: a restart, a rollout) is started again, so one lost pod does not
        fail every later test."""
        self._gateway = self._kept(
            self._gateway, self.models_namespace, f"svc/{self.gateway_service}", self.gateway_listener[1]
        )
        return self._gateway.port

    def _kept(self, forward: Forward | None, namespace: str, target: str, port: int) -> Forward:
        """`forward` if it still runs, else a new one, kept for the session."""
        if forward is not None and forward.alive():
            return forward
        return self._forwards.enter_context(self.forward(namespace, target, port))

    def via_route(self, host: str, path: str, headers: dict[str, str]) -> Response:
        """A GET to `host` as a client off the cluster sends it (OpenShift): the apps domain's DNS,
        the router, the host's Route, HTTPS on 443, trusting what the gateway presents."""
        connection = http.client.HTTPSConnection(
            host, 443, timeout=60, context=self._tls() or ssl.create_default_context()
        )
        try:
            connection.request("GET", path, headers=headers)
            reply = connection.getresponse()
            return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
        finally:
            connection.close()

    def browse(
        self, method: str, url: str, form: dict[str, str] | None = None, cookies: str = ""
    ) -> tuple[int, list[tuple[str, str]], str]:
        """What a browser sends for `url` on the shared host, through the gateway's forward:
        its Host (with the port, as typed), SNI, cookies and a form; the answer with every
        header (Set-Cookie repeats) and its text."""
        parts = urllib.parse.urlsplit(url)
        host = str(parts.hostname)
        tls = self._tls()
        connection = (
            Addressed(self.gateway_port(), host, tls, 60)
            if tls is not None
            else http.client.HTTPConnection("127.0.0.1", self.gateway_port(), timeout=60)
        )
        headers = {"Host": parts.netloc, **({"Cookie": cookies} if cookies else {})}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            connection.request(method, parts.path + (f"?{parts.query}" if parts.query else ""), body, headers)
            reply = connection.getresponse()
            return reply.status, reply.getheaders(), reply.read().decode(errors="replace")
        finally:
            connection.close()

    def _tls(self) -> ssl.SSLContext | None:
        """On an HTTPS-only gateway, what to trust: the certificate's issuer as cert-manager
        stores it beside the certificate (`ca.crt`, for a self-signed issuer the certificate
        itself: cert-manager/cert-manager@v1.21.1 certificaterequests/selfsigned/selfsigned.go), else
        the system's roots (a public ClusterIssuer). Read once."""
        if self.gateway_listener[0] != "https":
            return None
        if self._trust is None:
            from components.serving import gateway as gw

            secret = self.get("secret", gw.TLS_SECRET, "-n", self.models_namespace)
            authority = (secret.get("data") or {}).get("ca.crt")
            self._trust = (
                ssl.create_default_context(cadata=base64.b64decode(authority).decode())
                if authority
                else ssl.create_default_context()
            )
        return self._trust

    def _secret(self, key: Key) -> str:
        labels = {
            **tier_labels.AUTHORINO_WATCH,
            **({tier_labels.API_KEY_LABEL: "true"} if key.selected else {}),
            tier_labels.TIER_LABEL: key.tier,
        }
        return json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {
                    "name": key.secret,
                    "namespace": self.kuadrant_namespace,
                    "labels": labels,
                    "annotations": {tier_labels.USER_ANNOTATION: key.user},
                },
                "data": {tier_labels.API_KEY_DATA: base64.b64encode(key.value.encode()).decode()},
            }
        )

    def put_key(self, key: Key) -> None:
        # `replace` drops a label that `apply` would keep (the selector label, when unselecting).
        manifest = self._secret(key)
        if self.kubectl("replace", "-f", "-", stdin=manifest, check=False).returncode != 0:
            self.kubectl("create", "-f", "-", stdin=manifest)

    def delete_key(self, key: Key) -> None:
        self.kubectl(
            "delete", "secret", key.secret, "-n", self.kuadrant_namespace, "--ignore-not-found", check=False
        )

    def pods(self, model: str) -> list[str]:
        server = self.server_of(model)
        found = self.get(
            "pods", "-n", self.models_namespace, "-l", f"serving.kserve.io/inferenceservice={server}"
        )
        return [
            p["metadata"]["name"] for p in found["items"] if p.get("status", {}).get("phase") == "Running"
        ]

    def namespace_labels(self, namespace: str) -> dict[str, str]:
        labels: dict[str, str] = self.get("namespace", namespace)["metadata"].get("labels", {})
        return labels

    def _metrics(self, pod: str) -> str:
        # Through kubelet, which no NetworkPolicy filters; one forward per pod for the
        # session (the oracle reads every pod before and after every test).
        forward = self._pod_forwards.get(pod)
        self._pod_forwards[pod] = self._kept(forward, self.models_namespace, f"pod/{pod}", 8080)
        return request(self._pod_forwards[pod].port, "localhost", "/metrics").body.decode()

    def departed(self, model: str, within_s: float) -> dict[str, float]:
        """From the stack's Prometheus: each pod's last scrape of the served counter within
        the range. The model's PodMonitor labels it with `model` (components/metering/
        observability.py) and the operator adds `namespace` and `pod`
        (prometheus-operator/prometheus-operator@v0.93.0 pkg/prometheus/promcfg.go generatePodMonitorConfig);
        a range skips a gone pod's stale marker (prometheus promql/engine.go matrixIterSlice), so its last
        count stays. A scaled-down pod idled its stabilization window first: its last scrape holds
        everything it answered. Without observability nothing keeps a gone pod's count."""
        from commands import usage

        if not self.config.observability.enabled:
            return {}
        selector = f'{SERVED_METRIC}{{namespace="{self.models_namespace}", model="{model}"}}'
        # Whole seconds, and one scrape interval more, so the block's first scrape is in (30 s,
        # prometheus-operator/prometheus-operator@v0.93.0 pkg/apis/monitoring/v1/prometheus_types.go
        # scrapeInterval).
        expr = f"sum by (pod) (last_over_time({selector}[{math.ceil(within_s) + 30}s]))"
        return {
            str(sample["metric"]["pod"]): float(sample["value"][1])
            for sample in usage.instant(self._prometheus_url(), expr)
        }

    @contextlib.contextmanager
    def extra_route(self, host: str, model: Model) -> Iterator[None]:
        name = host.split(".")[0]
        route = {
            "apiVersion": "gateway.networking.k8s.io/v1",
            "kind": "HTTPRoute",
            "metadata": {"name": name, "namespace": self.models_namespace},
            "spec": {
                "parentRefs": [{"name": self.gateway_service.removesuffix("-istio")}],
                "hostnames": [host],
                "rules": [{"backendRefs": [{"name": f"{model.name}-predictor", "port": 80}]}],
            },
        }
        self.kubectl("apply", "-f", "-", stdin=json.dumps(route))
        self.hosts[host] = model.name
        try:
            yield
        finally:
            self.kubectl("delete", "httproute", name, "-n", self.models_namespace, check=False)

    def probe(self, origin: Origin, url: str, host: str | None = None) -> int:
        from components.pins import versions
        from components.serving import gateway as gw

        with self._probe_namespace(origin) as namespace:
            labels = (
                ["--labels", ",".join(f"{k}={v}" for k, v in gw.POD_LABELS.items())]
                if origin == "gateway-peer"
                else []
            )
            header = ["-H", f"Host: {host}"] if host else []
            if host and url.startswith("https://"):
                # TLS needs the host as SNI: address it by name, connected to the Service;
                # -k, as a probe asks only whether the gateway answers, not whom to trust.
                service = urllib.parse.urlsplit(url)
                header = ["-k", "--connect-to", f"{host}:{service.port}:{service.hostname}:{service.port}"]
                url = url.replace(str(service.netloc), f"{host}:{service.port}", 1)
            done = self.kubectl(
                "run", f"probe-{uuid.uuid4().hex[:8]}", "-n", namespace, "--rm", "-i", "-q",
                # kubectl's default is 60s, short for a first pull of the image (it then exits 1).
                "--restart=Never", "--pod-running-timeout=150s",
                f"--image={versions.E2E_PROBE_IMAGE}", *labels, "--command", "--",
                "curl", "-sS", "-o", "/dev/null", "--connect-timeout", "5", "--max-time", "10", *header, url,
                check=False, timeout=180,
            )  # fmt: skip
            # `kubectl run -i --rm --restart=Never` exits with the container's exit code
            # (kubernetes/kubectl@v0.36.3 pkg/cmd/run/run.go: CodeExitError from the pod's status).
            return done.returncode

    @contextlib.contextmanager
    def _probe_namespace(self, origin: Origin) -> Iterator[str]:
        # A gateway peer is a pod in the models' namespace with the gateway's labels, which
        # the models' NetworkPolicy admits; while it runs it is also an endpoint of the
        # gateway's Service (Istio kube-gateway.yaml selects by that label), which no other
        # test uses meanwhile: the tests run one at a time, through a forward to a gateway pod.
        if origin == "gateway-peer":
            yield self.models_namespace
        else:
            with self._scratch_namespace({}) as namespace:
                yield namespace

    @contextlib.contextmanager
    def _scratch_namespace(self, labels: dict[str, str]) -> Iterator[str]:
        """A namespace of no group of ours, ready for pods, deleted afterwards."""
        namespace = f"maas-e2e-{uuid.uuid4().hex[:8]}"
        # Created with its labels at once: Pod Security reads the namespace from a cache and
        # would judge a pod by an unlabelled copy (kubernetes/pod-security-admission@v0.36.2
        # admission/namespace.go).
        manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": labels},
        }
        self.kubectl("create", "-f", "-", stdin=json.dumps(manifest))
        try:
            # Pods are refused until the namespace's default ServiceAccount exists
            # (kubernetes/kubernetes@v1.36.4 plugin/pkg/admission/serviceaccount/admission.go).
            until(
                lambda: (
                    self.kubectl("get", "serviceaccount", "default", "-n", namespace, check=False).returncode
                    == 0
                ),
                60,
                f"the default ServiceAccount of {namespace}",
            )
            yield namespace
        finally:
            self.kubectl("delete", "namespace", namespace, "--wait=false", check=False)

    def query(self, expr: str) -> float | None:
        """One instant query, as the usage export asks it (commands.usage.instant): the stack's
        Prometheus through a port-forward, or on OpenShift the cluster's Thanos querier through
        its Route, with the export's token (docs/openshift.md)."""
        from commands import usage

        result = usage.instant(self._prometheus_url(), expr)
        return float(result[0]["value"][1]) if result else None

    def _prometheus_url(self) -> str:
        from commands import usage
        from components.platform import monitoring

        if self.config.flavour == "openshift":
            if not os.environ.get(usage.TOKEN_ENV):
                raise AssertionError(
                    f"set {usage.TOKEN_ENV} (e.g. $(oc whoami -t)) to query the Thanos querier"
                )
            host = self.kubectl(
                "get", "route", "thanos-querier", "-n", "openshift-monitoring", "-o", "jsonpath={.spec.host}"
            ).stdout.strip()
            return f"https://{host}"
        self._prometheus = self._kept(
            self._prometheus,
            self.config.namespaces.observability,
            f"svc/{monitoring.PROMETHEUS_SERVICE}",
            monitoring.PROMETHEUS_PORT,
        )
        return f"http://127.0.0.1:{self._prometheus.port}"

    def _ready_replicas(self, component: Component) -> int:
        deployment = self.get(f"deployment/{DEPLOYMENTS[component]}", "-n", self.kuadrant_namespace)
        return int(deployment.get("status", {}).get("readyReplicas", 0) or 0)

    def _replicas(self, component: Component, replicas: int | None) -> None:
        # Through the operator's CR, which its operator follows; scaling the Deployment
        # would be undone by it. Kuadrant sets neither CR's replicas
        # (Kuadrant/kuadrant-operator@v1.5.2 authorino_reconciler.go, limitador_reconciler.go).
        self.kubectl(
            "patch", OPERATOR_RESOURCES[component], "-n", self.kuadrant_namespace, "--type=merge",
            "--field-manager=maas-e2e", "-p", json.dumps({"spec": {"replicas": replicas}}),
        )  # fmt: skip

    @contextlib.contextmanager
    def unavailable(self, component: Component) -> Iterator[None]:
        spec = self.get(OPERATOR_RESOURCES[component], "-n", self.kuadrant_namespace)["spec"]
        before = spec.get("replicas")
        self._replicas(component, 0)
        try:
            # Gone, not only unready: kube-proxy still sends new connections to terminating
            # endpoints when no ready one is left (kubernetes/kubernetes@v1.36.4
            # pkg/proxy/topology.go).
            self.kubectl(
                "wait", "--for=delete", "pod", "-l", POD_LABELS[component], "-n", self.kuadrant_namespace,
                "--timeout=180s", timeout=210,
            )  # fmt: skip
            yield
        finally:
            # An absent field is put back absent, so no replicas are left owned by maas-e2e.
            self._replicas(component, before)
            self.until(
                lambda: self._ready_replicas(component) >= (before or 1), 300, f"{component} ready again"
            )

    @contextlib.contextmanager
    def picker_replica_gone(self, model: Model) -> Iterator[None]:
        # Cordoned nodes take no replacement (kube-scheduler skips unschedulable nodes), so the
        # deleted picker stays gone for the block; the Deployment's own replicas are untouched.
        deployment = f"deployment/{model.name}-epp"
        selector = f"{PICKER_LABEL}={model.name}"
        pods = self.get("pods", "-n", self.models_namespace, "-l", selector)["items"]
        assert pods, f"no endpoint picker of {model.name}"
        nodes = [
            n["metadata"]["name"] for n in self.get("nodes")["items"] if not n["spec"].get("unschedulable")
        ]
        for node in nodes:
            self.kubectl("cordon", node)
        try:
            self.kubectl(
                "delete", "pod", pods[0]["metadata"]["name"], "-n", self.models_namespace,
                "--wait=true", "--timeout=180s", timeout=210,
            )  # fmt: skip
            yield
        finally:
            for node in nodes:
                self.kubectl("uncordon", node)
            self.kubectl(
                "rollout", "status", deployment, "-n", self.models_namespace, "--timeout=300s", timeout=330
            )

    def restart(self, component: Component) -> None:
        deployment = f"deployment/{DEPLOYMENTS[component]}"
        self.kubectl("rollout", "restart", deployment, "-n", self.kuadrant_namespace)
        self.kubectl(
            "rollout", "status", deployment, "-n", self.kuadrant_namespace, "--timeout=300s", timeout=330
        )

    def restarts(self, component: Component) -> dict[str, int]:
        pods = self.get("pods", "-n", self.kuadrant_namespace, "-l", POD_LABELS[component])["items"]
        return {
            pod["metadata"]["name"]: sum(
                int(c.get("restartCount", 0)) for c in pod.get("status", {}).get("containerStatuses", [])
            )
            for pod in pods
        }

    def service_types(self) -> dict[str, str]:
        services = self.get("services", "-n", self.models_namespace)["items"]
        return {s["metadata"]["name"]: s["spec"]["type"] for s in services}

    def pod_security_problems(self, level: str, pods: list[str]) -> dict[str, str]:
        problems = {}
        with self._scratch_namespace({"pod-security.kubernetes.io/enforce": level}) as namespace:
            for pod in pods:
                spec = self.get("pod", pod, "-n", self.models_namespace)["spec"]
                # What the cluster filled in, or what would not resolve in another namespace
                # (its ServiceAccount, volumes' Secrets); Pod Security does not judge these.
                for volatile in ("nodeName", "serviceAccountName", "serviceAccount", "volumes", "priority"):
                    spec.pop(volatile, None)
                for container in [*spec.get("initContainers", []), *spec["containers"]]:
                    container.pop("volumeMounts", None)
                manifest = {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {"name": pod, "namespace": namespace},
                    "spec": spec,
                }
                # Pod Security admission judges a dry run like a create: ValidatePod has no
                # dry-run exemption (kubernetes/pod-security-admission@v0.36.2 admission/admission.go).
                done = self.kubectl(
                    "create", "--dry-run=server", "-f", "-", stdin=json.dumps(manifest), check=False
                )
                if done.returncode != 0:
                    assert "violates PodSecurity" in done.stderr, f"dry run of {pod} failed: {done.stderr}"
                    problems[pod] = done.stderr.strip()
        return problems

    def keycloak_service(self) -> tuple[str, str, str]:
        """Keycloak's Service and namespace, from its in-cluster URL (output keycloakUrl,
        http://<service>.<namespace>.svc...), and the realm, the issuer's last segment."""
        service, namespace = str(self.outputs["keycloakUrl"]).split("//")[1].split(".")[:2]
        return service, namespace, str(self.outputs["oidcIssuer"]).rstrip("/").rsplit("/", 1)[1]

    @contextlib.contextmanager
    def _keycloak_admin(self) -> Iterator[tuple[Callable[..., Any], str]]:
        """Keycloak's admin API over a port-forward, as the stack's bootstrap admin (output
        keycloakAdmin, a token of the master realm's admin-cli): a call(method, path, body)
        answering JSON, and the realm's admin path."""
        admin = self.outputs["keycloakAdmin"]
        service, namespace, realm = self.keycloak_service()
        with self.forward(namespace, f"svc/{service}", 8080) as forward:

            def send(method: str, path: str, body: str | None, headers: dict[str, str]) -> Any:
                connection = http.client.HTTPConnection("127.0.0.1", forward.port, timeout=10)
                try:
                    connection.request(method, path, body, headers)
                    return json.loads(connection.getresponse().read() or b"null")
                finally:
                    connection.close()

            form = {
                "grant_type": "password",
                "client_id": "admin-cli",
                "username": admin["username"],
                "password": admin["password"],
            }

            def admin_token() -> str:
                try:
                    answer = send(
                        "POST",
                        "/realms/master/protocol/openid-connect/token",
                        urllib.parse.urlencode(form),
                        {"Content-Type": "application/x-www-form-urlencoded"},
                    )
                except OSError:
                    return ""
                return str((answer or {}).get("access_token", ""))

            token = until(admin_token, timeout_s=60, what="an admin token")

            def call(method: str, path: str, body: str | None = None) -> Any:
                return send(method, path, body, {"Authorization": f"Bearer {token}"})

            yield call, f"/admin/realms/{realm}"

    def realm_members(self) -> dict[str, set[str]]:
        """Read through Keycloak's admin API: GET /admin/realms/<realm>/groups and each
        group's /members with max=-1 (keycloak services UsersResource/GroupResource)."""
        with self._keycloak_admin() as (call, base):
            return {
                group["name"]: {
                    member["username"]
                    for member in call("GET", f"{base}/groups/{group['id']}/members?max=-1")
                }
                for group in call("GET", f"{base}/groups?max=-1")
            }

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
        return request(self.gateway_port(), self.api_host, path, body, sent, tls=self._tls(), method=method)

    def move_to_group(self, user: str, leave: str, join: str) -> None:
        """Moves a realm user from the top-level group `leave` to `join`, as an administrator
        would in Keycloak's console (PUT/DELETE /admin/realms/<realm>/users/<id>/groups/<group>,
        keycloak services UserResource)."""
        with self._keycloak_admin() as (call, base):
            (found,) = call("GET", f"{base}/users?exact=true&username={urllib.parse.quote(user)}")
            groups = {g["name"]: g["id"] for g in call("GET", f"{base}/groups?max=-1")}
            call("DELETE", f"{base}/users/{found['id']}/groups/{groups[leave]}")
            call("PUT", f"{base}/users/{found['id']}/groups/{groups[join]}")

    def oidc_token(self, user: str) -> str:
        password = self.outputs["keycloakPasswords"][user]
        service, namespace, realm = self.keycloak_service()
        path = f"/realms/{realm}/protocol/openid-connect/token"
        form = {
            "grant_type": "password",
            "client_id": self.outputs["oidcClientId"],
            "username": user,
            "password": password,
        }
        with self.forward(namespace, f"svc/{service}", 8080) as forward:

            def fetch() -> str:
                connection = http.client.HTTPConnection("127.0.0.1", forward.port, timeout=10)
                try:
                    connection.request(
                        "POST",
                        path,
                        urllib.parse.urlencode(form),
                        {"Content-Type": "application/x-www-form-urlencoded"},
                    )
                    token: str = json.loads(connection.getresponse().read() or b"{}").get("access_token", "")
                    return token
                except OSError:
                    return ""
                finally:
                    connection.close()

            return until(fetch, timeout_s=60, what=f"a token for {user}")
