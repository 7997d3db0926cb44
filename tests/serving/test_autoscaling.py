"""Models that follow their queue: KServe's KEDA class, reading the stack's Prometheus."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from components.config import Namespaces
from components.pins import versions
from components.platform import monitoring
from components.serving import model_deployment
from harness.program import Evaluation
from tests.support.configs import assert_refused
from tests.support.prometheus import Exporter, prometheus, series, serve


def _external(stack: Evaluation, name: str) -> dict[str, Any]:
    predictor = stack.one("InferenceService", name).inputs["spec"]["predictor"]
    (metric,) = predictor["autoScaling"]["metrics"]
    external: dict[str, Any] = metric["external"]
    assert metric["type"] == "External"
    return external


def test_a_scaled_model_is_given_to_keda_with_its_bounds_and_queue(stack_of: Any) -> None:
    stack = stack_of("dev-oidc")
    isvc = stack.one("InferenceService", "simulator")
    assert isvc.inputs["metadata"]["annotations"][model_deployment.AUTOSCALER_CLASS] == "keda"
    predictor = isvc.inputs["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (1, 2)
    external = _external(stack, "simulator")
    assert external["metric"]["backend"] == "prometheus"
    assert external["metric"]["serverAddress"] == monitoring.query_url(Namespaces().observability)
    # KServe passes target.value as the trigger's threshold (per replica: AverageValue).
    assert external["target"] == {"type": "Value", "value": "2"}
    # KServe refuses to reconcile it without KEDA's CRDs: the model waits for KEDA.
    (keda,) = [r for r in stack.releases() if r.inputs["name"] == "keda"]
    assert keda.inputs["chart"] == versions.KEDA.name
    assert keda.inputs["version"] == versions.KEDA.version
    assert stack.waits_for(isvc, keda)


def test_fixed_models_and_stacks_without_scaling_have_no_keda(stack_of: Any) -> None:
    for name in ("dev", "gpu"):
        stack = stack_of(name)
        assert [r for r in stack.releases() if r.inputs["name"] == "keda"] == []
        assert {ns.object_name for ns in stack.objects("Namespace")}.isdisjoint({Namespaces().keda})
        for isvc in stack.objects("InferenceService"):
            assert model_deployment.AUTOSCALER_CLASS not in isvc.inputs["metadata"]["annotations"]
            assert "autoScaling" not in isvc.inputs["spec"]["predictor"]


def test_the_queue_query_returns_one_series_the_models_waiting_requests(
    stack_of: Any, tmp_path: Path
) -> None:
    """KEDA refuses a query with several series (kedacore/keda@v2.20.2 prometheus_scaler.go): the
    query, run in a real Prometheus, sums this model's pods in its namespace, nothing else."""
    query = _external(stack_of("dev-oidc"), "simulator")["metric"]["query"]
    exporter = Exporter()
    exporter.set(
        {
            series(model_deployment.QUEUE_METRIC, namespace="llm", model="simulator", pod="a"): 3,
            series(model_deployment.QUEUE_METRIC, namespace="llm", model="simulator", pod="b"): 2,
            series(model_deployment.QUEUE_METRIC, namespace="llm", model="other", pod="c"): 7,
            series(model_deployment.QUEUE_METRIC, namespace="elsewhere", model="simulator", pod="d"): 11,
        }
    )
    with serve(exporter) as address, prometheus(tmp_path, {"groups": []}, {"model": address}) as server:
        deadline = time.monotonic() + 30
        while not (found := server.vector(query)) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert len(found) == 1, found
        assert float(found[0]["value"][1]) == 5


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            {"autoscaling": {"minReplicas": 3, "maxReplicas": 2}},
            "maxReplicas 2 is below minReplicas 3: raise maxReplicas",
        ),
        (
            {"replicas": 2, "autoscaling": {"maxReplicas": 3}},
            "set autoscaling.minReplicas and maxReplicas, or replicas, not both",
        ),
        ({"autoscaling": {"minReplicas": 0, "maxReplicas": 2}}, "minReplicas"),
    ],
)
def test_bounds_that_cannot_scale_are_refused(model: dict[str, Any], expected: str) -> None:
    simulator = {"name": "simulator", "host": "simulator", "runtime": "simulator", **model}
    assert_refused("dev", {"maas:models": [simulator]}, expected)


def test_a_name_too_long_for_kedas_hpa_is_refused() -> None:
    name = "m" * 45
    scaled = {"name": name, "host": "sim", "runtime": "simulator", "autoscaling": {"maxReplicas": 2}}
    assert_refused("dev", {"maas:models": [scaled]}, "at most 44 characters (KEDA's HPA name)")
    assert len(f"keda-hpa-{name[:44]}-predictor") == 63


def test_switching_scaling_on_or_off_recreates_the_model(stack_of: Any) -> None:
    """KServe would leave the old autoscaler behind; the engine replaces the model instead,
    deleting it first (its name stays)."""
    for name in ("dev", "dev-oidc"):
        for isvc in stack_of(name).objects("InferenceService"):
            assert isvc.replace_on_changes == (
                f'metadata.annotations["{model_deployment.AUTOSCALER_CLASS}"]',
            )
            assert isvc.delete_before_replace


def test_scaling_without_the_prometheus_it_reads_is_refused() -> None:
    simulator = {"name": "simulator", "host": "simulator", "runtime": "simulator"}
    assert_refused(
        "dev",
        {
            "maas:models": [{**simulator, "autoscaling": {"maxReplicas": 2}}],
            "maas:observability": {"enabled": False},
        },
        "maas:models[0].autoscaling: the queue it follows is read from the stack's Prometheus",
    )
