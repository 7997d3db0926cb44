"""The OpenShift flavour."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import network
from components.config import GatewayConfig, OpenShiftConfig
from components.flavour import helm, olm
from components.flavour.helm import Chart
from components.flavour.protocol import Client, Exposure, Metrics, Reading
from components.names import PART_OF
from components.pins import versions

# User-workload monitoring's Prometheus (openshift/cluster-monitoring-operator@release-4.22
# assets/prometheus-user-workload/prometheus.yaml: namespace, podMetadata labels).
UWM_NAMESPACE = "openshift-user-workload-monitoring"
UWM_PROMETHEUS_PODS = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/instance": "user-workload"}
# Its ruleSelector reads only rules with this label (the same file); without it Thanos Ruler
# evaluates them instead, through the querier. Our rules read only what UWM scrapes.
UWM_RULE_SCOPE = {"openshift.io/prometheus-rule-evaluation-scope": "leaf-prometheus"}
# The usage export asks the cluster's Thanos querier, through its Route (port web, 9091),
# with a bearer token of someone granted cluster-monitoring-view
# (openshift/cluster-monitoring-operator@release-4.22 assets/thanos-querier/route.yaml,
# kube-rbac-proxy-web-secret.yaml).
UWM_USAGE_EXPORT = (
    "MAAS_PROMETHEUS_TOKEN=$(oc whoami -t) python -m commands.usage --prometheus "
    "https://$(oc get route thanos-querier -n openshift-monitoring -o jsonpath='{.spec.host}') "
    "--since 30d --format csv"
)

# The key service reads usage where OpenShift lets a namespace's workloads read their own
# metrics: the Thanos querier's tenancy port. kube-rbac-proxy lets in a bearer token whose
# subject may `get` `pods` of `metrics.k8s.io` in the namespace `?namespace=` names (GET is
# `get`, none without the parameter: brancz/kube-rbac-proxy GetRequestAttributes), and
# prom-label-proxy puts `namespace="<it>"` on every selector of the query
# (openshift/cluster-monitoring-operator@release-4.23 assets/thanos-querier/service.yaml,
# deployment.yaml, kube-rbac-proxy-secret.yaml; the same on release-4.19 and 4.22).
THANOS_TENANCY = "https://thanos-querier.openshift-monitoring.svc:9092"
TENANCY_GROUP, TENANCY_RESOURCE, TENANCY_VERB = "metrics.k8s.io", "pods", "get"
TENANCY_RULE = k8s.rbac.v1.PolicyRuleArgs(
    api_groups=[TENANCY_GROUP], resources=[TENANCY_RESOURCE], verbs=[TENANCY_VERB]
)
# The querier's serving certificate is the service CA's (service.yaml:
# service.beta.openshift.io/serving-cert-secret-name); a ConfigMap so annotated gets that CA
# under service-ca.crt (openshift/service-ca-operator@0324055 pkg/controller/api/api.go
# InjectCABundleAnnotationName, InjectionDataKey).
SERVICE_CA_ANNOTATIONS = {"service.beta.openshift.io/inject-cabundle": "true"}
SERVICE_CA_KEY = "service-ca.crt"


@dataclass(frozen=True)
class OpenShift:
    """OpenShift whose ingress operator ships Gateway API v1.5 (commands/preflight.py checks):
    operators from OLM where a catalog has the pinned release, Routes on the apps domain, user
    ids the restricted-v2 SCC picks, and user-workload monitoring.

    Charts with an OLM equivalent become Subscriptions (components/flavour/olm.py); the rest
    (KServe, KEDA, and Kuadrant when `maas:openshift.kuadrant` is community, whose OpenShift
    catalog stops at 0.11.1) stay Helm releases.
    """

    operators: OpenShiftConfig
    name: str = "openshift"

    def install_chart(self, install: Chart, parent: pulumi.Resource) -> pulumi.Resource:
        if install.chart == versions.ISTIOD:
            return _istio(install, parent)
        package = self._packages().get(install.chart)
        if package is None:
            return helm.install(install, parent)
        return olm.subscribe(install, package, self.operators.approval, parent)

    def _packages(self) -> dict[versions.HelmChart, versions.OlmPackage]:
        """Which chart each OLM package replaces. Istio's base chart becomes OpenShift Service
        Mesh 3 (Sail); its istiod chart, Sail's `Istio` resource (_istio)."""
        packages = {
            versions.ISTIO_BASE: versions.OLM_SERVICE_MESH,
            versions.CERT_MANAGER: versions.OLM_CERT_MANAGER,
        }
        if self.operators.kuadrant == "rhcl":
            packages[versions.KUADRANT_OPERATOR] = versions.OLM_RHCL
        return packages

    def gateway_annotations(self, gateway: GatewayConfig) -> dict[str, str]:
        # Routes reach the Service; nothing else exposes it (config refuses another type).
        return {"networking.istio.io/service-type": "ClusterIP"}

    def reach(self, namespace: str, service: str, port: int, local_port: int) -> str:
        return f"oc port-forward -n {namespace} svc/{service} {local_port}:{port}"

    def client(self, host: str, scheme: str, local_port: int) -> Client:
        # Through the host's Route: HTTPS on the router's port, whatever the gateway serves.
        return Client(f"https://{host}", "")

    def pod_security(self, uid: int) -> k8s.core.v1.PodSecurityContextArgs:
        # No user, group or fsGroup: restricted-v2 assigns the user and fsGroup from the
        # namespace's range and refuses others (openshift/cluster-kube-apiserver-operator@main
        # bindata/bootkube/scc-manifests/0000_20_kube-apiserver-operator_00_scc-restricted-v2.yaml);
        # the images we run write only their emptyDirs, which that fsGroup opens to them.
        return k8s.core.v1.PodSecurityContextArgs(
            run_as_non_root=True,
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        )

    def gateway_api_bundle(self) -> str | None:
        # OpenShift's ingress operator (4.19 on) installs the Gateway API CRDs and refuses others'
        # changes to them (openshift/cluster-ingress-operator@main
        # manifests/01-validating-admission-policy.yaml,
        # pkg/operator/controller/gatewayapi); commands/preflight.py checks their release.
        return None

    def metrics(self, bundled: Callable[[], Metrics], rules_namespace: str) -> Metrics:
        # The cluster's user-workload monitoring: nothing to install. Its Prometheus reads
        # monitors in every namespace not marked otherwise, without label selectors, so
        # Kuadrant adds none of its own.
        # The rules' namespace is exempt from UWM's namespace enforcement (docs/openshift.md),
        # so their series carry no `namespace` unless the rules give it: the tenancy port
        # shows a namespace only the series labelled with it
        # (openshift/cluster-monitoring-operator@release-4.23 pkg/manifests/types.go
        # NamespacesWithoutLabelEnforcement).
        reading = Reading(
            url=f"{THANOS_TENANCY}?namespace={rules_namespace}",
            series_labels={"namespace": rules_namespace},
            bearer_token=True,
            ca_annotations=SERVICE_CA_ANNOTATIONS,
            ca_key=SERVICE_CA_KEY,
            grants=(TENANCY_RULE,),
            grant_namespace=rules_namespace,
        )
        return Metrics(
            scrapers=(network.pods(UWM_PROMETHEUS_PODS, UWM_NAMESPACE),),
            query_url=None,
            rule_labels=UWM_RULE_SCOPE,
            crds=None,
            installed=None,
            exports={},
            usage_export=UWM_USAGE_EXPORT,
            reading=reading,
        )

    def expose(self, name: str, exposure: Exposure, parent: pulumi.Resource) -> list[pulumi.Resource]:
        """One Route per hostname (the router serves no wildcard by default), to the gateway's
        Service: TLS passed through to its HTTPS listener where it has one, so keys cross the
        cluster encrypted; else TLS ends at the router (edge) and plain HTTP is redirected."""
        https = "https" in exposure.ports
        tls = {"termination": "passthrough"} if https else {"termination": "edge"}
        tls["insecureEdgeTerminationPolicy"] = "None" if https else "Redirect"
        return [
            k8s.apiextensions.CustomResource(
                f"{name}-{host.split('.', 1)[0]}",
                api_version="route.openshift.io/v1",
                kind="Route",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=host.split(".", 1)[0], namespace=exposure.namespace, labels=PART_OF
                ),
                spec={
                    "host": host,
                    "to": {"kind": "Service", "name": exposure.service, "weight": 100},
                    "port": {"targetPort": "https" if https else "http"},
                    "tls": tls,
                    "wildcardPolicy": "None",
                },
                opts=pulumi.ResourceOptions(parent=parent, depends_on=list(exposure.after)),
            )
            for host in exposure.hostnames
        ]

    def model_server_home(self) -> str | None:
        # The user restricted-v2 picks has no home in the image, and the root filesystem is not
        # its to write: an emptyDir instead (the maas-billing seed's OpenShift runtime,
        # redhat-et/maas-billing@main deployment/model_serving/vllm-latest-runtime-openshift.yaml,
        # uses /tmp the same way).
        return "/tmp"


def _istio(install: Chart, parent: pulumi.Resource) -> pulumi.Resource:
    """istiod as Sail's `Istio` resource: the chart's values are the resource's
    (openshift-service-mesh/sail-operator@v3.4.1 api/v1/values_types.go mirrors
    istio-discovery's), the chart's top-level ones under `pilot`."""
    # Not `global.istioNamespace`: Sail sets it from spec.namespace
    # (openshift-service-mesh/sail-operator@v3.4.1 pkg/istiovalues/overrides.go) and refuses a
    # different one.
    values = {key: value for key, value in install.values.items() if key != "global"}
    # Sail's OpenShift profile turns on the Istio CNI, which only sidecars need (the platform
    # has none, only gateways): without an IstioCNI the Istio would never be healthy
    # (openshift-service-mesh/sail-operator@v3.4.1
    # resources/v1.30.3/charts/istiod/files/profile-platform-openshift.yaml,
    # pkg/revision/dependency.go).
    sail_values = {"pilot": {**values, "cni": {"enabled": False}}}
    return k8s.apiextensions.CustomResource(
        install.name,
        api_version="sailoperator.io/v1",
        kind="Istio",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name="default", labels=PART_OF, annotations={"pulumi.com/waitFor": "condition=Ready"}
        ),
        spec={
            "version": f"v{versions.ISTIO_VERSION}",
            "namespace": install.namespace,
            "updateStrategy": {"type": "InPlace"},
            "values": sail_values,
        },
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(install.after)),
    )
