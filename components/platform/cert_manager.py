"""cert-manager: certificates for KServe's webhooks and the gateway's optional HTTPS listener."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pulumi

from components.cluster import network
from components.flavour.helm import Chart
from components.flavour.protocol import Flavour
from components.pins import upstream, versions

RELEASE = "cert-manager"


@dataclass(frozen=True, kw_only=True)
class CertManagerArgs:
    namespace: pulumi.Input[str]
    flavour: Flavour


class CertManager(pulumi.ComponentResource):
    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:cert-manager:CertManager"

    def __init__(self, name: str, args: CertManagerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        release = args.flavour.install_chart(
            Chart(
                name=f"{name}-release",
                release_name=RELEASE,
                chart=versions.CERT_MANAGER,
                namespace=args.namespace,
                # CRDs come with the chart and leave with it, so `pulumi destroy` leaves no CRDs behind.
                values={"crds": {"enabled": True, "keep": False}},
                # Named like its component before the `<component>-…` rule; the alias keeps the live release.
                aliases=[pulumi.Alias(name=name)],
            ),
            self,
        )
        # The API server calls the webhook from a node's address, which no pod selector names.
        webhook = network.Door("cert-manager-webhook", upstream.CERT_MANAGER_WEBHOOK_PODS, ("https",), None)
        doors = network.doors(name, args.namespace, [webhook], self)
        self.register_outputs({"release": release, "networkPolicies": doors})
