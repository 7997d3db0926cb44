"""Pooled models in the pack: no route around the pool, priorities only from the identity, and
the picker's token only for reading its namespace."""

from __future__ import annotations

import copy
from typing import Any

from components.names import MODEL_HEADER
from components.pins import upstream
from components.serving import model_deployment
from maas_policies import pools
from tests.support.policy_runner import added, assert_only, edited, violations

_AUTH = "inference-gateway-authpolicy"


def test_the_packs_copies_are_the_programs() -> None:
    assert pools.PICKER_HEADERS == upstream.ENDPOINT_PICKER_HEADERS
    assert pools.OBJECTIVE_HEADER == upstream.OBJECTIVE_HEADER
    assert pools.ISVC_LABEL == model_deployment.ISVC_LABEL
    assert pools.MODEL_HEADER == MODEL_HEADER


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
    service["spec"]["selector"] = {model_deployment.ISVC_LABEL: "simulator"}
    route = _route("side", {"name": "side-door", "port": 80}, {"type": "PathPrefix", "value": "/v1"})
    resources = [*stack.resources, added(stack, "Service", service), added(stack, "HTTPRoute", route)]
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
    assert route[-1]["backendRefs"] == [
        {"name": "simulator-predictor", "port": model_deployment.PREDICTOR_PORT}
    ]


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


def _objective(expression: str) -> Any:
    def edit(inputs: dict[str, Any]) -> None:
        _headers(inputs)[upstream.OBJECTIVE_HEADER]["plain"]["expression"] = expression

    return edit


def test_an_objective_not_from_the_identity_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    for expression, problem in (
        (
            "request.headers['x-gateway-inference-objective']",
            "is not computed from the authenticated identity",
        ),
        (
            "has(auth.identity.tier) ? request.headers['x-priority'] : ''",
            "reads request headers a client sends",
        ),
        ("auth.identity.tier + request.headers.x_priority", "reads request headers a client sends"),
    ):
        assert_only(
            violations(stack, edited(stack, "AuthPolicy", _AUTH, _objective(expression))),
            "priority-from-identity",
            f"AuthPolicy llm/{_AUTH}",
            f"its x-llm-d-inference-objective {problem}",
            "Fix: response.success.headers.x-llm-d-inference-objective",
        )

    def missing(inputs: dict[str, Any]) -> None:
        del _headers(inputs)[upstream.OBJECTIVE_HEADER]

    assert_only(
        violations(stack, edited(stack, "AuthPolicy", _AUTH, missing)),
        "priority-from-identity",
        "pooled models are scheduled by priority, and it sets no objective",
    )


def test_a_route_level_auth_policy_cannot_set_the_objective_from_the_client(stack_of: Any) -> None:
    """A route's own AuthPolicy replaces the Gateway's defaults for it: it is judged too."""
    stack = stack_of("dev")
    policy = copy.deepcopy(stack.one("AuthPolicy", _AUTH).inputs)
    policy["metadata"] = {"name": "simulator-own", "namespace": "llm"}
    policy["spec"]["targetRef"] = {
        "group": "gateway.networking.k8s.io",
        "kind": "HTTPRoute",
        "name": "simulator",
    }
    _objective("request.headers['x-llm-d-inference-objective'] + auth.identity.tier")(policy)
    assert_only(
        violations(stack, [*stack.resources, added(stack, "AuthPolicy", policy)]),
        "priority-from-identity",
        "AuthPolicy llm/simulator-own",
        "reads request headers a client sends",
        # A route's own AuthPolicy admits tiers no route-level limit covers, as well. And it
        # takes the shared host's sets from the policy route for the wasm-shim (the nearest
        # host entry wins), so the other model on that host is left unprotected.
        also=("tiers-limited", "routes-protected", "model-tiers-enforced"),
    )


def test_a_prefix_with_a_trailing_slash_still_counts_as_inference(stack_of: Any) -> None:
    stack = stack_of("dev")
    route = _route(
        "side",
        {"name": "simulator-predictor", "port": 80},
        {"type": "PathPrefix", "value": "/v1/chat/completions/"},
    )
    found = violations(stack, [*stack.resources, added(stack, "HTTPRoute", route)])
    assert "pools-not-bypassed" in {v.policy for v in found}


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

    def reads_secrets(inputs: dict[str, Any]) -> None:
        inputs["rules"][0]["resources"] = ["pods", "secrets"]

    assert_only(
        violations(stack, edited(stack, "Role", "simulator-epp", reads_secrets)),
        "least-privilege",
        "Deployment llm/simulator-epp",
    )
    # More rights through any other binding: cluster-wide, by the account's user name, by
    # its namespace's group (RBAC's names for service accounts), or from another namespace.
    admin = {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
    for subject in (
        {"kind": "ServiceAccount", "name": "simulator-epp", "namespace": "llm"},
        {"kind": "User", "name": "system:serviceaccount:llm:simulator-epp"},
        {"kind": "Group", "name": "system:serviceaccounts:llm"},
        {"kind": "Group", "name": "system:authenticated"},
    ):
        binding = copy.deepcopy(stack.one("RoleBinding", "simulator-epp").inputs)
        binding |= {"kind": "ClusterRoleBinding", "metadata": {"name": "everywhere"}, "roleRef": admin}
        binding["subjects"] = [subject]
        assert_only(
            violations(stack, [*stack.resources, added(stack, "RoleBinding", binding)]),
            "least-privilege",
            "Deployment llm/simulator-epp",
        )
    elsewhere = copy.deepcopy(stack.one("RoleBinding", "simulator-epp").inputs)
    elsewhere["metadata"] = {"name": "simulator-epp", "namespace": "kuadrant-system"}
    elsewhere["subjects"] = [{"kind": "ServiceAccount", "name": "simulator-epp", "namespace": "llm"}]
    assert_only(
        violations(stack, [*stack.resources, added(stack, "RoleBinding", elsewhere)]),
        "least-privilege",
        "Deployment llm/simulator-epp",
    )
