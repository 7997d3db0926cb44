"""KServe: the controller that turns InferenceServices into model Deployments and Services."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.pins import versions
from components.platform import helm
from components.platform.cert_manager import CertManager
from components.platform.gateway_api import GatewayApiCrds


@dataclass(frozen=True)
class KServeArgs:
    namespace: pulumi.Input[str]
    domain: str
    # "<namespace>/<name>" of the Gateway the model routes attach to
    inference_gateway: str
    cert_manager: CertManager
    gateway_api: GatewayApiCrds


class KServe(pulumi.ComponentResource):
    """KServe CRDs and controller, in Standard (formerly RawDeployment) mode.

    Standard mode makes plain Deployments and Services, no Knative. KServe's own
    HTTPRoutes are switched off (`disableIngressCreation`): it would publish every model
    a second time as `<isvc>-<namespace>.<domain>`, on the same gateway wildcard, next to
    the one route per model this program declares and protects (see the models layer).
    """

    def __init__(self, name: str, args: KServeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("maas:kserve:KServe", name, None, opts)
        self.crds = helm.release(f"{name}-crd", versions.KSERVE_CRDS, args.namespace, parent=self)
        self.controller = helm.release(
            f"{name}-resources",
            versions.KSERVE_RESOURCES,
            args.namespace,
            parent=self,
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
            # Its webhook certificate comes from cert-manager; its controller refuses to
            # start in Gateway API mode without the HTTPRoute CRD.
            depends_on=[self.crds, args.cert_manager, args.gateway_api],
        )
        self.register_outputs({"controller": self.controller.status})
