"""Istio (base + istiod): the Gateway API implementation behind the inference gateway."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.pins import versions
from components.platform import helm
from components.platform.gateway_api import GatewayApiCrds


@dataclass(frozen=True)
class IstioArgs:
    namespace: pulumi.Input[str]
    # The namespace's name, which both charts must be told (values below).
    namespace_name: str
    gateway_api: GatewayApiCrds


class Istio(pulumi.ComponentResource):
    """istiod programs the Envoy of every Gateway of class `istio`.

    It starts after the Gateway API CRDs so that its Gateway controller finds them at once.
    """

    def __init__(self, name: str, args: IstioArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("maas:istio:Istio", name, None, opts)
        # Both charts place istiod's ServiceAccount, RBAC and webhook service reference in
        # global.istioNamespace (default istio-system), not in the release namespace; the
        # gateways' CA address comes from it too (istio 1.30.3 manifests/charts/base and
        # istio-control/istio-discovery templates, files/kube-gateway.yaml).
        where = {"global": {"istioNamespace": args.namespace_name}}
        self.base = helm.release(
            f"{name}-base",
            versions.ISTIO_BASE,
            args.namespace,
            parent=self,
            values={"defaultRevision": "default", **where},
            depends_on=[args.gateway_api],
        )
        self.istiod = helm.release(
            f"{name}d",
            versions.ISTIOD,
            args.namespace,
            parent=self,
            values=where,
            depends_on=[self.base, args.gateway_api],
        )
        self.register_outputs({"istiod": self.istiod.status})
