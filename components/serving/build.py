"""The serving group: the inference gateway, the vLLM runtimes, one deployment per model, and
the shared host's model list."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.cluster import network
from components.config import StackConfig
from components.platform.build import Platform
from components.serving.endpoint_picker import EndpointPicker, EndpointPickerArgs
from components.serving.gateway import POD_LABELS, TLS_SECRET, GatewayArgs, InferenceGateway
from components.serving.model_deployment import ISVC_LABEL, ModelArgs, ModelDeployment
from components.serving.model_list import ModelList, ModelListArgs
from components.serving.vllm_serving_runtime import MODEL_PORT, RuntimeArgs, VllmServingRuntime


@dataclass(frozen=True)
class Serving:
    gateway: InferenceGateway
    runtime: VllmServingRuntime | None
    # model name -> its deployment, in catalog order
    models: dict[str, ModelDeployment]
    # pooled model name -> its InferencePool and endpoint picker
    pickers: dict[str, EndpointPicker]
    model_list: ModelList


def build(cfg: StackConfig, platform: Platform) -> Serving:
    models_namespace = platform.cluster.namespace("models")
    gateway = InferenceGateway(
        "inference-gateway",
        GatewayArgs(
            namespace=models_namespace,
            domain=cfg.domain,
            config=cfg.gateway,
            flavour=platform.flavour,
            models=cfg.models,
            tiers=cfg.tiers,
            scrapers=platform.scrapers,
            after=[platform.gateway_api, platform.istio, platform.cert_manager],
        ),
        platform.on_cluster,
    )
    vllm_models = [m for m in cfg.models if m.runtime == "vllm"]
    runtime = (
        VllmServingRuntime(
            "vllm-runtime",
            RuntimeArgs(
                namespace=models_namespace.output,
                hugging_face_token=cfg.hugging_face_token,
                gpu=any(not m.cpu_serving for m in vllm_models),
                cpu=any(m.cpu_serving for m in vllm_models),
                home=platform.flavour.model_server_home(),
                after=[platform.kserve],
            ),
            platform.on_cluster,
        )
        if vllm_models
        else None
    )
    pickers = {
        m.name: EndpointPicker(
            f"model-{m.name}-picker",
            EndpointPickerArgs(
                model=m,
                scheduler=cfg.scheduler,
                namespace=models_namespace,
                flavour=platform.flavour,
                model_pods={ISVC_LABEL: m.name},
                model_port=MODEL_PORT,
                callers=[network.pods(POD_LABELS)],
                scrapers=platform.scrapers,
                after=[platform.istio, *([platform.inference_crds] if platform.inference_crds else [])],
            ),
            platform.on_cluster,
        )
        for m in cfg.pooled_models
    }
    models: dict[str, ModelDeployment] = {}
    # Servers first: a model served by another routes to that one's Service.
    for m in sorted(cfg.models, key=lambda m: m.served_by is not None):
        models[m.name] = ModelDeployment(
            f"model-{m.name}",
            ModelArgs(
                model=m,
                namespace=models_namespace,
                domain=cfg.domain,
                gateway=gateway,
                runtime=runtime,
                scrapers=platform.scrapers,
                query_url=platform.metrics.query_url if platform.metrics else None,
                after=[platform.kserve, *([platform.keda] if platform.keda and m.autoscaling else [])],
                picker=pickers.get(m.name),
                serves=cfg.served_names(m),
                server=models[m.served_by] if m.served_by else None,
            ),
            platform.on_cluster,
        )
    models = {m.name: models[m.name] for m in cfg.models}
    model_list = ModelList(
        "model-list",
        ModelListArgs(
            models=cfg.models,
            tiers=cfg.tiers,
            namespace=models_namespace.output,
            gateway=gateway,
            flavour=platform.flavour,
        ),
        platform.on_cluster,
    )
    serving = Serving(gateway=gateway, runtime=runtime, models=models, pickers=pickers, model_list=model_list)
    _export(cfg, serving)
    return serving


def _export(cfg: StackConfig, serving: Serving) -> None:
    pulumi.export("gatewayService", f"{cfg.namespaces.models}/{serving.gateway.service_name}")
    pulumi.export("portForward", serving.gateway.port_forward)
    if cfg.gateway.https.enabled:
        # Where the certificate (and, self-signed, its issuer as ca.crt) is, for clients to trust.
        pulumi.export("gatewayTlsSecret", f"{cfg.namespaces.models}/{TLS_SECRET}")
    # The one base URL for every model (port-forward or Route, as the flavour reaches it): what
    # OpenAI SDKs take.
    pulumi.export("apiUrl", f"{serving.gateway.client(serving.gateway.api_host).base_url}/v1")
    pulumi.export(
        "models",
        {
            m.name: {
                "url": serving.models[m.name].url,
                "servedModelName": m.served_name,
                "curl": serving.models[m.name].curl,
                # The tiers whose keys the model answers (maas:models[].tiers; default: all).
                "tiers": list(m.tiers) if m.tiers else cfg.tier_names,
            }
            for m in cfg.models
        },
    )
