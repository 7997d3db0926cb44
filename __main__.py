"""maas-platform: reads the stack's config and wires the layers; each layer is a component."""

import pulumi

from components import config
from components.cert_manager import CertManager
from components.cluster import ClusterAccess, ClusterArgs
from components.gateway import GatewayArgs, InferenceGateway
from components.gateway_api import GatewayApiCrds
from components.istio import Istio, IstioArgs
from components.kserve import KServe, KServeArgs
from components.kuadrant import Kuadrant, KuadrantArgs
from components.models import ModelArgs, ModelDeployment, RuntimeArgs, VllmServingRuntime

cfg = config.load()

cluster = ClusterAccess("cluster", ClusterArgs(cfg.cluster, cfg.namespaces_in_use()))
on_cluster = pulumi.ResourceOptions(providers=[cluster.provider])
models_namespace = cluster.namespace("models")

gateway_api = GatewayApiCrds("gateway-api", on_cluster)
cert_manager = CertManager("cert-manager", cluster.namespace("cert-manager"), on_cluster)
istio = Istio("istio", IstioArgs(cluster.namespace("istio"), gateway_api), on_cluster)
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
kuadrant = Kuadrant(
    "kuadrant",
    KuadrantArgs(cluster.namespace("kuadrant"), gateway_api, istio, cert_manager),
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
vllm_runtime = (
    VllmServingRuntime(
        "vllm-runtime", RuntimeArgs(models_namespace, kserve, cfg.hugging_face_token), on_cluster
    )
    if any(m.runtime == "vllm" for m in cfg.models)
    else None
)
models = {
    m.name: ModelDeployment(
        f"model-{m.name}",
        ModelArgs(m, models_namespace, cfg.domain, gateway, kserve, vllm_runtime),
        on_cluster,
    )
    for m in cfg.models
}

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
