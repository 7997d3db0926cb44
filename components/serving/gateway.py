"""The inference gateway: the one Gateway every model route attaches to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.config import GATEWAY_NAME, GatewayConfig
from components.platform.flavour import Flavour

GATEWAY_CLASS = "istio"
# What Istio names and labels the Deployment, Service and pods it runs for a Gateway
# (istio 1.30 gatewaycommon.GetDefaultName, kube-gateway.yaml).
SERVICE_NAME = f"{GATEWAY_NAME}-{GATEWAY_CLASS}"
POD_LABELS = {"gateway.networking.k8s.io/gateway-name": GATEWAY_NAME}
HTTP_PORT = 80
HTTPS_PORT = 443
# The local port the README and stack outputs forward to: http://<host>.<domain>:8000
LOCAL_PORT = 8000
TLS_SECRET = f"{GATEWAY_NAME}-tls"
# Envoy Lua that asks every streamed request for usage (see the file).
STREAM_USAGE_LUA = Path(__file__).parent / "lua" / "stream_usage.lua"


@dataclass(frozen=True, kw_only=True)
class GatewayArgs:
    namespace: pulumi.Input[str]
    namespace_name: str
    domain: str
    config: GatewayConfig
    flavour: Flavour
    # The Gateway API CRDs, Istio (which programs the Gateway and reads the EnvoyFilter)
    # and cert-manager (the HTTPS listener's certificate).
    after: Sequence[pulumi.Resource] = ()


class InferenceGateway(pulumi.ComponentResource):
    """A Gateway of class `istio` with a listener for `*.<domain>` (HTTP, optionally HTTPS).

    Routes are admitted from its own namespace only; policies attached to it cover them all.
    """

    TYPE: ClassVar[str] = "maas:gateway:InferenceGateway"
    listeners: tuple[str, ...]
    service_name: str
    port_forward: str

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        hostname = f"*.{args.domain}"
        same_namespace = {"namespaces": {"from": "Same"}}
        listeners: list[dict[str, object]] = [
            {
                "name": "http",
                "protocol": "HTTP",
                "port": HTTP_PORT,
                "hostname": hostname,
                "allowedRoutes": same_namespace,
            }
        ]
        waits_for: list[pulumi.Resource] = list(args.after)
        if args.config.https.enabled:
            waits_for.append(self._certificate(name, args, hostname))
            listeners.append(
                {
                    "name": "https",
                    "protocol": "HTTPS",
                    "port": HTTPS_PORT,
                    "hostname": hostname,
                    "tls": {"mode": "Terminate", "certificateRefs": [{"kind": "Secret", "name": TLS_SECRET}]},
                    "allowedRoutes": same_namespace,
                }
            )
        self.listeners = tuple(str(listener["name"]) for listener in listeners)
        gateway = k8s.apiextensions.CustomResource(
            f"{name}-gateway",
            api_version="gateway.networking.k8s.io/v1",
            kind="Gateway",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=GATEWAY_NAME,
                namespace=args.namespace,
                annotations={
                    **args.flavour.gateway_annotations(args.config),
                    "pulumi.com/waitFor": "condition=Programmed",
                },
            ),
            spec={"gatewayClassName": GATEWAY_CLASS, "listeners": listeners},
            # Was named like its component, outside the `<component>-…` rule; the alias keeps
            # the live Gateway.
            opts=pulumi.ResourceOptions(parent=self, depends_on=waits_for, aliases=[pulumi.Alias(name=name)]),
        )
        stream_usage = self._stream_usage(name, args)
        self.service_name = SERVICE_NAME
        self.port_forward = args.flavour.reach(args.namespace_name, SERVICE_NAME, HTTP_PORT, LOCAL_PORT)
        self.register_outputs(
            {
                "gateway": gateway,
                "streamUsage": stream_usage,
                "listeners": list(self.listeners),
                "serviceName": self.service_name,
                "portForward": self.port_forward,
            }
        )

    def _stream_usage(self, name: str, args: GatewayArgs) -> k8s.apiextensions.CustomResource:
        """The Lua filter that puts `stream_options.include_usage` into streamed requests.

        Inserted before the router on the Gateway's own Envoy, the way kuadrant-operator
        v1.5.2 inserts its wasm-shim (internal/istio/utils.go): EnvoyFilter `targetRefs` to
        the Gateway (istio/api envoy_filter.proto: "kind: Gateway with group
        gateway.networking.k8s.io in the same namespace"). Model routes depend on this
        component, so no route is served before streams are metered.
        """
        return k8s.apiextensions.CustomResource(
            f"{name}-stream-usage",
            api_version="networking.istio.io/v1alpha3",
            kind="EnvoyFilter",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{GATEWAY_NAME}-stream-usage", namespace=args.namespace
            ),
            spec={
                "targetRefs": [
                    {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME}
                ],
                "configPatches": [
                    {
                        "applyTo": "HTTP_FILTER",
                        "match": {
                            "context": "GATEWAY",
                            "listener": {
                                "filterChain": {
                                    "filter": {
                                        "name": "envoy.filters.network.http_connection_manager",
                                        "subFilter": {"name": "envoy.filters.http.router"},
                                    }
                                }
                            },
                        },
                        "patch": {
                            "operation": "INSERT_BEFORE",
                            "value": {
                                "name": "envoy.filters.http.lua",
                                "typed_config": {
                                    "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
                                    "default_source_code": {"inline_string": STREAM_USAGE_LUA.read_text()},
                                },
                            },
                        },
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )

    def _certificate(self, name: str, args: GatewayArgs, hostname: str) -> pulumi.Resource:
        """The listener's certificate, from the configured ClusterIssuer or a self-signed Issuer."""
        after_cert_manager = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        issuer = {"kind": "ClusterIssuer", "name": args.config.https.issuer}
        if args.config.https.issuer is None:
            self_signed = k8s.apiextensions.CustomResource(
                f"{name}-issuer",
                api_version="cert-manager.io/v1",
                kind="Issuer",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"{GATEWAY_NAME}-selfsigned", namespace=args.namespace
                ),
                spec={"selfSigned": {}},
                opts=after_cert_manager,
            )
            issuer = {"kind": "Issuer", "name": f"{GATEWAY_NAME}-selfsigned"}
            after_cert_manager = pulumi.ResourceOptions(parent=self, depends_on=[*args.after, self_signed])
        return k8s.apiextensions.CustomResource(
            f"{name}-certificate",
            api_version="cert-manager.io/v1",
            kind="Certificate",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=TLS_SECRET,
                namespace=args.namespace,
                annotations={"pulumi.com/waitFor": "condition=Ready"},
            ),
            spec={"secretName": TLS_SECRET, "dnsNames": [hostname], "issuerRef": issuer},
            opts=after_cert_manager,
        )
