"""Models: one protected route each, GPU scheduling from config, isolation, bad catalogs."""

from __future__ import annotations

from typing import Any

import pytest

from components.access import realm
from components.names import GATEWAY_NAME, MODEL_HEADER
from components.pins import versions
from components.serving import gateway as gw
from components.serving import model_list
from components.serving.model_deployment import PREDICTOR_PORT
from components.serving.vllm_serving_runtime import MODEL_PORT
from harness.program import Declared, Evaluation, evaluate, stack_config, typed_config
from tests.support.configs import assert_refused, evaluate_variant

GPU_WORDS = ("gpu", "nvidia")


def _models(stack: Evaluation) -> list[dict[str, Any]]:
    """The stack's catalog, defaults included, as camelCase dicts like the stack file."""
    return [m.model_dump(by_alias=True) for m in typed_config(stack.stack).models]


def _routes_to(stack: Evaluation, service: str) -> list[Declared]:
    return [
        route
        for route in stack.objects("HTTPRoute")
        for rule in route.inputs["spec"]["rules"]
        if any(ref["name"] == service for ref in rule["backendRefs"])
    ]


def _gpu_mentions(value: Any, path: str = "") -> list[str]:
    """Paths of scheduling and resource fields that name a GPU."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}"
            scheduling = any(p in here for p in ("resources", "nodeSelector", "tolerations", "affinity"))
            if scheduling and any(word in str(key).lower() for word in GPU_WORDS):
                found.append(here)
            found.extend(_gpu_mentions(item, here))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            if isinstance(item, dict) and any(w in str(item.get("key", "")).lower() for w in GPU_WORDS):
                found.append(f"{path}[{index}]")
            found.extend(_gpu_mentions(item, f"{path}[{index}]"))
    return found


def test_every_model_has_exactly_one_route_with_its_host_and_backend(stack: Evaluation) -> None:
    domain = stack_config(stack.stack).get("maas:domain", "maas.local")
    catalog = _models(stack)
    for model in catalog:
        # A model served by another (servedBy) reaches that one's server.
        server = model["servedBy"] or model["name"]
        service = f"{server}-predictor"
        answered = {m["name"] for m in catalog if (m["servedBy"] or m["name"]) == server}
        assert {r.object_name for r in _routes_to(stack, service)} == answered
        routes = [r for r in _routes_to(stack, service) if r.object_name == model["name"]]
        assert len(routes) == 1, f"{model['name']}: {len(routes)} routes reach {service}"
        spec = routes[0].inputs["spec"]
        assert spec["hostnames"] == [f"{model['host']}.{domain}", f"api.{domain}"]
        assert {ref["name"] for ref in spec["parentRefs"]} == {GATEWAY_NAME}
        # Only requests the gateway marked for this model (by host or by body) match.
        marked = [{"type": "Exact", "name": MODEL_HEADER, "value": model["servedModelName"] or model["name"]}]
        backends = {
            match["path"]["value"]: rule["backendRefs"]
            for rule in spec["rules"]
            for match in rule["matches"]
            if match["headers"] == marked and match["path"]["type"] == "Exact"
        }
        assert sum(len(rule["matches"]) for rule in spec["rules"]) == len(backends)
        service_ref = [{"name": service, "port": PREDICTOR_PORT}]
        # A pooled model's inference goes through its InferencePool (its endpoint picker);
        # listing it schedules nothing.
        inference = (
            [{"group": "inference.networking.k8s.io", "kind": "InferencePool", "name": model["name"]}]
            if model["scheduling"] == "pool"
            else service_ref
        )
        assert backends == {
            "/v1/chat/completions": inference,
            "/v1/completions": inference,
            "/v1/embeddings": inference,
            "/v1/models": service_ref,
        }


def test_each_model_host_has_one_route_and_the_shared_host_has_them_all(stack: Evaluation) -> None:
    domain = stack_config(stack.stack).get("maas:domain", "maas.local")
    # The tier policies' route names no host: it routes only hosts no other route names.
    (policy_route,) = [r for r in stack.objects("HTTPRoute") if r.object_name == model_list.POLICY_ROUTE]
    assert "hostnames" not in policy_route.inputs["spec"]
    # The key service's routes and the realm's name no host either (tests/access/
    # test_key_service_deploy.py, tests/access/test_realm_route.py).
    routes = [
        r
        for r in stack.objects("HTTPRoute")
        if r is not policy_route
        and not r.object_name.startswith("key-service")
        and r.object_name != realm.REALM_ROUTE
    ]
    hosts = [h for route in routes for h in route.inputs["spec"]["hostnames"] if h != f"api.{domain}"]
    assert len(hosts) == len(set(hosts)) == len(_models(stack))
    assert all(f"api.{domain}" in route.inputs["spec"]["hostnames"] for route in routes)


def test_kserve_creates_no_second_route_to_any_model(stack: Evaluation) -> None:
    gateway_values = stack.release("kserve-resources").inputs["values"]["kserve"]["controller"]["gateway"]
    assert gateway_values["disableIngressCreation"] is True
    assert gateway_values["ingressGateway"]["kserveGateway"] == f"llm/{GATEWAY_NAME}"


def test_routes_reach_the_port_the_model_listens_on(stack: Evaluation) -> None:
    """KServe's predictor Service maps port 80 to the first container port."""
    runtimes = {r.object_name: r for r in stack.objects("ServingRuntime")}
    for isvc in stack.objects("InferenceService"):
        predictor = isvc.inputs["spec"]["predictor"]
        if "containers" in predictor:
            containers = predictor["containers"]
        else:
            containers = runtimes[predictor["model"]["runtime"]].inputs["spec"]["containers"]
        assert containers[0]["ports"][0]["containerPort"] == MODEL_PORT


def test_gpu_models_request_gpus_and_are_pinned_to_gpu_nodes(stack_of: Any) -> None:
    stack = stack_of("gpu")
    gpu_models = [m for m in _models(stack) if m.get("gpu")]
    assert gpu_models, "the gpu stack serves a GPU model"
    for model in gpu_models:
        predictor = stack.one("InferenceService", model["name"]).inputs["spec"]["predictor"]
        count = str(model["gpu"]["count"])
        assert predictor["model"]["resources"]["requests"]["nvidia.com/gpu"] == count
        assert predictor["model"]["resources"]["limits"]["nvidia.com/gpu"] == count
        assert predictor["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in predictor[
            "tolerations"
        ]
        assert predictor["model"]["storageUri"] == model["source"]
        assert f"--served-model-name={model['servedModelName']}" in predictor["model"]["args"]


def test_the_gpu_stack_serves_qwen3_on_vllm(stack_of: Any) -> None:
    stack = stack_of("gpu")
    isvc = stack.one("InferenceService", "qwen3-0-6b-instruct")
    assert isvc.inputs["spec"]["predictor"]["model"]["storageUri"] == "hf://Qwen/Qwen3-0.6B"
    runtime = stack.one("ServingRuntime", "vllm-openai").inputs["spec"]["containers"][0]
    assert runtime["image"].startswith("vllm/vllm-openai:v")
    assert "--enable-force-include-usage" in runtime["args"]
    assert {"name": "devshm", "mountPath": "/dev/shm"} in runtime["volumeMounts"]
    assert runtime["startupProbe"]["periodSeconds"] * runtime["startupProbe"]["failureThreshold"] >= 1800
    assert stack.outputs["models"]["qwen3-0-6b-instruct"]["url"] == "https://qwen3.maas.local:8000/v1"


def test_nothing_in_dev_requests_or_targets_gpus(stack_of: Any) -> None:
    stack = stack_of("dev")
    for resource in stack.objects():
        assert _gpu_mentions(resource.inputs) == [], str(resource)
    assert stack.objects("ServingRuntime") == []


def _https_only(stack: Evaluation) -> bool:
    return typed_config(stack.stack).gateway.https.only


def test_the_gateway_listens_for_the_domain_and_is_not_exposed(kubernetes_stack: Evaluation) -> None:
    gateway = kubernetes_stack.one("Gateway", GATEWAY_NAME)
    spec = gateway.inputs["spec"]
    assert spec["gatewayClassName"] == "istio"
    # dev: plain HTTP behind a port-forward; gpu: HTTPS only.
    served = ("https", 443) if _https_only(kubernetes_stack) else ("http", 80)
    assert [(lst["name"], lst["port"], lst["hostname"]) for lst in spec["listeners"]] == [
        (*served, "*.maas.local")
    ]
    assert all(lst["allowedRoutes"] == {"namespaces": {"from": "Same"}} for lst in spec["listeners"])
    assert gateway.inputs["metadata"]["annotations"]["networking.istio.io/service-type"] == "ClusterIP"
    assert (
        kubernetes_stack.outputs["portForward"]
        == f"kubectl port-forward -n llm svc/inference-gateway-istio 8000:{served[1]}"
    )


def test_outputs_give_each_models_url_name_and_a_curl(kubernetes_stack: Evaluation) -> None:
    scheme = "https" if _https_only(kubernetes_stack) else "http"
    for model in _models(kubernetes_stack):
        out = kubernetes_stack.outputs["models"][model["name"]]
        host = f"{model['host']}.maas.local"
        assert out["url"] == f"{scheme}://{host}:8000/v1"
        assert out["servedModelName"] == (model["servedModelName"] or model["name"])
        assert f"--resolve {host}:8000:127.0.0.1" in out["curl"]
        assert f'"model": "{out["servedModelName"]}"' in out["curl"]


def test_https_listener_takes_its_certificate_from_cert_manager() -> None:
    self_signed = evaluate_variant("dev", {"maas:gateway": {"https": {"enabled": True}}})
    assert self_signed.error is None
    listeners = self_signed.one("Gateway", GATEWAY_NAME).inputs["spec"]["listeners"]
    https = next(lst for lst in listeners if lst["name"] == "https")
    assert https["tls"] == {
        "mode": "Terminate",
        "certificateRefs": [{"kind": "Secret", "name": gw.TLS_SECRET}],
    }
    certificate = self_signed.one("Certificate", gw.TLS_SECRET)
    assert certificate.inputs["spec"]["issuerRef"] == {"kind": "Issuer", "name": f"{GATEWAY_NAME}-selfsigned"}
    assert self_signed.objects("Issuer")
    route = self_signed.one("HTTPRoute", "simulator")
    assert {ref["sectionName"] for ref in route.inputs["spec"]["parentRefs"]} == {"http", "https"}

    named = evaluate_variant("dev", {"maas:gateway": {"https": {"enabled": True, "issuer": "letsencrypt"}}})
    assert named.one("Certificate", gw.TLS_SECRET).inputs["spec"]["issuerRef"] == {
        "kind": "ClusterIssuer",
        "name": "letsencrypt",
    }
    assert named.objects("Issuer") == []


def test_a_hugging_face_token_is_a_secret_the_storage_initializer_reads() -> None:
    result = evaluate("gpu", secrets={"maas:huggingFaceToken": "hf_example"})
    assert result.error is None
    secret = result.one("Secret", "hugging-face-token")
    assert secret.is_secret("stringData.HF_TOKEN")
    account = result.one("ServiceAccount", "model-storage")
    assert account.inputs["secrets"] == [{"name": "hugging-face-token"}]
    predictor = result.one("InferenceService", "qwen3-0-6b-instruct").inputs["spec"]["predictor"]
    assert predictor["serviceAccountName"] == "model-storage"


def test_vllm_on_cpu_only_when_asked() -> None:
    result = evaluate_variant(
        "dev",
        {
            "maas:models": [
                {"name": "tiny", "host": "tiny", "runtime": "vllm", "source": "hf://a/b", "cpuServing": True}
            ]
        },
    )
    assert result.error is None
    predictor = result.one("InferenceService", "tiny").inputs["spec"]["predictor"]
    assert "nodeSelector" not in predictor
    assert _gpu_mentions(predictor) == []
    # The CUDA image cannot start without a GPU, and KServe would not swap it for ours
    # (kserve/kserve@v0.20.0 utils.go UpdateImageTag: server type vllmserver only).
    assert predictor["model"]["runtime"] == "vllm-openai-cpu"
    (runtime,) = result.objects("ServingRuntime")
    assert runtime.object_name == "vllm-openai-cpu"
    assert runtime.inputs["spec"]["containers"][0]["image"] == versions.VLLM_CPU_IMAGE


def test_a_catalog_with_gpu_and_cpu_vllm_models_gets_both_runtimes() -> None:
    gpu_model = {**QWEN, "name": "qwen3-0-6b-instruct", "host": "big"}
    cpu_model = {"name": "tiny", "host": "tiny", "runtime": "vllm", "source": "hf://a/b", "cpuServing": True}
    result = evaluate_variant("gpu", {"maas:models": [gpu_model, cpu_model]})
    assert result.error is None, result.error
    images = {
        r.object_name: r.inputs["spec"]["containers"][0]["image"] for r in result.objects("ServingRuntime")
    }
    assert images == {"vllm-openai": versions.VLLM_IMAGE, "vllm-openai-cpu": versions.VLLM_CPU_IMAGE}
    for name, runtime in (("qwen3-0-6b-instruct", "vllm-openai"), ("tiny", "vllm-openai-cpu")):
        assert result.one("InferenceService", name).inputs["spec"]["predictor"]["model"]["runtime"] == runtime


def test_vllm_starts_through_the_images_entrypoint_with_the_model_first(stack_of: Any) -> None:
    """vllm docker/Dockerfile: ENTRYPOINT ["vllm", "serve"] (the CUDA image has python3, no
    `python`); `vllm serve [model_tag] [options]`, so KServe's appended model args follow."""
    runtime = stack_of("gpu").one("ServingRuntime", "vllm-openai").inputs["spec"]["containers"][0]
    assert runtime["command"] == ["vllm", "serve"]
    assert runtime["args"][0] == "/mnt/models"
    assert not any(a.startswith("--model") for a in runtime["args"])


SIM = {"name": "sim", "host": "sim", "runtime": "simulator"}
QWEN = {
    "name": "qwen",
    "host": "qwen",
    "runtime": "vllm",
    "source": "hf://Qwen/Qwen3-0.6B",
    "gpu": {"count": 1},
}

BAD_CATALOGS: dict[str, tuple[list[dict[str, Any]], str]] = {
    "duplicate name": ([SIM, {**SIM, "host": "other"}], "models[0] and models[1] have the same name 'sim'"),
    "duplicate host": ([SIM, {**SIM, "name": "other"}], "models[0] and models[1] have the same host 'sim'"),
    "vllm without a GPU": ([{**QWEN, "gpu": None}], "a vllm model needs a gpu block"),
    "simulator asking for GPUs": ([{**SIM, "gpu": {"count": 1}}], "a simulator needs no GPU"),
    "gpu count below one": (
        [{**QWEN, "gpu": {"count": 0}}],
        "maas:models[0] (name: qwen).gpu.count: Input should be greater than or equal to 1",
    ),
    "invalid model name": (
        [{**SIM, "name": "Sim_1"}],
        "maas:models[0].name: 'Sim_1' is not a DNS-1123 label",
    ),
    "vllm without weights": ([{**QWEN, "source": None}], "a vllm model needs a source"),
    "unknown weight source": ([{**QWEN, "source": "ftp://x"}], "source 'ftp://x' must start with one of"),
    "GPU in plain resources": (
        [{**SIM, "resources": {"limits": {"nvidia.com/gpu": "1"}}}],
        "GPUs are requested with the model's gpu block",
    ),
    "bad quantity": (
        [{**SIM, "resources": {"requests": {"memory": "lots"}}}],
        "'lots' is not a Kubernetes quantity",
    ),
    "both GPU and CPU serving": (
        [{**QWEN, "cpuServing": True}],
        "set either a gpu block or cpuServing: true",
    ),
    "GPU without node selector": ([{**QWEN, "gpu": {"nodeSelector": {}}}], "nodeSelector must not be empty"),
    "unknown runtime": ([{**SIM, "runtime": "triton"}], "Input should be 'simulator' or 'vllm'"),
    "empty catalog": ([], "maas:models: the catalog is empty"),
    "string where a boolean belongs": (
        [{**QWEN, "gpu": None, "cpuServing": "true"}],
        "write true or false without quotes",
    ),
}


@pytest.mark.parametrize("case", BAD_CATALOGS, ids=list(BAD_CATALOGS))
def test_bad_catalog_stops_with_its_message_and_declares_nothing(case: str) -> None:
    catalog, expected = BAD_CATALOGS[case]
    assert_refused("gpu", {"maas:models": catalog}, expected)


def test_a_plain_text_hugging_face_token_is_refused() -> None:
    expected = "scripts/pulumi.sh config set --secret maas:huggingFaceToken <value> --stack gpu"
    assert_refused("gpu", {"maas:huggingFaceToken": "hf_plaintext"}, expected)


def _count_with(models: int) -> int:
    catalog = [{"name": f"m{i}", "host": f"m{i}", "runtime": "simulator"} for i in range(models)]
    result = evaluate_variant("dev", {"maas:models": catalog})
    assert result.error is None
    return len(result.resources)


def test_each_model_adds_the_same_small_number_of_resources() -> None:
    one, two, fifty = _count_with(1), _count_with(2), _count_with(50)
    per_model = two - one
    assert per_model <= 5
    assert fifty - one == 49 * per_model


def test_the_gateway_routes_by_model_before_kuadrant_reads_the_request(stack: Evaluation) -> None:
    """Istio applies EnvoyFilters in ascending priority and Kuadrant's has none (0): ours is
    inserted before the router first, so it runs before Kuadrant's wasm filter (which Istio
    then inserts between it and the router), and Kuadrant sees the model header."""
    config = typed_config(stack.stack)
    envoy_filter = stack.one("EnvoyFilter", f"{GATEWAY_NAME}-request-body")
    spec = envoy_filter.inputs["spec"]
    assert spec["priority"] < 0
    patch, _ = spec["configPatches"]
    assert patch["patch"]["operation"] == "INSERT_BEFORE"
    chain = patch["match"]["listener"]["filterChain"]
    assert chain["filter"]["subFilter"] == {"name": "envoy.filters.http.router"}
    source = patch["patch"]["value"]["typed_config"]["default_source_code"]["inline_string"]
    api = f"api.{config.domain}"
    assert source == gw.request_filter_source(api, config.models, config.domain, config.tiers)
    for model in config.models:
        assert f'["{model.host}.{config.domain}"] = "{model.served_name}"' in source


@pytest.mark.parametrize("configured", [None, 64 * 1024 * 1024])
def test_the_gateway_takes_request_bodies_up_to_the_configured_size(configured: int | None) -> None:
    """The Lua filter buffers each body up to the connection's buffer limit (413 past it,
    Envoy docs faq/configuration/flow_control.rst), which the request-body EnvoyFilter sets on
    the Gateway's listeners: 16 MiB unless maas:gateway.maxRequestBytes says otherwise."""
    result = evaluate_variant("dev", {"maas:gateway": {"maxRequestBytes": configured}} if configured else {})
    assert result.error is None
    spec = result.one("EnvoyFilter", f"{GATEWAY_NAME}-request-body").inputs["spec"]
    (limit,) = [p for p in spec["configPatches"] if p["applyTo"] == "LISTENER"]
    assert limit["match"] == {"context": "GATEWAY"}
    assert limit["patch"] == {
        "operation": "MERGE",
        "value": {"per_connection_buffer_limit_bytes": configured or 16 * 1024 * 1024},
    }


def test_https_only_leaves_no_plain_http_listener() -> None:
    """Keys and tokens never cross a network in clear: every route is on the HTTPS listener."""
    only = evaluate_variant("dev", {"maas:gateway": {"https": {"enabled": True, "only": True}}})
    assert only.error is None
    assert [lst["protocol"] for lst in only.one("Gateway", GATEWAY_NAME).inputs["spec"]["listeners"]] == [
        "HTTPS"
    ]
    for route in only.objects("HTTPRoute"):
        assert {ref["sectionName"] for ref in route.inputs["spec"]["parentRefs"]} == {"https"}, route
    assert only.outputs["apiUrl"] == "https://api.maas.local:8000/v1"
    assert only.outputs["portForward"].endswith("8000:443")
    assert_refused("dev", {"maas:gateway": {"https": {"only": True}}}, "only: true needs enabled: true")


def _flag_values(args: list[str], name: str) -> list[str]:
    """A multi-value flag's values as the simulator reads them: the arguments after `--name`
    up to the next `--` (llm-d/llm-d-inference-sim@v0.10.2 pkg/common/parser.go
    getParamValueFromArgs)."""
    if f"--{name}" not in args:
        return []
    after = args[args.index(f"--{name}") + 1 :]
    return next(([*after[:i]] for i, arg in enumerate(after) if arg.startswith("--")), after)


def test_a_model_served_by_another_runs_no_pod_of_its_own_and_its_server_answers_its_name(
    stack: Evaluation,
) -> None:
    """servedBy: one InferenceService (and NetworkPolicy) per server only, and each server's
    simulator answers its own served name first (the one it reports), then every name it
    serves for others; dev-oidc's catalog of 40 names has one server."""
    config = typed_config(stack.stack)
    servers = [m for m in config.models if m.served_by is None]
    assert {i.object_name for i in stack.objects("InferenceService")} == {m.name for m in servers}
    isolated = {p.object_name for p in stack.objects("NetworkPolicy")}
    assert all((f"{m.name}-ingress" in isolated) == (m.served_by is None) for m in config.models)
    for server in servers:
        if server.runtime != "simulator":
            continue
        isvc = stack.one("InferenceService", server.name)
        (container,) = isvc.inputs["spec"]["predictor"]["containers"]
        others = [m.served_name for m in config.models if m.served_by == server.name]
        named = _flag_values(container["args"], "served-model-name")
        assert named == ([server.served_name, *others] if others else [])
    if stack.stack == "dev-oidc":
        assert len(config.models) >= 40
        assert len(servers) == 1
