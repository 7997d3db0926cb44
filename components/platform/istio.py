"""Istio (base + istiod): the Gateway API implementation behind the inference gateway."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import network
from components.cluster.access import Namespace
from components.config import Footprint
from components.flavour.helm import Chart
from components.flavour.protocol import Flavour
from components.names import GATEWAY_NAME
from components.pins import upstream, versions
from components.platform import footprint

BASE_RELEASE = "istio-base"
ISTIOD_RELEASE = "istiod"


@dataclass(frozen=True, kw_only=True)
class IstioArgs:
    # The namespace, whose name both charts must be told (values below).
    namespace: Namespace
    flavour: Flavour
    # Where the gateway's pods run: they fetch their configuration from istiod.
    gateway_namespace: str
    # Routing to InferencePools (pooled models), off by default in istiod.
    inference_pools: bool = False
    footprint: Footprint = "standard"
    # The Gateway API CRDs (and the InferencePool's): istiod's Gateway controller must find
    # them when it starts.
    after: Sequence[pulumi.Resource] = ()


class Istio(pulumi.ComponentResource):
    """istiod programs the Envoy of every Gateway of class `istio`."""

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:istio:Istio"

    def __init__(self, name: str, args: IstioArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        # Both charts place istiod's ServiceAccount, RBAC and webhook service reference in
        # global.istioNamespace (default istio-system), not in the release namespace; the
        # gateways' CA address comes from it too (istio/istio@1.30.3 manifests/charts/base and
        # istio-control/istio-discovery templates, files/kube-gateway.yaml).
        where = {"global": {"istioNamespace": args.namespace.name}}
        base = args.flavour.install_chart(
            Chart(
                name=f"{name}-base",
                release_name=BASE_RELEASE,
                chart=versions.ISTIO_BASE,
                namespace=args.namespace.output,
                values={"defaultRevision": "default", **where},
                after=args.after,
            ),
            self,
        )
        istiod = args.flavour.install_chart(
            Chart(
                name=f"{name}-istiod",
                release_name=ISTIOD_RELEASE,
                chart=versions.ISTIOD,
                namespace=args.namespace.output,
                # istiod's container gets a seccomp profile only when asked (istio 1.30.3
                # istio-discovery values.yaml `seccompProfile: {}`), which Pod Security
                # "restricted" requires (components/cluster/security.py).
                values={
                    **where,
                    **(
                        {"resources": footprint.resources(args.footprint, "istiod", {})}
                        if args.footprint != "standard"
                        else {}
                    ),
                    "seccompProfile": {"type": "RuntimeDefault"},
                    # InferencePool backends need istiod's ENABLE_GATEWAY_API_INFERENCE_EXTENSION
                    # (istio/istio@1.30.3 pilot/pkg/features/experimental.go, default false); the chart
                    # renders top-level `env` into istiod's container (istio-discovery
                    # templates/deployment.yaml), not `pilot.env`.
                    **(
                        {"env": {"ENABLE_GATEWAY_API_INFERENCE_EXTENSION": "true"}}
                        if args.inference_pools
                        else {}
                    ),
                },
                after=[base, *args.after],
                # Was "istiod", outside the `<component>-…` rule; the alias keeps the live release.
                aliases=[pulumi.Alias(name="istiod")],
            ),
            self,
        )
        self.register_outputs({"base": base, "istiod": istiod, "networkPolicies": self._doors(name, args)})

    def _doors(self, name: str, args: IstioArgs) -> list[k8s.networking.v1.NetworkPolicy]:
        """istiod admits the gateway's pods to its xDS and CA port, and anyone to its webhook
        port: the API server calls it from a node's address, which no pod selector names."""
        gateway = [network.pods(upstream.gateway_pod_labels(GATEWAY_NAME), args.gateway_namespace)]
        return network.doors(
            name,
            args.namespace.output,
            [
                network.Door("istiod-xds", upstream.ISTIOD_PODS, ("tls-xds",), gateway),
                network.Door("istiod-webhooks", upstream.ISTIOD_PODS, ("https-webhooks",), None),
            ],
            self,
        )
