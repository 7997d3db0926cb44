"""maas-platform: reads the stack's config and wires the layers; each layer is a component."""

import pulumi

from components import config
from components.access.keys import ApiKeys, ApiKeysArgs
from components.access.policies import TierPolicies, TierPoliciesArgs
from components.metering.observability import Observability, ObservabilityArgs
from components.platform.cert_manager import CertManager
from components.platform.cluster import ClusterAccess, ClusterArgs
from components.platform.gateway_api import GatewayApiCrds
from components.platform.istio import Istio, IstioArgs
from components.platform.keycloak import Keycloak, KeycloakArgs, issuer_url
from components.platform.kserve import KServe, KServeArgs
from components.platform.kuadrant import Kuadrant, KuadrantArgs
from components.platform.monitoring import MonitoringArgs, MonitoringStack
from components.serving.gateway import GatewayArgs, InferenceGateway
from components.serving.models import ModelArgs, ModelDeployment, RuntimeArgs, VllmServingRuntime

cfg = config.load()

cluster = ClusterAccess("cluster", ClusterArgs(cfg.cluster, cfg.namespaces_in_use()))
on_cluster = pulumi.ResourceOptions(providers=[cluster.provider])
models_namespace = cluster.namespace("models")

gateway_api = GatewayApiCrds("gateway-api", on_cluster)
cert_manager = CertManager("cert-manager", cluster.namespace("cert-manager"), on_cluster)
istio = Istio(
    "istio",
    IstioArgs(
        namespace=cluster.namespace("istio"), namespace_name=cfg.namespaces.istio, gateway_api=gateway_api
    ),
    on_cluster,
)
kserve = KServe(
    "kserve",
    KServeArgs(
        namespace=cluster.namespace("kserve"),
        domain=cfg.domain,
        inference_gateway=f"{cfg.namespaces.models}/{config.GATEWAY_NAME}",
        cert_manager=cert_manager,
        gateway_api=gateway_api,
    ),
    on_cluster,
)
monitoring = (
    MonitoringStack(
        "monitoring",
        MonitoringArgs(cluster.namespace("observability"), cfg.namespaces.observability, cfg.observability),
        on_cluster,
    )
    if cfg.observability.enabled
    else None
)
kuadrant = Kuadrant(
    "kuadrant",
    KuadrantArgs(
        namespace=cluster.namespace("kuadrant"),
        gateway_api=gateway_api,
        istio=istio,
        cert_manager=cert_manager,
        limitador=cfg.limitador,
        redis_url=cfg.limitador_redis_url,
        also_before=[monitoring.crds] if monitoring else [],
        observability=monitoring is not None,
    ),
    on_cluster,
)

gateway = InferenceGateway(
    "inference-gateway",
    GatewayArgs(
        namespace=models_namespace,
        namespace_name=cfg.namespaces.models,
        domain=cfg.domain,
        config=cfg.gateway,
        gateway_api=gateway_api,
        istio=istio,
        cert_manager=cert_manager,
    ),
    on_cluster,
)
vllm_models = [m for m in cfg.models if m.runtime == "vllm"]
vllm_runtime = (
    VllmServingRuntime(
        "vllm-runtime",
        RuntimeArgs(
            namespace=models_namespace,
            kserve=kserve,
            hugging_face_token=cfg.hugging_face_token,
            gpu=any(not m.cpu_serving for m in vllm_models),
            cpu=any(m.cpu_serving for m in vllm_models),
        ),
        on_cluster,
    )
    if vllm_models
    else None
)
models = {
    m.name: ModelDeployment(
        f"model-{m.name}",
        ModelArgs(
            m,
            models_namespace,
            cfg.domain,
            gateway,
            kserve,
            vllm_runtime,
            scraper_namespace=cfg.namespaces.observability if monitoring else None,
        ),
        on_cluster,
    )
    for m in cfg.models
}

api_keys = (
    ApiKeys("api-keys", ApiKeysArgs(cfg.users, cluster.namespace("kuadrant"), kuadrant), on_cluster)
    if cfg.auth.api_keys
    else None
)
keycloak = (
    Keycloak(
        "keycloak",
        KeycloakArgs(
            oidc=cfg.auth.oidc,
            tiers=cfg.tiers,
            users=cfg.users,
            domain=cfg.domain,
            namespace=cluster.namespace("keycloak"),
            namespaced_provider=cluster.provider_in("keycloak"),
        ),
        on_cluster,
    )
    if cfg.auth.oidc.enabled
    else None
)
TierPolicies(
    "tier-policies",
    TierPoliciesArgs(
        tiers=cfg.tiers,
        namespace=models_namespace,
        api_keys=cfg.auth.api_keys,
        oidc_issuer=issuer_url(cfg.auth.oidc) if keycloak else None,
        kuadrant=kuadrant,
        gateway=gateway,
        enforceable_after=[*(m.route for m in models.values()), *([keycloak] if keycloak else [])],
    ),
    on_cluster,
)

if monitoring:
    Observability(
        "observability",
        ObservabilityArgs(
            tiers=cfg.tiers,
            models=cfg.models,
            prices=cfg.prices,
            observability_namespace=cluster.namespace("observability"),
            kuadrant_namespace=cluster.namespace("kuadrant"),
            models_namespace=models_namespace,
            monitoring=monitoring,
            kuadrant=kuadrant,
            gateway=gateway,
        ),
        on_cluster,
    )

pulumi.export("kubeContext", cfg.cluster.context)
pulumi.export("gatewayService", f"{cfg.namespaces.models}/{gateway.service_name}")
pulumi.export("portForward", gateway.port_forward)
pulumi.export(
    "models",
    {
        name: {"url": m.url, "servedModelName": cfg_model.served_name, "curl": m.curl}
        for (name, m), cfg_model in zip(models.items(), cfg.models, strict=True)
    },
)
pulumi.export("tiers", cfg.tier_names)
pulumi.export("users", {u.name: u.tier for u in cfg.users})
if api_keys:
    pulumi.export("apiKeys", api_keys.keys)
if keycloak:
    pulumi.export("oidcIssuer", issuer_url(cfg.auth.oidc))
    pulumi.export("oidcClientId", cfg.auth.oidc.client_id)
    pulumi.export("keycloakPasswords", keycloak.passwords)
    pulumi.export("keycloakAdmin", keycloak.admin)
if monitoring:
    pulumi.export("prometheusPortForward", monitoring.port_forward_prometheus)
    pulumi.export("grafanaPortForward", monitoring.port_forward_grafana)
    pulumi.export("grafanaAdmin", monitoring.grafana_admin)
    pulumi.export(
        "usageExport",
        "python -m commands.usage --prometheus http://localhost:9090 --since 30d --format csv",
    )
