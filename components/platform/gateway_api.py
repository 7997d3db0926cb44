"""Gateway API CRDs: the pinned standard-channel bundle that Istio, KServe and Kuadrant build on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.pins import versions


@dataclass(frozen=True, kw_only=True)
class GatewayApiArgs:
    # The release's bundle URL (components/pins/versions.py); None: the cluster's own CRDs
    # (the flavour's gateway_api_bundle), which the layers still wait for through this.
    bundle_url: str | None = versions.GATEWAY_API_CRDS_URL


class GatewayApiCrds(pulumi.ComponentResource):
    """Installs the standard-channel CRDs from the release's own bundle.

    `yaml.v2.ConfigFile` because the project ships the bundle only as a manifest, not as a
    chart; it reads the pinned URL when the program runs against a cluster.
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:gateway-api:GatewayApiCrds"

    def __init__(self, name: str, args: GatewayApiArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        if args.bundle_url is not None:
            k8s.yaml.v2.ConfigFile(
                f"{name}-standard", file=args.bundle_url, opts=pulumi.ResourceOptions(parent=self)
            )
        self.register_outputs({"bundle": args.bundle_url})


@dataclass(frozen=True, kw_only=True)
class InferenceExtensionArgs:
    # The CRD files at their releases (components/pins/versions.py).
    files: tuple[str, ...] = versions.INFERENCE_CRDS_URLS


class InferenceExtensionCrds(pulumi.ComponentResource):
    """InferencePool (Gateway API Inference Extension) and llm-d's InferenceObjective and
    InferenceModelRewrite, for stacks with pooled models: Istio routes to the pools and the
    endpoint pickers read the objectives (and watch the rewrites, RBAC in
    llm-d/llm-d-router@v0.10.0 config/charts/llm-d-router-gateway/templates/rbac.yaml)."""

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:gateway-api:InferenceExtensionCrds"

    def __init__(self, name: str, args: InferenceExtensionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        k8s.yaml.v2.ConfigGroup(
            f"{name}-crds", files=list(args.files), opts=pulumi.ResourceOptions(parent=self)
        )
        self.register_outputs({"files": list(args.files)})
