"""The model list of the shared host: GET /v1/models answers each caller with their tier's models.

A stock static server (nginx, `versions.MODEL_LIST_IMAGE`) holds one OpenAI model list file
per tier, compiled from the catalog by `ModelConfig.admits`, the table the model access rules
are compiled from too (components/access/tiers.py model_rules). It picks the list by the
tier header, which only Authorino sets, after authentication: the gateway's Lua filter
removes any a client sends (lua/request_body.lua) and the wasm-shim sets Authorino's value
(components/access/tiers.py auth_spec). No code of ours serves it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.cluster import network
from components.cluster.rollout import content_digest
from components.cluster.security import restricted_container
from components.config import ModelConfig, TierConfig
from components.flavour.protocol import Flavour
from components.names import GATEWAY_NAME, TIER_HEADER
from components.pins import versions
from components.pins.upstream import OPENAI_MODELS_PATH, OPENAI_USAGE_PATHS
from components.serving import gateway as gw

NAME = "model-list"
# The HTTPRoute the tier policies attach to: every host of the gateway, the metered paths.
POLICY_ROUTE = "metered-paths"


def limits_namespace(namespace: str) -> str:
    """The Limitador namespace of the tier limits: Kuadrant files a policy's limits under
    `<route namespace>/<route name>` of the route it targets, here the policy route in
    `namespace` (docs/self-service.md "Usage")."""
    return f"{namespace}/{POLICY_ROUTE}"


# The unprivileged image listens on 8080 (nginx/docker-nginx-unprivileged
# stable/alpine-slim/Dockerfile: `listen 8080`). Its own user is 101, but nginx here reads
# only /etc/maas and writes only /tmp (both ours), so it runs as a UID of its own, above the
# host's range (checkov CKV_K8S_40).
PORT = 8080
SERVICE_PORT = 80
SERVER_UID = 10101
CONFIG_DIR = "/etc/maas"
# The only writable place: pid and temp files (the root filesystem is read-only).
SCRATCH = "/tmp"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "maas-platform"}
# Nobody reaches it without a tier: the gateway's auth refuses such callers first, so this
# answers only a request that went around the gateway.
NO_TIER_BODY = (
    '{"error": {"message": "Call the API through the gateway.", "type": "permission_error", '
    '"code": "no_tier"}}'
)
# On the pod template: the digest of the server's files, so a change rolls the pods.
FILES_ANNOTATION = "maas-platform/model-list-digest"
NOT_FOUND_BODY = '{"error": {"message": "Not found.", "type": "invalid_request_error", "code": "not_found"}}'


def model_list(models: Sequence[ModelConfig], tier: str) -> dict[str, Any]:
    """The OpenAI list (`GET /v1/models`: object "list", data of objects "model" with id,
    created, owned_by; openai/openai-python@3.57.0 src/openai/types/model.py) of a tier's models."""
    return {
        "object": "list",
        "data": [
            {"id": m.served_name, "object": "model", "created": 0, "owned_by": "maas-platform"}
            for m in models
            if m.admits(tier)
        ],
    }


def _nginx_string(text: str) -> str:
    """A single-quoted nginx string; the JSON it holds has no quote, backslash or `$`."""
    if any(c in text for c in "'\\$"):
        raise ValueError(f"cannot quote for nginx: {text!r}")
    return f"'{text}'"


# Words a `map` block reads as its own parameters (nginx/nginx@release-1.30.4
# src/http/modules/ngx_http_map_module.c ngx_http_map).
_MAP_PARAMETERS = ("default", "hostnames", "include", "volatile")


def _map_key(tier: str) -> str:
    """A tier as a `map` source value. A leading backslash keeps a parameter's name a plain
    value (nginx drops it); on other names it would start an escape (`\\t` is a tab)."""
    return f"\\{tier}" if tier in _MAP_PARAMETERS else tier


def list_file(tier: str) -> str:
    return f"models-{tier}.json"


def server_files(
    models: Sequence[ModelConfig],
    tiers: Sequence[TierConfig],
    port: int = PORT,
    scratch: str = SCRATCH,
    root: str = CONFIG_DIR,
) -> dict[str, str]:
    """The whole server: `nginx.conf`, which maps the tier header to that tier's list file
    (ngx_http_map_module `map`, ngx_http_core_module `try_files`), and one list per tier.

    The lists are files, not strings in the configuration: nginx refuses a configuration
    token of 4 KiB or more (nginx/nginx@release-1.30.4 src/core/ngx_conf_file.c NGX_CONF_BUFFER),
    about 50 models.
    """
    header = "$http_" + TIER_HEADER.replace("-", "_")
    entries = "\n".join(f"    {_map_key(t.name)} /{list_file(t.name)};" for t in tiers)
    conf = f"""worker_processes 1;
pid {scratch}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 1024; }}
http {{
  client_body_temp_path {scratch}/client_temp;
  proxy_temp_path {scratch}/proxy_temp;
  fastcgi_temp_path {scratch}/fastcgi_temp;
  uwsgi_temp_path {scratch}/uwsgi_temp;
  scgi_temp_path {scratch}/scgi_temp;
  access_log off;
  server_tokens off;
  # A tier is a DNS label of up to 63 characters; the default 64-byte bucket holds 46.
  map_hash_bucket_size 128;
  map {header} $models_file {{
    default "";
{entries}
  }}
  server {{
    listen {port};
    root {root};
    default_type application/json;
    location = {OPENAI_MODELS_PATH} {{
      if ($models_file = "") {{
        return 403 {_nginx_string(NO_TIER_BODY)};
      }}
      try_files $models_file =500;
    }}
    location = /healthz {{
      return 200 '{{}}';
    }}
    location / {{
      return 404 {_nginx_string(NOT_FOUND_BODY)};
    }}
  }}
}}
"""
    return {"nginx.conf": conf} | {list_file(t.name): json.dumps(model_list(models, t.name)) for t in tiers}


@dataclass(frozen=True, kw_only=True)
class ModelListArgs:
    models: Sequence[ModelConfig]
    tiers: Sequence[TierConfig]
    namespace: pulumi.Input[str]
    # The gateway whose shared host answers GET /v1/models.
    gateway: gw.InferenceGateway
    flavour: Flavour


class ModelList(pulumi.ComponentResource):
    """GET /v1/models on the shared host: the caller's tier's models, in OpenAI's list format."""

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:models:ModelList"
    # What the tier policies wait for: the list's HTTPRoute, as for the model routes, and the
    # route they target (POLICY_ROUTE): see _policy_route.
    routes: tuple[pulumi.Resource, pulumi.Resource]

    def __init__(self, name: str, args: ModelListArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        metadata = k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=args.namespace, labels=LABELS)
        files = server_files(args.models, args.tiers)
        config = k8s.core.v1.ConfigMap(f"{name}-config", metadata=metadata, data=files, opts=child)
        # nginx reads its files once, at start: a changed catalog or tier table rolls the pods.
        digest = content_digest(files)
        deployment = k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=metadata,
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=LABELS),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=LABELS, annotations={FILES_ANNOTATION: digest}
                    ),
                    spec=_pod(config, args.flavour),
                ),
            ),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata,
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=LABELS,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=SERVICE_PORT, target_port=PORT)],
            ),
            opts=child,
        )
        route = k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=metadata,
            spec={
                "parentRefs": [
                    {"name": GATEWAY_NAME, "sectionName": listener} for listener in args.gateway.listeners
                ],
                "hostnames": [args.gateway.api_host],
                "rules": [
                    {
                        "matches": [
                            {"path": {"type": "Exact", "value": OPENAI_MODELS_PATH}, "method": "GET"}
                        ],
                        "backendRefs": [{"name": NAME, "port": SERVICE_PORT}],
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.gateway, service]),
        )
        policy_route = self._policy_route(name, args, service)
        self.routes = (route, policy_route)
        network_policy = network.ingress_only(
            f"{name}-isolation",
            name=f"{NAME}-ingress",
            namespace=args.namespace,
            selects=LABELS,
            ports=[PORT],
            peers=[network.pods(gw.POD_LABELS)],
            opts=child,
        )
        self.register_outputs(
            {
                "config": config,
                "deployment": deployment,
                "service": service,
                "routes": self.routes,
                "networkPolicy": network_policy,
            }
        )

    def _policy_route(
        self, name: str, args: ModelListArgs, service: k8s.core.v1.Service
    ) -> k8s.apiextensions.CustomResource:
        """What Kuadrant's policies attach to, so that its configuration does not grow with the
        catalog: every host of each listener and each metered path, one Exact match each
        (docs/architecture.md, "The policy route")."""
        return k8s.apiextensions.CustomResource(
            f"{name}-policy-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=POLICY_ROUTE, namespace=args.namespace, labels=LABELS),
            spec={
                "parentRefs": [
                    {"name": GATEWAY_NAME, "sectionName": listener} for listener in args.gateway.listeners
                ],
                "rules": [
                    {
                        "matches": [
                            {"path": {"type": "Exact", "value": path}}
                            for path in (*OPENAI_USAGE_PATHS, OPENAI_MODELS_PATH)
                        ],
                        "backendRefs": [{"name": NAME, "port": SERVICE_PORT}],
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.gateway, service]),
        )


def _pod(config: k8s.core.v1.ConfigMap, flavour: Flavour) -> k8s.core.v1.PodSpecArgs:
    """nginx under Pod Security `restricted`, with a read-only root and no API token."""
    probe = k8s.core.v1.ProbeArgs(
        http_get=k8s.core.v1.HTTPGetActionArgs(path="/healthz", port=PORT), period_seconds=10
    )
    return k8s.core.v1.PodSpecArgs(
        automount_service_account_token=False,
        security_context=flavour.pod_security(SERVER_UID),
        containers=[
            k8s.core.v1.ContainerArgs(
                name="nginx",
                image=versions.MODEL_LIST_IMAGE,
                # A tag, not yet a digest (docs/unverified.md): pull what it names now.
                image_pull_policy="Always",
                # nginx itself, not the image's entrypoint, whose scripts rewrite files under
                # /etc/nginx (docker-entrypoint.sh, 10-listen-on-ipv6-by-default.sh).
                # -e: the log nginx writes before it reads the configuration.
                command=["nginx", "-e", "stderr", "-c", f"{CONFIG_DIR}/nginx.conf", "-g", "daemon off;"],
                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT, protocol="TCP")],
                readiness_probe=probe,
                liveness_probe=probe,
                resources=k8s.core.v1.ResourceRequirementsArgs(
                    requests={"cpu": "10m", "memory": "16Mi"}, limits={"cpu": "100m", "memory": "64Mi"}
                ),
                security_context=restricted_container(),
                volume_mounts=[
                    k8s.core.v1.VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                    k8s.core.v1.VolumeMountArgs(name="scratch", mount_path=SCRATCH),
                ],
            )
        ],
        volumes=[
            k8s.core.v1.VolumeArgs(
                name="config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=config.metadata.name)
            ),
            k8s.core.v1.VolumeArgs(
                name="scratch", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="16Mi")
            ),
        ],
    )
