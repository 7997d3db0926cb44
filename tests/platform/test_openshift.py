"""The OpenShift flavour on the `ocp` stack: operators from OLM, Routes, user-workload
monitoring, no fixed user ids; what differs from the plain stacks and nothing more."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from components.flavour import olm, openshift
from components.names import GATEWAY_NAME
from components.pins import versions
from components.platform import kuadrant
from components.serving import gateway as gw
from components.serving import vllm_serving_runtime
from harness.program import Declared, Evaluation, typed_config
from tests.support.configs import evaluate_variant


@pytest.fixture
def ocp(stack_of: Callable[[str], Evaluation]) -> Evaluation:
    return stack_of("ocp")


def _subscription(stack: Evaluation, package: str) -> Declared:
    (found,) = [s for s in stack.objects("Subscription") if s.inputs["spec"]["name"] == package]
    return found


def test_the_operators_come_from_olm_pinned_by_channel_and_starting_csv(ocp: Evaluation) -> None:
    expected = {versions.OLM_SERVICE_MESH, versions.OLM_CERT_MANAGER, versions.OLM_RHCL}
    for package in expected:
        spec = _subscription(ocp, package.package).inputs["spec"]
        assert (spec["channel"], spec["startingCSV"], spec["source"]) == (
            package.channel,
            package.starting_csv,
            package.source,
        )
        assert spec["sourceNamespace"] == olm.MARKETPLACE
        assert spec["installPlanApproval"] == "Automatic"
    # The charts they replace are not also installed.
    charts = {r.inputs["chart"].rsplit("/", 1)[-1] for r in ocp.releases()}
    assert charts == {versions.KSERVE_CRDS.name, versions.KSERVE_RESOURCES.name}


def test_approval_comes_from_config() -> None:
    manual = evaluate_variant("ocp", {"maas:openshift": {"approval": "Manual", "kuadrant": "rhcl"}})
    assert manual.error is None, manual.error
    assert {s.inputs["spec"]["installPlanApproval"] for s in manual.objects("Subscription")} == {"Manual"}


def test_each_subscription_has_an_operator_group_it_can_use(ocp: Evaluation) -> None:
    """One OperatorGroup per namespace of ours, in a mode the CSV supports; Service Mesh goes to
    openshift-operators, whose OperatorGroup every OpenShift has."""
    groups = {g.namespace: g for g in ocp.objects("OperatorGroup")}
    assert len(groups) == len(ocp.objects("OperatorGroup"))
    mesh = _subscription(ocp, versions.OLM_SERVICE_MESH.package)
    assert mesh.namespace == "openshift-operators"
    assert "openshift-operators" not in groups
    cert_manager = _subscription(ocp, versions.OLM_CERT_MANAGER.package)
    assert groups[cert_manager.namespace].inputs["spec"] == {"targetNamespaces": [cert_manager.namespace]}
    rhcl = _subscription(ocp, versions.OLM_RHCL.package)
    assert groups[rhcl.namespace].inputs["spec"] == {}, "AllNamespaces: no targetNamespaces"
    for subscription in (cert_manager, rhcl):
        assert ocp.waits_for(subscription, groups[subscription.namespace])


def test_readiness_is_the_installed_csv(ocp: Evaluation) -> None:
    for subscription in ocp.objects("Subscription"):
        assert subscription.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == (
            "jsonpath={.status.installedCSV}"
        )


@pytest.mark.parametrize(
    ("custom", "installer"),
    [
        (("Istio", "default"), versions.OLM_SERVICE_MESH.package),
        (("Kuadrant", "kuadrant"), versions.OLM_RHCL.package),
        (("Issuer", f"{GATEWAY_NAME}-selfsigned"), versions.OLM_CERT_MANAGER.package),
        (("Certificate", gw.TLS_SECRET), versions.OLM_CERT_MANAGER.package),
        (("AuthPolicy", f"{GATEWAY_NAME}-authpolicy"), versions.OLM_RHCL.package),
        (("Gateway", GATEWAY_NAME), versions.OLM_SERVICE_MESH.package),
    ],
)
def test_no_custom_resource_before_its_subscription(
    ocp: Evaluation, custom: tuple[str, str], installer: str
) -> None:
    resource = ocp.one(*custom)
    subscription = _subscription(ocp, installer)
    assert ocp.waits_for(resource, subscription)
    assert not ocp.waits_for(subscription, resource)


def test_kuadrant_reads_its_failure_modes_and_our_gateway_controller_from_the_subscription(
    ocp: Evaluation,
) -> None:
    """OLM puts the Subscription's env into the operator's containers and reverts edits to its
    Deployment (operator-framework/operator-lifecycle-manager@v0.46.0 olm/overrides/inject/inject.go),
    so no patch."""
    env = {e["name"]: e["value"] for e in _subscription(ocp, "rhcl-operator").inputs["spec"]["config"]["env"]}
    names = env.pop("ISTIO_GATEWAY_CONTROLLER_NAMES")
    assert env == kuadrant.failure_modes(typed_config("ocp").limitador)
    assert env["RATELIMIT_SERVICE_FAILURE_MODE"] == "deny"
    # Kuadrant enforces policies on the Gateways of these controllers: ours (Istio's), and
    # OpenShift's own, which the CSV names and a shared cluster's Gateways use.
    assert _kuadrant_istio_controllers(names) >= {
        "istio.io/gateway-controller",
        "openshift.io/gateway-controller/v1",
    }
    assert not ocp.of_type("kubernetes:apps/v1:DeploymentPatch")


def _kuadrant_istio_controllers(value: str) -> set[str]:
    """The gateway controllers Kuadrant treats as Istio's, from the variable's value
    (Kuadrant/kuadrant-operator@v1.5.2 internal/controller/data_plane_policies_workflow.go
    getGatewayControllerNames): split at commas, trimmed, and Istio's own added unless the
    value is exactly it."""
    default = "istio.io/gateway-controller"
    names = {name.strip() for name in value.split(",")}
    return names if value == default else names | {default}


def test_community_kuadrant_stays_the_pinned_chart_with_its_patch() -> None:
    community = evaluate_variant("ocp", {"maas:openshift": {"kuadrant": "community"}})
    assert community.error is None, community.error
    assert (
        community.release(kuadrant.OPERATOR_RELEASE).inputs["version"] == versions.KUADRANT_OPERATOR.version
    )
    (patch,) = community.of_type("kubernetes:apps/v1:DeploymentPatch")
    assert patch.inputs["metadata"]["name"] == kuadrant.OPERATOR_DEPLOYMENT
    assert {s.inputs["spec"]["name"] for s in community.objects("Subscription")} == {
        versions.OLM_SERVICE_MESH.package,
        versions.OLM_CERT_MANAGER.package,
    }


def test_istiod_is_sails_istio_at_our_version_without_cni(ocp: Evaluation) -> None:
    istio = ocp.one("Istio", "default")
    spec = istio.inputs["spec"]
    assert spec["version"] == f"v{versions.ISTIO_VERSION}"
    assert spec["namespace"] == typed_config("ocp").namespaces.istio
    assert spec["values"]["pilot"]["cni"] == {"enabled": False}
    assert spec["values"]["pilot"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert istio.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == "condition=Ready"


def test_no_gateway_api_bundle_no_monitoring_stack(ocp: Evaluation) -> None:
    """The ingress operator owns the Gateway API CRDs (and refuses others' changes); user-workload
    monitoring replaces kube-prometheus-stack."""
    # A manifest applied whole: Keycloak's operator (OIDC is on), none of Gateway API's.
    files = [r.inputs["file"] for r in ocp.of_type("kubernetes:yaml/v2:ConfigFile")]
    assert files == [versions.KEYCLOAK_OPERATOR_URL]
    charts = {r.inputs["chart"] for r in ocp.releases()}
    assert not charts & {versions.KUBE_PROMETHEUS_STACK.name, versions.PROMETHEUS_OPERATOR_CRDS.name}
    assert "prometheusPortForward" not in ocp.outputs
    assert "grafanaAdmin" not in ocp.outputs


def _service_ports(stack: Evaluation) -> dict[str, int]:
    """The gateway Service's ports as Istio makes them: one per listener, named after it
    (istio/istio@1.30.3 pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go extractServicePorts)."""
    listeners = stack.one("Gateway", GATEWAY_NAME).inputs["spec"]["listeners"]
    return {listener["name"]: listener["port"] for listener in listeners}


def test_routes_point_at_the_gateway_service_and_port_for_every_host(ocp: Evaluation) -> None:
    cfg = typed_config("ocp")
    routes = {r.inputs["spec"]["host"]: r.inputs["spec"] for r in ocp.objects("Route")}
    hosts = {f"{cfg.gateway.api_host}.{cfg.domain}", *(f"{m.host}.{cfg.domain}" for m in cfg.models)}
    assert set(routes) == hosts
    ports = _service_ports(ocp)
    for route in routes.values():
        assert route["to"] == {"kind": "Service", "name": gw.SERVICE_NAME, "weight": 100}
        # A string targetPort names the Service's port (openshift/router@main
        # pkg/router/template/template_helper.go matches it against the endpoints' port name).
        assert route["port"]["targetPort"] in ports
        # HTTPS only: the gateway's certificate, the TLS passed through.
        assert route["tls"] == {"termination": "passthrough", "insecureEdgeTerminationPolicy": "None"}
    assert all(r.inputs["metadata"]["namespace"] == cfg.namespaces.models for r in ocp.objects("Route"))


def test_a_plain_http_gateway_is_edge_terminated_with_a_redirect() -> None:
    plain = evaluate_variant("ocp", {"maas:gateway": {"https": {"enabled": False}}})
    assert plain.error is None, plain.error
    for route in plain.objects("Route"):
        spec = route.inputs["spec"]
        assert spec["port"]["targetPort"] == "http"
        assert spec["tls"] == {"termination": "edge", "insecureEdgeTerminationPolicy": "Redirect"}


def test_clients_are_given_the_route_hosts_over_https(ocp: Evaluation) -> None:
    cfg = typed_config("ocp")
    assert ocp.outputs["apiUrl"] == f"https://{cfg.gateway.api_host}.{cfg.domain}/v1"
    for model in cfg.models:
        out = ocp.outputs["models"][model.name]
        assert out["url"] == f"https://{model.host}.{cfg.domain}/v1"
        assert "--resolve" not in out["curl"]
    assert ocp.outputs["portForward"].startswith("oc port-forward ")


def test_monitors_and_rules_carry_what_user_workload_monitoring_selects(ocp: Evaluation) -> None:
    """UWM reads monitors in every namespace not labelled openshift.io/cluster-monitoring=true or
    openshift.io/user-monitoring=false, and rules only with the leaf-prometheus scope
    (openshift/cluster-monitoring-operator@release-4.22 assets/prometheus-user-workload/prometheus.yaml)."""
    namespaces = {n.object_name: n.inputs["metadata"].get("labels", {}) for n in ocp.objects("Namespace")}
    monitors = ocp.objects("PodMonitor") + ocp.objects("ServiceMonitor")
    assert monitors
    for monitor in [*monitors, *ocp.objects("PrometheusRule")]:
        labels = monitor.inputs["metadata"].get("labels", {})
        assert labels.get("openshift.io/user-monitoring") != "false"
        assert namespaces[monitor.namespace].get("openshift.io/cluster-monitoring") != "true"
    (rules,) = ocp.objects("PrometheusRule")
    assert rules.inputs["metadata"]["labels"] == openshift.UWM_RULE_SCOPE


def test_metrics_doors_admit_user_workload_monitorings_prometheus(ocp: Evaluation) -> None:
    peers = [
        peer
        for policy in ocp.objects("NetworkPolicy")
        for rule in policy.inputs["spec"].get("ingress", [])
        for peer in rule.get("from", [])
    ]
    uwm = [p for p in peers if p.get("podSelector", {}).get("matchLabels") == openshift.UWM_PROMETHEUS_PODS]
    assert uwm
    assert all(
        p["namespaceSelector"]["matchLabels"] == {"kubernetes.io/metadata.name": openshift.UWM_NAMESPACE}
        for p in uwm
    )


def test_the_usage_export_asks_the_thanos_querier_with_a_token(ocp: Evaluation) -> None:
    command = ocp.outputs["usageExport"]
    assert command.startswith("MAAS_PROMETHEUS_TOKEN=$(oc whoami -t) python -m commands.usage")
    assert "oc get route thanos-querier -n openshift-monitoring" in command


def test_our_pods_leave_user_ids_to_the_cluster(ocp: Evaluation) -> None:
    for kind in ("Deployment", "StatefulSet", "Job"):
        for workload in ocp.objects(kind):
            context = workload.inputs["spec"]["template"]["spec"].get("securityContext", {})
            assert "runAsUser" not in context, workload
            assert "fsGroup" not in context, workload
            assert context.get("runAsNonRoot") is True, workload


def test_vllm_writes_its_caches_to_an_emptydir_as_a_non_root_user(ocp: Evaluation) -> None:
    runtime = ocp.one("ServingRuntime", vllm_serving_runtime.VLLM_CPU_RUNTIME).inputs["spec"]
    (container,) = runtime["containers"]
    env = {e["name"]: e["value"] for e in container["env"]}
    home = "/tmp"
    caches = (
        "HOME",
        "XDG_CACHE_HOME",
        "VLLM_CACHE_ROOT",
        "HF_HOME",
        "TRITON_CACHE_DIR",
        "FLASHINFER_WORKSPACE_DIR",
        "TORCHINDUCTOR_CACHE_DIR",
    )
    for key in caches:
        assert env[key].startswith(home), key
    # The assigned user id has no passwd entry: torch's inductor needs a name from USER.
    assert env["USER"]
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in runtime["volumes"]}
    assert volumes[mounts[home]] == {"name": "home", "emptyDir": {}}
    assert container["securityContext"]["runAsNonRoot"] is True
    assert "runAsUser" not in container["securityContext"]
    predictor = ocp.one("InferenceService", "qwen3-0-6b-instruct").inputs["spec"]["predictor"]
    assert predictor["securityContext"] == {
        "seccompProfile": {"type": "RuntimeDefault"},
        "runAsNonRoot": True,
    }


def test_the_plain_stacks_keep_vllm_as_its_image_runs_it(stack_of: Any) -> None:
    runtime = stack_of("gpu").one("ServingRuntime", vllm_serving_runtime.VLLM_RUNTIME).inputs["spec"]
    (container,) = runtime["containers"]
    assert "HOME" not in {e["name"] for e in container["env"]}
    assert [v["name"] for v in runtime["volumes"]] == ["devshm"]


def test_what_outlives_our_namespaces_carries_our_label(ocp: Evaluation) -> None:
    """scripts/check-teardown.sh counts OpenShift's groups only by this label: the cluster has
    Routes and Subscriptions of its own."""
    for kind in ("Route", "Subscription", "OperatorGroup", "Istio"):
        for resource in ocp.objects(kind):
            labels = resource.inputs["metadata"].get("labels", {})
            assert labels.get("app.kubernetes.io/part-of") == "maas-platform", resource


def test_kuadrant_adds_no_monitors_that_would_count_usage_twice(ocp: Evaluation, stack_of: Any) -> None:
    """User-workload monitoring reads every monitor: Kuadrant's own Limitador monitor
    (Kuadrant/kuadrant-operator@v1.5.2 observability_reconciler.go) beside ours would double every
    counter the usage rules sum. The plain stacks' Prometheus reads only ours, so theirs stays."""
    assert ocp.one("Kuadrant", "kuadrant").inputs["spec"]["observability"] == {"enable": False}
    assert stack_of("dev").one("Kuadrant", "kuadrant").inputs["spec"]["observability"] == {"enable": True}


def test_kserve_waits_for_cert_managers_webhook_not_just_its_operator(ocp: Evaluation) -> None:
    """The Subscription is ready once the CSV exists (operator-framework/operator-lifecycle-manager@v0.46.0
    catalog/operator.go); KServe's chart then creates an Issuer, which cert-manager's webhook
    must answer: the layer counts as ready when the operator reports that webhook available."""
    operand = ocp.one("CertManager", "cluster")
    assert operand.type == "kubernetes:operator.openshift.io/v1alpha1:CertManagerPatch"
    assert operand.inputs["metadata"]["annotations"]["pulumi.com/waitFor"] == (
        "condition=cert-manager-webhook-deploymentAvailable"
    )
    assert ocp.waits_for(operand, _subscription(ocp, versions.OLM_CERT_MANAGER.package))
    assert ocp.waits_for(ocp.release("kserve-resources"), operand)
