"""Models: one KServe InferenceService per model, its one public route, and its isolation."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import network
from components.cluster.access import Namespace
from components.config import ComputeResources, ModelConfig
from components.names import GATEWAY_NAME, MODEL_HEADER
from components.pins import upstream, versions
from components.serving import endpoint_picker
from components.serving import gateway as gw
from components.serving.vllm_serving_runtime import (
    HARDENED_POD,
    MODEL_PORT,
    RESTRICTED_CONTAINER,
    RESTRICTED_POD,
    VllmServingRuntime,
    runtime_name,
)

# KServe's predictor Service: <isvc>-predictor, port 80 -> the container's first port.
PREDICTOR_PORT = 80
# Set by KServe on every predictor pod (kserve/kserve@v0.20 components/predictor.go).
ISVC_LABEL = "serving.kserve.io/inferenceservice"
# kserve/kserve@v0.20.0 pkg/constants/constants.go: AutoscalerClass, AutoscalerClassKeda.
AUTOSCALER_CLASS = "serving.kserve.io/autoscalerClass"
QUEUE_METRIC = upstream.QUEUE_METRIC
MODEL_LABEL = "maas-platform/model"
# On a model's route: the tiers it is restricted to, for the policy pack to check that an
# authorization rule enforces them (components/access/tiers.py model_rules).
TIERS_ANNOTATION = "maas-platform/tiers"
# The base URL clients are given: http(s)://<host>.<domain>:8000/v1
PUBLIC_PATH = "/v1"
# The only endpoints published: those whose usage the token limits read. Kuadrant reads
# `usage.total_tokens` from the response (kuadrant-operator v1.5.2 ratelimit_workflow_
# helpers.go; in a stream, the usage chunk before [DONE]: Kuadrant/wasm-shim@v0.14.1 token_usage.rs).
# Chat and text completions and embeddings carry it, streamed ones once the gateway asks
# for it (lua/request_body.lua); /v1/models produces no tokens. Everything else the servers
# offer stays unrouted: /v1/responses streams put usage under `response.usage` (unread),
# and /metrics, /tokenize, the admin and health endpoints are not for clients.
METERED_PATHS = (*upstream.OPENAI_USAGE_PATHS, upstream.OPENAI_MODELS_PATH)
SIMULATOR_MAX_MODEL_LEN = 32768


@dataclass(frozen=True, kw_only=True)
class ModelArgs:
    model: ModelConfig
    # The models' namespace, whose name is the queue query's label.
    namespace: Namespace
    domain: str
    # The gateway the route attaches to (to each of its listeners).
    gateway: gw.InferenceGateway
    # The vLLM runtimes, for vLLM models; None for a catalog without them.
    runtime: VllmServingRuntime | None
    # The Prometheus pods allowed to scrape the model port (none: no Prometheus), and where
    # KEDA asks it for the queue (None: nowhere).
    scrapers: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs] = ()
    query_url: str | None = None
    # KServe, whose controller turns the InferenceService into pods (and KEDA, for a model
    # that scales on its queue: its ScaledObject CRD must exist first).
    after: Sequence[pulumi.Resource] = ()
    # A pooled model's InferencePool and endpoint picker, which its route sends requests to.
    picker: endpoint_picker.EndpointPicker | None = None
    # The served names a simulator answers: its own and those of the models it serves too
    # (StackConfig.served_names); empty: its own only.
    serves: Sequence[str] = ()
    # For a model served by another (ModelConfig.served_by): that model's deployment, whose
    # predictor Service the route sends requests to.
    server: ModelDeployment | None = None


class ModelDeployment(pulumi.ComponentResource):
    """One model: its InferenceService, its single public route and its network isolation.

    The route holds the model's own host and the shared host, and matches only requests the
    gateway marked for this model (MODEL_HEADER), which the limits count by: one budget,
    whichever host a request came by. It carries no policy of its own: the tier policies'
    route covers every host (components/serving/model_list.py POLICY_ROUTE). A model served by
    another (ModelConfig.served_by) has the route only, to that model's server, which its
    NetworkPolicy already isolates.
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:models:ModelDeployment"
    url: str
    curl: str
    # The model's HTTPRoute: policies are enforced only once it exists.
    route: pulumi.Resource

    def __init__(self, name: str, args: ModelArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        model = args.model
        hostname = f"{model.host}.{args.domain}"
        client = args.gateway.client(hostname)
        self.url = f"{client.base_url}{PUBLIC_PATH}"
        if (args.server is None) != (model.served_by is None):
            raise ValueError(f"model {model.name}: a model served by another, and only one, has a server")
        server = model.served_by or model.name
        service = {"name": f"{server}-predictor", "port": PREDICTOR_PORT}
        inference_service = self._inference_service(name, args) if args.server is None else None
        picker = args.picker
        if (picker is None) != (model.scheduling == "service"):
            raise ValueError(f"model {model.name}: a pooled model, and only one, has an endpoint picker")
        self.route = k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=model.name,
                namespace=args.namespace.output,
                labels=model_labels(model),
                annotations={TIERS_ANNOTATION: ",".join(model.tiers)} if model.tiers else None,
            ),
            spec={
                "parentRefs": [
                    {"name": GATEWAY_NAME, "sectionName": listener} for listener in args.gateway.listeners
                ],
                "hostnames": [hostname, args.gateway.api_host],
                "rules": _route_rules(model, service, picker),
            },
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[
                    args.gateway,
                    *([picker] if picker else []),
                    *([args.server] if args.server else []),
                ],
            ),
        )
        network_policy = (
            network.ingress_only(
                f"{name}-isolation",
                name=f"{model.name}-ingress",
                namespace=args.namespace.output,
                selects={ISVC_LABEL: model.name},
                ports=[MODEL_PORT],
                peers=_admitted(model, args.scrapers),
                opts=pulumi.ResourceOptions(parent=self),
            )
            if args.server is None
            else None
        )
        request = {"model": model.served_name, "messages": [{"role": "user", "content": "Hello!"}]}
        self.curl = (
            f"curl -sS {client.curl_options}"
            f"-H 'Authorization: APIKEY '\"$MAAS_API_KEY\" -H 'Content-Type: application/json' "
            f"-d '{json.dumps(request)}' {self.url}/chat/completions"
        )
        self.register_outputs(
            {
                **({"inferenceService": inference_service} if inference_service else {}),
                "route": self.route,
                **({"networkPolicy": network_policy} if network_policy else {}),
                "url": self.url,
                "curl": self.curl,
                "servedModelName": model.served_name,
            }
        )

    def _inference_service(self, name: str, args: ModelArgs) -> k8s.apiextensions.CustomResource:
        model = args.model
        predictor: dict[str, Any] = {
            **_replicas(model, args),
            "labels": model_labels(model),
            # No model server calls the Kubernetes API; KServe reads the storage credentials
            # its initializer needs when it admits the pod, not from inside it.
            "automountServiceAccountToken": False,
        }
        if model.runtime == "simulator":
            predictor["securityContext"] = RESTRICTED_POD
            predictor["containers"] = [_simulator_container(model, args.serves)]
            depends: list[pulumi.Resource] = list(args.after)
            ready_within = 600
        else:
            if args.runtime is None:
                raise ValueError(f"model {model.name}: vLLM models need the vLLM ServingRuntime")
            predictor["model"] = {
                "modelFormat": {"name": "vLLM"},
                "runtime": runtime_name(model),
                "storageUri": model.source,
                "args": [f"--served-model-name={model.served_name}", *model.args],
                "resources": resources(model),
            }
            # KServe adds its storage initializer to this pod; it keeps its own user. Where the
            # flavour gives vLLM a writable home, the cluster picks a non-root user for it
            # (OpenShift's restricted-v2), so the pod can say non-root.
            predictor["securityContext"] = RESTRICTED_POD if args.runtime.home else HARDENED_POD
            if args.runtime.service_account:
                predictor["serviceAccountName"] = args.runtime.service_account
            if model.gpu is not None:
                predictor["nodeSelector"] = dict(model.gpu.node_selector)
                predictor["tolerations"] = [t.model_dump(exclude_none=True) for t in model.gpu.tolerations]
            depends = [*args.after, args.runtime]
            # The weights are downloaded before the server starts.
            ready_within = 3600
        return k8s.apiextensions.CustomResource(
            f"{name}-isvc",
            api_version="serving.kserve.io/v1beta1",
            kind="InferenceService",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=model.name,
                namespace=args.namespace.output,
                labels=model_labels(model),
                annotations={
                    **({AUTOSCALER_CLASS: "keda"} if model.autoscaling else {}),
                    "serving.kserve.io/deploymentMode": "Standard",
                    "pulumi.com/waitFor": "condition=Ready",
                    "pulumi.com/timeoutSeconds": str(ready_within),
                },
            ),
            spec={"predictor": predictor},
            # KServe keeps a model's HPA when its autoscaler class changes to keda, and KEDA then
            # refuses the ScaledObject ("already managed by the hpa"), the other way round two
            # autoscalers would drive one Deployment (kserve/kserve@v0.20.0 reconcilers/autoscaler
            # shouldDeleteHPA; kedacore/keda@v2.20.2 scaledobject_webhook.go verifyHpas): switching
            # scaling on or off recreates the model.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=depends,
                replace_on_changes=[f'metadata.annotations["{AUTOSCALER_CLASS}"]'],
                delete_before_replace=True,
            ),
        )


def _replicas(model: ModelConfig, args: ModelArgs) -> dict[str, Any]:
    """Fixed replicas, or bounds and the queue KServe's KEDA class scales on.

    kserve/kserve@v0.20.0 reconcilers/keda/keda_reconciler.go turns the External metric into a
    ScaledObject `prometheus` trigger (serverAddress, query, threshold = target.value) without
    a metricType, so KEDA compares the query's value per replica (AverageValue): a replica
    is added while more than `queueDepth` requests wait per replica. The query must return
    one series (kedacore/keda@v2.20.2 pkg/scalers/prometheus_scaler.go), hence the sum.
    """
    scaling = model.autoscaling
    if scaling is None:
        return {"minReplicas": model.replicas, "maxReplicas": model.replicas}
    if args.query_url is None:
        raise ValueError(f"model {model.name}: autoscaling reads the queue from the stack's Prometheus")
    selector = f'namespace="{args.namespace.name}",model="{model.name}"'
    waiting = f"sum({QUEUE_METRIC}{{{selector}}})"
    if model.scheduling == "pool":
        # A saturated pool's picker holds requests in its own queue (flow control), out of
        # the servers' gauge: they wait all the same.
        waiting += f" + (sum({upstream.FLOW_CONTROL_QUEUE_SIZE}{{{selector}}}) or vector(0))"
    metric = {
        "backend": "prometheus",
        "serverAddress": args.query_url,
        "query": waiting,
    }
    return {
        "minReplicas": scaling.min_replicas,
        "maxReplicas": scaling.max_replicas,
        "autoScaling": {
            "metrics": [
                {
                    "type": "External",
                    "external": {
                        "metric": metric,
                        "target": {"type": "Value", "value": str(scaling.queue_depth)},
                    },
                }
            ]
        },
    }


def _route_rules(
    model: ModelConfig, service: dict[str, Any], picker: endpoint_picker.EndpointPicker | None
) -> list[dict[str, Any]]:
    """The route's rules: each metered path, for requests the gateway marked for this model.

    A pooled model's inference paths go to its InferencePool (Istio routes a backendRef of that
    kind through the pool's picker, istio/istio@1.30.3 pilot/pkg/config/kube/gateway/conversion.go);
    its model list, which schedules nothing, stays on KServe's Service.
    """

    def rule(paths: Sequence[str], backend: dict[str, Any]) -> dict[str, Any]:
        return {
            "matches": [
                {
                    "path": {"type": "Exact", "value": path},
                    "headers": [{"type": "Exact", "name": MODEL_HEADER, "value": model.served_name}],
                }
                for path in paths
            ],
            "backendRefs": [backend],
            "timeouts": {"request": model.request_timeout},
        }

    if picker is None:
        return [rule(METERED_PATHS, service)]
    pool = {"group": endpoint_picker.POOL_GROUP, "kind": "InferencePool", "name": picker.pool_name}
    return [rule(upstream.OPENAI_USAGE_PATHS, pool), rule([upstream.OPENAI_MODELS_PATH], service)]


def _admitted(
    model: ModelConfig, scrapers: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs]
) -> list[k8s.networking.v1.NetworkPolicyPeerArgs]:
    """Who may open the model port: the gateway's pods, a pooled model's picker (it reads the
    servers' /metrics), and Prometheus when there is one."""
    picker = [network.pods(endpoint_picker.picker_labels(model))] if model.scheduling == "pool" else []
    return [network.pods(gw.POD_LABELS), *picker, *scrapers]


def model_labels(model: ModelConfig) -> dict[str, str]:
    return {"app.kubernetes.io/part-of": "maas-platform", MODEL_LABEL: model.name}


def resources(model: ModelConfig) -> dict[str, dict[str, str]]:
    """The model container's requests and limits; GPUs in both, as the device plugin needs."""
    compute: ComputeResources = model.compute
    requests, limits = dict(compute.requests), dict(compute.limits)
    if model.gpu is not None:
        requests[model.gpu.resource_name] = str(model.gpu.count)
        limits[model.gpu.resource_name] = str(model.gpu.count)
    return {"requests": requests, "limits": limits}


def _simulator_container(model: ModelConfig, serves: Sequence[str] = ()) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/health", "port": MODEL_PORT}, "periodSeconds": 10}
    # The names of the models it serves too, after its own: a multi-value flag whose values
    # follow it as separate arguments (llm-d/llm-d-inference-sim@v0.10.2 pkg/common/parser.go
    # getParamValueFromArgs).
    more = ["--served-model-name", *serves] if len(serves) > 1 else []
    return {
        "name": "kserve-container",
        "image": versions.SIMULATOR_IMAGE,
        "args": [
            f"--model={model.served_name}",
            *more,
            f"--port={MODEL_PORT}",
            "--mode=random",
            # Never look the model up on Hugging Face: the simulator needs no tokenizer.
            "--force-dummy-tokenizer",
            # Long prompts are how token limits are exercised before request limits run out.
            f"--max-model-len={SIMULATOR_MAX_MODEL_LEN}",
            *model.args,
        ],
        "ports": [{"name": "http", "containerPort": MODEL_PORT, "protocol": "TCP"}],
        "readinessProbe": {**probe, "httpGet": {"path": "/health/ready", "port": MODEL_PORT}},
        "livenessProbe": probe,
        "resources": resources(model),
        "securityContext": RESTRICTED_CONTAINER,
    }
