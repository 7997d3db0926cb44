"""Istio (base + istiod): the Gateway API implementation behind the inference gateway."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import helm, versions
from components.gateway_api import GatewayApiCrds


@dataclass(frozen=True)
class IstioArgs:
    namespace: pulumi.Input[str]
    gateway_api: GatewayApiCrds


class Istio(pulumi.ComponentResource):
    """istiod programs the Envoy of every Gateway of class `istio`.

    It starts after the Gateway API CRDs so that its Gateway controller finds them at once.
    """

    def __init__(self, name: str, args: IstioArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("maas:istio:Istio", name, None, opts)
        self.base = helm.release(
            f"{name}-base",
            versions.ISTIO_BASE,
            args.namespace,
            parent=self,
            values={"defaultRevision": "default"},
            depends_on=[args.gateway_api],
        )
        self.istiod = helm.release(
            f"{name}d",
            versions.ISTIOD,
            args.namespace,
            parent=self,
            depends_on=[self.base, args.gateway_api],
        )
        self.register_outputs({"istiod": self.istiod.status})
