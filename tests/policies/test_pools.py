"""Pooled models in the pack: no route around the pool, priorities only from the identity, and
the picker's token only for reading its namespace."""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from components.pins import upstream
from components.serving import models
from harness.program import Declared, Evaluation
from maas_policies import pools
from tests.support.policy_runner import assert_only, edited, violations

_AUTH = "inference-gateway-authpolicy"


def test_the_packs_copies_are_the_programs() -> None:
    assert pools.PICKER_HEADERS == upstream.ENDPOINT_PICKER_HEADERS
    assert pools.OBJECTIVE_HEADER == upstream.OBJECTIVE_HEADER
    assert pools.ISVC_LABEL == models.ISVC_LABEL


def _to_service(inputs: dict[str, Any]) -> None:
    for rule in inputs["spec"]["rules"]:
        rule["backendRefs"] = [{"name": "simulator-predictor", "port": 80}]


def test_a_pooled_models_inference_sent_to_its_service_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    found = violations(stack, edited(stack, "HTTPRoute", "simulator", _to_service))
    assert_only(
        found,
        "pools-not-bypassed",
        "HTTPRoute llm/simulator",
        "sends inference requests for simulator to Service simulator-predictor",
        "Fix: send its inference paths to the InferencePool llm/simulator",
    )


def _extra(stack: Evaluation, kind: str, inputs: dict[str, Any]) -> list[Declared]:
    """The stack with one more object, shaped like one the program declares."""
    model = next(r for r in stack.resources if r.kind == kind)
    urn = model.urn.rsplit("::", 1)[0] + f"::extra-{inputs['metadata']['name']}"
    return [
        *stack.resources,
        dataclasses.replace(model, urn=urn, name=urn.rsplit("::", 1)[1], inputs=inputs, outputs=inputs),
    ]


def _route(name: str, backend: dict[str, Any], path: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "gateway.networking.k8s.io/v1",
        "kind": "HTTPRoute",
        "metadata": {"name": name, "namespace": "llm"},
        "spec": {
            "parentRefs": [{"name": "inference-gateway"}],
            "hostnames": ["side.maas.local"],
            "rules": [{"matches": [{"path": path}], "backendRefs": [backend]}],
        },
    }


def test_a_second_route_around_the_pool_is_refused_even_through_a_service_of_its_own(stack_of: Any) -> None:
    stack = stack_of("dev")
    service = copy.deepcopy(stack.one("Service", "model-list").inputs)
    service["metadata"] = {"name": "side-door", "namespace": "llm"}
    service["spec"]["selector"] = {models.ISVC_LABEL: "simulator"}
    resources = _extra(stack, "Service", service)
    route = _route("side", {"name": "side-door", "port": 80}, {"type": "PathPrefix", "value": "/v1"})
    resources = [*resources, *_extra(stack, "HTTPRoute", route)[len(stack.resources) :]]
    assert_only(
        violations(stack, resources),
        "pools-not-bypassed",
        "HTTPRoute llm/side",
        "Service side-door, around its InferencePool llm/simulator",
        also="usage-metered",
    )


def test_the_model_list_may_stay_on_the_service(stack_of: Any) -> None:
    """Listing a model schedules nothing: its exact path on the Service is no bypass."""
    stack = stack_of("dev")
    found = violations(stack, stack.resources)
    assert not [v for v in found if v.policy in ("pools-not-bypassed", "priority-from-identity")]
    route = stack.one("HTTPRoute", "simulator").inputs["spec"]["rules"]
    assert route[-1]["backendRefs"] == [{"name": "simulator-predictor", "port": models.PREDICTOR_PORT}]


def test_a_route_setting_a_priority_header_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")

    def promote(inputs: dict[str, Any]) -> None:
        inputs["spec"]["rules"][0]["filters"] = [
            {
                "type": "RequestHeaderModifier",
                "requestHeaderModifier": {"set": [{"name": "X-Gateway-Inference-Objective", "value": "x"}]},
            }
        ]

    assert_only(
        violations(stack, edited(stack, "HTTPRoute", "simulator", promote)),
        "priority-from-identity",
        "HTTPRoute llm/simulator",
        "sets X-Gateway-Inference-Objective, which only the authentication layer may set",
    )


def _headers(inputs: dict[str, Any]) -> dict[str, Any]:
    headers: dict[str, Any] = inputs["spec"]["rules"]["response"]["success"]["headers"]
    return headers


def test_an_objective_not_from_the_identity_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")

    def echo(inputs: dict[str, Any]) -> None:
        _headers(inputs)[upstream.OBJECTIVE_HEADER]["plain"]["expression"] = (
            "request.headers['x-gateway-inference-objective']"
        )

    def missing(inputs: dict[str, Any]) -> None:
        del _headers(inputs)[upstream.OBJECTIVE_HEADER]

    for edit, problem in (
        (echo, "its objective is not computed from the authenticated identity"),
        (missing, "it sets no priority objective"),
    ):
        assert_only(
            violations(stack, edited(stack, "AuthPolicy", _AUTH, edit)),
            "priority-from-identity",
            f"pooled models are scheduled by priority, and {problem}",
            "Fix: response.success.headers.x-llm-d-inference-objective",
        )


def test_a_picker_that_may_write_or_reach_beyond_its_namespace_mounts_no_token(stack_of: Any) -> None:
    stack = stack_of("dev")

    def writes(inputs: dict[str, Any]) -> None:
        inputs["rules"][0]["verbs"] = ["get", "watch", "list", "patch"]

    assert_only(
        violations(stack, edited(stack, "Role", "simulator-epp", writes)),
        "least-privilege",
        "Deployment llm/simulator-epp",
        "its service account is not one that only reads its own namespace",
    )
    binding = copy.deepcopy(stack.one("RoleBinding", "simulator-epp").inputs)
    binding["kind"] = "ClusterRoleBinding"
    binding["metadata"] = {"name": "simulator-epp-everywhere"}
    binding["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"}
    assert_only(
        violations(stack, _extra(stack, "RoleBinding", binding)),
        "least-privilege",
        "Deployment llm/simulator-epp",
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
