"""Flavours: how one kind of cluster installs and exposes the platform, as a strategy.

A flavour is chosen once, from `maas:flavour`, by the platform's builder and handed to
every layer whose installation, exposure or monitoring depends on the kind of cluster. The
layers call it and never test which flavour they were given: plain Kubernetes and OpenShift
(operators from OLM, Routes, no fixed user ids, user-workload monitoring) are a class each
here, not a branch in each layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import pulumi
import pulumi_kubernetes as k8s

from components.config import GatewayConfig
from components.flavour.helm import Chart


@dataclass(frozen=True, kw_only=True)
class Reading:
    """How a pod of ours asks PromQL of the series the usage rules record (the key service's
    `GET /v1/usage`), and what it needs to be let in; the defaults: nothing."""

    # With the query parameters every query carries (a tenancy proxy's namespace).
    url: str
    # Labels the usage rules give the series read, for the reader to be shown them.
    series_labels: dict[str, str] = field(default_factory=dict)
    # Whether the pod sends its own service account's token.
    bearer_token: bool = False
    # A ConfigMap the cluster fills, under `ca_key`, with the CA of the server's certificate,
    # when it carries these annotations; None: the server speaks plain HTTP.
    ca_annotations: dict[str, str] | None = None
    ca_key: str = ""
    # What the pod's account must be granted to be let in, in `grant_namespace` only.
    grants: tuple[k8s.rbac.v1.PolicyRuleArgs, ...] = ()
    grant_namespace: str = ""


@dataclass(frozen=True, kw_only=True)
class Metrics:
    """Where the platform's metrics go, whichever Prometheus the flavour gives them to: what
    the layers need to know of it, not how it was installed."""

    # The Prometheus pods, as the peers every metrics door admits.
    scrapers: tuple[k8s.networking.v1.NetworkPolicyPeerArgs, ...]
    # Where PromQL is asked inside the cluster, without credentials (KEDA); None: nowhere.
    query_url: str | None
    # Labels on every PrometheusRule, so that this Prometheus evaluates it.
    rule_labels: dict[str, str]
    # What Kuadrant's operator must find when it starts (the Prometheus-operator CRDs), and
    # what the monitors and rules wait for (the stack); None: the cluster has them already.
    crds: pulumi.Resource | None
    installed: pulumi.Resource | None
    # Stack outputs telling users how to reach it, and the usage export's command line.
    exports: dict[str, pulumi.Input[Any]]
    usage_export: str
    # How the key service reads usage; None: it cannot, and usage answers 503.
    reading: Reading | None
    # Whether Kuadrant may add monitors of its own (`Kuadrant` spec.observability): only where
    # this Prometheus reads just what carries our label. One that reads every monitor would
    # scrape Limitador twice (Kuadrant/kuadrant-operator@v1.5.2 internal/controller/
    # observability_reconciler.go selects the pods ours does) and count all usage twice.
    kuadrant_monitors: bool = False


@dataclass(frozen=True)
class Client:
    """A base URL for clients, and the curl options that make it reachable."""

    base_url: str
    curl_options: str


@dataclass(frozen=True, kw_only=True)
class Exposure:
    """The inference gateway's Service and the hostnames clients call it by."""

    namespace: pulumi.Input[str]
    service: str
    # The Service's ports by listener name ("http", "https"; Istio names them so).
    ports: dict[str, int]
    hostnames: tuple[str, ...]
    after: tuple[pulumi.Resource, ...] = ()


class Flavour(Protocol):
    @property
    def name(self) -> str: ...

    def install_chart(self, install: Chart, parent: pulumi.Resource) -> pulumi.Resource:
        """Installs a third-party component from its pinned chart."""
        ...

    def gateway_annotations(self, gateway: GatewayConfig) -> dict[str, str]:
        """Annotations on the inference Gateway that decide how its Service is exposed."""
        ...

    def reach(self, namespace: str, service: str, port: int, local_port: int) -> str:
        """The command a user runs to reach a Service of the platform from their machine."""
        ...

    def pod_security(self, uid: int) -> k8s.core.v1.PodSecurityContextArgs:
        """The pod security context of our own workloads whose image runs as user `uid`."""
        ...

    def client(self, host: str, scheme: str, local_port: int) -> Client:
        """How a user on their machine calls the gateway by `host` (served as `scheme`), given
        the port `reach` forwards to."""
        ...

    def gateway_api_bundle(self) -> str | None:
        """The Gateway API CRD bundle to install; None: the cluster brings its own."""
        ...

    def metrics(self, bundled: Callable[[], Metrics], rules_namespace: str) -> Metrics:
        """The Prometheus the platform's monitors and rules go to: the cluster's own, or the
        stack `bundled` installs (components/platform/monitoring.py); our rules live in
        `rules_namespace`."""
        ...

    def expose(self, name: str, exposure: Exposure, parent: pulumi.Resource) -> list[pulumi.Resource]:
        """What carries clients' requests to the gateway's Service, beyond the Service itself."""
        ...

    def model_server_home(self) -> str | None:
        """A writable directory for vLLM's home and caches; None: the image user's own home."""
        ...
