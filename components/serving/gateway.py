"""The inference gateway: the one Gateway every model route attaches to."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import network
from components.cluster.access import Namespace
from components.config import GatewayConfig, ModelConfig, TierConfig
from components.config.types import window_seconds
from components.flavour.protocol import Client, Exposure, Flavour
from components.names import ADMIN_HEADER, GATEWAY_NAME, MODEL_HEADER, TIER_HEADER, USER_HEADER, VIA_HEADER
from components.pins import upstream
from components.pins.upstream import OPENAI_USAGE_PATHS

GATEWAY_CLASS = "istio"
# What Istio names and labels the Deployment, Service and pods it runs for a Gateway
# (istio 1.30 gatewaycommon.GetDefaultName, kube-gateway.yaml).
SERVICE_NAME = f"{GATEWAY_NAME}-{GATEWAY_CLASS}"
POD_LABELS = upstream.gateway_pod_labels(GATEWAY_NAME)
HTTP_PORT = 80
HTTPS_PORT = 443
# The local port the README and stack outputs forward to: http(s)://<host>.<domain>:8000
LOCAL_PORT = 8000
TLS_SECRET = f"{GATEWAY_NAME}-tls"
# Request headers only the gateway sets (the Lua filter, then Authorino): a client's are
# removed before anything reads them.
GATEWAY_HEADERS = (
    MODEL_HEADER,
    TIER_HEADER,
    *upstream.ENDPOINT_PICKER_HEADERS,
    # The key service's caller (components/access/self_service.py): Authorino sets them over a
    # client's, and a request whose policy sets none must not carry a client's either.
    USER_HEADER,
    VIA_HEADER,
    ADMIN_HEADER,
)
# Envoy Lua that sets the model header and asks every streamed request for usage (see the
# file); request_filter_source() puts the catalog before it.
REQUEST_BODY_LUA = Path(__file__).parent / "lua" / "request_body.lua"
# Its response half: plain-text refusals (Kuadrant's 429s, the picker's, Envoy's 413) in
# OpenAI's error shape, with Retry-After where Limitador says when its window frees.
REFUSALS_LUA = Path(__file__).parent / "lua" / "refusals.lua"
# Istio applies EnvoyFilters in ascending priority (istio/api@1.30.3 envoy_filter.proto
# `priority`); Kuadrant's (priority 0, Kuadrant/kuadrant-operator@v1.5.2 istio_extension_reconciler.go)
# is inserted before the router after ours, so ours runs first and Kuadrant's filter sees the
# model header it sets.
REQUEST_BODY_PRIORITY = -10
# After Kuadrant's (0), which authenticates and sets the tier header, and before the
# picker's (10): the same Lua file enforcing the tier's caps (tier_caps_source).
TIER_CAPS_PRIORITY = 5
# After Kuadrant's (0): docs/architecture.md, "Filter order on the gateway".
PICKER_ORDER_PRIORITY = 10
# What a /v1/completions request without max_tokens may generate: OpenAI's default for the
# endpoint, 16, which vLLM applies too (vllm sampling_params.py `max_tokens: int | None = 16`);
# a chat request without one may generate its tier's whole cap.
COMPLETIONS_DEFAULT_MAX_TOKENS = 16
# After Kuadrant's (0), so it sees what Authorino's success sets, and before the tier caps (5),
# which would read a missing tier as the smallest, and the pool filter (10).
POLICY_GUARD_PRIORITY = 4
POLICY_GUARD_LUA = Path(__file__).parent / "lua" / "policy_guard.lua"
# What a request that no policy judged gets: Kuadrant has not (or could not) configure its host.
NO_POLICY_STATUS = 503
NO_POLICY_BODY = (
    '{"error": {"message": "No access policy is in force for this request yet; try again later.", '
    '"type": "service_unavailable", "code": "policy_not_in_force"}}'
)
EXT_PROC = "envoy.filters.http.ext_proc"
ROUTER = "envoy.filters.http.router"
# Istio's own InferencePool ext_proc filter, as istio/istio@1.30.3 pilot/pkg/xds/filters/filters.go
# InferencePoolExtProc declares it: it does nothing until a pool's route configures it per
# route (pilot/pkg/networking/core/route/route.go: the picker's cluster, headers and bodies
# sent, FULL_DUPLEX_STREAMED), and hands the picked endpoint on in metadata namespace
# "envoy.lb" (constants.EnvoySubsetNamespace), which the pool's cluster reads.
INFERENCE_POOL_EXT_PROC = {
    "name": EXT_PROC,
    "typed_config": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExternalProcessor",
        "grpc_service": {"envoy_grpc": {"cluster_name": "dummy"}, "timeout": "10s"},
        "failure_mode_allow": True,
        "processing_mode": {"request_header_mode": "SKIP", "response_header_mode": "SKIP"},
        "message_timeout": "1000s",
        "metadata_options": {
            "receiving_namespaces": {"untyped": ["envoy.lb"]},
            "forwarding_namespaces": {"untyped": ["envoy.lb"]},
        },
    },
}


@dataclass(frozen=True, kw_only=True)
class GatewayArgs:
    namespace: Namespace
    domain: str
    config: GatewayConfig
    flavour: Flavour
    # The catalog: the Lua filter routes the shared host by served name.
    models: Sequence[ModelConfig]
    # Each tier's caps on what one request may ask for, enforced after authentication.
    tiers: Sequence[TierConfig] = ()
    # The Prometheus pods that scrape Envoy; none: no Prometheus.
    scrapers: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs] = ()
    # The Gateway API CRDs, Istio (which programs the Gateway and reads the EnvoyFilter)
    # and cert-manager (the HTTPS listener's certificate).
    after: Sequence[pulumi.Resource] = ()


class InferenceGateway(pulumi.ComponentResource):
    """A Gateway of class `istio` with a listener for `*.<domain>` (HTTP, optionally HTTPS),
    and the Lua filter that routes the shared host by the body's `model`.

    Routes are admitted from its own namespace only; policies attached to it cover them all.
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:gateway:InferenceGateway"
    listeners: tuple[str, ...]
    # The shared host, <apiHost>.<domain>: every model route and the model list hold it.
    api_host: str
    # "https" when the gateway serves HTTPS only, else "http".
    scheme: str
    service_name: str
    port_forward: str

    def __init__(self, name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        hostname = f"*.{args.domain}"
        same_namespace = {"namespaces": {"from": "Same"}}
        https = args.config.https
        listeners: list[dict[str, object]] = (
            []
            if https.only
            else [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "port": HTTP_PORT,
                    "hostname": hostname,
                    "allowedRoutes": same_namespace,
                }
            ]
        )
        waits_for: list[pulumi.Resource] = list(args.after)
        if https.enabled:
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
                namespace=args.namespace.output,
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
        self.api_host = f"{args.config.api_host}.{args.domain}"
        request_body = self._request_body(name, args)
        tier_caps = self._tier_caps(name, args)
        policy_guard = self._policy_guard(name, args)
        picker_order = (
            self._picker_after_auth(name, args) if any(m.scheduling == "pool" for m in args.models) else None
        )
        self.service_name = SERVICE_NAME
        # What clients are given: plain HTTP where it is served, else HTTPS.
        self.scheme = "https" if https.only else "http"
        served_port = HTTPS_PORT if https.only else HTTP_PORT
        self.port_forward = args.flavour.reach(args.namespace.name, SERVICE_NAME, served_port, LOCAL_PORT)
        self._flavour = args.flavour
        doors = self._doors(name, args, [int(str(listener["port"])) for listener in listeners])
        # Clients call the shared host and each model's own host.
        exposure = args.flavour.expose(
            f"{name}-exposure",
            Exposure(
                namespace=args.namespace.output,
                service=SERVICE_NAME,
                ports={str(listener["name"]): int(str(listener["port"])) for listener in listeners},
                hostnames=(self.api_host, *(f"{m.host}.{args.domain}" for m in args.models)),
                after=(gateway,),
            ),
            self,
        )
        self.register_outputs(
            {
                "gateway": gateway,
                "requestBody": request_body,
                "tierCaps": tier_caps,
                "policyGuard": policy_guard,
                "pickerOrder": picker_order,
                "listeners": list(self.listeners),
                "apiHost": self.api_host,
                "scheme": self.scheme,
                "serviceName": self.service_name,
                "portForward": self.port_forward,
                "networkPolicies": doors,
                "exposure": exposure,
            }
        )

    def client(self, host: str) -> Client:
        """How users call the gateway by `host` from their machine."""
        return self._flavour.client(host, self.scheme, LOCAL_PORT)

    def _doors(
        self, name: str, args: GatewayArgs, listening: list[int]
    ) -> list[k8s.networking.v1.NetworkPolicy]:
        """The gateway is the platform's front door: every source reaches its listeners and its
        status port (load balancers' health checks come from node addresses); only
        Prometheus reaches Envoy's metrics."""
        status, metrics = upstream.GATEWAY_STATUS_PORT, upstream.ENVOY_METRICS_PORT
        pods = upstream.Workload(
            labels=POD_LABELS,
            ports={"status-port": status["status-port"], "http-envoy-prom": metrics["http-envoy-prom"]}
            | {f"listener-{port}": port for port in listening},
            source="istio 1.30.3 manifests/charts/istio-control/istio-discovery/files/kube-gateway.yaml",
        )
        public = (*(f"listener-{port}" for port in listening), "status-port")
        doors = [network.Door(f"{GATEWAY_NAME}-public", pods, public, None)]
        if args.config.https.issuer is not None:
            # A ClusterIssuer may answer ACME HTTP-01 challenges through this gateway.
            gateway = [network.pods(POD_LABELS)]
            doors.append(network.Door("acme-http01-solver", upstream.ACME_SOLVER_PODS, ("http",), gateway))
        if args.scrapers:
            doors.append(
                network.Door(f"{GATEWAY_NAME}-metrics", pods, ("http-envoy-prom",), list(args.scrapers))
            )
        return network.doors(name, args.namespace.output, doors, self)

    def _request_body(self, name: str, args: GatewayArgs) -> k8s.apiextensions.CustomResource:
        """The Lua filter that routes by model and puts `stream_options.include_usage` into
        streamed requests. Model routes depend on it, so no route is served before streams are
        metered; where it sits: docs/architecture.md, "Filter order on the gateway"."""
        lua = _lua_filter(
            "envoy.filters.http.lua",
            request_filter_source(self.api_host, args.models, args.domain, args.tiers),
        )
        # The filter buffers each body, which Envoy bounds by the connection's buffer limit,
        # the listener's per_connection_buffer_limit_bytes, 413 past it (Envoy docs
        # faq/configuration/flow_control.rst; Istio 1.30.3 sets none, so 1 MiB): MERGEd
        # into the Gateway's listeners (istio/istio@1.30.3 envoyfilter/listener_patch.go patchListener).
        body_limit: dict[str, object] = {
            "applyTo": "LISTENER",
            "match": {"context": "GATEWAY"},
            "patch": {
                "operation": "MERGE",
                "value": {"per_connection_buffer_limit_bytes": args.config.max_request_bytes},
            },
        }
        return self._envoy_filter(
            f"{name}-request-body",
            "request-body",
            REQUEST_BODY_PRIORITY,
            [_patch(ROUTER, {"operation": "INSERT_BEFORE", "value": lua}), body_limit],
            args,
            # Named for its first job, streamed usage, before it routed by model; the alias
            # keeps its URN.
            aliases=[pulumi.Alias(name=f"{name}-stream-usage")],
        )

    def _tier_caps(self, name: str, args: GatewayArgs) -> k8s.apiextensions.CustomResource:
        """The same Lua file, after Kuadrant's filter: it reads the tier Authorino sets and
        refuses a generation request that asks for more tokens or choices than the tier
        allows, or fills in max_tokens."""
        lua = _lua_filter("envoy.filters.http.lua", tier_caps_source(args.tiers, args.models))
        return self._envoy_filter(
            f"{name}-tier-caps",
            "tier-caps",
            TIER_CAPS_PRIORITY,
            [_patch(ROUTER, {"operation": "INSERT_BEFORE", "value": lua})],
            args,
        )

    def _policy_guard(self, name: str, args: GatewayArgs) -> k8s.apiextensions.CustomResource:
        """Fails closed where Kuadrant has no policy for a request (lua/policy_guard.lua): a
        metered request without the marker only Authorino's success sets is refused. Its own
        filter name, so no patch that matches the request-body filter by name touches it."""
        lua = _lua_filter("maas.policy_guard", policy_guard_source())
        return self._envoy_filter(
            f"{name}-policy-guard",
            "policy-guard",
            POLICY_GUARD_PRIORITY,
            [_patch(ROUTER, {"operation": "INSERT_BEFORE", "value": lua})],
            args,
        )

    def _picker_after_auth(self, name: str, args: GatewayArgs) -> k8s.apiextensions.CustomResource:
        """Moves Istio's InferencePool filter after Kuadrant's, so that pooled models' pickers
        schedule with the priority Authorino sets and hold no request Kuadrant refuses
        (docs/architecture.md, "Filter order on the gateway"); docs/models.md "Scheduling and tier
        priority" says what a refusal gets while a picker is gone."""
        return self._envoy_filter(
            f"{name}-picker-order",
            "picker-order",
            PICKER_ORDER_PRIORITY,
            # In order: REMOVE matches by name, so it must run before the insert.
            [
                _patch(EXT_PROC, {"operation": "REMOVE"}),
                _patch(ROUTER, {"operation": "INSERT_BEFORE", "value": INFERENCE_POOL_EXT_PROC}),
            ],
            args,
        )

    def _envoy_filter(
        self,
        name: str,
        purpose: str,
        priority: int,
        patches: list[dict[str, object]],
        args: GatewayArgs,
        aliases: Sequence[pulumi.Alias] = (),
    ) -> k8s.apiextensions.CustomResource:
        """An EnvoyFilter on the Gateway's own Envoy, named `<gateway>-<purpose>`."""
        return k8s.apiextensions.CustomResource(
            name,
            api_version="networking.istio.io/v1alpha3",
            kind="EnvoyFilter",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"{GATEWAY_NAME}-{purpose}", namespace=args.namespace.output
            ),
            spec={
                "targetRefs": [
                    {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": GATEWAY_NAME}
                ],
                "priority": priority,
                "configPatches": patches,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after), aliases=list(aliases)),
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
                    name=f"{GATEWAY_NAME}-selfsigned", namespace=args.namespace.output
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
                namespace=args.namespace.output,
                annotations={"pulumi.com/waitFor": "condition=Ready"},
            ),
            spec={"secretName": TLS_SECRET, "dnsNames": [hostname], "issuerRef": issuer},
            opts=after_cert_manager,
        )


def _lua_filter(name: str, source: str) -> dict[str, object]:
    """An Envoy Lua HTTP filter named `name`, running `source`."""
    return {
        "name": name,
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua",
            "default_source_code": {"inline_string": source},
        },
    }


def _patch(sub_filter: str, patch: dict[str, object]) -> dict[str, object]:
    """A patch of the HTTP filter `sub_filter` (or next to it) on the Gateway's listeners."""
    chain = {
        "filter": {"name": "envoy.filters.network.http_connection_manager", "subFilter": {"name": sub_filter}}
    }
    return {
        "applyTo": "HTTP_FILTER",
        "match": {"context": "GATEWAY", "listener": {"filterChain": chain}},
        "patch": patch,
    }


def _lua(value: object) -> str:
    """A Lua literal for a string, a boolean, an integer or a table of them (keys are strings)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        # Hosts and served names are validated ASCII (components/config/types.py).
        if not value.isascii() or not value.isprintable():
            raise ValueError(f"not a printable ASCII string: {value!r}")
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"[{_lua(k)}] = {_lua(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no Lua literal for {value!r}")


def request_filter_source(
    shared_host: str, models: Sequence[ModelConfig], domain: str, tiers: Sequence[TierConfig]
) -> str:
    """The Lua filter's source: the catalog it routes by, then the filter itself and its
    response half (refusals.lua)."""
    catalog: dict[str, object] = {
        "api_host": shared_host,
        "hosts": {f"{m.host}.{domain}": m.served_name for m in models},
        "models": {m.served_name: True for m in models},
        "routed_paths": {path: True for path in OPENAI_USAGE_PATHS},
        "model_header": MODEL_HEADER,
        # Headers only the gateway sets: any a client sends is removed before routing.
        "gateway_headers": {name: True for name in GATEWAY_HEADERS},
    }
    if tiers:
        # A token-limit 429's Retry-After: the longest token window, a bound on any tier's
        # wait (this filter runs before authentication and never learns the tier).
        catalog["token_window_s"] = max(
            math.ceil(window_seconds(rate.window)) for t in tiers for rate in t.tokens
        )
    return f"local CATALOG = {_lua(catalog)}\n\n{REQUEST_BODY_LUA.read_text()}\n{REFUSALS_LUA.read_text()}"


def tier_caps_source(tiers: Sequence[TierConfig], models: Sequence[ModelConfig] = ()) -> str:
    """The Lua filter's source for its second place, after authentication: each tier's caps
    (a request without the tier header, which Kuadrant always sets, gets the smallest), and
    the vLLM models whose prefix cache is salted per user."""
    caps = {t.name: {"tokens": t.max_tokens, "choices": t.max_choices} for t in tiers}
    catalog = {
        "caps": caps,
        "smallest": {
            "tokens": min(t.max_tokens for t in tiers),
            "choices": min(t.max_choices for t in tiers),
        },
        "tier_header": TIER_HEADER,
        # vLLM shares its prefix cache across requests, and the picker steers like prefixes
        # to one replica: a user timing the first token could tell whether another user sent
        # the same prefix. vLLM salts the cache per request (`cache_salt`, vllm-project/vllm@v0.31.0
        # vllm/entrypoints/openai/chat_completion/protocol.py); the gateway sets it over any
        # client's value.
        "salted": {m.served_name: True for m in models if m.runtime == "vllm"},
        "model_header": MODEL_HEADER,
        # Who the user is, where Authorino says: the pooled models' fairness id (components/
        # access/tiers.py scheduling_headers); elsewhere the tier salts the cache.
        "user_header": upstream.FAIRNESS_HEADER,
        # What max_tokens a generation request without one gets, per path.
        "fill": {
            "/v1/chat/completions": "tier",
            "/v1/completions": COMPLETIONS_DEFAULT_MAX_TOKENS,
        },
    }
    return f"local CATALOG = {_lua(catalog)}\n\n{REQUEST_BODY_LUA.read_text()}"


def policy_guard_source() -> str:
    """The guard's source: the metered paths, the marker (the tier header, which only
    Authorino's success response sets) and the reply, then the filter itself."""
    guard = {
        "paths": {path: True for path in (*OPENAI_USAGE_PATHS, upstream.OPENAI_MODELS_PATH)},
        "marker": TIER_HEADER,
        "status": str(NO_POLICY_STATUS),
        "body": NO_POLICY_BODY,
    }
    return f"local GUARD = {_lua(guard)}\n\n{POLICY_GUARD_LUA.read_text()}"
