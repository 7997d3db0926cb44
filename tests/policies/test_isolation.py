"""Isolation rules: model pods admit traffic from named sources only."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from harness.program import Declared
from tests.support.policy_runner import assert_only, edited, replaced, violations


@pytest.mark.parametrize("how", ["removed", "admits everyone"])
def test_a_model_without_network_isolation_is_refused(stack_of: Any, how: str) -> None:
    stack = stack_of("dev")
    policy = stack.one("NetworkPolicy", "simulator-ingress")
    if how == "removed":
        resources = [r for r in stack.resources if r.urn != policy.urn]
    else:
        open_to_all = copy.deepcopy(policy.inputs)
        open_to_all["spec"]["ingress"] = [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
        resources = replaced(stack.resources, policy, open_to_all)
    assert_only(
        violations(stack, resources),
        "models-isolated",
        "InferenceService llm/simulator",
        "without the gateway",
    )


def _exposed(inputs: dict[str, Any]) -> None:
    inputs["metadata"]["annotations"]["networking.istio.io/service-type"] = "LoadBalancer"


def test_a_gateway_exposed_over_plain_http_is_refused(stack_of: Any) -> None:
    """dev serves plain HTTP behind a port-forward; exposed, that is refused."""
    stack = stack_of("dev")
    assert violations(stack) == []
    found = violations(stack, edited(stack, "Gateway", "inference-gateway", _exposed))
    assert {v.policy for v in found} == {"gateway-https"}, found
    assert any("without an HTTPS listener" in v.message for v in found), found
    # every route the plain-HTTP listener serves, named
    assert sum("not only a redirect to https" in v.message for v in found) == len(stack.objects("HTTPRoute"))
    assert all("Fix: " in v.message for v in found)


def test_an_exposed_https_only_gateway_passes_and_a_redirect_is_all_http_may_do(stack_of: Any) -> None:
    stack = stack_of("gpu")
    assert violations(stack, edited(stack, "Gateway", "inference-gateway", _exposed)) == []

    def with_http(inputs: dict[str, Any]) -> None:
        _exposed(inputs)
        inputs["spec"]["listeners"].append(
            {"name": "http", "protocol": "HTTP", "port": 80, "hostname": "*.maas.local"}
        )

    resources = edited(stack, "Gateway", "inference-gateway", with_http)
    redirect = {
        "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https", "statusCode": 301}}]
    }
    route = stack.one("HTTPRoute", "model-list")
    to_https = replaced(
        resources,
        route,
        {
            **route.inputs,
            "spec": {
                "parentRefs": [{"name": "inference-gateway", "sectionName": "http"}],
                "rules": [redirect],
            },
        },
    )
    assert violations(stack, to_https) == []
    served = {
        "matches": [{"path": {"type": "Exact", "value": "/v1/models"}}],
        "backendRefs": [{"name": "model-list", "port": 80}],
    }
    also_serves = replaced(
        resources,
        route,
        {
            **route.inputs,
            "spec": {"parentRefs": [{"name": "inference-gateway", "sectionName": "http"}], "rules": [served]},
        },
    )
    assert_only(violations(stack, also_serves), "gateway-https", "not only a redirect to https")


def test_a_redirect_that_also_reaches_a_backend_is_not_only_a_redirect(stack_of: Any) -> None:
    stack = stack_of("gpu")

    def with_http(inputs: dict[str, Any]) -> None:
        _exposed(inputs)
        inputs["spec"]["listeners"].append({"name": "http", "protocol": "HTTP", "port": 80})

    resources = edited(stack, "Gateway", "inference-gateway", with_http)
    route = stack.one("HTTPRoute", "model-list")
    rule = {
        "filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}],
        "backendRefs": [{"name": "model-list", "port": 80}],
    }
    spec = {"parentRefs": [{"name": "inference-gateway", "sectionName": "http"}], "rules": [rule]}
    found = violations(stack, replaced(resources, route, {**route.inputs, "spec": spec}))
    assert any(v.policy == "gateway-https" and "not only a redirect" in v.message for v in found), found


def test_a_gateway_without_a_service_type_counts_as_exposed(stack_of: Any) -> None:
    """Istio makes a LoadBalancer when the annotation is missing (istio/istio@1.30.3 classinfo.go)."""
    stack = stack_of("dev")

    def unannotated(inputs: dict[str, Any]) -> None:
        del inputs["metadata"]["annotations"]["networking.istio.io/service-type"]

    found = violations(stack, edited(stack, "Gateway", "inference-gateway", unannotated))
    assert any("a LoadBalancer Service" in v.message for v in found), found


def _drop(stack: Any, kind: str, name: str, namespace: str) -> list[Any]:
    target = stack.one(kind, name, namespace)
    return [r for r in stack.resources if r.urn != target.urn]


def test_a_namespace_without_a_default_deny_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    found = violations(stack, _drop(stack, "NetworkPolicy", "default-deny-ingress", "llm"))
    assert_only(found, "namespaces-deny-by-default", "Namespace llm", "Fix:", also="")


@pytest.mark.parametrize(
    ("stack_name", "door", "namespace", "what", "reached"),
    [
        ("dev", "limitador-metrics", "kuadrant-system", "Limitador in kuadrant-system", "8080"),
        ("dev", "authorino-authorization", "kuadrant-system", "Authorino in kuadrant-system", "50051"),
        ("dev-oidc", "keycloak-postgres", "keycloak", "PostgreSQL keycloak/keycloak-postgres", "5432"),
        (
            "gpu",
            "limitador-redis-ingress",
            "kuadrant-system",
            "Redis kuadrant-system/limitador-redis",
            "6379",
        ),
    ],
)
def test_a_store_or_kuadrant_server_open_to_strangers_is_refused(
    stack_of: Any, stack_name: str, door: str, namespace: str, what: str, reached: str
) -> None:
    """A door opened to every caller (its `from` left out) lets strangers in."""
    stack = stack_of(stack_name)
    assert violations(stack) == []

    def open_to_all(inputs: dict[str, Any]) -> None:
        for rule in inputs["spec"]["ingress"]:
            rule.pop("from", None)

    found = violations(stack, edited(stack, "NetworkPolicy", door, open_to_all))
    assert_only(
        found, "documented-clients", what, f"reaches its ports {reached}", "a pod in another namespace"
    )


def test_a_door_trusting_labels_from_any_namespace_is_refused(stack_of: Any) -> None:
    """The gateway's label on a pod of any namespace is not the gateway."""
    stack = stack_of("dev")

    def any_namespace(inputs: dict[str, Any]) -> None:
        inputs["spec"]["ingress"][0]["from"][0]["namespaceSelector"] = {}

    found = violations(stack, edited(stack, "NetworkPolicy", "limitador-rate-limits", any_namespace))
    assert_only(
        found,
        "documented-clients",
        "a pod labelled {'gateway.networking.k8s.io/gateway-name': 'inference-gateway'} in another "
        "namespace reaches its ports 8081",
    )


def test_a_door_opened_by_port_name_is_judged_too(stack_of: Any) -> None:
    stack = stack_of("dev")

    def by_name_to_all(inputs: dict[str, Any]) -> None:
        inputs["spec"]["ingress"] = [{"ports": [{"port": "http", "protocol": "TCP"}]}]

    found = violations(stack, edited(stack, "NetworkPolicy", "limitador-metrics", by_name_to_all))
    assert_only(found, "documented-clients", "Limitador in kuadrant-system", "reaches its ports 8080")


def test_a_door_naming_every_namespace_is_refused(stack_of: Any) -> None:
    """Pods of every namespace are not Limitador's documented client, whatever the labels say."""
    stack = stack_of("dev")

    def every_namespace(inputs: dict[str, Any]) -> None:
        inputs["spec"]["ingress"][0]["from"] = [{"namespaceSelector": {}}]

    found = violations(stack, edited(stack, "NetworkPolicy", "limitador-rate-limits", every_namespace))
    assert_only(
        found,
        "documented-clients",
        "Limitador in kuadrant-system: a pod in another namespace reaches its ports 8081",
    )


@pytest.mark.parametrize(
    ("stack_name", "kind", "name", "edit", "why"),
    [
        (
            "dev",
            "InferenceService",
            "simulator",
            lambda i: i["spec"]["predictor"].pop("automountServiceAccountToken"),
            "service-account token",
        ),
        (
            "dev",
            "Deployment",
            "model-list",
            lambda i: i["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(runAsUser=0),
            "may run as root",
        ),
        (
            "gpu",
            "StatefulSet",
            "limitador-redis",
            lambda i: i["spec"]["template"]["spec"]["securityContext"].update(runAsUser=0),
            "may run as root",
        ),
    ],
)
def test_a_workload_that_may_run_as_root_or_holds_a_token_is_refused(
    stack_of: Any, stack_name: str, kind: str, name: str, edit: Any, why: str
) -> None:
    stack = stack_of(stack_name)
    assert_only(
        violations(stack, edited(stack, kind, name, edit)), "least-privilege", f"{kind} ", why, "Fix:"
    )


def test_vllm_runs_as_root_only_where_the_stack_exempts_it_with_a_reason(stack_of: Any) -> None:
    stack = stack_of("gpu")
    assert violations(stack) == []
    unexempted = violations(stack, None, **{"least-privilege": {}})
    assert_only(unexempted, "least-privilege", "InferenceService llm/qwen3-0-6b-instruct", "may run as root")
    reasonless = violations(stack, None, **{"least-privilege": {"exemptions": ["llm/qwen3-0-6b-instruct"]}})
    assert_only(reasonless, "least-privilege", "the exemption from least-privilege has no reason")


def test_an_upstream_manifests_workload_is_not_ours_to_judge(stack_of: Any) -> None:
    """In a real preview, a ConfigFile's objects are resources too (pulumi/pulumi-kubernetes@v4.34.2
    provider/pkg/provider/yaml/v2/yaml.go registers each): the Keycloak operator's Deployment,
    which mounts its token and sets no runAsNonRoot, is upstream's, not refused."""
    stack = stack_of("dev-oidc")
    ours = stack.one("Deployment", "model-list")
    inputs = copy.deepcopy(ours.inputs)
    inputs["spec"]["template"]["spec"].pop("automountServiceAccountToken")
    prefix = "urn:pulumi:dev-oidc::maas-platform::maas:keycloak:Keycloak$"
    operator_urn = f"{prefix}kubernetes:yaml/v2:ConfigFile$kubernetes:apps/v1:Deployment::keycloak-operator"
    upstream = Declared(**{**ours.__dict__, "urn": operator_urn, "inputs": inputs, "outputs": inputs})
    assert violations(stack, [*stack.resources, upstream]) == []
    mine = Declared(**{**upstream.__dict__, "urn": f"{prefix}kubernetes:apps/v1:Deployment::keycloak-mine"})
    assert_only(violations(stack, [*stack.resources, mine]), "least-privilege", "service-account token")
