"""Limitador's shared counters: a Redis of our own, reachable by Limitador only.

Deployed when `maas:limitador.storage` is `redis` and no `maas:limitadorRedisUrl` names a
Redis of the user's. A budget then survives a Limitador restart and is one across its
replicas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cluster import network, storage
from components.cluster.access import Namespace
from components.cluster.security import restricted_container
from components.config import LimitadorConfig
from components.flavour.protocol import Flavour
from components.pins import upstream, versions

NAME = "limitador-redis"
# Its configuration, with the password (not "limitador-redis": Kuadrant's URL Secret).
CONFIG_SECRET = f"{NAME}-config"
PORT = 6379
# Redis writes only /data (the volume, made writable by fsGroup) and reads our file, so it
# runs as a UID of its own, above the host's range (checkov CKV_K8S_40), not the image's
# 999 (redis/docker-library-redis alpine/Dockerfile; /data is its working directory).
REDIS_UID = 10999
DATA_DIR = "/data"
CONFIG_DIR = "/etc/redis"
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "maas-platform"}


@dataclass(frozen=True, kw_only=True)
class CounterStoreArgs:
    namespace: Namespace
    limitador: LimitadorConfig
    flavour: Flavour
    after: Sequence[pulumi.Resource] = ()


class CounterStore(pulumi.ComponentResource):
    """Redis with a generated password (a Pulumi secret, in a config file, not the
    environment), an append-only file on a volume, and a NetworkPolicy that admits
    Limitador's pods only."""

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:kuadrant:CounterStore"
    # redis://:<password>@<service>:6379, a secret: what Limitador is given.
    url: pulumi.Output[str]

    def __init__(self, name: str, args: CounterStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        password = random.RandomPassword(
            f"{name}-password", length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        metadata = k8s.meta.v1.ObjectMetaArgs(name=NAME, namespace=args.namespace.output, labels=LABELS)
        # redis.conf directives (redis.io docs, "redis.conf"): the password, and every write
        # logged to the append-only file on the volume, so counters survive a restart.
        secret: pulumi.Output[str] = pulumi.Output.secret(password.result)
        config_file = secret.apply(_config_file)
        config = k8s.core.v1.Secret(
            f"{name}-config",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CONFIG_SECRET, namespace=args.namespace.output, labels=LABELS
            ),
            string_data={"redis.conf": config_file},
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata,
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=LABELS,
                ports=[k8s.core.v1.ServicePortArgs(name="redis", port=PORT, target_port=PORT)],
            ),
            opts=child,
        )
        server = k8s.apps.v1.StatefulSet(
            f"{name}-server",
            metadata=metadata,
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name=NAME,
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=LABELS),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=LABELS), spec=_pod(args.flavour)
                ),
                volume_claim_templates=[
                    storage.data_volume(args.limitador.redis_storage, args.limitador.redis_storage_class)
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.after, config]),
        )
        isolation = network.ingress_only(
            f"{name}-isolation",
            name=f"{NAME}-ingress",
            namespace=args.namespace.output,
            selects=LABELS,
            ports=[PORT],
            peers=[network.pods(upstream.LIMITADOR_PODS.labels)],
            opts=child,
        )
        host = f"{NAME}.{args.namespace.name}.svc.cluster.local"
        self.url = secret.apply(lambda value: f"redis://:{value}@{host}:{PORT}")
        self.register_outputs(
            {
                "config": config,
                "service": service,
                "server": server,
                "networkPolicy": isolation,
                "url": self.url,
            }
        )


def _config_file(password: str) -> str:
    return f"port {PORT}\ndir {DATA_DIR}\nappendonly yes\nrequirepass {password}\n"


def _pod(flavour: Flavour) -> k8s.core.v1.PodSpecArgs:
    """Redis under Pod Security `restricted`: its own user, a read-only root, no API token."""
    probe = k8s.core.v1.ProbeArgs(tcp_socket=k8s.core.v1.TCPSocketActionArgs(port=PORT), period_seconds=10)
    return k8s.core.v1.PodSpecArgs(
        automount_service_account_token=False,
        security_context=flavour.pod_security(REDIS_UID),
        containers=[
            k8s.core.v1.ContainerArgs(
                name="redis",
                image=versions.REDIS_IMAGE,
                # A tag, not yet a digest (docs/unverified.md): pull what it names now.
                image_pull_policy="Always",
                # The server itself, on our file: the image's entrypoint drops root (ours is
                # not), sets umask 0077 and loads the bundled modules, none of which
                # Limitador's counters need (redis/docker-library-redis@v8.10.2
                # alpine/docker-entrypoint.sh).
                command=["redis-server", f"{CONFIG_DIR}/redis.conf"],
                ports=[k8s.core.v1.ContainerPortArgs(name="redis", container_port=PORT, protocol="TCP")],
                readiness_probe=probe,
                liveness_probe=probe,
                resources=k8s.core.v1.ResourceRequirementsArgs(
                    requests={"cpu": "50m", "memory": "64Mi"}, limits={"cpu": "500m", "memory": "256Mi"}
                ),
                security_context=restricted_container(),
                volume_mounts=[
                    k8s.core.v1.VolumeMountArgs(name="data", mount_path=DATA_DIR),
                    k8s.core.v1.VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                ],
            )
        ],
        volumes=[
            k8s.core.v1.VolumeArgs(
                name="config", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=CONFIG_SECRET)
            )
        ],
    )
