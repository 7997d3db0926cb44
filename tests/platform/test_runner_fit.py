"""R13: each kind stack fits the GitHub runner e2e.yml deploys it on, with room for the
disruptive tests.

The scheduler places a pod only where its requests fit what the node has left: on kind's
one node, every pod's CPU and memory requests (ours, the pinned charts' defaults, what
operators make, and Kubernetes' own) must add up to less than the node's allocatable.
This adds them up from what each kind stack declares; each upstream default is cited
beside it, at the pinned version.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from harness.program import Declared, Evaluation, evaluate, typed_config
from tests.support.configs import kind_stacks

# ubuntu-24.04 runner: 4 vCPU, 16 GB (github/docs@main
# content/actions/reference/runners/github-hosted-runners.md, standard runners for public repositories). kind
# reserves nothing for the system: its kubelet config sets no systemReserved or kubeReserved
# (kubernetes-sigs/kind@v0.33.0 pkg/cluster/internal/kubeadm/config.go), so allocatable CPU is the node's;
# memory less the kubelet's default hard eviction threshold (100Mi) and what the host itself keeps (the
# runner's agent, Docker, this suite: 1 GiB kept here).
ALLOCATABLE = {"cpu": 4.0, "memory": 15 * 2**30}
# Kept free beyond what the disruptive tests add (disruption_headroom): a pod still
# terminating while its replacement starts, and rounding in what was read.
SLACK = {"cpu": 0.25, "memory": 2**30}


_SUFFIXES = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


def parse_quantity(amount: str) -> float:
    """A Kubernetes quantity ("250m", "2", "128Mi") as a number (kubernetes/apimachinery@v0.36.4
    pkg/api/resource/quantity.go: decimal and binary suffixes)."""
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if amount.endswith(suffix):
            return float(amount[: -len(suffix)]) * _SUFFIXES[suffix]
    return float(amount)


@dataclass(frozen=True)
class Pod:
    name: str
    cpu: float
    memory: float
    count: int = 1

    @staticmethod
    def of(name: str, resources: dict[str, Any] | None, count: int = 1) -> Pod:
        requests = (resources or {}).get("requests") or {}
        return Pod(
            name,
            parse_quantity(str(requests.get("cpu", 0))),
            parse_quantity(str(requests.get("memory", 0))),
            count,
        )

    def __add__(self, other: Pod) -> Pod:
        return Pod(f"{self.name}+{other.name}", self.cpu + other.cpu, self.memory + other.memory, self.count)


def _requests(cpu: str, memory: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}}


def _merged(default: dict[str, Any], values: dict[str, Any] | None) -> dict[str, Any]:
    """Helm's merge of a release's values over the chart's defaults, for one resources map."""
    requests = {**default.get("requests", {}), **((values or {}).get("requests") or {})}
    return {"requests": requests}


def _get(values: dict[str, Any], *path: str) -> Any:
    for key in path:
        values = (values or {}).get(key) or {}
    return values


# Kubernetes' own pods on kind's node: kubeadm's static pods (kubernetes/kubernetes@v1.36.4
# cmd/kubeadm/app/phases/controlplane/manifests.go: apiserver 250m, controller-manager 200m,
# scheduler 100m; cmd/kubeadm/app/phases/etcd/local.go: etcd 100m, 100Mi), CoreDNS
# (cmd/kubeadm/app/phases/addons/dns/manifests.go: 2 replicas of 100m, 70Mi), kindnet
# (kubernetes-sigs/kind@v0.33.0 pkg/build/nodeimage/const_cni.go: 100m, 50Mi);
# kube-proxy and kind's local-path-provisioner request nothing.
SYSTEM = [
    Pod.of("kube-apiserver", _requests("250m", "0")),
    Pod.of("kube-controller-manager", _requests("200m", "0")),
    Pod.of("kube-scheduler", _requests("100m", "0")),
    Pod.of("etcd", _requests("100m", "100Mi")),
    Pod.of("coredns", _requests("100m", "70Mi"), 2),
    Pod.of("kindnet", _requests("100m", "50Mi")),
]

# The config reloader the Prometheus operator adds to each Prometheus and Alertmanager pod
# (prometheus-operator/prometheus-operator@v0.93.0 cmd/operator/main.go defaultReloaderCPU 10m, Memory 50Mi).
RELOADER = _requests("10m", "50Mi")


def _release_pods(chart: str, version: str, values: dict[str, Any], gateways: int) -> list[Pod]:
    """The pods a pinned chart runs with the values we give it. A chart not listed fails the
    test: its pods must be counted before it is installed on a kind stack."""
    if chart in ("kserve-crd", "oci://ghcr.io/kserve/charts/kserve-crd", "prometheus-operator-crds", "base"):
        return []  # CRDs (and Istio's base: CRDs and cluster roles) only
    if chart == "cert-manager":
        # cert-manager/cert-manager@v1.21.1 deploy/charts/cert-manager/values.yaml: resources {} for the
        # controller, webhook and cainjector (lines 419, 938, 1351).
        return [Pod.of(f"cert-manager-{p}", _get(values, *k, "resources")) for p, k in
                (("controller", ()), ("webhook", ("webhook",)), ("cainjector", ("cainjector",)))]  # fmt: skip
    if chart == "istiod":
        # istio/istio@1.30.3 manifests/charts/istio-control/istio-discovery/values.yaml: istiod's
        # `resources` requests 500m, 2048Mi, one replica (autoscaleMin 1); each Gateway's
        # proxy pod takes `global.proxy.resources`, 100m, 128Mi (files/kube-gateway.yaml).
        istiod = _merged(_requests("500m", "2048Mi"), values.get("resources"))
        proxy = _merged(_requests("100m", "128Mi"), _get(values, "global", "proxy", "resources"))
        return [Pod.of("istiod", istiod), Pod.of("gateway-proxy", proxy, gateways)]
    if chart in ("kserve-resources", "oci://ghcr.io/kserve/charts/kserve-resources"):
        # kserve/kserve@v0.20.0 charts/kserve-resources/values.yaml: the controller 100m, 300Mi and
        # its kube-rbac-proxy 100m, 300Mi, in one pod (files/kserve/deployment-patch.yaml).
        manager = _merged(_requests("100m", "300Mi"), _get(values, "kserve", "controller", "resources"))
        proxy = _merged(
            _requests("100m", "300Mi"), _get(values, "kserve", "controller", "rbacProxy", "resources")
        )
        return [Pod.of("kserve-controller", manager) + Pod.of("kube-rbac-proxy", proxy)]
    if chart == "kuadrant-operator":
        # Kuadrant/kuadrant-operator@v1.5.2 charts/kuadrant-operator/templates/manifests.yaml: the
        # operator 200m, 200Mi; its dependencies (Chart.yaml): authorino-operator 0.25.2
        # (charts/authorino-operator/templates/manifests.yaml) 200m, 200Mi, limitador-operator
        # 0.18.3 (read on main, charts/limitador-operator/templates/manifests.yaml) 200m,
        # 200Mi, dns-operator 0.17.1 (charts/dns-operator/templates/manifests.yaml) 10m, 64Mi.
        return [
            Pod.of("kuadrant-operator", _requests("200m", "200Mi")),
            Pod.of("authorino-operator", _requests("200m", "200Mi")),
            Pod.of("limitador-operator", _requests("200m", "200Mi")),
            Pod.of("dns-operator", _requests("10m", "64Mi")),
        ]
    if chart == "kube-prometheus-stack":
        # kube-prometheus-stack 88.3.0 values.yaml: the operator, its webhook Deployment and
        # Alertmanager request nothing (resources {}), nor does Grafana
        # (grafana-community/helm-charts@grafana-12.10.4 charts/grafana/values.yaml, sidecars included);
        # Prometheus takes ours. Each of Prometheus and Alertmanager carries the operator's config reloader.
        prometheus = _get(values, "prometheus", "prometheusSpec", "resources")
        return [
            Pod.of("prometheus", prometheus) + Pod.of("reloader", RELOADER),
            Pod.of("alertmanager", None) + Pod.of("reloader", RELOADER),
            Pod.of("prometheus-operator", None),
            Pod.of("prometheus-operator-webhook", None),
            Pod.of("grafana", None),
        ]
    if chart == "keda":
        # keda 2.20.2 (kedacore/charts@v2.20.2 keda/values.yaml `resources`): the operator, the
        # metrics server and the webhooks, each 100m, 100Mi.
        return [
            Pod.of(f"keda-{p}", _merged(_requests("100m", "100Mi"), _get(values, "resources", p)))
            for p in ("operator", "metricServer", "webhooks")
        ]
    raise AssertionError(f"chart {chart} {version}: its pods are not counted here; add them, cited")


# Keycloak's operator from keycloak/keycloak-k8s-resources@26.0.0 kubernetes/kubernetes.yml:
# 300m, 450Mi (26.7.4 was not readable, docs/unverified.md).
MANIFEST_PODS = {"keycloak-operator": [Pod.of("keycloak-operator", _requests("300m", "450Mi"))]}
# Limitador's default requests when its CR sets none (Kuadrant/limitador-operator@main
# api/v1alpha1/limitador_types.go defaultResourceRequirements): 250m, 32Mi.
LIMITADOR_DEFAULT = _requests("250m", "32Mi")


def _template_pods(resource: Declared) -> list[Pod]:
    spec = resource.inputs["spec"]
    template = spec.get("template") or spec["jobTemplate"]["spec"]["template"]
    containers = template["spec"]["containers"]
    pod = Pod.of(resource.name, None)
    for container in containers:
        pod = pod + Pod.of(container["name"], container.get("resources"))
    return [Pod(resource.name, pod.cpu, pod.memory, int(spec.get("replicas", 1)))]


def pods(stack: Evaluation) -> Iterator[tuple[str, Pod]]:
    """(phase, pod) for everything the stack runs: "steady" while the suite runs, "deploy"
    for the Jobs that run once during the deploy."""
    gateways = sum(1 for r in stack.resources if r.type.endswith(":Gateway"))
    for r in stack.resources:
        kind = r.type.rsplit(":", 1)[-1] if r.type.startswith("kubernetes:") else ""
        if r.type == "kubernetes:helm.sh/v3:Release":
            chart = str(r.inputs["chart"]).rsplit("/", 1)[-1]
            for pod in _release_pods(
                chart, str(r.inputs.get("version")), r.inputs.get("values") or {}, gateways
            ):
                yield "steady", pod
        elif r.type in ("kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml/v2:ConfigGroup"):
            for pod in MANIFEST_PODS.get(r.name, []):
                yield "steady", pod
        elif kind in ("Deployment", "StatefulSet", "DaemonSet"):
            yield from (("steady", p) for p in _template_pods(r))
        elif kind in ("Job", "CronJob"):
            yield from (("deploy", p) for p in _template_pods(r))
        elif kind == "LimitadorPatch":
            resources = r.inputs["spec"].get("resourceRequirements") or LIMITADOR_DEFAULT
            yield "steady", Pod.of("limitador", resources, int(r.inputs["spec"].get("replicas", 1)))
        elif kind == "Keycloak":
            spec = r.inputs["spec"]
            yield "steady", Pod.of("keycloak", spec.get("resources"), int(spec.get("instances", 1)))
            # The realm import runs as a Job of the Keycloak image with the server's resources
            # (docs/unverified.md).
            yield "deploy", Pod.of("keycloak-realm-import", spec.get("resources"))
        elif kind == "InferenceService":
            predictor = r.inputs["spec"]["predictor"]
            pod = Pod.of(r.name, None)
            for container in predictor.get("containers") or [predictor.get("model") or {}]:
                pod = pod + Pod.of("container", container.get("resources"))
            replicas = predictor.get("minReplicas", 1)
            yield "steady", Pod(r.name, pod.cpu, pod.memory, int(replicas))


def disruption_headroom(stack: str, steady: list[Pod]) -> Pod:
    """What the disruptive tests add while they run: L10's `rollout restart` of Limitador
    surges one pod (a Deployment's default maxSurge, 25% rounded up: kubernetes/kubernetes@v1.36.4
    pkg/apis/apps/v1/defaults.go), L18 grows each model that follows its queue to
    maxReplicas, and every other test's probe pods request nothing."""
    config = typed_config(stack)
    limitador = next((p for p in steady if p.name == "limitador"), Pod("limitador", 0, 0))
    extra = Pod("surge", limitador.cpu, limitador.memory)
    for model in config.models:
        if model.autoscaling is not None:
            per = Pod.of(model.name, model.compute.model_dump())
            grown = model.autoscaling.max_replicas - model.autoscaling.min_replicas
            extra = Pod("headroom", extra.cpu + per.cpu * grown, extra.memory + per.memory * grown)
    return extra


def sums(stack: str) -> dict[str, dict[str, float]]:
    evaluated = evaluate(stack)
    assert evaluated.error is None, evaluated.error
    declared = list(pods(evaluated))
    steady = [p for phase, p in declared if phase == "steady"] + SYSTEM
    deploy = [p for phase, p in declared if phase == "deploy"]
    headroom = disruption_headroom(stack, steady)

    def total(group: list[Pod]) -> dict[str, float]:
        return {
            "cpu": sum(p.cpu * p.count for p in group),
            "memory": sum(p.memory * p.count for p in group),
        }

    running = total(steady)
    return {
        "running": running,
        "during the deploy": {k: v + total(deploy)[k] for k, v in running.items()},
        "during the disruptive tests": {
            "cpu": running["cpu"] + headroom.cpu,
            "memory": running["memory"] + headroom.memory,
        },
    }


@pytest.mark.parametrize("stack", kind_stacks())
def test_every_kind_stacks_requests_fit_the_runner_with_room_for_the_disruptive_tests(stack: str) -> None:
    for moment, requested in sums(stack).items():
        for resource, allocatable in ALLOCATABLE.items():
            assert requested[resource] + SLACK[resource] <= allocatable, (
                f"{stack} {moment}: {resource} requests add up to {requested[resource]:g}, past the "
                f"runner's allocatable {allocatable:g} less {SLACK[resource]:g} kept free; size the "
                "kind stacks (maas:cluster.footprint)"
            )
