"""The base layers: explicit provider, install order from the recorded graph, determinism."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from components.platform import kuadrant
from harness.program import Declared, Evaluation, evaluate, stack_config, typed_config
from tests.support import k8s_diff
from tests.support.configs import evaluate_variant
from tests.support.upstream import CRD_OWNERS

# On OpenShift, what OLM installs in place of a chart: the Subscription (or Sail's `Istio`)
# declared under the release's Pulumi name; and what the cluster itself provides (the
# ingress operator's Gateway API CRDs, user-workload monitoring, OLM, Routes).
OPENSHIFT_INSTEAD = {
    "istio-base": "istio-base",
    "istiod": "istio-istiod",
    "cert-manager": "cert-manager-release",
    "kuadrant-operator": "kuadrant-operator",
}
OPENSHIFT_HAS = {"gateway-api-standard", "monitoring-operator-crds", "monitoring", "openshift"}
# Namespaces a cluster has before the stack: OpenShift's for operators that watch every namespace.
CLUSTER_NAMESPACES = {"openshift-operators"}


def _installer(stack: Evaluation, name: str) -> Declared | None:
    """A Helm release by the release name the cluster knows, else a bundle by its Pulumi name;
    on OpenShift, its OLM replacement, or None where the cluster brings it."""
    if typed_config(stack.stack).flavour == "openshift":
        if name in OPENSHIFT_HAS:
            assert not [r for r in stack.releases() + stack.resources if r.name == name], name
            return None
        name = OPENSHIFT_INSTEAD.get(name, name)
    found = [r for r in stack.releases() if r.inputs.get("name") == name] or [
        r for r in stack.resources if r.name == name and not r.type.startswith("maas:")
    ]
    assert len(found) == 1, f"{stack.stack}: expected one resource '{name}', found {len(found)}"
    return found[0]


def _waits(stack: Evaluation, later: str, earlier: str) -> bool | None:
    """Whether `later` waits for `earlier`; None when the cluster provides either."""
    first, then = _installer(stack, later), _installer(stack, earlier)
    return None if first is None or then is None else stack.waits_for(first, then)


def test_every_kubernetes_resource_uses_a_provider_built_from_config(stack: Evaluation) -> None:
    providers = {p.urn: p for p in stack.of_type("pulumi:providers:kubernetes")}
    context = stack_config(stack.stack)["maas:cluster"]["context"]
    for provider in providers.values():
        assert provider.inputs["context"] == context
        owner = stack.by_urn(provider.parent)
        assert owner is not None
        assert owner.type == "maas:cluster:ClusterAccess"
    for resource in stack.resources:
        if resource.custom and resource.type.startswith("kubernetes:"):
            urn = resource.provider.rsplit("::", 1)[0]
            assert urn in providers, f"{resource} uses {resource.provider or 'a default provider'}"


@pytest.mark.parametrize(
    ("later", "earlier"),
    [
        ("istio-base", "gateway-api-standard"),
        ("istiod", "istio-base"),
        ("istiod", "gateway-api-standard"),
        ("kserve-resources", "kserve-crd"),
        ("kserve-resources", "cert-manager"),
        ("kserve-resources", "gateway-api-standard"),
        ("kuadrant-operator", "gateway-api-standard"),
        ("kuadrant-operator", "istio-base"),
        ("kuadrant-operator", "istiod"),
        ("kuadrant-operator", "cert-manager"),
        ("kuadrant-instance", "kuadrant-operator"),
    ],
)
def test_install_order(stack: Evaluation, later: str, earlier: str) -> None:
    assert _waits(stack, later, earlier) in (True, None)
    assert _waits(stack, earlier, later) in (False, None)


def test_independent_layers_do_not_wait_for_each_other(stack: Evaluation) -> None:
    """cert-manager, the Gateway API CRDs and the KServe CRDs start in parallel."""
    roots = ["cert-manager", "gateway-api-standard", "kserve-crd"]
    for a in roots:
        for b in roots:
            if a != b:
                assert _waits(stack, a, b) in (False, None)


def test_every_custom_resource_waits_for_the_release_that_serves_it(stack: Evaluation) -> None:
    custom = [r for r in stack.objects() if "." in r.inputs["apiVersion"].rpartition("/")[0]]
    assert custom, "expected custom resources"
    for resource in custom:
        group = resource.inputs["apiVersion"].rpartition("/")[0]
        if group in {"networking.k8s.io", "rbac.authorization.k8s.io", "admissionregistration.k8s.io"}:
            continue
        assert group in CRD_OWNERS, f"{resource}: no known installer for API group {group}"
        for owner in CRD_OWNERS[group]:
            installer = _installer(stack, owner)
            assert installer is None or stack.waits_for(resource, installer), (
                f"{resource} does not wait for {owner}"
            )


def test_everything_in_a_namespace_waits_for_it_so_namespaces_go_last(stack: Evaluation) -> None:
    """So `pulumi destroy` deletes namespaces last, after everything inside them: objects,
    releases, and manifests applied through a provider whose default namespace it is."""
    namespaces = {r.object_name: r for r in stack.objects("Namespace")}
    provider_namespace = {
        p.urn: str(p.inputs["namespace"])
        for p in stack.of_type("pulumi:providers:kubernetes")
        if p.inputs.get("namespace")
    }
    bundles = stack.of_type("kubernetes:yaml/v2:ConfigFile") + stack.of_type("kubernetes:yaml/v2:ConfigGroup")
    for resource in stack.objects() + stack.releases() + bundles:
        by_provider = provider_namespace.get(resource.provider.rsplit("::", 1)[0], "")
        namespace = resource.namespace or resource.inputs.get("namespace", "") or by_provider
        if resource.kind == "Namespace" or not namespace or namespace in CLUSTER_NAMESPACES:
            continue
        assert namespace in namespaces, (
            f"{resource} is in namespace {namespace}, which this stack does not create"
        )
        assert stack.waits_for(resource, namespaces[namespace]), f"{resource} does not wait for its namespace"


_UNPINNED = re.compile(r"^$|latest|[\^~*x]|>|<")


def test_helm_releases_pin_chart_version_and_repository(stack: Evaluation) -> None:
    assert stack.releases()
    for release in stack.releases():
        inputs = release.inputs
        assert inputs.get("name"), f"{release}: release name must be set (Pulumi would add a random suffix)"
        assert inputs.get("chart"), release
        version = str(inputs.get("version", ""))
        assert not _UNPINNED.search(version), f"{release}: chart version '{version}' is not pinned"
        oci = str(inputs["chart"]).startswith("oci://")
        repo = inputs.get("repositoryOpts", {}).get("repo", "")
        assert oci or repo.startswith("https://"), f"{release}: no https or oci:// repository"


def test_manifest_bundles_come_from_pinned_release_urls(stack: Evaluation) -> None:
    bundles = stack.of_type("kubernetes:yaml/v2:ConfigFile") + stack.of_type("kubernetes:yaml/v2:ConfigGroup")
    # OpenShift brings the Gateway API CRDs: a stack without pools or Keycloak applies no bundle.
    assert bundles or typed_config(stack.stack).flavour == "openshift"
    for bundle in bundles:
        urls = [bundle.inputs["file"]] if "file" in bundle.inputs else bundle.inputs["files"]
        for url in urls:
            assert url.startswith("https://"), bundle
            assert re.search(r"/v?\d+\.\d+\.\d+/", url), f"{bundle}: {url} names no release"


def _fingerprint(result: Evaluation) -> dict[str, tuple[object, ...]]:
    """Registration order varies with scheduling; what is declared must not."""
    return {r.urn: (r.inputs, r.parent, sorted(r.dependencies), r.secret_paths) for r in result.resources}


@pytest.mark.parametrize("stack_name", ["dev", "gpu"])
def test_two_evaluations_declare_identical_resources(stack_name: str) -> None:
    first, second = evaluate(stack_name), evaluate(stack_name)
    assert first.error is None
    assert second.error is None
    assert _fingerprint(first) == _fingerprint(second)


def test_istio_charts_are_told_a_namespace_other_than_istio_system() -> None:
    """istiod's ServiceAccount, RBAC and the base chart's webhook service go to
    `global.istioNamespace`, not to the release namespace (istio 1.30.3 base and
    istio-discovery templates): with only the release moved, istiod's pods cannot start."""
    result = evaluate_variant("dev", {"maas:namespaces": {"istio": "mesh"}})
    assert result.error is None, result.error
    for release in ("istio-base", "istiod"):
        declared = result.release(release)
        assert declared.inputs["namespace"] == "mesh"
        assert declared.inputs["values"]["global"]["istioNamespace"] == "mesh"


def _operator_env(stack: Evaluation) -> dict[str, str]:
    """The variables the operator's container takes from the ConfigMap its patch names."""
    patch = stack.one("Deployment", kuadrant.OPERATOR_DEPLOYMENT)
    assert patch.type == "kubernetes:apps/v1:DeploymentPatch", (
        "the chart's Deployment, patched, not a second one"
    )
    (container,) = patch.inputs["spec"]["template"]["spec"]["containers"]
    assert container["name"] == kuadrant.OPERATOR_CONTAINER
    assert set(container) == {"name", "envFrom"}, "the patch owns the container's envFrom alone"
    ((source,),) = [container["envFrom"]]
    config_map = stack.one("ConfigMap", source["configMapRef"]["name"], patch.namespace)
    assert config_map.inputs["immutable"] is True
    assert stack.waits_for(patch, config_map)
    return dict(config_map.inputs["data"])


# The operator's Deployment as its chart renders it
# (Kuadrant/kuadrant-operator@v1.5.2 charts/kuadrant-operator/templates/manifests.yaml, a chart with no
# values): the fields a patch of its container meets, with the seven env entries in their order. Containers
# are pruned by position too: the patch converges while `manager` is the chart's first container
# (its only one at v1.5.2); a chart that put a sidecar first would bring the diff back.
_CHART_OPERATOR: dict[str, Any] = {
    "apiVersion": "apps/v1",
    "kind": "Deployment",
    "metadata": {"name": kuadrant.OPERATOR_DEPLOYMENT, "labels": {"app": "kuadrant"}},
    "spec": {
        "replicas": 1,
        "template": {
            "metadata": {"labels": {"app": "kuadrant", "control-plane": "controller-manager"}},
            "spec": {
                "containers": [
                    {
                        "name": kuadrant.OPERATOR_CONTAINER,
                        "args": ["--leader-elect"],
                        "command": ["/manager"],
                        "env": [
                            {"name": "EXTENSIONS_DIR", "value": "/extensions"},
                            {"name": "EXTENSIONS_DESCRIPTOR_SERVICE_PORT", "value": "50051"},
                            {"name": "RELATED_IMAGE_WASMSHIM", "value": "quay.io/kuadrant/wasm-shim:v0.14.1"},
                            {
                                "name": "RELATED_IMAGE_DEVELOPERPORTAL",
                                "value": "quay.io/kuadrant/developer-portal-controller:v0.2.1",
                            },
                            {
                                "name": "RELATED_IMAGE_CONSOLE_PLUGIN_LATEST",
                                "value": "quay.io/kuadrant/console-plugin:v0.4.1",
                            },
                            {
                                "name": "RELATED_IMAGE_CONSOLE_PLUGIN_PF5",
                                "value": "quay.io/kuadrant/console-plugin:v0.1.5-2",
                            },
                            {
                                "name": "OPERATOR_NAMESPACE",
                                "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
                            },
                        ],
                        "image": "quay.io/kuadrant/kuadrant-operator:v1.5.2",
                    }
                ],
                "serviceAccountName": "kuadrant-operator-controller-manager",
            },
        },
    },
}


def _proposed_on_a_second_up(patch: dict[str, Any]) -> dict[str, Any]:
    """What the provider's diff proposes once the chart's Deployment carries the applied patch,
    with the same inputs again (tests/support/k8s_diff.py)."""
    chart = copy.deepcopy(_CHART_OPERATOR)
    chart["metadata"]["namespace"] = patch["metadata"]["namespace"]
    return k8s_diff.diff(k8s_diff.apply(chart, patch), patch, patch)


@pytest.mark.parametrize("stack_name", ["dev-oidc", "gpu"])
def test_a_second_up_proposes_no_change_to_the_operator_env(stack_of: Any, stack_name: str) -> None:
    """`make converged` (--expect-no-changes) fails on a patch the provider diffs on every run.
    (The stacks whose failure modes differ from the operator's defaults: dev has no patch.)"""
    patch = stack_of(stack_name).one("Deployment", kuadrant.OPERATOR_DEPLOYMENT)
    assert _proposed_on_a_second_up(patch.inputs) == {}


def test_the_diff_model_sees_an_env_patch_differ_on_every_run() -> None:
    """The oracle above is not blind: entries of the chart's own `env` list, applied after the
    chart's seven, are compared by position with the chart's first ones and always differ."""
    containers = [
        {"name": kuadrant.OPERATOR_CONTAINER, "env": [{"name": "AUTH_SERVICE_FAILURE_MODE", "value": "deny"}]}
    ]
    env_patch = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": kuadrant.OPERATOR_DEPLOYMENT, "namespace": "kuadrant-system"},
        "spec": {"template": {"spec": {"containers": containers}}},
    }
    proposed = _proposed_on_a_second_up(env_patch)
    assert proposed == {"spec": {"template": {"spec": {"containers": containers}}}}


def _failure_modes_in_force(stack: Evaluation) -> dict[str, str]:
    """What the operator runs with: its patched environment, or, where no patch is declared,
    its defaults (Kuadrant/kuadrant-operator@v1.5.2 internal/wasm/utils.go parseFailureModeValue:
    AUTH_SERVICE_FAILURE_MODE deny, the RATELIMIT_* ones allow)."""
    patches = [r for r in stack.objects("Deployment") if r.object_name == kuadrant.OPERATOR_DEPLOYMENT]
    if not patches:
        return dict(kuadrant.OPERATOR_DEFAULT_FAILURE_MODES)
    return _operator_env(stack)


def test_the_operator_defaults_are_read_at_the_pinned_release() -> None:
    assert kuadrant.OPERATOR_DEFAULT_FAILURE_MODES == {
        "AUTH_SERVICE_FAILURE_MODE": "deny",
        "RATELIMIT_SERVICE_FAILURE_MODE": "allow",
        "RATELIMIT_CHECK_SERVICE_FAILURE_MODE": "allow",
        "RATELIMIT_REPORT_SERVICE_FAILURE_MODE": "allow",
    }


@pytest.mark.parametrize(("stack_name", "limits"), [("dev", "allow"), ("dev-oidc", "deny"), ("gpu", "deny")])
def test_failure_modes_are_set_where_kuadrant_reads_them(stack_of: Any, stack_name: str, limits: str) -> None:
    """Authorino always fails closed; Limitador as maas:limitador.failureMode says (gpu: closed)."""
    stack = stack_of(stack_name)
    assert _failure_modes_in_force(stack) == {
        "AUTH_SERVICE_FAILURE_MODE": "deny",
        "RATELIMIT_SERVICE_FAILURE_MODE": limits,
        "RATELIMIT_CHECK_SERVICE_FAILURE_MODE": limits,
        # a token report comes after the answer: failing it would only throw the answer away
        "RATELIMIT_REPORT_SERVICE_FAILURE_MODE": "allow",
    }


@pytest.mark.parametrize("stack_name", ["dev-oidc", "gpu"])
def test_the_instance_waits_for_the_operator_patched_with_other_failure_modes(
    stack_of: Any, stack_name: str
) -> None:
    """No policy is enforced under the operator's defaults first."""
    stack = stack_of(stack_name)
    patch = stack.one("Deployment", kuadrant.OPERATOR_DEPLOYMENT)
    assert stack.waits_for(_installer(stack, "kuadrant-instance"), patch)
    assert stack.waits_for(patch, _installer(stack, "kuadrant-operator"))


def test_failure_modes_equal_to_the_defaults_restart_nothing(stack_of: Any) -> None:
    """dev's (Limitador open) are the operator's defaults: no ConfigMap, no patch, so no
    restart of the operator after its install (harness/critical_path.py)."""
    stack = stack_of("dev")
    assert [r for r in stack.objects("Deployment") if r.object_name == kuadrant.OPERATOR_DEPLOYMENT] == []
    assert [r for r in stack.objects("ConfigMap") if r.name.startswith("kuadrant-failure-modes")] == []
    assert stack.waits_for(_installer(stack, "kuadrant-instance"), _installer(stack, "kuadrant-operator"))


def test_limitador_may_fail_closed_on_dev_too() -> None:
    stack = evaluate_variant("dev", {"maas:limitador": {"failureMode": "closed"}})
    assert _operator_env(stack)["RATELIMIT_SERVICE_FAILURE_MODE"] == "deny"


# The design: restricted where every pod meets it, baseline where one cannot (docs/models.md,
# "Pod Security"); restricted is reported everywhere.
ENFORCED = {
    "cert-manager": "restricted",
    "kserve": "restricted",
    "istio": "restricted",
    "observability": "restricted",
    "keda": "restricted",
    "models": "baseline",
    "kuadrant": "baseline",
    "keycloak": "baseline",
}


def test_every_namespace_of_ours_enforces_pod_security(stack: Evaluation) -> None:
    """Each namespace the stack creates enforces its role's level and reports restricted."""
    in_use = typed_config(stack.stack).namespaces_in_use()
    namespaces = {n.object_name: n for n in stack.objects("Namespace")}
    assert set(namespaces) == set(in_use.values())
    for role, name in in_use.items():
        labels = namespaces[name].inputs["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == ENFORCED[role], name
        assert labels["pod-security.kubernetes.io/warn"] == "restricted", name
        assert labels["pod-security.kubernetes.io/audit"] == "restricted", name


def test_istiod_meets_restricted() -> None:
    """istiod's seccomp profile is a value of its chart, unset by default."""
    from tests.support.configs import evaluate_variant

    istiod = evaluate_variant("dev", {}).release("istiod")
    assert istiod.inputs["values"]["seccompProfile"] == {"type": "RuntimeDefault"}


def test_limitador_switches_to_the_deployed_redis_only_once_it_is_up(stack_of: Any) -> None:
    """Limitador exits when it cannot reach its Redis at start."""
    stack = stack_of("gpu")
    assert stack.waits_for(stack.one("Limitador", "limitador"), stack.one("StatefulSet", "limitador-redis"))


def test_the_list_merge_follows_server_side_apply() -> None:
    """structured-merge-diff visitListItems: live order kept, shared items merged in place, a
    new item before the next shared one, the rest at the end; atomic lists replaced."""
    live = {"env": [{"name": "A"}, {"name": "B", "value": "1"}], "args": ["x"]}
    applied = {"env": [{"name": "X"}, {"name": "B", "value": "2"}, {"name": "Y"}], "args": ["y"]}
    assert k8s_diff.apply(live, applied) == {
        "env": [{"name": "A"}, {"name": "X"}, {"name": "B", "value": "2"}, {"name": "Y"}],
        "args": ["y"],
    }
