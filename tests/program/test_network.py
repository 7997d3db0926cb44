"""The allow matrix: who reaches which pod on which port, from what each stack declares.

Every NetworkPolicy the program declares is read as the API server and a conforming CNI read
it (maas_policies.network, tested on the API's own cases). The pods are the ones each stack
runs: those it declares (with the labels KServe adds to predictor pods) and those the charts
and operators make, with the labels and ports components/pins/upstream.py names from their
sources. Callers include strangers: a pod in a namespace of nobody's, a pod with no business
in each of our namespaces, the API server (a node's address) and a client on the internet.

`_design` is the matrix the design needs, written from the issue, not from the code. The
test computes every (caller, pod, port) the policies admit and requires exactly that set:
each needed door is open, and nothing else is.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from components.access import realm
from components.config import StackConfig
from components.flavour import openshift
from components.names import GATEWAY_NAME, KEY_SERVICE_LABELS, KEYCLOAK_NAMESPACE
from components.pins import upstream
from components.platform import keycloak, monitoring
from harness.program import Evaluation, typed_config
from maas_policies.network import Endpoint, admits, denies_by_default
from tests.support import configs
from tests.support.configs import evaluate_variant
from tests.support.labels import predictor_pod_labels

ANYONE = "*"
_ips = (f"10.244.{n // 250}.{n % 250 + 1}" for n in itertools.count())


def _pod(name: str, namespace: str, labels: dict[str, str], ports: dict[str, int]) -> Endpoint:
    return Endpoint(name, next(_ips), namespace, labels, {k: (v, "TCP") for k, v in ports.items()})


def _workload(name: str, namespace: str, workload: upstream.Workload, **extra: str) -> Endpoint:
    """The pods of an upstream workload, with `extra` labels of theirs no selector uses."""
    return _pod(name, namespace, {**workload.labels, **extra}, workload.ports)


def _template_ports(spec: dict[str, Any]) -> dict[str, int]:
    return {
        port.get("name", str(port["containerPort"])): port["containerPort"]
        for container in spec.get("containers", [])
        for port in container.get("ports", [])
    }


def _declared_pods(stack: Evaluation) -> Iterator[Endpoint]:
    for kind in ("Deployment", "StatefulSet", "Job"):
        for workload in stack.objects(kind):
            if workload.type.endswith("Patch"):
                continue  # owns a few fields of a chart's workload, listed below
            template = workload.inputs["spec"]["template"]
            labels = template["metadata"]["labels"]
            yield _pod(workload.object_name, workload.namespace, labels, _template_ports(template["spec"]))
    for isvc in stack.objects("InferenceService"):
        # Both runtimes serve on the port named "http" (vllm_serving_runtime.py MODEL_PORT).
        yield _pod(f"model:{isvc.object_name}", isvc.namespace, predictor_pod_labels(isvc), {"http": 8080})


def _gateway_ports(stack: Evaluation) -> dict[str, int]:
    (gateway,) = stack.objects("Gateway")
    listeners = {f"listener-{x['port']}": x["port"] for x in gateway.inputs["spec"]["listeners"]}
    return listeners | upstream.GATEWAY_STATUS_PORT | upstream.ENVOY_METRICS_PORT | {"metrics": 15020}


def _third_party_pods(stack: Evaluation, cfg: StackConfig) -> Iterator[Endpoint]:
    ns = cfg.namespaces
    gateway = upstream.Workload(
        labels={
            **upstream.gateway_pod_labels(GATEWAY_NAME),
            "gateway.networking.k8s.io/gateway-class-name": "istio",
            "sidecar.istio.io/inject": "false",
        },
        ports=_gateway_ports(stack),
        source="istio kube-gateway.yaml",
    )
    yield _workload("gateway", ns.models, gateway)
    if cfg.gateway.https.issuer is not None:
        yield _workload("acme-solver", ns.models, upstream.ACME_SOLVER_PODS)
    yield _workload("istiod", ns.istio, upstream.ISTIOD_PODS, **{"istio.io/rev": "default"})
    yield _workload("authorino", ns.kuadrant, upstream.AUTHORINO_PODS)
    yield _workload(
        "limitador", ns.kuadrant, upstream.LIMITADOR_PODS, **{"app.kubernetes.io/name": "limitador"}
    )
    yield _workload("kuadrant-operator", ns.kuadrant, upstream.KUADRANT_OPERATOR_PODS)
    for index, other in enumerate(upstream.KUADRANT_OTHER_OPERATORS):
        yield _workload(f"kuadrant-other-operator-{index}", ns.kuadrant, other)
    yield _workload(
        "cert-manager-webhook", ns.cert_manager, upstream.CERT_MANAGER_WEBHOOK_PODS, app="webhook"
    )
    yield _pod(
        "cert-manager-controller",
        ns.cert_manager,
        {"app.kubernetes.io/name": "cert-manager", "app.kubernetes.io/component": "controller"},
        {"http-metrics": 9402, "http-healthz": 9403},
    )
    kserve = upstream.KSERVE_CONTROLLER_PODS
    yield _pod("kserve-controller", ns.kserve, kserve.labels, {**kserve.ports, "https": 8443})
    if cfg.observability.enabled and cfg.flavour == "openshift":
        # User-workload monitoring's Prometheus (openshift/cluster-monitoring-operator@release-4.22
        # assets/prometheus-user-workload/prometheus.yaml podMetadata, and the operator's labels).
        uwm = {**openshift.UWM_PROMETHEUS_PODS, "app.kubernetes.io/part-of": "openshift-monitoring"}
        yield _pod("prometheus", openshift.UWM_NAMESPACE, {**uwm, "prometheus": "user-workload"}, {})
    if cfg.flavour == "openshift":
        # The router, which the Routes bring clients through (openshift/cluster-ingress-operator@main
        # pkg/operator/controller/names.go: deployment-ingresscontroller label).
        router = {"ingresscontroller.operator.openshift.io/deployment-ingresscontroller": "default"}
        yield _pod("router", "openshift-ingress", router, {})
    elif cfg.observability.enabled:
        yield _workload(
            "prometheus", ns.observability, upstream.PROMETHEUS_PODS, prometheus="maas-prometheus"
        )
        yield _workload("alertmanager", ns.observability, upstream.ALERTMANAGER_PODS)
        yield _workload("grafana", ns.observability, upstream.GRAFANA_PODS)
        yield _workload("prometheus-webhook", ns.observability, upstream.PROMETHEUS_WEBHOOK_PODS)
        # The operator's own port serves profiling too: nobody reaches it.
        operator = {"app": "kube-prometheus-stack-operator", "release": "monitoring"}
        yield _pod("prometheus-operator", ns.observability, operator, {"https": 10250})
    if any(m.autoscaling for m in cfg.models):
        yield _workload("keda-operator", ns.keda, upstream.KEDA_OPERATOR_PODS)
        yield _workload("keda-metrics-apiserver", ns.keda, upstream.KEDA_METRICS_SERVER_PODS)
        yield _workload("keda-admission-webhooks", ns.keda, upstream.KEDA_WEBHOOK_PODS)
    if cfg.auth.oidc.enabled:
        yield _workload("keycloak", KEYCLOAK_NAMESPACE, upstream.KEYCLOAK_SERVER_PODS, component="server")
        yield _pod(
            "realm-import",
            KEYCLOAK_NAMESPACE,
            {**upstream.KEYCLOAK_DATABASE_CLIENTS, "app": "keycloak-realm-import"},
            {},
        )
        yield _pod(
            "keycloak-operator",
            KEYCLOAK_NAMESPACE,
            {"app.kubernetes.io/name": "keycloak-operator"},
            {"http": 8080},
        )


def _strangers(namespaces: list[str]) -> Iterator[Endpoint]:
    yield _pod("stranger", "default", {"app": "probe"}, {})
    for namespace in namespaces:
        yield _pod(f"intruder@{namespace}", namespace, {"app": "intruder"}, {})
    yield Endpoint("apiserver", "172.18.0.2")
    yield Endpoint("internet", "203.0.113.9")


def _design(stack: Evaluation, cfg: StackConfig, pods: list[Endpoint]) -> set[tuple[str, str, int]]:
    """The doors the platform needs, from the issue: (caller or ANYONE, pod, port)."""
    models = [p.name for p in pods if p.name.startswith("model:")]
    listeners = [v for k, v in _gateway_ports(stack).items() if k.startswith("listener-")]
    needed = {
        # The platform's front door, and its health checks from load balancers.
        *((ANYONE, "gateway", port) for port in [*listeners, 15021]),
        *(("gateway", model, 8080) for model in models),
        ("gateway", "model-list", 8080),
        ("gateway", "authorino", 50051),
        ("gateway", "limitador", 8081),
        # Envoy fetches Kuadrant's wasm module, and extensions' descriptors, from the operator.
        ("gateway", "kuadrant-operator", 8082),
        ("gateway", "kuadrant-operator", 50051),
        ("gateway", "istiod", 15012),
        # Webhooks, called by the API server from a node's address.
        (ANYONE, "istiod", 15017),
        (ANYONE, "cert-manager-webhook", 10250),
        (ANYONE, "kserve-controller", 9443),
    }
    if cfg.observability.enabled:
        scraped = [("limitador", 8080), ("authorino", 8080), ("kuadrant-operator", 8080), ("gateway", 15090)]
        needed |= {("prometheus", pod, port) for pod, port in [*scraped, *((m, 8080) for m in models)]}
    if cfg.observability.enabled and cfg.flavour == "kubernetes":
        # The monitoring stack's own.
        needed |= {
            ("grafana", "prometheus", 9090),
            ("prometheus", "alertmanager", 9093),
            ("grafana", "alertmanager", 9093),
            (ANYONE, "prometheus-webhook", 10250),
        }
    if any(m.autoscaling for m in cfg.models):
        needed |= {
            # KEDA reads each scaled model's queue from Prometheus; the HPA asks the metrics API
            # server (through the API server), which asks the operator.
            ("keda-operator", "prometheus", 9090),
            ("keda-metrics-apiserver", "keda-operator", 9666),
            (ANYONE, "keda-metrics-apiserver", 6443),
            (ANYONE, "keda-admission-webhooks", 9443),
        }
    for model in (m.name for m in cfg.models if m.scheduling == "pool"):
        # The gateway asks a pooled model's endpoint picker (ext_proc) which replica serves a
        # request; the picker reads the model servers' queues from their /metrics. Its health
        # port is the kubelet's, a node's own traffic, which needs no door.
        needed |= {("gateway", f"{model}-epp", 9002), (f"{model}-epp", f"model:{model}", 8080)}
        if cfg.observability.enabled:
            needed.add(("prometheus", f"{model}-epp", 9090))
    if cfg.gateway.https.issuer is not None:
        # The ACME CA reaches the solver through the gateway.
        needed.add(("gateway", "acme-solver", 8089))
    if any(p.name == "limitador-redis" for p in pods):
        needed.add(("limitador", "limitador-redis", 6379))
    if cfg.auth.oidc.enabled:
        needed |= {
            ("authorino", "keycloak", 8080),
            # Browsers reach the user realm's pages through the gateway (issue 29: log in
            # from the page on the shared host).
            ("gateway", "keycloak", 8080),
            # Keycloak day 2: the user sync calls the admin API.
            (realm.USER_SYNC, "keycloak", 8080),
            ("keycloak", keycloak.DB_SERVICE, 5432),
            ("realm-import", keycloak.DB_SERVICE, 5432),
        }
    if cfg.key_service_on:
        # The key service: the gateway brings it its callers; it reads the tier groups' members.
        needed |= {("gateway", "key-service", 8080), ("key-service", "keycloak", 8080)}
        # GET /v1/usage: the caller's limits and counters from Limitador's HTTP API, and what
        # they were billed from Prometheus (the monitoring stack's; OpenShift's Thanos querier
        # is the cluster's, its door not ours, and our policies govern no egress).
        needed.add(("key-service", "limitador", 8080))
        if cfg.observability.enabled and cfg.flavour == "kubernetes":
            needed.add(("key-service", "prometheus", 9090))
    return needed


def _evaluate(
    stack: Evaluation, cfg: StackConfig
) -> tuple[set[tuple[str, str, int]], set[tuple[str, str, int]]]:
    namespaces = {
        ns.object_name: dict(ns.inputs["metadata"].get("labels", {})) for ns in stack.objects("Namespace")
    }
    if cfg.flavour == "openshift":
        # The cluster's own namespaces our doors name, with the label Kubernetes sets on all.
        namespaces |= {
            name: {"kubernetes.io/metadata.name": name}
            for name in (openshift.UWM_NAMESPACE, "openshift-ingress")
        }
    pods = [*_declared_pods(stack), *_third_party_pods(stack, cfg)]
    assert {p.namespace for p in pods} <= set(namespaces), "a pod outside the stack's namespaces"
    callers = [*pods, *_strangers(sorted(namespaces))]
    policies = [p.inputs for p in stack.objects("NetworkPolicy")]
    admitted = {
        (source.name, target.name, port)
        for target in pods
        for port, _ in target.ports.values()
        for source in callers
        if source is not target and admits(policies, namespaces, source, target, port)
    }
    needed = {
        (source.name, target, port)
        for caller, target, port in _design(stack, cfg, pods)
        for source in callers
        if (caller == ANYONE or source.name == caller) and source.name != target
    }
    return admitted, needed


def _assert_exactly(admitted: set[tuple[str, str, int]], needed: set[tuple[str, str, int]]) -> None:
    closed = sorted(needed - admitted)
    assert closed == [], f"doors the platform needs are closed: {closed}"
    open_ = sorted(admitted - needed)
    assert open_ == [], f"admitted beyond the design: {open_}"


def test_the_declared_policies_admit_exactly_the_designed_matrix(stack: Evaluation) -> None:
    _assert_exactly(*_evaluate(stack, typed_config(stack.stack)))


@pytest.mark.parametrize(
    "variant",
    [
        {"maas:observability": {"enabled": False}},
        {"maas:limitador": {"replicas": 2, "storage": "redis"}},
        {"maas:gateway": {"https": {"enabled": True}}},
        {"maas:gateway": {"https": {"enabled": True, "only": True, "issuer": "letsencrypt"}}},
    ],
    ids=["no-observability", "redis", "http-and-https", "acme-issuer"],
)
def test_variants_admit_exactly_their_matrix(variant: dict[str, Any]) -> None:
    result = evaluate_variant("dev", variant)
    assert result.error is None, result.error
    _assert_exactly(*_evaluate(result, typed_config("dev", configs.variant("dev", variant))))


def test_strangers_reach_nothing_but_the_front_door_and_the_webhooks(stack: Evaluation) -> None:
    """The issue's promise, read off the matrix: a pod of nobody's reaches Limitador's HTTP API,
    Authorino, Keycloak and PostgreSQL nowhere; what it reaches is public by design."""
    admitted, _ = _evaluate(stack, typed_config(stack.stack))
    reached = sorted({(t, p) for s, t, p in admitted if s == "stranger"})
    public = {
        "gateway",
        "istiod",
        "cert-manager-webhook",
        "kserve-controller",
        "prometheus-webhook",
        "keda-metrics-apiserver",
        "keda-admission-webhooks",
    }
    assert {t for t, _ in reached} <= public, reached
    assert ("limitador", 8080) not in reached
    assert ("keycloak", 8080) not in reached


def test_the_usage_doors_admit_the_key_services_pods_in_its_namespace_only(stack_of: Any) -> None:
    """On dev-oidc the key service reaches Limitador's HTTP port and Prometheus' query port;
    the doors name its labels in its namespace, so a pod with its labels elsewhere, or one of
    its namespace without them, reaches neither."""
    stack = stack_of("dev-oidc")
    cfg = typed_config(stack.stack)
    admitted, _ = _evaluate(stack, cfg)
    assert {s for s, t, p in admitted if (t, p) == ("limitador", 8080)} == {"prometheus", "key-service"}
    assert {s for s, t, p in admitted if (t, p) == ("prometheus", 9090)} == {
        "grafana",
        "keda-operator",
        "key-service",
    }
    namespaces = {
        ns.object_name: dict(ns.inputs["metadata"].get("labels", {})) for ns in stack.objects("Namespace")
    }
    policies = [p.inputs for p in stack.objects("NetworkPolicy")]
    limitador = _workload("limitador", cfg.namespaces.kuadrant, upstream.LIMITADOR_PODS)
    prometheus = _workload("prometheus", cfg.namespaces.observability, upstream.PROMETHEUS_PODS)
    elsewhere = _pod("impostor", cfg.namespaces.kuadrant, dict(KEY_SERVICE_LABELS), {})
    assert not admits(policies, namespaces, elsewhere, limitador, 8080)
    assert not admits(policies, namespaces, elsewhere, prometheus, 9090)
    genuine = _pod("key-service", cfg.namespaces.models, dict(KEY_SERVICE_LABELS), {})
    assert admits(policies, namespaces, genuine, limitador, 8080)
    assert admits(policies, namespaces, genuine, prometheus, 9090)
    assert not admits(policies, namespaces, genuine, limitador, 8081)


def test_every_namespace_of_ours_denies_by_default(stack: Evaluation) -> None:
    denying = {p.namespace for p in stack.objects("NetworkPolicy") if denies_by_default(p.inputs)}
    assert denying == {ns.object_name for ns in stack.objects("Namespace")}


def test_prometheus_is_labelled_as_the_scraper_doors_expect() -> None:
    """The label the Prometheus pods carry names the Prometheus the chart makes (fullnameOverride)."""
    assert upstream.PROMETHEUS_PODS.labels["operator.prometheus.io/name"] == monitoring.PROMETHEUS_SERVICE
    assert upstream.KEYCLOAK_SERVER_PODS.labels["app.kubernetes.io/instance"] == keycloak.KEYCLOAK_NAME
