"""What Kuadrant's operators create, as far as this program relies on it to scrape them.

These objects are made by operators, not declared here; the monitors select them by these
labels and ports. Sources: kuadrant-operator v1.5.2, limitador-operator 0.18.x,
authorino-operator 0.25.x (see each entry).
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


# limitador-operator pkg/limitador/k8s_objects.go (Labels(), DefaultServiceHTTPPort)
LIMITADOR_PODS = Workload(
    labels={"app": "limitador", "limitador-resource": "limitador"},
    ports={"http": 8080, "grpc": 8081},
    source="limitador-operator pkg/limitador/k8s_objects.go",
)
# authorino-operator pkg/resources/k8s_services.go; /server-metrics: authorino main.go
AUTHORINO_METRICS_SERVICE = Workload(
    labels={
        "control-plane": "controller-manager",
        "app.kubernetes.io/component": "metrics",
        "app.kubernetes.io/part-of": "authorino",
    },
    ports={"http": 8080},
    source="authorino-operator pkg/resources/k8s_services.go",
    paths=("/metrics", "/server-metrics"),
)
# kuadrant-operator charts/kuadrant-operator/templates/manifests.yaml (kuadrant-operator-metrics)
KUADRANT_OPERATOR_METRICS_SERVICE = Workload(
    labels={"app": "kuadrant", "control-plane": "controller-manager"},
    ports={"metrics": 8080},
    source="kuadrant-operator charts/kuadrant-operator/templates/manifests.yaml",
)
# istio 1.30 manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml
ENVOY_METRICS_PORT = {"http-envoy-prom": 15090}
ENVOY_METRICS_PATH = "/stats/prometheus"

# Model-server metrics the dashboard reads; both the simulator (llm-d-inference-sim
# docs/metrics.md) and vLLM (vllm/v1/metrics/loggers.py) export them.
MODEL_SERVER_METRICS = (
    "vllm:e2e_request_latency_seconds_bucket",
    "vllm:num_requests_running",
    "vllm:prompt_tokens_total",
    "vllm:generation_tokens_total",
)

# The OpenAI API's paths (platform.openai.com/docs/api-reference), as vLLM and the simulator
# serve them (llm-d-inference-sim v0.10.2 pkg/communication/http.go): the three that answer
# with `usage.total_tokens` (what the token limits read; embeddings: pkg/api/embeddings.go
# EmbeddingResponseUsage), and the model list, which produces no tokens.
OPENAI_USAGE_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings")
OPENAI_MODELS_PATH = "/v1/models"
