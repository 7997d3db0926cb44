"""Gateway API CRDs: the pinned standard-channel bundle that Istio, KServe and Kuadrant build on."""

from __future__ import annotations

import pulumi
import pulumi_kubernetes as k8s

from components.pins import versions


class GatewayApiCrds(pulumi.ComponentResource):
    """Installs the standard-channel CRDs from the release's own bundle.

    `yaml.v2.ConfigFile` because the project ships the bundle only as a manifest, not as a
    chart; it reads the pinned URL when the program runs against a cluster.
    """

    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__("maas:gateway-api:GatewayApiCrds", name, None, opts)
        self.bundle = k8s.yaml.v2.ConfigFile(
            f"{name}-standard",
            file=versions.GATEWAY_API_CRDS_URL,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.register_outputs({"version": versions.GATEWAY_API_VERSION})
