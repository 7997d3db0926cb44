"""Kuadrant: the operator, and the `Kuadrant` instance that runs Authorino and Limitador."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import network
from components.config import LimitadorConfig
from components.flavour.helm import Chart, OperatorEnv
from components.flavour.protocol import Flavour
from components.names import GATEWAY_NAME, KEY_SERVICE_LABELS
from components.pins import upstream, versions

# Custom resources count as created at once unless told what "ready" means.
WAIT_READY = {"pulumi.com/waitFor": "condition=Ready"}
LIMITADOR_REDIS_SECRET = "limitador-redis"
OPERATOR_RELEASE = "kuadrant-operator"
# The Limitador CR the Kuadrant instance creates and _limitador patches
# (Kuadrant/kuadrant-operator@v1.5.2 internal/kuadrant/kuadrant.go); its Service is
# `limitador-<CR name>` (Kuadrant/limitador-operator@7472d1c pkg/limitador/k8s_objects.go).
LIMITADOR_NAME = "limitador"
# The operator's Deployment and container (Kuadrant/kuadrant-operator@v1.5.2
# charts/kuadrant-operator/templates/manifests.yaml, a chart with no values to set).
OPERATOR_DEPLOYMENT = "kuadrant-operator-controller-manager"
OPERATOR_CONTAINER = "manager"
# What the operator writes into the gateway's wasm config as each service's failure mode,
# read from its environment (Kuadrant/kuadrant-operator@v1.5.2 internal/wasm/utils.go NewServiceBuilder,
# parseFailureModeValue: "allow" or "deny"; defaults deny for auth, allow for the rest).
AUTH_FAILURE_MODE_ENV = "AUTH_SERVICE_FAILURE_MODE"
LIMITS_FAILURE_MODE_ENV = ("RATELIMIT_SERVICE_FAILURE_MODE", "RATELIMIT_CHECK_SERVICE_FAILURE_MODE")
REPORT_FAILURE_MODE_ENV = "RATELIMIT_REPORT_SERVICE_FAILURE_MODE"
# What the operator uses when a variable is unset (Kuadrant/kuadrant-operator@v1.5.2 internal/wasm/utils.go
# AuthServiceFailureMode, Ratelimit*ServiceFailureMode: parseFailureModeValue's defaults).
OPERATOR_DEFAULT_FAILURE_MODES = {
    AUTH_FAILURE_MODE_ENV: "deny",
    **dict.fromkeys(LIMITS_FAILURE_MODE_ENV, "allow"),
    REPORT_FAILURE_MODE_ENV: "allow",
}


@dataclass(frozen=True, kw_only=True)
class KuadrantArgs:
    namespace: pulumi.Input[str]
    limitador: LimitadorConfig
    flavour: Flavour
    # The Redis of the shared counters (storage: redis): the stack's, or the deployed one's,
    # which Limitador waits for (it exits when it cannot reach Redis at start:
    # Kuadrant/limitador@v2.4.0 limitador-server/src/main.rs storage_using_async_redis).
    redis_url: pulumi.Input[str] | None = None
    redis: pulumi.Resource | None = None
    # Kuadrant's own monitors (components/flavour/protocol.py Metrics.kuadrant_monitors).
    observability: bool = False
    # Where the gateway's pods run, which call Authorino, Limitador and the operator's wasm
    # server; and the Prometheus pods (none: no Prometheus), which scrape all three.
    gateway_namespace: str
    scrapers: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs] = ()
    # Where the key service runs, when it does: it reads the caller's limits and counters
    # from Limitador's HTTP API for `GET /v1/usage` (components/access/self_service.py).
    key_service_namespace: str | None = None
    # Everything whose CRDs the operator must see when it starts: Gateway API, Istio,
    # cert-manager and, with observability, the Prometheus-operator CRDs.
    after: Sequence[pulumi.Resource] = ()


class Kuadrant(pulumi.ComponentResource):
    """The operator looks for Gateway API, Istio, cert-manager and Prometheus-operator
    CRDs once, when it starts (Kuadrant/kuadrant-operator@v1.5.2, state_of_the_world.go), and
    ignores what appears later. So it waits for all of them here: no restart needed.
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:kuadrant:Kuadrant"

    def __init__(self, name: str, args: KuadrantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        # The operator, with the failure modes in its environment where they differ from its
        # defaults: no policy is enforced under the defaults first, since the instance waits
        # for the patched operator. Where they equal the defaults (Limitador open), no patch:
        # the patch would restart the operator after install for nothing (docs/architecture.md
        # "Time to the first authorized 200").
        modes = failure_modes(args.limitador)
        self._operator = args.flavour.install_chart(
            Chart(
                name=f"{name}-operator",
                release_name=OPERATOR_RELEASE,
                chart=versions.KUADRANT_OPERATOR,
                namespace=args.namespace,
                after=args.after,
                operator_env=None
                if modes == OPERATOR_DEFAULT_FAILURE_MODES
                else OperatorEnv(
                    name=f"{name}-failure-modes",
                    deployment=OPERATOR_DEPLOYMENT,
                    container=OPERATOR_CONTAINER,
                    values=modes,
                ),
            ),
            self,
        )
        self._instance = k8s.apiextensions.CustomResource(
            f"{name}-instance",
            api_version="kuadrant.io/v1beta1",
            kind="Kuadrant",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="kuadrant", namespace=args.namespace, annotations=WAIT_READY
            ),
            spec={"observability": {"enable": args.observability}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._operator]),
        )
        limitador = self._limitador(name, args)
        self.register_outputs(
            {
                "operator": self._operator,
                "instance": self._instance,
                "limitador": limitador,
                "networkPolicies": self._doors(name, args),
            }
        )

    def _doors(self, name: str, args: KuadrantArgs) -> list[k8s.networking.v1.NetworkPolicy]:
        """Who reaches Kuadrant's pods: the gateway calls Authorino's and Limitador's gRPC and
        fetches the wasm module; Prometheus scrapes the metrics. Limitador's HTTP port, which
        serves its metrics and also the API that spends and lists every budget
        (Kuadrant/limitador@v2.4.0 limitador-server/src/http_api/server.rs), admits Prometheus
        and the key service (which reads the caller's limits and counters for `GET /v1/usage`);
        the other operators, which serve only metrics and no webhook, admit nobody."""
        gateway = [network.pods(upstream.gateway_pod_labels(GATEWAY_NAME), args.gateway_namespace)]
        scraper = list(args.scrapers)
        authorino, limitador = upstream.AUTHORINO_PODS, upstream.LIMITADOR_PODS
        operator = upstream.KUADRANT_OPERATOR_PODS
        doors = [
            network.Door("authorino-authorization", authorino, ("grpc",), gateway),
            network.Door("limitador-rate-limits", limitador, ("grpc",), gateway),
            network.Door("kuadrant-operator-wasm", operator, ("wasm",), gateway),
            network.Door("kuadrant-operator-grpc", operator, ("grpc",), gateway),
        ]
        if scraper:
            doors += [
                network.Door("authorino-metrics", authorino, ("metrics",), scraper),
                network.Door("limitador-metrics", limitador, ("http",), scraper),
                network.Door("kuadrant-operator-metrics", operator, ("metrics",), scraper),
            ]
        if args.key_service_namespace is not None:
            key_service = [network.pods(KEY_SERVICE_LABELS, args.key_service_namespace)]
            doors.append(network.Door("limitador-usage", limitador, ("http",), key_service))
        return network.doors(name, args.namespace, doors, self)

    def _limitador(self, name: str, args: KuadrantArgs) -> k8s.apiextensions.CustomResourcePatch:
        """Settings on the Limitador the instance creates (Kuadrant owns only its metric labels).

        `telemetry: exhaustive` adds `limit_name` to Limitador's `limited_calls`, which is
        how usage metering tells a request-limit 429 from a token-limit 429.
        `rateLimitHeaders: DRAFT_VERSION_03` (Kuadrant/limitador-operator@v0.17.1 limitador_types.go)
        makes Limitador answer a request-limit check with X-RateLimit-Reset, which the
        gateway's refusals.lua turns into the 429's Retry-After.
        """
        spec: dict[str, object] = {
            "telemetry": "exhaustive",
            "replicas": args.limitador.replicas,
            "rateLimitHeaders": "DRAFT_VERSION_03",
        }
        waits_for: list[pulumi.Resource] = [self._instance]
        if args.limitador.storage == "redis":
            redis = k8s.core.v1.Secret(
                f"{name}-limitador-redis",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=LIMITADOR_REDIS_SECRET, namespace=args.namespace),
                string_data={"URL": pulumi.Output.secret(args.redis_url or "")},
                opts=pulumi.ResourceOptions(parent=self),
            )
            spec["storage"] = {"redis": {"configSecretRef": {"name": LIMITADOR_REDIS_SECRET}}}
            waits_for.extend([redis, *([args.redis] if args.redis else [])])
        return k8s.apiextensions.CustomResourcePatch(
            f"{name}-limitador",
            api_version="limitador.kuadrant.io/v1alpha1",
            kind="Limitador",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=LIMITADOR_NAME, namespace=args.namespace),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=waits_for),
        )


def limitador_url(namespace: str) -> str:
    """Limitador's HTTP API inside the cluster: its Service, `limitador-<CR name>`, port `http`
    (Kuadrant/limitador-operator@7472d1c pkg/limitador/k8s_objects.go Service(),
    DefaultServiceHTTPPort)."""
    return f"http://limitador-{LIMITADOR_NAME}.{namespace}.svc:{upstream.LIMITADOR_PODS.ports['http']}"


def failure_modes(limitador: LimitadorConfig) -> dict[str, str]:
    """The operator's environment, which is all Kuadrant 1.5 reads the failure modes from:
    Authorino fails closed always, Limitador as `maas:limitador.failureMode` says; the operator
    writes them into the gateway's wasm config."""
    limits = "allow" if limitador.failure_mode == "open" else "deny"
    return {
        AUTH_FAILURE_MODE_ENV: "deny",
        **dict.fromkeys(LIMITS_FAILURE_MODE_ENV, limits),
        # The report of a response's tokens comes after the model answered
        # (Kuadrant/kuadrant-operator@v1.5.2 ratelimit_workflow_helpers.go): failing it would throw the answer
        # away.
        REPORT_FAILURE_MODE_ENV: "allow",
    }
