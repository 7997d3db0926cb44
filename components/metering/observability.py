"""Observability: what is scraped, per-user labels on Limitador's counters, rules, dashboards."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.access import tiers
from components.access.policies import TELEMETRY_POLICY
from components.config import ModelConfig, PricesConfig, TierConfig
from components.metering import chargeback, dashboards
from components.names import GATEWAY_NAME
from components.pins import upstream
from components.platform import monitoring
from components.serving import endpoint_picker, gateway, model_deployment

DASHBOARD_FILE = f"{dashboards.UID}.json"


@dataclass(frozen=True, kw_only=True)
class ObservabilityArgs:
    tiers: Sequence[TierConfig]
    models: Sequence[ModelConfig]
    prices: PricesConfig
    observability_namespace: pulumi.Input[str]
    kuadrant_namespace: pulumi.Input[str]
    models_namespace: pulumi.Input[str]
    # What the Prometheus the rules go to selects them by (components/flavour/protocol.py Metrics).
    rule_labels: dict[str, str]
    # Labels on the series the key service reads (components/flavour/protocol.py Reading).
    read_labels: dict[str, str]
    # The monitoring stack (its CRDs and Prometheus), Kuadrant (TelemetryPolicy and what
    # is scraped) and the gateway.
    after: Sequence[pulumi.Resource] = ()


def _static(component: str) -> list[dict[str, str]]:
    """Relabeling that marks every target of a monitor with the component it belongs to."""
    return [{"targetLabel": "maas_component", "replacement": component, "action": "replace"}]


class Observability(pulumi.ComponentResource):
    """Monitors for Limitador, Authorino, the Kuadrant operator, the gateway's Envoy and every
    model server; a TelemetryPolicy labelling Limitador's counters with user and tier; the
    usage, cost and alert rules; and the usage dashboard."""

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:observability:Observability"

    def __init__(self, name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        self._after = list(args.after)
        self._monitors: list[pulumi.Resource] = []
        self._monitor(
            f"{name}-limitador",
            "PodMonitor",
            "limitador",
            args.kuadrant_namespace,
            {"matchLabels": upstream.LIMITADOR_PODS.labels},
            [{"port": "http", "path": "/metrics", "relabelings": _static("limitador")}],
        )
        self._monitor(
            f"{name}-authorino",
            "ServiceMonitor",
            "authorino",
            args.kuadrant_namespace,
            {"matchLabels": upstream.AUTHORINO_METRICS_SERVICE.labels},
            [
                {"port": "http", "path": path, "relabelings": _static("authorino")}
                for path in upstream.AUTHORINO_METRICS_SERVICE.paths
            ],
        )
        self._monitor(
            f"{name}-kuadrant-operator",
            "ServiceMonitor",
            "kuadrant-operator",
            args.kuadrant_namespace,
            {"matchLabels": upstream.KUADRANT_OPERATOR_METRICS_SERVICE.labels},
            [{"port": "metrics", "path": "/metrics", "relabelings": _static("kuadrant-operator")}],
        )
        self._monitor(
            f"{name}-gateway",
            "PodMonitor",
            "inference-gateway-envoy",
            args.models_namespace,
            {"matchLabels": gateway.POD_LABELS},
            [
                {
                    "port": next(iter(upstream.ENVOY_METRICS_PORT)),
                    "path": upstream.ENVOY_METRICS_PATH,
                    "relabelings": _static("gateway"),
                }
            ],
        )
        self._monitor(
            f"{name}-models",
            "PodMonitor",
            "model-servers",
            args.models_namespace,
            {
                "matchLabels": {"component": "predictor", "app.kubernetes.io/part-of": "maas-platform"},
                "matchExpressions": [{"key": model_deployment.MODEL_LABEL, "operator": "Exists"}],
            },
            [
                {
                    "port": "http",
                    "path": "/metrics",
                    "relabelings": [
                        *_static("model"),
                        {
                            # The model's name from its pod label, so rules and dashboards can join.
                            "sourceLabels": ["__meta_kubernetes_pod_label_maas_platform_model"],
                            "targetLabel": "model",
                            "action": "replace",
                        },
                    ],
                }
            ],
        )
        if any(m.scheduling == "pool" for m in args.models):
            self._monitor(
                f"{name}-endpoint-pickers",
                "PodMonitor",
                "endpoint-pickers",
                args.models_namespace,
                {"matchExpressions": [{"key": endpoint_picker.PICKER_LABEL, "operator": "Exists"}]},
                [
                    {
                        "port": endpoint_picker.METRICS,
                        "path": "/metrics",
                        "relabelings": [
                            *_static("endpoint-picker"),
                            {
                                # The pooled model's name, from the picker pod's label.
                                "sourceLabels": ["__meta_kubernetes_pod_label_maas_platform_endpoint_picker"],
                                "targetLabel": "model",
                                "action": "replace",
                            },
                        ],
                        # Bounded as users grow (endpoint_picker.metric_relabelings).
                        "metricRelabelings": endpoint_picker.metric_relabelings(),
                    }
                ],
            )
        telemetry = k8s.apiextensions.CustomResource(
            f"{name}-telemetry",
            api_version="extensions.kuadrant.io/v1alpha1",
            kind="TelemetryPolicy",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=TELEMETRY_POLICY, namespace=args.models_namespace),
            spec={
                "targetRef": {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME},
                "metrics": {"default": {"labels": tiers.telemetry_labels(args.models)}},
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._after),
        )
        rules = k8s.apiextensions.CustomResource(
            f"{name}-rules",
            api_version="monitoring.coreos.com/v1",
            kind="PrometheusRule",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="maas-usage", namespace=args.observability_namespace, labels=args.rule_labels
            ),
            spec=chargeback.rule_groups(args.tiers, args.models, args.prices, read_labels=args.read_labels),
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._after),
        )
        dashboard = k8s.core.v1.ConfigMap(
            f"{name}-dashboard",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="maas-usage-dashboard",
                namespace=args.observability_namespace,
                labels=monitoring.DASHBOARD_LABEL,
            ),
            # Indented, so a dashboard change shows as the lines it changes in a preview diff.
            data={
                DASHBOARD_FILE: json.dumps(
                    dashboards.usage_dashboard(args.tiers, args.models), indent=1, sort_keys=True
                )
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._after),
        )
        self.register_outputs(
            {"monitors": self._monitors, "telemetry": telemetry, "rules": rules, "dashboard": dashboard}
        )

    def _monitor(
        self,
        name: str,
        kind: str,
        object_name: str,
        namespace: pulumi.Input[str],
        selector: dict[str, Any],
        endpoints: list[dict[str, Any]],
    ) -> None:
        endpoint_key = "podMetricsEndpoints" if kind == "PodMonitor" else "endpoints"
        monitor = k8s.apiextensions.CustomResource(
            name,
            api_version="monitoring.coreos.com/v1",
            kind=kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=object_name, namespace=namespace, labels=monitoring.SCRAPE_LABEL
            ),
            spec={"selector": selector, endpoint_key: endpoints},
            opts=pulumi.ResourceOptions(parent=self, depends_on=self._after),
        )
        self._monitors.append(monitor)
