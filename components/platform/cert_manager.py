"""cert-manager: certificates for KServe's webhooks and the gateway's optional HTTPS listener."""

from __future__ import annotations

import pulumi

from components.pins import versions
from components.platform import helm


class CertManager(pulumi.ComponentResource):
    def __init__(self, name: str, namespace: pulumi.Input[str], opts: pulumi.ResourceOptions | None = None):
        super().__init__("maas:cert-manager:CertManager", name, None, opts)
        self.release = helm.release(
            name,
            versions.CERT_MANAGER,
            namespace,
            parent=self,
            # CRDs come with the chart and leave with it, so `pulumi destroy` leaves no CRDs behind.
            values={"crds": {"enabled": True, "keep": False}},
        )
        self.register_outputs({"release": self.release.status})
