"""The platform group: cluster access, then the third-party layers everything else runs on."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.access import ClusterAccess, ClusterArgs
from components.config import StackConfig
from components.flavour.choice import choose
from components.flavour.protocol import Flavour, Metrics
from components.names import GATEWAY_NAME
from components.platform.cert_manager import CertManager, CertManagerArgs
from components.platform.counter_store import CounterStore, CounterStoreArgs
from components.platform.gateway_api import (
    GatewayApiArgs,
    GatewayApiCrds,
    InferenceExtensionArgs,
    InferenceExtensionCrds,
)
from components.platform.istio import Istio, IstioArgs
from components.platform.keda import Keda, KedaArgs
from components.platform.keycloak import Keycloak, KeycloakArgs, default_hostname, keys_url
from components.platform.kserve import KServe, KServeArgs
from components.platform.kuadrant import Kuadrant, KuadrantArgs
from components.platform.monitoring import MonitoringArgs, MonitoringStack


@dataclass(frozen=True)
class Platform:
    flavour: Flavour
    cluster: ClusterAccess
    # Options every layer's component takes: the explicit provider of the stack's cluster.
    on_cluster: pulumi.ResourceOptions
    gateway_api: GatewayApiCrds
    # InferencePool and InferenceObjective, when a model is pooled.
    inference_crds: InferenceExtensionCrds | None
    cert_manager: CertManager
    istio: Istio
    kserve: KServe
    kuadrant: Kuadrant
    # The Prometheus the monitors and rules go to; None: observability off.
    metrics: Metrics | None
    keycloak: Keycloak | None
    # Where Authorino reads the realm's signing keys (in-cluster), when OIDC is on.
    oidc_keys_url: str | None
    # KEDA, when a model scales on its queue; models wait for it.
    keda: Keda | None

    @property
    def scrapers(self) -> tuple[k8s.networking.v1.NetworkPolicyPeerArgs, ...]:
        """The Prometheus pods every metrics door admits; none without observability."""
        return self.metrics.scrapers if self.metrics else ()


def build(cfg: StackConfig) -> Platform:
    flavour = choose(cfg)
    cluster = ClusterAccess("cluster", ClusterArgs(cluster=cfg.cluster, namespaces=cfg.namespaces_in_use()))
    on_cluster = pulumi.ResourceOptions(providers=[cluster.provider])
    gateway_api = GatewayApiCrds(
        "gateway-api", GatewayApiArgs(bundle_url=flavour.gateway_api_bundle()), on_cluster
    )
    inference_crds = (
        InferenceExtensionCrds("inference-extension", InferenceExtensionArgs(), on_cluster)
        if cfg.pooled_models
        else None
    )
    cert_manager = CertManager(
        "cert-manager",
        CertManagerArgs(namespace=cluster.namespace("cert-manager").output, flavour=flavour),
        on_cluster,
    )
    istio = Istio(
        "istio",
        IstioArgs(
            namespace=cluster.namespace("istio"),
            flavour=flavour,
            gateway_namespace=cfg.namespaces.models,
            inference_pools=inference_crds is not None,
            footprint=cfg.cluster.footprint,
            after=[gateway_api, *([inference_crds] if inference_crds else [])],
        ),
        on_cluster,
    )
    kserve = KServe(
        "kserve",
        KServeArgs(
            namespace=cluster.namespace("kserve").output,
            domain=cfg.domain,
            inference_gateway=f"{cfg.namespaces.models}/{GATEWAY_NAME}",
            flavour=flavour,
            after=[cert_manager, gateway_api],
        ),
        on_cluster,
    )
    autoscaled = any(m.autoscaling is not None for m in cfg.models)
    metrics = (
        flavour.metrics(
            lambda: MonitoringStack(
                "monitoring",
                MonitoringArgs(
                    namespace=cluster.namespace("observability"),
                    config=cfg.observability,
                    flavour=flavour,
                    autoscaler_namespace=cfg.namespaces.keda if autoscaled else None,
                    key_service_namespace=cfg.namespaces.models if cfg.key_service_on else None,
                ),
                on_cluster,
            ).metrics(),
            cfg.namespaces.observability,
        )
        if cfg.observability.enabled
        else None
    )
    keda = (
        Keda(
            "keda",
            KedaArgs(
                namespace=cluster.namespace("keda").output, flavour=flavour, footprint=cfg.cluster.footprint
            ),
            on_cluster,
        )
        if autoscaled
        else None
    )
    # Shared counters in a Redis of our own, unless the stack names one of its own.
    counters = (
        CounterStore(
            "limitador-redis",
            CounterStoreArgs(
                namespace=cluster.namespace("kuadrant"),
                limitador=cfg.limitador,
                flavour=flavour,
            ),
            on_cluster,
        )
        if cfg.limitador.storage == "redis" and cfg.limitador_redis_url is None
        else None
    )
    kuadrant = Kuadrant(
        "kuadrant",
        KuadrantArgs(
            namespace=cluster.namespace("kuadrant").output,
            limitador=cfg.limitador,
            flavour=flavour,
            redis_url=counters.url if counters else cfg.limitador_redis_url,
            redis=counters,
            observability=metrics.kuadrant_monitors if metrics else False,
            gateway_namespace=cfg.namespaces.models,
            scrapers=metrics.scrapers if metrics else (),
            key_service_namespace=cfg.namespaces.models if cfg.key_service_on else None,
            after=[gateway_api, istio, cert_manager, *([metrics.crds] if metrics and metrics.crds else [])],
        ),
        on_cluster,
    )
    keycloak = (
        Keycloak(
            "keycloak",
            KeycloakArgs(
                oidc=cfg.auth.oidc,
                namespace=cluster.namespace("keycloak").output,
                namespaced_provider=cluster.provider_in("keycloak"),
                flavour=flavour,
                authorino_namespace=cfg.namespaces.kuadrant,
                key_service_namespace=cfg.namespaces.models if cfg.key_service_on else None,
                gateway_namespace=cfg.namespaces.models,
                footprint=cfg.cluster.footprint,
            ),
            on_cluster,
        )
        if cfg.auth.oidc.enabled
        else None
    )
    platform = Platform(
        flavour=flavour,
        cluster=cluster,
        on_cluster=on_cluster,
        gateway_api=gateway_api,
        inference_crds=inference_crds,
        cert_manager=cert_manager,
        istio=istio,
        kserve=kserve,
        kuadrant=kuadrant,
        metrics=metrics,
        keycloak=keycloak,
        oidc_keys_url=keys_url(cfg.auth.oidc) if keycloak else None,
        keda=keda,
    )
    _export(cfg, platform)
    return platform


def _export(cfg: StackConfig, platform: Platform) -> None:
    pulumi.export("kubeContext", cfg.cluster.context)
    if platform.keycloak:
        pulumi.export("keycloakUrl", default_hostname())
        pulumi.export("oidcClientId", cfg.auth.oidc.client_id)
        pulumi.export("keycloakAdmin", platform.keycloak.admin)
    for key, value in (platform.metrics.exports if platform.metrics else {}).items():
        pulumi.export(key, value)
