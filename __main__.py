"""maas-platform: reads the stack's config and wires the layers; each layer is a component."""

import pulumi

from components import config
from components.cert_manager import CertManager
from components.cluster import ClusterAccess, ClusterArgs
from components.gateway_api import GatewayApiCrds
from components.istio import Istio, IstioArgs
from components.kserve import KServe, KServeArgs
from components.kuadrant import Kuadrant, KuadrantArgs

cfg = config.load()

cluster = ClusterAccess("cluster", ClusterArgs(cfg.cluster, cfg.namespaces_in_use()))
on_cluster = pulumi.ResourceOptions(providers=[cluster.provider])

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

pulumi.export("kubeContext", cfg.cluster.context)
