"""KEDA: scales the models that follow their queue (KServe's `keda` autoscaler class)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pulumi

from components.cluster import network
from components.config import Footprint
from components.flavour.helm import Chart
from components.flavour.protocol import Flavour
from components.pins import upstream, versions
from components.platform import footprint

RELEASE = "keda"


@dataclass(frozen=True, kw_only=True)
class KedaArgs:
    namespace: pulumi.Input[str]
    flavour: Flavour
    footprint: Footprint = "standard"


class Keda(pulumi.ComponentResource):
    """The operator, its metrics API server and admission webhooks, from the pinned chart.

    KServe writes a ScaledObject for each scaled model; the ScaledObject CRD must exist before
    (kserve/kserve@v0.20.0 reconcilers/keda/keda_reconciler.go fails the model's reconcile without
    it), so model deployments wait for this component.
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:keda:Keda"

    def __init__(self, name: str, args: KedaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        release = args.flavour.install_chart(
            Chart(
                name=f"{name}-release",
                release_name=RELEASE,
                chart=versions.KEDA,
                namespace=args.namespace,
                # The chart's `resources` per pod: operator, metricServer, webhooks.
                values=(
                    {}
                    if args.footprint == "standard"
                    else {
                        "resources": {
                            pod: footprint.resources(args.footprint, "keda", {})
                            for pod in ("operator", "metricServer", "webhooks")
                        }
                    }
                ),
            ),
            self,
        )
        metrics_server = [network.pods(upstream.KEDA_METRICS_SERVER_PODS.labels)]
        doors = network.doors(
            name,
            args.namespace,
            [
                network.Door(
                    "keda-operator", upstream.KEDA_OPERATOR_PODS, ("metricsservice",), metrics_server
                ),
                # Called by the API server, from a node's address.
                network.Door("keda-metrics-apiserver", upstream.KEDA_METRICS_SERVER_PODS, ("https",), None),
                network.Door("keda-admission-webhooks", upstream.KEDA_WEBHOOK_PODS, ("http",), None),
            ],
            self,
        )
        self.register_outputs({"release": release, "networkPolicies": doors})
