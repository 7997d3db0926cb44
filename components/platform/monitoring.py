"""The monitoring stack: Prometheus (operator), Grafana and Alertmanager from one pinned chart.

kube-prometheus-stack rather than separate charts: one release gives the operator, a
Prometheus, and a Grafana whose sidecar loads dashboards from labelled ConfigMaps; all
pinned together. Its CRDs, which Kuadrant looks for at start-up, come from their own chart
at the same operator release, so Kuadrant waits for them alone. The cluster-wide defaults
(node exporter, kube-state-metrics, control-plane scrapes and their rules) are off: this
Prometheus is for the platform's usage, not for the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cluster import network
from components.cluster.access import Namespace
from components.config import ObservabilityConfig
from components.flavour.helm import Chart
from components.flavour.protocol import Flavour, Metrics, Reading
from components.names import KEY_SERVICE_LABELS
from components.pins import upstream, versions

RELEASE = "monitoring"
CRDS_RELEASE = "monitoring-operator-crds"
# Names the chart derives from fullnameOverride and grafana.fullnameOverride.
FULLNAME = "maas"
PROMETHEUS_SERVICE = f"{FULLNAME}-prometheus"
PROMETHEUS_PORT = 9090
GRAFANA_SERVICE = f"{FULLNAME}-grafana"
GRAFANA_PORT = 80
GRAFANA_ADMIN_SECRET = "grafana-admin"
# Prometheus reads only monitors and rules with this label: the ones this program
# declares and tests, so nothing is scraped twice and nobody else's monitor slips in.
SCRAPE_LABEL = {"maas-platform/scrape": "true"}
# Grafana's sidecar loads ConfigMaps with this label as dashboards (chart default).
DASHBOARD_LABEL = {"grafana_dashboard": "1"}
# Labels the operator puts on the Prometheus pods (NetworkPolicies admit the scraper by them).
PROMETHEUS_POD_LABELS = upstream.PROMETHEUS_PODS.labels


# Through the prometheusPortForward output.
USAGE_EXPORT = (
    f"python -m commands.usage --prometheus http://localhost:{PROMETHEUS_PORT} --since 30d --format csv"
)


def query_url(namespace: str) -> str:
    """Where, inside the cluster, PromQL is asked of the stack's Prometheus."""
    return f"http://{PROMETHEUS_SERVICE}.{namespace}.svc.cluster.local:{PROMETHEUS_PORT}"


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    namespace: Namespace
    config: ObservabilityConfig
    flavour: Flavour
    # KEDA's namespace, whose operator queries Prometheus for scaled models; None: no KEDA.
    autoscaler_namespace: str | None = None
    # Where the key service runs, when it does: it reads what the caller was billed for
    # `GET /v1/usage` (components/access/self_service.py).
    key_service_namespace: str | None = None


class MonitoringStack(pulumi.ComponentResource):
    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:monitoring:MonitoringStack"
    # The Prometheus-operator CRDs, which Kuadrant's operator must find when it starts.
    crds: pulumi.Resource
    port_forward_prometheus: str
    port_forward_grafana: str
    grafana_admin: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        generated = random.RandomPassword(
            f"{name}-grafana-admin", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        password: pulumi.Output[str] = pulumi.Output.secret(generated.result)
        admin = k8s.core.v1.Secret(
            f"{name}-grafana-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=GRAFANA_ADMIN_SECRET, namespace=args.namespace.output),
            string_data={"admin-user": "admin", "admin-password": password},
            opts=pulumi.ResourceOptions(parent=self),
        )
        # The Prometheus-operator CRDs on their own, first: the Kuadrant operator needs
        # them when it starts, not a running Prometheus, so the rest of the stack installs
        # beside Kuadrant instead of before it.
        self.crds = args.flavour.install_chart(
            Chart(
                name=f"{name}-operator-crds",
                release_name=CRDS_RELEASE,
                chart=versions.PROMETHEUS_OPERATOR_CRDS,
                namespace=args.namespace.output,
            ),
            self,
        )
        stack = args.flavour.install_chart(
            Chart(
                name=f"{name}-release",
                release_name=RELEASE,
                chart=versions.KUBE_PROMETHEUS_STACK,
                namespace=args.namespace.output,
                values=chart_values(args.config),
                after=[admin, self.crds],
                # Was named like its component, outside the `<component>-…` rule; the alias keeps
                # the live release.
                aliases=[pulumi.Alias(name=name)],
            ),
            self,
        )
        doors = self._doors(name, args)
        reach = args.flavour.reach
        self.port_forward_prometheus = reach(
            args.namespace.name, PROMETHEUS_SERVICE, PROMETHEUS_PORT, PROMETHEUS_PORT
        )
        self.port_forward_grafana = reach(args.namespace.name, GRAFANA_SERVICE, GRAFANA_PORT, 3000)
        self.grafana_admin = pulumi.Output.secret(pulumi.Output.all(username="admin", password=password))
        self._namespace = args.namespace.name
        self.register_outputs(
            {
                "release": stack,
                "crds": self.crds,
                "portForwardPrometheus": self.port_forward_prometheus,
                "portForwardGrafana": self.port_forward_grafana,
                "grafanaAdmin": self.grafana_admin,
                "networkPolicies": doors,
            }
        )

    def metrics(self) -> Metrics:
        """This stack as the platform's Prometheus."""
        return Metrics(
            scrapers=(network.pods(PROMETHEUS_POD_LABELS, self._namespace),),
            query_url=query_url(self._namespace),
            rule_labels=SCRAPE_LABEL,
            crds=self.crds,
            installed=self,
            exports={
                "prometheusPortForward": self.port_forward_prometheus,
                "grafanaPortForward": self.port_forward_grafana,
                "grafanaAdmin": self.grafana_admin,
            },
            usage_export=USAGE_EXPORT,
            reading=Reading(url=query_url(self._namespace)),
            # Ignored by this Prometheus, which reads only monitors with SCRAPE_LABEL.
            kuadrant_monitors=True,
        )

    def _doors(self, name: str, args: MonitoringArgs) -> list[k8s.networking.v1.NetworkPolicy]:
        """Grafana (and KEDA's operator, for scaled models, and the key service, for usage)
        queries Prometheus, Grafana queries
        Alertmanager, Prometheus sends alerts to Alertmanager,
        the API server calls the admission webhooks (from a node's address). Nobody
        reaches Grafana: users port-forward to it, which enters the pod's own network
        namespace (containerd/containerd@v2.3
        internal/cri/server/sandbox_portforward_linux.go)."""
        grafana = [network.pods(upstream.GRAFANA_PODS.labels)]
        prometheus = [network.pods(upstream.PROMETHEUS_PODS.labels)]
        keda = (
            []
            if args.autoscaler_namespace is None
            else [network.pods(upstream.KEDA_OPERATOR_PODS.labels, args.autoscaler_namespace)]
        )
        key_service = (
            []
            if args.key_service_namespace is None
            else [network.pods(KEY_SERVICE_LABELS, args.key_service_namespace)]
        )
        doors = [
            network.Door(
                "prometheus-queries", upstream.PROMETHEUS_PODS, ("http-web",), [*grafana, *keda, *key_service]
            ),
            network.Door("alertmanager", upstream.ALERTMANAGER_PODS, ("http-web",), [*prometheus, *grafana]),
            network.Door("prometheus-operator-webhook", upstream.PROMETHEUS_WEBHOOK_PODS, ("https",), None),
        ]
        return network.doors(name, args.namespace.output, doors, self)


def chart_values(config: ObservabilityConfig) -> dict[str, Any]:
    ours = {"matchLabels": SCRAPE_LABEL}
    prometheus: dict[str, Any] = {
        "retention": config.retention,
        "resources": config.prometheus_resources.model_dump(),
        "serviceMonitorSelector": ours,
        "podMonitorSelector": ours,
        "ruleSelector": ours,
        "probeSelector": ours,
        "scrapeConfigSelector": ours,
        # Monitors and rules are read from every namespace (the selectors above still apply).
        "serviceMonitorNamespaceSelector": {},
        "podMonitorNamespaceSelector": {},
        "ruleNamespaceSelector": {},
    }
    if config.storage is not None:
        prometheus["storageSpec"] = {
            "volumeClaimTemplate": {
                "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "resources": {"requests": {"storage": config.storage}},
                    **({"storageClassName": config.storage_class} if config.storage_class else {}),
                }
            }
        }
    return {
        # Installed by the operator-crds release (kube-prometheus-stack values.yaml `crds.enabled`
        # gates its `crds` subchart).
        "crds": {"enabled": False},
        "fullnameOverride": FULLNAME,
        "defaultRules": {"create": False},
        "nodeExporter": {"enabled": False},
        "kubeStateMetrics": {"enabled": False},
        # The admission webhooks in a Deployment of their own, so the door the API server needs
        # does not also open the operator's profiling endpoints (components/pins/upstream.py).
        "prometheusOperator": {"admissionWebhooks": {"deployment": {"enabled": True}}},
        "kubelet": {"enabled": False},
        "kubeApiServer": {"enabled": False},
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeProxy": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        "coreDns": {"enabled": False},
        "prometheus": {"prometheusSpec": prometheus},
        "grafana": {
            "fullnameOverride": GRAFANA_SERVICE,
            "admin": {
                "existingSecret": GRAFANA_ADMIN_SECRET,
                "userKey": "admin-user",
                "passwordKey": "admin-password",
            },
            "sidecar": {
                "dashboards": {
                    "enabled": True,
                    "label": next(iter(DASHBOARD_LABEL)),
                    "labelValue": DASHBOARD_LABEL["grafana_dashboard"],
                    "searchNamespace": "ALL",
                }
            },
        },
    }
