"""What the third-party charts and operators run, as far as this program relies on it.

These pods are made by charts and operators, not declared here; the monitors scrape them
and the NetworkPolicies ("doors") admit their callers by these labels and ports. Each entry
names the file it was read from, at the version components/pins/versions.py pins.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Workload:
    """Labels on an operator-made object (pod or Service) and its named ports."""

    labels: dict[str, str]
    ports: dict[str, int]
    source: str
    paths: tuple[str, ...] = field(default=("/metrics",))


# Kuadrant/limitador-operator@7472d1c pkg/limitador/k8s_objects.go (Labels(),
# DefaultServiceHTTPPort; main at 7472d1c, the same at v0.18.0-dev01, the 0.18.3 tag not
# being readable): `http` serves the
# metrics and the HTTP API, `grpc` the rate-limit service the gateway calls. The CR is
# "limitador" (Kuadrant/kuadrant-operator@v1.5.2 internal/kuadrant/kuadrant.go).
LIMITADOR_PODS = Workload(
    labels={"app": "limitador", "limitador-resource": "limitador"},
    ports={"http": 8080, "grpc": 8081},
    source="Kuadrant/limitador-operator@7472d1c pkg/limitador/k8s_objects.go",
)
# Its Service (headless; Kuadrant/limitador-operator@7472d1c pkg/limitador/k8s_objects.go
# Service()).
LIMITADOR_SERVICE = "limitador-limitador"
# The Authorino that Kuadrant creates ("authorino": Kuadrant/kuadrant-operator@v1.5.2
# internal/controller/authorino_reconciler.go), as Kuadrant/authorino-operator@v0.25.2
# pkg/resources/k8s_util.go defaultAuthorinoLabels deploys it. It declares no container
# ports; Authorino listens on these (Kuadrant/authorino@v0.26.2 main.go flag defaults): the
# gateway calls `grpc` (Kuadrant/kuadrant-operator@v1.5.2
# internal/controller/auth_workflow_helpers.go: authorino-authorino-authorization:50051).
AUTHORINO_SERVICE = "authorino-authorino-authorization"
AUTHORINO_PODS = Workload(
    labels={"authorino-resource": "authorino", "control-plane": "controller-manager"},
    ports={"grpc": 50051, "http": 5001, "oidc": 8083, "metrics": 8080, "health": 8081},
    source=(
        "Kuadrant/authorino-operator@v0.25.2 pkg/resources/k8s_util.go; Kuadrant/authorino@v0.26.2 main.go"
    ),
)
# Kuadrant/kuadrant-operator@v1.5.2 charts/kuadrant-operator/templates/manifests.yaml: the gateway's
# Envoy fetches Kuadrant's wasm module from `wasm`
# (internal/controller/istio_extension_reconciler.go, remote http_uri kuadrant-operator-wasm:8082) and calls
# `grpc` for extensions' descriptors (internal/kuadrant/kuadrant.go).
KUADRANT_OPERATOR_PODS = Workload(
    labels={"app": "kuadrant", "control-plane": "controller-manager"},
    ports={"metrics": 8080, "grpc": 50051, "wasm": 8082},
    source="Kuadrant/kuadrant-operator@v1.5.2 charts/kuadrant-operator/templates/manifests.yaml",
)
# The chart's other operators (its subcharts authorino-operator 0.25.2, limitador-operator
# 0.18.3, dns-operator 0.17.1): each serves only metrics, which this program does not scrape,
# and none registers a webhook, so nothing is admitted to them.
KUADRANT_OTHER_OPERATORS = (
    Workload(
        labels={"control-plane": "authorino-operator"},
        ports={"metrics": 8080},
        source="authorino-operator 0.25.2 chart templates/manifests.yaml",
    ),
    Workload(
        labels={"app": "limitador-operator", "control-plane": "controller-manager"},
        ports={"metrics": 8080},
        source="limitador-operator 0.18.3 chart templates/manifests.yaml",
    ),
    Workload(
        labels={"control-plane": "dns-operator-controller-manager"},
        ports={"metrics": 8080, "pprof": 8082},
        source="dns-operator 0.17.1 chart templates/manifests.yaml",
    ),
)
# istio/istio@1.30.3 manifests/charts/istio-control/istio-discovery/templates/deployment.yaml and
# service.yaml: gateways fetch config and certificates from `tls-xds` (templates/configmap.yaml
# discoveryAddress, files/kube-gateway.yaml CA_ADDR: istiod.<ns>.svc:15012); the API server
# calls the webhooks through the Service's 443 -> `https-webhooks`.
ISTIOD_PODS = Workload(
    labels={"app": "istiod", "istio": "pilot"},
    ports={"grpc-xds": 15010, "tls-xds": 15012, "http-monitoring": 15014, "https-webhooks": 15017},
    source="istio/istio@1.30.3 manifests/charts/istio-control/istio-discovery/templates/deployment.yaml",
)
# Kuadrant/authorino-operator@v0.25.2 pkg/resources/k8s_services.go; /server-metrics:
# Kuadrant/authorino@v0.26.2 main.go
AUTHORINO_METRICS_SERVICE = Workload(
    labels={
        "control-plane": "controller-manager",
        "app.kubernetes.io/component": "metrics",
        "app.kubernetes.io/part-of": "authorino",
    },
    ports={"http": 8080},
    source="Kuadrant/authorino-operator@v0.25.2 pkg/resources/k8s_services.go",
    paths=("/metrics", "/server-metrics"),
)
# Kuadrant/kuadrant-operator@v1.5.2 charts/kuadrant-operator/templates/manifests.yaml
# (kuadrant-operator-metrics)
KUADRANT_OPERATOR_METRICS_SERVICE = Workload(
    labels={"app": "kuadrant", "control-plane": "controller-manager"},
    ports={"metrics": 8080},
    source="Kuadrant/kuadrant-operator@v1.5.2 charts/kuadrant-operator/templates/manifests.yaml",
)


# istio/istio@1.30.3 manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml: a
# Gateway's pods. Each listener's port is served on the pod itself (the Service sets no
# targetPort: istio/istio@1.30.3 pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go
# extractServicePorts;
# ports below 1024 through the sysctl net.ipv4.ip_unprivileged_port_start=0, values.yaml).
# cert-manager/cert-manager@v1.21.1 deploy/charts/cert-manager/templates/webhook-deployment.yaml
# (release "cert-manager"): the API server calls the webhook Service's 443 -> `https`
# (webhook-service.yaml; values.yaml webhook.securePort 10250).
CERT_MANAGER_WEBHOOK_PODS = Workload(
    labels={
        "app.kubernetes.io/name": "webhook",
        "app.kubernetes.io/instance": "cert-manager",
        "app.kubernetes.io/component": "webhook",
    },
    ports={"https": 10250},
    source="cert-manager/cert-manager@v1.21.1 deploy/charts/cert-manager/templates/webhook-deployment.yaml",
)
# The pods cert-manager runs to answer an ACME HTTP-01 challenge, in the Certificate's
# namespace (cert-manager/cert-manager@v1.21.1 pkg/apis/acme/v1/types.go SolverIdentificationLabelKey;
# pkg/issuer/acme/http/http.go acmeSolverListenPort, pod.go). With a Gateway API solver the
# gateway routes the CA's (and cert-manager's self-check's) request to them.
ACME_SOLVER_PODS = Workload(
    labels={"acme.cert-manager.io/http01-solver": "true"},
    ports={"http": 8089},
    source="cert-manager/cert-manager@v1.21.1 pkg/issuer/acme/http/pod.go",
)
# kserve/kserve@v0.20.0 charts/kserve-resources/files/kserve/resources.yaml: the only
# Deployment of the chart; every webhook goes to kserve-webhook-server-service 443 -> `webhook-server`, with
# failurePolicy Fail (no InferenceService or model pod is admitted while it is unreachable).
KSERVE_CONTROLLER_PODS = Workload(
    labels={"control-plane": "kserve-controller-manager"},
    ports={"webhook-server": 9443},
    source="kserve/kserve@v0.20.0 charts/kserve-resources/files/kserve/resources.yaml",
)
# kube-prometheus-stack 88.3.0 with fullnameOverride "maas", release "monitoring". Prometheus
# and Alertmanager pods as the operator labels them (prometheus-operator/prometheus-operator@v0.93.0
# pkg/prometheus/server/operator.go makeSelectorLabels, pkg/alertmanager/operator.go);
# Prometheus sends alerts to Alertmanager's `http-web`, and Grafana's datasources query both
# (prometheus-community/helm-charts@kube-prometheus-stack-88.3.0
# charts/kube-prometheus-stack/templates/prometheus/prometheus.yaml alerting,
# charts/kube-prometheus-stack/templates/grafana/configmaps-datasources.yaml).
PROMETHEUS_PODS = Workload(
    labels={"app.kubernetes.io/name": "prometheus", "operator.prometheus.io/name": "maas-prometheus"},
    ports={"http-web": 9090, "reloader-web": 8080},
    source="prometheus-operator/prometheus-operator@v0.93.0 pkg/prometheus/server/operator.go",
)
ALERTMANAGER_PODS = Workload(
    labels={"app.kubernetes.io/name": "alertmanager", "alertmanager": "maas-alertmanager"},
    ports={"http-web": 9093, "reloader-web": 8080},
    source="prometheus-operator/prometheus-operator@v0.93.0 pkg/alertmanager/operator.go, statefulset.go",
)
# The grafana chart as kube-prometheus-stack 88.3.0 pins it, 12.10.4
# (grafana-community/helm-charts@grafana-12.10.4 charts/grafana/templates/_pod.tpl).
GRAFANA_PODS = Workload(
    labels={"app.kubernetes.io/name": "grafana", "app.kubernetes.io/instance": "monitoring"},
    ports={"grafana": 3000},
    source="grafana-community/helm-charts@grafana-12.10.4 charts/grafana/templates/_pod.tpl",
)
# The Prometheus operator's admission webhooks, in their own Deployment (the chart's
# prometheusOperator.admissionWebhooks.deployment, which monitoring.py enables): the
# operator's own port 10250 also serves /debug/pprof to anyone who reaches it
# (prometheus-operator/prometheus-operator@v0.93.0 cmd/operator/main.go), the webhook binary only the webhooks
# (cmd/admission-webhook/main.go). kube-prometheus-stack 88.3.0
# templates/prometheus-operator/admission-webhooks/deployment/deployment.yaml.
PROMETHEUS_WEBHOOK_PODS = Workload(
    labels={"app": "kube-prometheus-stack-operator-webhook", "release": "monitoring"},
    ports={"https": 10250},
    source="kube-prometheus-stack 88.3.0 templates/prometheus-operator/admission-webhooks/deployment",
)
# Keycloak operator (keycloak/keycloak operator/, read at commits around 26.7.4, not at the
# tag: docs/unverified.md): the server pods of the Keycloak CR "keycloak"
# (KeycloakDeploymentDependentResource, Constants.DEFAULT_LABELS, INSTANCE_LABEL). The
# realm-import Job's pods copy these labels with `app` set to "keycloak-realm-import"
# (KeycloakRealmImportJobDependentResource) and reach the database themselves (`kc.sh import`).
KEYCLOAK_SERVER_PODS = Workload(
    labels={
        "app": "keycloak",
        "app.kubernetes.io/managed-by": "keycloak-operator",
        "app.kubernetes.io/instance": "keycloak",
    },
    ports={"http": 8080, "https": 8443, "management": 9000},
    source="keycloak operator KeycloakDeploymentDependentResource.java",
)
KEYCLOAK_DATABASE_CLIENTS = {
    "app.kubernetes.io/managed-by": "keycloak-operator",
    "app.kubernetes.io/instance": "keycloak",
}


# KEDA 2.20.2 (kedacore/charts keda/templates and values.yaml; each pod labelled `app` and
# `app.kubernetes.io/name` with its Deployment's name). The metrics API server relays the
# HPA's questions to the operator's gRPC (`metricsservice`); the API server calls the
# metrics API server (APIService v1beta1.external.metrics.k8s.io, Service 443 -> 6443) and
# the admission webhooks (Service 443 -> 9443); the operator queries each trigger's
# Prometheus (kedacore/keda@v2.20.2 pkg/scalers/prometheus_scaler.go).
KEDA_OPERATOR_PODS = Workload(
    labels={"app": "keda-operator"},
    ports={"metricsservice": 9666},
    source="kedacore/charts v2.20.2 keda/templates/manager/deployment.yaml",
)
KEDA_METRICS_SERVER_PODS = Workload(
    labels={"app": "keda-operator-metrics-apiserver"},
    ports={"https": 6443},
    source="kedacore/charts v2.20.2 keda/templates/metrics-server/deployment.yaml",
)
KEDA_WEBHOOK_PODS = Workload(
    labels={"app": "keda-admission-webhooks"},
    ports={"http": 9443},
    source="kedacore/charts v2.20.2 keda/templates/webhooks/deployment.yaml",
)


def gateway_pod_labels(gateway: str) -> dict[str, str]:
    """The label Istio's Deployment and Service of a Gateway select its pods by."""
    return {"gateway.networking.k8s.io/gateway-name": gateway}


GATEWAY_STATUS_PORT = {"status-port": 15021}
ENVOY_METRICS_PORT = {"http-envoy-prom": 15090}
ENVOY_METRICS_PATH = "/stats/prometheus"

# Model-server metrics the dashboard reads; both the simulator
# (llm-d/llm-d-inference-sim@v0.10.2 docs/metrics.md) and vLLM
# (vllm-project/vllm@v0.31.0 vllm/v1/metrics/loggers.py) export them.
# Requests waiting for a slot: what scaled models follow
# (llm-d/llm-d-inference-sim@v0.10.2 pkg/llm-d-inference-sim/metrics.go ReqWaitingMetricName).
QUEUE_METRIC = "vllm:num_requests_waiting"
MODEL_SERVER_METRICS = (
    "vllm:e2e_request_latency_seconds_bucket",
    "vllm:num_requests_running",
    QUEUE_METRIC,
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
)

# The OpenAI API's paths (platform.openai.com/docs/api-reference), as vLLM and the simulator
# serve them (llm-d/llm-d-inference-sim@v0.10.2 pkg/communication/http.go): the three that answer
# with `usage.total_tokens` (what the token limits read; embeddings: pkg/api/embeddings.go
# EmbeddingResponseUsage), and the model list, which produces no tokens.
OPENAI_USAGE_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
OPENAI_MODELS_PATH = "/v1/models"

# llm-d-router's endpoint picker (EPP). Its ports (llm-d/llm-d-router@v0.10.0
# pkg/epp/server/options.go DefaultGrpcPort; the chart's container ports,
# config/charts/routerlib/templates/_deployment.yaml): the gateway calls `grpc` (ext_proc,
# TLS with a self-signed certificate unless --cert-path: pkg/epp/server/runserver.go), the
# kubelet probes `grpc-health`, and
# `metrics` serves Prometheus (and pprof unless --enable-pprof=false).
ENDPOINT_PICKER_PORTS = {"grpc": 9002, "grpc-health": 9003, "metrics": 9090}
# The gRPC health service the chart probes a single replica with (llm-d/llm-d-router@v0.10.0
# config/charts/routerlib/templates/_deployment.yaml; cmd/epp/runner/health.go answers it
# once the pool has synced).
ENDPOINT_PICKER_HEALTH_SERVICE = "inference-extension"
# Every header name the picker defines (llm-d/llm-d-router@v0.10.0
# pkg/epp/metadata/consts.go): the InferenceObjective
# whose priority a request gets (by the objective's name; none or unknown: priority 0,
# pkg/epp/requestcontrol/director.go), the flow it shares its priority band fairly with, a
# model rewrite, latency objectives, video hints (each with its deprecated alias where it
# has one), and the endpoint keys it hands to the gateway. Only the gateway may set them.
OBJECTIVE_HEADER = "x-llm-d-inference-objective"
FAIRNESS_HEADER = "x-llm-d-inference-fairness-id"
ENDPOINT_PICKER_HEADERS = (
    OBJECTIVE_HEADER,
    "x-gateway-inference-objective",
    FAIRNESS_HEADER,
    "x-gateway-inference-fairness-id",
    "x-llm-d-model-name-rewrite",
    "x-gateway-model-name-rewrite",
    "x-llm-d-slo-ttft-ms",
    "x-slo-ttft-ms",
    "x-llm-d-slo-tpot-ms",
    "x-slo-tpot-ms",
    "x-llm-d-video-fps",
    "x-llm-d-video-duration-seconds",
    "x-llm-d-video-resolution",
    "x-gateway-destination-endpoint-subset",
    "x-gateway-destination-endpoint",
    "x-gateway-destination-endpoint-scores",
    "x-gateway-destination-endpoint-served",
)
# Flow control's outcome per request, by priority band and pool
# (llm-d/llm-d-router@v0.10.0 pkg/epp/metrics/llm_d_router_metrics.go; outcomes:
# pkg/epp/flowcontrol/types QueueOutcome).
FLOW_CONTROL_REQUESTS = "llm_d_epp_flow_control_requests_total"
FLOW_CONTROL_DISPATCHED = "Dispatched"
FLOW_CONTROL_QUEUE_SIZE = "llm_d_epp_flow_control_queue_size"
