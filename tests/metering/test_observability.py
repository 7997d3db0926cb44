"""Observability as declared: what is scraped and how, labels, rules, dashboard, outputs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from components.config import Namespaces
from components.pins import upstream, versions
from components.platform import monitoring
from components.serving import gateway
from harness.program import Declared, Evaluation
from tests.support import cel
from tests.support.configs import assert_refused, evaluate_variant
from tests.support.labels import predictor_pod_labels, selects

# PromQL words that are not series names.
_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
}


def _monitor(stack: Evaluation, name: str) -> Declared:
    found = [
        m for m in stack.objects("PodMonitor") + stack.objects("ServiceMonitor") if m.object_name == name
    ]
    assert len(found) == 1, f"{stack.stack}: {len(found)} monitors named {name}"
    return found[0]


def _endpoints(monitor: Declared) -> list[dict[str, Any]]:
    spec = monitor.inputs["spec"]
    endpoints: list[dict[str, Any]] = spec.get("podMetricsEndpoints") or spec["endpoints"]
    return endpoints


def _container_ports(stack: Evaluation, isvc: Declared) -> set[str]:
    predictor = isvc.inputs["spec"]["predictor"]
    if "containers" in predictor:
        containers = predictor["containers"]
    else:
        containers = stack.one("ServingRuntime", predictor["model"]["runtime"]).inputs["spec"]["containers"]
    return {port["name"] for c in containers for port in c.get("ports", [])}


def test_model_servers_are_scraped_on_their_metrics_port(stack: Evaluation) -> None:
    monitor = _monitor(stack, "model-servers")
    assert monitor.namespace == stack.one("Gateway", "inference-gateway").namespace
    for isvc in stack.objects("InferenceService"):
        assert selects(monitor.inputs["spec"]["selector"], predictor_pod_labels(isvc)), str(isvc)
        for endpoint in _endpoints(monitor):
            assert endpoint["port"] in _container_ports(stack, isvc)
            assert endpoint["path"] == "/metrics"
    relabel = _endpoints(monitor)[0]["relabelings"][-1]
    assert relabel["sourceLabels"] == ["__meta_kubernetes_pod_label_maas_platform_model"]
    assert relabel["targetLabel"] == "model"


def test_the_gateways_envoy_is_scraped(stack: Evaluation) -> None:
    monitor = _monitor(stack, "inference-gateway-envoy")
    assert monitor.namespace == stack.one("Gateway", "inference-gateway").namespace
    assert selects(monitor.inputs["spec"]["selector"], gateway.POD_LABELS)
    assert {e["port"] for e in _endpoints(monitor)} <= set(upstream.ENVOY_METRICS_PORT)


@pytest.mark.parametrize(
    ("name", "workload"),
    [
        ("limitador", upstream.LIMITADOR_PODS),
        ("authorino", upstream.AUTHORINO_METRICS_SERVICE),
        ("kuadrant-operator", upstream.KUADRANT_OPERATOR_METRICS_SERVICE),
    ],
)
def test_kuadrants_components_are_scraped_where_the_operators_put_them(
    stack: Evaluation, name: str, workload: upstream.Workload
) -> None:
    monitor = _monitor(stack, name)
    assert monitor.namespace == stack.one("Kuadrant", "kuadrant").namespace
    assert selects(monitor.inputs["spec"]["selector"], workload.labels)
    assert {e["port"] for e in _endpoints(monitor)} <= set(workload.ports)
    assert [e["path"] for e in _endpoints(monitor)] == list(workload.paths)


def test_prometheus_reads_exactly_the_monitors_and_rules_this_program_declares(
    kubernetes_stack: Evaluation,
) -> None:
    spec = kubernetes_stack.release("monitoring").inputs["values"]["prometheus"]["prometheusSpec"]
    for selector in ("serviceMonitorSelector", "podMonitorSelector", "ruleSelector"):
        assert spec[selector] == {"matchLabels": monitoring.SCRAPE_LABEL}
    for resource in (
        kubernetes_stack.objects("PodMonitor")
        + kubernetes_stack.objects("ServiceMonitor")
        + kubernetes_stack.objects("PrometheusRule")
    ):
        assert resource.inputs["metadata"]["labels"] == monitoring.SCRAPE_LABEL


def test_kuadrant_observability_is_on_and_its_operator_sees_the_monitoring_crds(
    kubernetes_stack: Evaluation,
) -> None:
    assert kubernetes_stack.one("Kuadrant", "kuadrant").inputs["spec"]["observability"] == {"enable": True}
    crds = kubernetes_stack.release("monitoring-operator-crds")
    assert crds.inputs["chart"] == versions.PROMETHEUS_OPERATOR_CRDS.name
    assert kubernetes_stack.waits_for(kubernetes_stack.release("kuadrant-operator"), crds)


def test_the_monitoring_stack_is_off_kuadrants_critical_path(kubernetes_stack: Evaluation) -> None:
    """Kuadrant needs the CRDs (Kuadrant/kuadrant-operator@v1.5.2 state_of_the_world.go checks ServiceMonitor
    and PodMonitor at
    start-up), not a running Prometheus: the chart installs beside it, after the CRDs."""
    release = kubernetes_stack.release("monitoring")
    assert not kubernetes_stack.waits_for(kubernetes_stack.release("kuadrant-operator"), release)
    assert kubernetes_stack.waits_for(release, kubernetes_stack.release("monitoring-operator-crds"))
    # kube-prometheus-kubernetes_stack values.yaml: `crds.enabled` gates the subchart that ships them.
    assert release.inputs["values"]["crds"] == {"enabled": False}


def test_limitadors_counters_carry_the_identity_the_auth_policy_exposes(stack: Evaluation) -> None:
    (telemetry,) = stack.objects("TelemetryPolicy")
    spec = telemetry.inputs["spec"]
    assert spec["targetRef"] == {
        "group": "gateway.networking.k8s.io",
        "kind": "Gateway",
        "name": "inference-gateway",
    }
    auth = stack.one("AuthPolicy", "inference-gateway-authpolicy")
    exposed = auth.inputs["spec"]["rules"]["response"]["success"]["filters"]["identity"]["json"]["properties"]
    labels = spec["metrics"]["default"]["labels"]
    assert {k: labels[k] for k in ("user", "tier")} == {
        "user": "auth.identity.userid",
        "tier": "auth.identity.tier",
    }
    assert set(exposed) == {"userid", "tier"}
    # The model: its catalog name, from the header the gateway sets (every model's counters
    # share the policy route's namespace); '' for a request without a known one.
    for model in stack.objects("InferenceService"):
        name = model.inputs["metadata"]["name"]
        (route,) = [r for r in stack.objects("HTTPRoute") if r.inputs["metadata"]["name"] == name]
        served = route.inputs["spec"]["rules"][0]["matches"][0]["headers"][0]["value"]
        headers = {"x-maas-model": served}
        assert cel.evaluate(labels["model"], {"request": {"headers": headers}}) == name
    for headers in ({}, {"x-maas-model": "unknown"}):
        assert cel.evaluate(labels["model"], {"request": {"headers": headers}}) == ""


def _dashboard(stack: Evaluation) -> dict[str, Any]:
    config_map = stack.one("ConfigMap", "maas-usage-dashboard")
    assert config_map.inputs["metadata"]["labels"] == monitoring.DASHBOARD_LABEL
    (text,) = config_map.inputs["data"].values()
    board: dict[str, Any] = json.loads(text)
    return board


def _series_names(expr: str) -> set[str]:
    names = set(re.findall(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*[{\[]", expr))
    return {n for n in names if n not in _PROMQL_WORDS}


def test_the_dashboard_reads_only_series_the_rules_or_exporters_produce(stack: Evaluation) -> None:
    (rule,) = stack.objects("PrometheusRule")
    recorded = {
        r["record"] for group in rule.inputs["spec"]["groups"] for r in group["rules"] if "record" in r
    }
    produced = recorded | set(upstream.MODEL_SERVER_METRICS)
    expressions = [t["expr"] for p in _dashboard(stack)["panels"] for t in p.get("targets", [])]
    assert len(expressions) >= 8
    for expr in expressions:
        names = _series_names(expr)
        assert names, expr
        assert names <= produced, f"{expr} reads {names - produced}"


def test_the_dashboard_offers_every_tier_and_model(stack: Evaluation) -> None:
    variables = {v["name"]: v["query"].split(",") for v in _dashboard(stack)["templating"]["list"]}
    assert variables["tier"] == stack.outputs["tiers"]
    assert variables["model"] == list(stack.outputs["models"])
    titles = [p["title"] for p in _dashboard(stack)["panels"]]
    assert all(tier in titles for tier in stack.outputs["tiers"])


def test_outputs_give_port_forwards_and_a_secret_grafana_password(kubernetes_stack: Evaluation) -> None:
    assert (
        kubernetes_stack.outputs["prometheusPortForward"]
        == "kubectl port-forward -n llm-observability svc/maas-prometheus 9090:9090"
    )
    assert (
        kubernetes_stack.outputs["grafanaPortForward"]
        == "kubectl port-forward -n llm-observability svc/maas-grafana 3000:80"
    )
    assert "grafanaAdmin" in kubernetes_stack.secret_outputs
    admin = kubernetes_stack.one("Secret", monitoring.GRAFANA_ADMIN_SECRET)
    assert admin.is_secret("stringData.admin-password")
    grafana = kubernetes_stack.release("monitoring").inputs["values"]["grafana"]
    assert grafana["admin"]["existingSecret"] == monitoring.GRAFANA_ADMIN_SECRET


def test_retention_and_storage_come_from_config(stack_of: Any) -> None:
    dev = stack_of("dev").release("monitoring").inputs["values"]["prometheus"]["prometheusSpec"]
    gpu = stack_of("gpu").release("monitoring").inputs["values"]["prometheus"]["prometheusSpec"]
    assert dev["retention"] == "1d"
    assert "storageSpec" not in dev
    assert gpu["retention"] == "15d"
    assert gpu["storageSpec"]["volumeClaimTemplate"]["spec"]["resources"]["requests"] == {"storage": "20Gi"}


def test_without_observability_nothing_of_it_is_declared() -> None:
    result = evaluate_variant("dev", {"maas:observability": {"enabled": False}})
    assert result.error is None
    assert [r for r in result.releases() if r.inputs["name"] == "monitoring"] == []
    assert (
        result.objects("PodMonitor") + result.objects("PrometheusRule") + result.objects("TelemetryPolicy")
        == []
    )
    assert result.one("Kuadrant", "kuadrant").inputs["spec"]["observability"] == {"enable": False}
    # No door admits a Prometheus that is not there (tests/program/test_network.py: the matrix).
    named = {
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for policy in result.objects("NetworkPolicy")
        for rule in policy.inputs["spec"].get("ingress", [])
        for peer in rule.get("from", [])
        if "namespaceSelector" in peer
    }
    assert Namespaces().observability not in named


BAD_OBSERVABILITY: dict[str, tuple[dict[str, Any], str]] = {
    "price for an unknown tier": (
        {"maas:prices": {"tiers": {"gold": {"perRequest": 1}}}},
        "maas:prices.tiers.gold: no such tier in maas:tiers (free, premium, enterprise)",
    ),
    "price for an unknown model": (
        {"maas:prices": {"models": {"gpt": {"free": {"perRequest": 1}}}}},
        "maas:prices.models.gpt: no such model in maas:models (simulator, simulator-large)",
    ),
    "negative price": (
        {"maas:prices": {"tiers": {"free": {"perRequest": -1}}}},
        "maas:prices.tiers.free.perRequest: Input should be greater than or equal to 0",
    ),
    "bad currency": ({"maas:prices": {"currency": "dollars"}}, "'dollars' is not an ISO 4217 currency code"),
    "bad retention": (
        {"maas:observability": {"retention": "one week"}},
        "'one week' is not a Prometheus duration",
    ),
}


@pytest.mark.parametrize("case", BAD_OBSERVABILITY, ids=list(BAD_OBSERVABILITY))
def test_bad_observability_config_stops_with_its_message(case: str) -> None:
    changes, expected = BAD_OBSERVABILITY[case]
    assert_refused("dev", changes, expected)
