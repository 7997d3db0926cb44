"""Every chart, image and CRD bundle this program installs, pinned, in one place.

The releases match the JSON Schemas the tests validate against (shared/schemas/SOURCES.md).
A version changes here, in a reviewed commit; nothing resolves "latest" at run time.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass


@dataclass(frozen=True)
class HelmChart:
    name: str
    version: str
    # an https chart repository, or an oci:// registry path holding the chart
    repository: str


# Kubernetes 1.36: the newest minor Istio 1.30 supports (1.32-1.36). The core-kind schema
# check targets it; the dev cluster runs it, on the node image kind v0.33.0 built for it.
KUBERNETES_MINOR = "1.36"
KIND_VERSION = "v0.33.0"
KIND_NODE_IMAGE = (
    "kindest/node:v1.36.4@sha256:099e049362a1526b2db71494e1947aae99bd16290d7c895f2b7ea312e3cbfaed"
)

# The command-line tools `make deploy-dev` fetches when they are missing (scripts/tools.py),
# each checked against the checksum its publisher lists beside it. kubectl matches the
# node image's Kubernetes; the Pulumi CLI matches the SDK pinned in requirements.txt.
KUBECTL_VERSION = "v1.36.4"
PULUMI_VERSION = "3.272.0"
# kind's release assets: kind-<os>-<arch> and kind-<os>-<arch>.sha256sum ("<hash>  <asset>";
# kubernetes-sigs/kind@v0.33.0 hack/release/build/cross.sh, RELEASE.md).
KIND_DOWNLOAD = "https://github.com/kubernetes-sigs/kind/releases/download"
# kubernetes/website install-kubectl-{linux,macos}.md: <dl>/<version>/bin/<os>/<arch>/kubectl
# and kubectl.sha256, which holds the hash alone.
KUBECTL_DOWNLOAD = "https://dl.k8s.io/release"
# pulumi/get.pulumi.com@main dist/install.sh: pulumi-v<version>-<linux|darwin>-<x64|arm64>.tar.gz
# from the GitHub release (files wrapped in pulumi/, pulumi/pulumi@v3.272.0 .goreleaser.yml);
# the release's pulumi-<version>-checksums.txt lists "<sha256>  <tarball>"
# (pulumi/pulumi@v3.272.0 .github/workflows/sign.yml).
PULUMI_DOWNLOAD = "https://github.com/pulumi/pulumi/releases/download"


@dataclass(frozen=True)
class Operand:
    """The operator-made object whose condition says an operator's operands serve: what the
    layers after it wait for, where the Subscription's readiness (the CSV exists) comes too
    early. Applied as a server-side apply patch with `spec`, so it is the same object whether
    the operator made it first or not."""

    api_version: str
    kind: str
    name: str
    spec: tuple[tuple[str, str], ...]
    condition: str


@dataclass(frozen=True)
class OlmPackage:
    """An operator from an OpenShift catalog, as the OpenShift flavour subscribes to it."""

    package: str
    channel: str
    # The CSV a first install resolves to (operator-framework/operator-lifecycle-manager@v0.46.0
    # pkg/controller/registry/resolver/resolver.go: startingCSV filters only while nothing is
    # installed; updates then follow the channel, each approved when approval is Manual).
    starting_csv: str
    # The CatalogSource in openshift-marketplace that serves it.
    source: str
    # Environment the Subscription gives the operator's containers besides the layer's own.
    env: tuple[tuple[str, str], ...] = ()
    # Where the Subscription goes: the layer's namespace, in an OperatorGroup of ours that
    # targets every namespace or only its own (an install mode the CSV supports); or a
    # namespace whose OperatorGroup the cluster has (openshift-operators: every namespace).
    install_mode: typing.Literal["AllNamespaces", "OwnNamespace"] = "AllNamespaces"
    namespace: str | None = None
    operand: Operand | None = None


# OpenShift Service Mesh 3.4, Red Hat's build of Sail: the Istio resource's default and newest
# version is v1.30.3, ISTIO_VERSION (openshift-service-mesh/sail-operator@v3.4.1
# pkg/istioversion/versions.ossm.yaml,
# bundle/manifests/servicemeshoperator3.clusterserviceversion.yaml: AllNamespaces only;
# channels stable and stable-3.N, Makefile.vendor.mk).
# In openshift-operators, where OpenShift's own Service Mesh subscription goes: an ingress
# operator that installs Gateway API support through OLM finds ours there and leaves it
# (openshift/cluster-ingress-operator@release-4.22 gatewayclass/subscription.go
# findConflictingSubscription; earlier releases would rewrite it, but ship Gateway API CRDs
# too old for us: commands/preflight.py); a second Service Mesh operator elsewhere would own
# the same CRDs, which OLM refuses.
OLM_SERVICE_MESH = OlmPackage(
    "servicemeshoperator3",
    "stable-3.4",
    "servicemeshoperator3.v3.4.1",
    "redhat-operators",
    namespace="openshift-operators",
)
# cert-manager Operator for Red Hat OpenShift (redhat-cop/gitops-catalog@main
# openshift-cert-manager-operator/operator: package and catalog;
# openshift/cert-manager-operator@cert-manager-1.18 bundle/manifests: CSV and channels
# stable-v1, stable-v1.18). It runs cert-manager in namespace cert-manager whatever its own
# (pkg/operator/operatorclient/interfaces.go TargetNamespace), with the chart's webhook labels.
OLM_CERT_MANAGER = OlmPackage(
    "openshift-cert-manager-operator",
    "stable-v1.18",
    "cert-manager-operator.v1.18.1",
    "redhat-operators",
    # Its CSV supports Own, Single and AllNamespaces; none of its code reads its own namespace
    # (openshift/cert-manager-operator@cert-manager-1.18 pkg/operator/operatorclient/interfaces.go
    # OperatorNamespace is unused).
    install_mode="OwnNamespace",
    # KServe's chart creates an Issuer and a Certificate, which cert-manager's webhook
    # (failurePolicy Fail) must answer: wait for it. The operator makes CertManager "cluster"
    # with this spec when absent (openshift/cert-manager-operator@cert-manager-1.18
    # pkg/controller/deployment/default_cert_manager_controller.go) and reports each Deployment
    # as <controller>Available (openshift/library-go@a7eec173a623
    # pkg/operator/deploymentcontroller/deployment_controller.go; controller
    # "cert-manager-webhook-deployment", openshift/cert-manager-operator@cert-manager-1.18
    # cert_manager_webhook_deployment.go).
    operand=Operand(
        "operator.openshift.io/v1alpha1",
        "CertManager",
        "cluster",
        (("managementState", "Managed"),),
        "cert-manager-webhook-deploymentAvailable",
    ),
)
# Red Hat Connectivity Link 1.4, Kuadrant's product build (rh-api-management/
# rhcl-operator-product-build branch rhcl-1.4: package rhcl-operator, channel stable, CSV
# rhcl-operator.v1.4.1 from kuadrant-operator v1.5.0-rc3, AllNamespaces only). Its CSV points
# Kuadrant at OpenShift's own gateway controller, whose Gateways (openshift-default) a shared
# cluster may carry Kuadrant policies on; ours is Istio's. The Subscription's value replaces
# the CSV's, so it names both: Kuadrant splits it at commas and adds Istio's when the value is
# not Istio's alone (Kuadrant/kuadrant-operator@v1.5.2 internal/controller/
# data_plane_policies_workflow.go getGatewayControllerNames).
OPENSHIFT_GATEWAY_CONTROLLER = "openshift.io/gateway-controller/v1"
ISTIO_GATEWAY_CONTROLLER = "istio.io/gateway-controller"
OLM_RHCL = OlmPackage(
    "rhcl-operator",
    "stable",
    "rhcl-operator.v1.4.1",
    "redhat-operators",
    env=(("ISTIO_GATEWAY_CONTROLLER_NAMES", f"{OPENSHIFT_GATEWAY_CONTROLLER},{ISTIO_GATEWAY_CONTROLLER}"),),
)

# Not v1.6.1 (the schemas' release): Istio 1.30 is built and documented against Gateway API
# v1.5 ("1.30 upgrade note: gateway api crds must be v1.5", istio/istio.io#17394). The
# Gateway and HTTPRoute fields this program sets are the same in v1.5.1 and v1.6.1.
GATEWAY_API_VERSION = "v1.5.1"
GATEWAY_API_CRDS_URL = (
    "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
    f"{GATEWAY_API_VERSION}/standard-install.yaml"
)

CERT_MANAGER = HelmChart("cert-manager", "v1.21.1", "https://charts.jetstack.io")

ISTIO_VERSION = "1.30.3"
ISTIO_REPOSITORY = "https://istio-release.storage.googleapis.com/charts"
ISTIO_BASE = HelmChart("base", ISTIO_VERSION, ISTIO_REPOSITORY)
ISTIOD = HelmChart("istiod", ISTIO_VERSION, ISTIO_REPOSITORY)

KSERVE_VERSION = "v0.20.0"
KSERVE_CRDS = HelmChart("kserve-crd", KSERVE_VERSION, "oci://ghcr.io/kserve/charts")
# The controller, its webhooks and `inferenceservice-config` (there is no chart named "kserve").
KSERVE_RESOURCES = HelmChart("kserve-resources", KSERVE_VERSION, "oci://ghcr.io/kserve/charts")

# KEDA, for models that scale on their queue (kedacore/charts@v2.20.2 keda/Chart.yaml:
# appVersion 2.20.2, the ScaledObject schema's release). KServe v0.20.0 builds against KEDA
# 2.18.0 (its go.mod); the keda.sh/v1alpha1 ScaledObject it writes is the same in both.
KEDA = HelmChart("keda", "2.20.2", "https://kedacore.github.io/charts")

# Pooled models (maas:models[].scheduling: pool). InferencePool v1 from the Gateway API
# Inference Extension's release (the schemas' v1.6.0; Istio 1.30 reads only v1); the
# endpoint picker and its InferenceObjective CRDs from llm-d-router v0.10.0, their home since
# v0.9.0 (GIE v1.6.0 ships no EPP and no objectives). The CRDs from the tags' own files, as
# the releases ship no bundle of exactly these (llm-d/llm-d-router@v0.10.0
# artifacts/manifests.yaml is made by `make artifacts`, Makefile).
INFERENCE_EXTENSION_VERSION = "v1.6.0"
LLM_D_ROUTER_VERSION = "v0.10.0"
INFERENCE_CRDS_URLS = (
    "https://raw.githubusercontent.com/kubernetes-sigs/gateway-api-inference-extension/"
    f"{INFERENCE_EXTENSION_VERSION}/config/crd/bases/inference.networking.k8s.io_inferencepools.yaml",
    *(
        f"https://raw.githubusercontent.com/llm-d/llm-d-router/{LLM_D_ROUTER_VERSION}/config/crd/bases/"
        f"llm-d.ai_{plural}.yaml"
        for plural in ("inferenceobjectives", "inferencemodelrewrites")
    ),
)
# The release's image (llm-d/llm-d-router@v0.10.0 Makefile EPP_IMAGE_NAME; hack/push-chart.sh
# sets the chart's tag to the release's).
ENDPOINT_PICKER_IMAGE = f"ghcr.io/llm-d/llm-d-router-endpoint-picker:{LLM_D_ROUTER_VERSION}"

KUADRANT_OPERATOR = HelmChart("kuadrant-operator", "1.5.2", "https://kuadrant.io/helm-charts")
# What kuadrant-operator 1.5.2 bundles (its chart's dependency), for the Limitador CRD schema.
LIMITADOR_OPERATOR_VERSION = "0.18.3"

# Prometheus operator v0.93.0 (the schemas' release), Prometheus, Grafana, Alertmanager.
KUBE_PROMETHEUS_STACK = HelmChart(
    "kube-prometheus-stack", "88.3.0", "https://prometheus-community.github.io/helm-charts"
)
# The operator that chart bundles, for the monitoring CRD schemas.
PROMETHEUS_OPERATOR_VERSION = "v0.93.0"
# The same operator release's CRDs as a chart of their own (prometheus-community/helm-charts
# charts/prometheus-operator-crds 31.0.0: appVersion v0.93.0; 31.0.1 moves to v0.93.1).
PROMETHEUS_OPERATOR_CRDS = HelmChart(
    "prometheus-operator-crds", "31.0.0", "https://prometheus-community.github.io/helm-charts"
)

# Keycloak: the operator has no published chart, so its CRDs and manifest come from the
# release tag of keycloak/keycloak-k8s-resources (26.7 serves k8s.keycloak.org/v2beta1).
KEYCLOAK_VERSION = "26.7.4"
_KEYCLOAK_RESOURCES = (
    f"https://raw.githubusercontent.com/keycloak/keycloak-k8s-resources/{KEYCLOAK_VERSION}/kubernetes"
)
KEYCLOAK_CRDS_URLS = tuple(
    f"{_KEYCLOAK_RESOURCES}/{crd}.k8s.keycloak.org-v1.yml"
    for crd in ("keycloaks", "keycloakrealmimports", "keycloakoidcclients", "keycloaksamlclients")
)
KEYCLOAK_OPERATOR_URL = f"{_KEYCLOAK_RESOURCES}/kubernetes.yml"
KEYCLOAK_IMAGE = f"quay.io/keycloak/keycloak:{KEYCLOAK_VERSION}"
# Keycloak's database (Keycloak supports PostgreSQL 14-18): 17.11, a maintained 17.x (17.6 is
# no longer built), by the digest of its image index as docker-library/repo-info records it
# (docker-library/repo-info@8c2b57bce198 repos/postgres/remote/17.11.md; user 999, PGDATA
# /var/lib/postgresql/data).
POSTGRES_IMAGE = "postgres:17.11@sha256:f86c774c7a51d0f05133f2ab70e4c384b589170458ab1df1ba83426d7cc30da7"

# Limitador's shared counters when the program deploys their Redis: the official image's
# newest release (docker-library/official-images library/redis: "8.10.2-alpine", from
# redis/docker-library-redis v8.10.2), by the digest of its image index in
# docker-library/repo-info@0bdd94409df0 repos/redis/remote/8.10.2-alpine.md (user 999).
REDIS_IMAGE = "redis:8.10.2-alpine@sha256:72cedd9603038893af961e90ac5e1a1a0d8377d5e338dbdad8fe284ea25de18f"

# Model servers. The simulator's tag is its newest release (v0.10.2, 2026-07); vLLM's is
# the newest release as of 2026-10 with `--enable-force-include-usage`.
SIMULATOR_IMAGE = "ghcr.io/llm-d/llm-d-inference-sim:v0.10.2"
VLLM_IMAGE = "vllm/vllm-openai:v0.31.0"
# The CPU build of the same release for `cpuServing` models: the CUDA image cannot start
# without a GPU, and KServe swaps to "-cpu" only for runtimes of server type vllmserver
# (kserve/kserve@v0.20.0 pkg/controller/v1beta1/inferenceservice/utils/utils.go, UpdateImageTag),
# which ours is not. Name per vllm-project/vllm@v0.31.0 docs/getting_started/installation/cpu.*.inc.md.
VLLM_CPU_IMAGE = "vllm/vllm-openai-cpu:v0.31.0"

# The shared host's model list (components/serving/model_list.py): NGINX's unprivileged image,
# stable 1.30.4 (nginx/docker-nginx-unprivileged@8b44229 "stable to 1.30.4"; the tag per
# nginx/docker-nginx-unprivileged@8b44229 .github/workflows/alpine-stable.yml:
# <major>.<minor>.<patch>-alpine-slim).
MODEL_LIST_IMAGE = "docker.io/nginxinc/nginx-unprivileged:1.30.4-alpine-slim"

# The key service (components/access/self_service.py) runs our standard-library program from
# a ConfigMap on the official Python image: 3.13 (Python 3.13.14 on Debian trixie), by the
# digest of its image index as docker-library/repo-info@2986dca3a80c
# repos/python/remote/3.13-slim.md records it. It has no user of its own: the pod sets one.
PYTHON_IMAGE = "python:3.13-slim@sha256:9662417aace5ae7b8e2609cce472b72a8958e134ba372808abe9cc1a0c0125e6"

# Only the end-to-end tests run it: a throwaway pod that probes the network from outside.
E2E_PROBE_IMAGE = "curlimages/curl:8.16.0"
