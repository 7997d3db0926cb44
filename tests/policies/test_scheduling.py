"""Scheduling rules: GPU pods only on GPU nodes, other pods off them; every container sized."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.policy_runner import assert_only, edited, violations


@pytest.mark.parametrize(
    ("field", "fragment"),
    [("tolerations", "does not tolerate the GPU nodes' taint"), ("nodeSelector", "selects no GPU node")],
)
def test_a_gpu_model_that_could_land_on_a_cpu_node_is_refused(
    stack_of: Any, field: str, fragment: str
) -> None:
    stack = stack_of("gpu")
    resources = edited(
        stack, "InferenceService", "qwen3-0-6b-instruct", lambda i: i["spec"]["predictor"].pop(field)
    )
    assert_only(
        violations(stack, resources),
        "gpu-workloads-pinned",
        "InferenceService llm/qwen3-0-6b-instruct",
        fragment,
    )


def test_a_cpu_workload_on_gpu_nodes_only_warns(stack_of: Any) -> None:
    stack = stack_of("dev")
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    resources = edited(
        stack,
        "InferenceService",
        "simulator",
        lambda i: i["spec"]["predictor"].update(tolerations=[toleration]),
    )
    assert_only(
        violations(stack, resources),
        "cpu-workloads-off-gpu-nodes",
        "requests no GPU but tolerates GPU nodes",
        level="advisory",
    )


def test_a_container_without_limits_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    resources = edited(
        stack,
        "InferenceService",
        "simulator",
        lambda i: i["spec"]["predictor"]["containers"][0]["resources"].pop("limits"),
    )
    assert_only(
        violations(stack, resources),
        "container-resources",
        "container kserve-container: no limits.cpu, limits.memory",
    )


@pytest.mark.parametrize(("low", "high"), [(2, 1), (0, 2)])
def test_a_scaled_model_that_could_not_scale_is_refused(stack_of: Any, low: int, high: int) -> None:
    stack = stack_of("dev-oidc")
    assert violations(stack) == []

    def bounds(inputs: dict[str, Any]) -> None:
        inputs["spec"]["predictor"].update(minReplicas=low, maxReplicas=high)

    found = violations(stack, edited(stack, "InferenceService", "simulator", bounds))
    assert_only(
        found,
        "replicas-bounded",
        "InferenceService llm/simulator",
        f"minReplicas {low} and maxReplicas {high}",
    )


def test_every_replica_of_a_scaled_gpu_model_is_pinned_to_gpu_nodes(stack_of: Any) -> None:
    """Every replica is made from the predictor's one pod template: a scaled GPU model whose
    template does not select GPU nodes is refused like a fixed one."""
    stack = stack_of("gpu")

    def scaled_anywhere(inputs: dict[str, Any]) -> None:
        predictor = inputs["spec"]["predictor"]
        predictor |= {"minReplicas": 1, "maxReplicas": 4, "autoScaling": {"metrics": []}}
        del predictor["nodeSelector"]

    assert_only(
        violations(stack, edited(stack, "InferenceService", "qwen3-0-6b-instruct", scaled_anywhere)),
        "gpu-workloads-pinned",
        "requests GPUs but selects no GPU node",
    )
