"""KServe: the controller that turns InferenceServices into model Deployments and Services."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import pulumi

from components.cluster import network
from components.flavour.helm import Chart
from components.flavour.protocol import Flavour
from components.pins import upstream, versions

CRD_RELEASE = "kserve-crd"
CONTROLLER_RELEASE = "kserve-resources"


@dataclass(frozen=True, kw_only=True)
class KServeArgs:
    namespace: pulumi.Input[str]
    domain: str
    # "<namespace>/<name>" of the Gateway the model routes attach to
    inference_gateway: str
    flavour: Flavour
    # cert-manager (the controller's webhook certificate) and the Gateway API CRDs (its
    # controller refuses to start in Gateway API mode without the HTTPRoute CRD).
    after: Sequence[pulumi.Resource] = ()


class KServe(pulumi.ComponentResource):
    """KServe CRDs and controller, in Standard (formerly RawDeployment) mode.

    Standard mode makes plain Deployments and Services, no Knative. KServe's own
    HTTPRoutes are switched off (`disableIngressCreation`): it would publish every model
    a second time as `<isvc>-<namespace>.<domain>`, on the same gateway wildcard, next to
    the one route per model this program declares and protects (see the models layer).
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:kserve:KServe"

    def __init__(self, name: str, args: KServeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        crds = args.flavour.install_chart(
            Chart(
                name=f"{name}-crd",
                release_name=CRD_RELEASE,
                chart=versions.KSERVE_CRDS,
                namespace=args.namespace,
            ),
            self,
        )
        controller = args.flavour.install_chart(
            Chart(
                name=f"{name}-resources",
                release_name=CONTROLLER_RELEASE,
                chart=versions.KSERVE_RESOURCES,
                namespace=args.namespace,
                values={
                    "kserve": {
                        "controller": {
                            # The chart's default is Knative, which is not installed here.
                            "deploymentMode": "Standard",
                            "gateway": {
                                "domain": args.domain,
                                "disableIngressCreation": True,
                                "disableIstioVirtualHost": True,
                                "ingressGateway": {
                                    "enableGatewayApi": True,
                                    "kserveGateway": args.inference_gateway,
                                    "createGateway": False,
                                    "className": "istio",
                                },
                            },
                        },
                    },
                },
                after=[crds, *args.after],
            ),
            self,
        )
        # The API server calls the webhooks from a node's address, which no pod selector names.
        webhook = network.Door("kserve-webhook", upstream.KSERVE_CONTROLLER_PODS, ("webhook-server",), None)
        doors = network.doors(name, args.namespace, [webhook], self)
        self.register_outputs({"crds": crds, "controller": controller, "networkPolicies": doors})
