"""Pooled models: the InferencePool, llm-d's endpoint picker beside it, and the gateway wiring
that puts the picker after authentication. Upstream facts are restated here from the files
named, not imported from the program, so a drift between the two fails."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.config import Namespaces
from harness.program import Declared, Evaluation, typed_config
from maas_policies.network import selects
from tests.support.configs import assert_refused, evaluate_variant
from tests.support.labels import predictor_pod_labels
from tests.support.prometheus import Exporter, Series, prometheus, series, serve

# istio/istio@1.30.3 pilot/pkg/xds/filters/filters.go InferencePoolExtProc, in Envoy's JSON.
ISTIO_POOL_FILTER = {
    "name": "envoy.filters.http.ext_proc",
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
        "grpc_service": {"envoy_grpc": {"cluster_name": "dummy"}, "timeout": "10s"},
        "failure_mode_allow": True,
        "processing_mode": {"request_header_mode": "SKIP", "response_header_mode": "SKIP"},
        "message_timeout": "1000s",
        "metadata_options": {
            "receiving_namespaces": {"untyped": ["envoy.lb"]},
            "forwarding_namespaces": {"untyped": ["envoy.lb"]},
        },
    },
}
# Kuadrant/kuadrant-operator@v1.5.2 internal/istio/utils.go: its wasm filter's EnvoyFilter sets no priority.
KUADRANT_PRIORITY = 0


def _pooled(stack: Evaluation) -> list[str]:
    return [m.name for m in typed_config(stack.stack).models if m.scheduling == "pool"]


def _picker(stack: Evaluation, model: str) -> tuple[Declared, dict[str, Any]]:
    deployment = stack.one("Deployment", f"{model}-epp")
    return deployment, deployment.inputs["spec"]["template"]["spec"]


def test_dev_and_gpu_pool_a_model_and_dev_oidc_none(stack: Evaluation) -> None:
    expected = {"dev": ["simulator"], "gpu": ["qwen3-0-6b-instruct"], "dev-oidc": [], "ocp": []}[stack.stack]
    assert _pooled(stack) == expected
    assert [p.object_name for p in stack.objects("InferencePool")] == expected


def test_the_pool_holds_the_models_pods_on_their_port_and_names_its_picker(stack: Evaluation) -> None:
    for model in _pooled(stack):
        pool = stack.one("InferencePool", model).inputs["spec"]
        isvc = stack.one("InferenceService", model)
        assert selects({"matchLabels": pool["selector"]["matchLabels"]}, predictor_pod_labels(isvc))
        for other in stack.objects("InferenceService"):
            if other.object_name != model:
                assert not selects(
                    {"matchLabels": pool["selector"]["matchLabels"]}, predictor_pod_labels(other)
                )
        # Both runtimes serve the API and /metrics on 8080 (the picker scrapes it there).
        assert pool["targetPorts"] == [{"number": 8080}]
        picker = pool["endpointPickerRef"]
        assert picker["failureMode"] == "FailClose"
        service = stack.one("Service", picker["name"])
        (grpc,) = [p for p in service.inputs["spec"]["ports"] if p["port"] == picker["port"]["number"]]
        # The gateway speaks gRPC (HTTP/2) to it (istio/istio@1.30.3 pkg/config/kube/conversion.go).
        assert grpc["appProtocol"] == "kubernetes.io/h2c"
        deployment, pod = _picker(stack, model)
        assert selects({"matchLabels": service.inputs["spec"]["selector"]}, pod_labels(deployment))
        (container,) = pod["containers"]
        named = {p["name"]: p["containerPort"] for p in container["ports"]}
        # llm-d/llm-d-router@v0.10.0 pkg/epp/server/options.go: ext_proc on 9002, health 9003.
        assert named[grpc["targetPort"]] == 9002 == picker["port"]["number"]
        assert container["readinessProbe"]["grpc"] == {"port": 9003, "service": "inference-extension"}
        # Active-active: every replica ready and serving (no --ha-enable-leader-election, so
        # llm-d/llm-d-router@v0.10.0 cmd/epp/runner/health.go answers "inference-extension" on each), none
        # missing on an update; the gateway's calls, refusals' included, go to whichever is left.
        assert deployment.inputs["spec"]["replicas"] == typed_config(stack.stack).scheduler.replicas == 2
        assert not [a for a in container["args"] if "leader-election" in a]
        assert deployment.inputs["spec"]["strategy"] == {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
        }


def pod_labels(deployment: Declared) -> dict[str, str]:
    labels: dict[str, str] = deployment.inputs["spec"]["template"]["metadata"]["labels"]
    return labels


def test_the_picker_runs_its_pool_with_the_stacks_thresholds(stack: Evaluation) -> None:
    cfg = typed_config(stack.stack)
    for model in _pooled(stack):
        _, pod = _picker(stack, model)
        (container,) = pod["containers"]
        args = container["args"]
        assert f"--pool-name={model}" in args
        assert f"--pool-namespace={cfg.namespaces.models}" in args
        assert "--pool-group=inference.networking.k8s.io" in args
        # Prometheus scrapes it without a token, and no profiler is served.
        assert {"--metrics-endpoint-auth=false", "--enable-pprof=false"} <= set(args)
        (config_file,) = [a.split("=", 1)[1] for a in args if a.startswith("--config-file=")]
        (mount,) = [m for m in container["volumeMounts"] if config_file.startswith(m["mountPath"] + "/")]
        (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
        config_map = stack.one("ConfigMap", volume["configMap"]["name"])
        config = yaml.safe_load(config_map.inputs["data"][config_file.rsplit("/", 1)[1]])
        # llm-d/llm-d-router@v0.10.0 apix/config/v1alpha1 and cmd/epp/runner (feature gate flowControl).
        assert (config["apiVersion"], config["kind"]) == ("llm-d.ai/v1alpha1", "EndpointPickerConfig")
        assert config["featureGates"] == ["flowControl"]
        (detector,) = [p for p in config["plugins"] if p["type"] == "utilization-detector"]
        saturation = cfg.scheduler.saturation
        assert detector["parameters"] == {
            "queueDepthThreshold": saturation.queue_depth,
            "kvCacheUtilThreshold": saturation.kv_cache_utilization,
        }
        assert config["flowControl"] == {
            "defaultRequestTTL": cfg.scheduler.queue_timeout,
            "saturationDetector": {"pluginRef": "utilization-detector"},
            # Every band shares its turns among its flows (users); the policy is a plugin.
            "defaultPriorityBand": {"fairnessPolicyRef": "round-robin-fairness-policy"},
        }
        assert {"type": "round-robin-fairness-policy"} in config["plugins"]
        profiles = config["schedulingProfiles"]
        assert {p["pluginRef"] for p in profiles[0]["plugins"]} <= {p["type"] for p in config["plugins"]}


def test_a_changed_scheduler_config_restarts_the_picker_which_reads_it_once() -> None:
    def template(variant: dict[str, Any]) -> dict[str, Any]:
        result = evaluate_variant("dev", variant)
        assert result.error is None, result.error
        deployment, _ = _picker(result, "simulator")
        annotations: dict[str, Any] = deployment.inputs["spec"]["template"]["metadata"]["annotations"]
        return annotations

    same, again = template({}), template({})
    changed = template({"maas:scheduler": {"saturation": {"queueDepth": 3}}})
    assert same == again
    assert same != changed


def test_the_picker_meets_restricted_and_may_only_read_its_namespace(stack: Evaluation) -> None:
    """Pod Security "restricted" (pod-security-admission v0.36.2 policy checks) with the
    image's non-root user; its token is for a Role that gets, lists and watches pods, its pool
    and the objectives, in its own namespace only."""
    for model in _pooled(stack):
        deployment, pod = _picker(stack, model)
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] is True
        assert all(set(v) & {"configMap", "emptyDir"} for v in pod["volumes"])
        account = pod["serviceAccountName"]
        (binding,) = [
            b for b in stack.objects("RoleBinding") if any(s["name"] == account for s in b.inputs["subjects"])
        ]
        assert binding.namespace == deployment.namespace
        role = stack.one("Role", binding.inputs["roleRef"]["name"])
        assert {v for rule in role.inputs["rules"] for v in rule["verbs"]} == {"get", "list", "watch"}
        granted = {
            (g, r) for rule in role.inputs["rules"] for g in rule["apiGroups"] for r in rule["resources"]
        }
        assert granted == {
            ("", "pods"),
            ("inference.networking.k8s.io", "inferencepools"),
            ("llm-d.ai", "inferenceobjectives"),
            ("llm-d.ai", "inferencemodelrewrites"),
        }
        assert not [b for b in stack.objects("ClusterRoleBinding") if account in str(b.inputs)]


def test_the_gateway_speaks_tls_to_the_picker(stack: Evaluation) -> None:
    """The picker serves TLS with a certificate of its own (llm-d/llm-d-router@v0.10.0
    pkg/epp/server/runserver.go), and Istio sets up none by itself."""
    namespace = typed_config(stack.stack).namespaces.models
    for model in _pooled(stack):
        rule = stack.one("DestinationRule", f"{model}-epp").inputs["spec"]
        assert rule["host"] == f"{model}-epp.{namespace}.svc.cluster.local"
        assert rule["trafficPolicy"]["tls"]["mode"] == "SIMPLE"


def test_the_pools_filter_runs_after_kuadrants_and_the_lua_filter(stack: Evaluation) -> None:
    """Istio puts its pool filter before Kuadrant's wasm-shim and our Lua filter; EnvoyFilters
    apply in ascending priority (istio/istio@1.30.3 pilot/pkg/model/push_context.go EnvoyFilters),
    each patch in order (envoyfilter/listener_patch.go patchHTTPFilters). Ours must run after
    Kuadrant's and the Lua filter, remove Istio's filter, then insert the same one, by the
    same name, before the router."""
    filters = {f.object_name: f.inputs["spec"] for f in stack.objects("EnvoyFilter")}
    if not _pooled(stack):
        assert "inference-gateway-picker-order" not in filters
        return
    order = filters["inference-gateway-picker-order"]
    assert order["priority"] > KUADRANT_PRIORITY > filters["inference-gateway-request-body"]["priority"]
    remove, insert = order["configPatches"]
    assert remove["patch"] == {"operation": "REMOVE"}
    sub = "envoy.filters.network.http_connection_manager"
    assert remove["match"]["listener"]["filterChain"]["filter"] == {
        "name": sub,
        "subFilter": {"name": "envoy.filters.http.ext_proc"},
    }
    assert insert["patch"] == {"operation": "INSERT_BEFORE", "value": ISTIO_POOL_FILTER}
    assert insert["match"]["listener"]["filterChain"]["filter"]["subFilter"] == {
        "name": "envoy.filters.http.router"
    }
    assert remove["match"]["context"] == insert["match"]["context"] == "GATEWAY"


def istiod_env(stack: Evaluation) -> dict[str, str]:
    """istiod's extra environment: the chart's top-level `env`, or on OpenShift the Sail
    `Istio` resource's `pilot.env` (Sail istio/istio@1.30.3 api/v1/values_types.go)."""
    istio = [r for r in stack.objects("Istio") if r.inputs["apiVersion"] == "sailoperator.io/v1"]
    if istio:
        (sail,) = istio
        return dict(sail.inputs["spec"]["values"]["pilot"].get("env", {}))
    return dict(stack.release("istiod").inputs["values"].get("env", {}))


def test_a_pooled_model_on_openshift_turns_routing_to_pools_on_in_sails_istio() -> None:
    simulator = {"name": "simulator", "host": "simulator", "runtime": "simulator", "scheduling": "pool"}
    pooled = evaluate_variant("ocp", {"maas:models": [simulator]})
    assert pooled.error is None, pooled.error
    assert istiod_env(pooled) == {"ENABLE_GATEWAY_API_INFERENCE_EXTENSION": "true"}
    assert pooled.objects("InferencePool")


def test_istiod_routes_to_pools_only_where_models_are_pooled(stack: Evaluation) -> None:
    """istio/istio@1.30.3 pilot/pkg/features/experimental.go: off by default; the istiod chart puts
    top-level `env` into istiod's container (istio-discovery templates/deployment.yaml)."""
    env = istiod_env(stack)
    pooled = bool(_pooled(stack))
    assert (env.get("ENABLE_GATEWAY_API_INFERENCE_EXTENSION") == "true") is pooled
    bundles = [
        b for b in stack.of_type("kubernetes:yaml/v2:ConfigGroup") if b.name == "inference-extension-crds"
    ]
    assert len(bundles) == int(pooled)
    if pooled:
        (crds,) = bundles
        assert crds.inputs["files"] == [
            "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api-inference-extension/v1.6.0/"
            "config/crd/bases/inference.networking.k8s.io_inferencepools.yaml",
            "https://raw.githubusercontent.com/llm-d/llm-d-router/v0.10.0/config/crd/bases/"
            "llm-d.ai_inferenceobjectives.yaml",
            "https://raw.githubusercontent.com/llm-d/llm-d-router/v0.10.0/config/crd/bases/"
            "llm-d.ai_inferencemodelrewrites.yaml",
        ]


def test_the_route_waits_for_the_picker_and_the_picker_for_istio_and_its_crds(stack: Evaluation) -> None:
    for model in _pooled(stack):
        route = stack.one("HTTPRoute", model)
        deployment, _ = _picker(stack, model)
        pool = stack.one("InferencePool", model)
        assert stack.waits_for(route, deployment)
        assert stack.waits_for(deployment, pool)
        assert stack.waits_for(pool, stack.release("istiod"))


def test_a_pooled_model_that_scales_counts_the_pickers_queue(tmp_path: Path) -> None:
    """With flow control the waiting requests sit in the picker, out of the servers' gauge: the
    scaled model's query adds the picker's queue (llm-d-router v0.10.0
    llm_d_epp_flow_control_queue_size), and still returns one series, run in a real
    Prometheus, also when the picker has queued nothing yet."""
    simulator = {
        "name": "simulator",
        "host": "simulator",
        "runtime": "simulator",
        "scheduling": "pool",
        "autoscaling": {"maxReplicas": 3},
    }
    result = evaluate_variant("dev", {"maas:models": [simulator]})
    assert result.error is None, result.error
    predictor = result.one("InferenceService", "simulator").inputs["spec"]["predictor"]
    query = predictor["autoScaling"]["metrics"][0]["external"]["metric"]["query"]
    llm = Namespaces().models
    servers, picker = Exporter(), Exporter()
    servers.set({series("vllm:num_requests_waiting", namespace=llm, model="simulator", pod="a"): 2})
    picker.set({series("llm_d_epp_flow_control_queue_size", namespace="elsewhere", model="simulator"): 9})
    with (
        serve(servers) as model_address,
        serve(picker) as picker_address,
        prometheus(
            tmp_path, {"groups": []}, {"model": model_address, "endpoint-picker": picker_address}
        ) as server,
    ):
        assert _settled(server, query) == 2
        picker.set(
            {
                series(
                    "llm_d_epp_flow_control_queue_size", namespace=llm, model="simulator", priority="0"
                ): 4,
                series(
                    "llm_d_epp_flow_control_queue_size", namespace=llm, model="simulator", priority="2"
                ): 1,
            }
        )
        deadline = time.monotonic() + 30
        while _settled(server, query) != 7 and time.monotonic() < deadline:
            time.sleep(0.5)
        assert _settled(server, query) == 7


def _settled(server: Any, query: str) -> float:
    deadline = time.monotonic() + 30
    while not (found := server.vector(query)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert len(found) == 1, found
    return float(found[0]["value"][1])


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ({"name": "m" * 60, "scheduling": "pool"}, "a pooled model has a name of at most 59 characters"),
        ({"name": "sim", "scheduling": "round-robin"}, "scheduling"),
    ],
)
def test_impossible_scheduling_is_refused(model: dict[str, Any], expected: str) -> None:
    assert_refused("dev", {"maas:models": [{"host": "sim", "runtime": "simulator", **model}]}, expected)


def test_a_queue_longer_than_the_routes_timeout_is_accepted() -> None:
    """The route's timeout starts once the request leaves the picker (envoyproxy/envoy@main
    source/common/router/router.cc
    onRequestComplete, after ext_proc lets it through): the queue's wait and the model's
    answer add up, neither cuts the other short."""
    result = evaluate_variant("dev", {"maas:scheduler": {"queueTimeout": "400s"}})
    assert result.error is None, result.error
    (config_map,) = [c for c in result.objects("ConfigMap") if c.object_name == "simulator-epp"]
    assert (
        yaml.safe_load(config_map.inputs["data"]["config.yaml"])["flowControl"]["defaultRequestTTL"] == "400s"
    )


def test_saturation_thresholds_are_checked() -> None:
    assert_refused(
        "dev", {"maas:scheduler": {"saturation": {"kvCacheUtilization": 1.5}}}, "kvCacheUtilization"
    )
    # 0 would switch the picker's TTL off, the only bound on the wait.
    assert_refused(
        "dev",
        {"maas:scheduler": {"queueTimeout": "0s"}},
        "maas:scheduler.queueTimeout: '0s' must be above 0: it is the only bound on how long a request waits",
    )


def test_the_pickers_series_stay_bounded_as_users_grow(stack_of: Any, tmp_path: Path) -> None:
    """The picker labels per-request metrics and its queues with the fairness id, the user
    (llm-d/llm-d-router@v0.10.0 pkg/epp/metrics/llm_d_router_metrics.go). Scraped by a real
    Prometheus through the declared monitor's metricRelabelings, as prometheus-operator
    v0.93.0 writes them: no series keeps a user but the queue size (deleted with its idle
    flow, metrics.go DeleteFlowControlFlowSeries), whose sum, what the scaled model's query
    and the queue rule read, is unchanged; the rest does not grow with the users."""
    stack = stack_of("dev")
    (monitor,) = [m for m in stack.objects("PodMonitor") if m.object_name == "endpoint-pickers"]
    (endpoint,) = monitor.inputs["spec"]["podMetricsEndpoints"]
    model = {"model_name": "m", "target_model_name": "m"}

    def scrape(users: int) -> Series:
        values: Series = {
            series("llm_d_epp_flow_control_requests_total", outcome="Dispatched", priority="0"): 5,
            series("llm_d_epp_average_queue_size", inference_pool="m"): 1,
        }
        for n in range(users):
            user = {"fairness_id": f"user-{n}", "priority": "1", **model}
            values[series("llm_d_epp_request_total", **user)] = 1
            for le in ("0.5", "1", "+Inf"):
                values[series("llm_d_epp_request_duration_seconds_bucket", le=le, **user)] = 1
        # Three users queued now.
        for n, queued in enumerate((2, 1, 4)):
            user = {"fairness_id": f"user-{n}", "priority": "1", "inference_pool": "m", **model}
            values[series("llm_d_epp_flow_control_queue_size", **user)] = queued
            # Its deprecated twin (llm-d/llm-d-router@v0.10.0 metrics.go
            # flowControlQueueSize) is not read.
            values[series("inference_extension_flow_control_queue_size", **user)] = queued
        return values

    picker = Exporter()
    picker.set(scrape(300))
    with (
        serve(picker) as address,
        prometheus(
            tmp_path,
            {"groups": []},
            {"endpoint-picker": address},
            {"endpoint-picker": endpoint["metricRelabelings"]},
        ) as server,
    ):
        server.wait_for('llm_d_epp_average_queue_size{maas_component="endpoint-picker"}')
        per_user = server.vector('count by (__name__) ({fairness_id!=""})')
        assert {s["metric"]["__name__"]: s["value"][1] for s in per_user} == {
            "llm_d_epp_flow_control_queue_size": "3"
        }
        assert server.vector("sum(llm_d_epp_flow_control_queue_size)")[0]["value"][1] == "7"
        assert server.vector('count({__tmp_maas_fairness_kept!=""})') == []
        ours = 'count({maas_component="endpoint-picker", __name__!~"up|scrape_.+"})'
        assert server.vector(ours)[0]["value"][1] == "5"
