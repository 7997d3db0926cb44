"""Keycloak for OIDC: the operator, a database and a production-mode server (the realm is access's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cluster import network, storage
from components.cluster.security import restricted_container
from components.config import Footprint, OidcConfig
from components.flavour.protocol import Flavour
from components.names import GATEWAY_NAME, KEY_SERVICE_LABELS, KEYCLOAK_NAMESPACE
from components.pins import upstream, versions
from components.platform import footprint

KEYCLOAK_NAME = "keycloak"
# The operator names the server's Service "<name>-service"; HTTP is on 8080.
SERVICE = f"{KEYCLOAK_NAME}-service"
HTTP_PORT = 8080
DB_NAME = "keycloak"
DB_SERVICE = "keycloak-postgres"
DB_SECRET = "keycloak-db"
ADMIN_SECRET = "keycloak-admin"
# Besides Authorino, pods of Keycloak's namespace with these labels reach its HTTP port:
# the realm's user sync (components/access/realm.py) calls the admin API.
ADMIN_CLIENT_LABELS = {
    "app.kubernetes.io/name": "keycloak-user-sync",
    "app.kubernetes.io/part-of": "maas-platform",
}
# Sizing (documented defaults): one Keycloak and one PostgreSQL, enough for a platform's
# users; raise `instances` and these for more.
KEYCLOAK_RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
POSTGRES_RESOURCES = {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
# The official image's postgres user (docker-library/postgres 17/bookworm Dockerfile:
# `useradd ... --uid=999`). Not a UID above the host's range (checkov CKV_K8S_40): the data
# volumes of stacks already deployed are owned by 999, and PostgreSQL refuses a data
# directory owned by another user.
_POSTGRES_UID = 999
_UID_REASON = (
    "PostgreSQL keeps the image's UID 999: deployed stacks' data volumes are owned by it, "
    "and PostgreSQL refuses a data directory owned by another user"
)
_DB_LABELS = {"app.kubernetes.io/name": DB_SERVICE, "app.kubernetes.io/part-of": "maas-platform"}
# Where the credentials are read from, as files (the entrypoint's file_env: POSTGRES_USER_FILE,
# POSTGRES_PASSWORD_FILE), not the environment.
_CREDENTIALS_DIR = "/etc/postgres-credentials"


def default_hostname(namespace: str = KEYCLOAK_NAMESPACE) -> str:
    """In-cluster URL, Keycloak's hostname: in-cluster callers (Authorino, the key service,
    the user sync) use it, and the master realm and admin console keep it. The user realm's
    face for browsers is its own (components/access/realm.py frontend_url)."""
    return f"http://{SERVICE}.{namespace}.svc.cluster.local:{HTTP_PORT}"


def _with_root_mismatch_only(
    context: k8s.core.v1.PodSecurityContextArgs,
) -> k8s.core.v1.PodSecurityContextArgs:
    """The flavour's pod security, its volumes' ownership changed only when their root's differs."""
    context.fs_group_change_policy = "OnRootMismatch"
    return context


def keys_url(oidc: OidcConfig) -> str:
    """The realm's signing keys (JWKS), in-cluster: where Authorino checks tokens, whatever
    issuer browsers see (Keycloak's OIDCLoginProtocolService certs endpoint)."""
    return f"{default_hostname()}/realms/{oidc.realm}/protocol/openid-connect/certs"


@dataclass(frozen=True, kw_only=True)
class KeycloakArgs:
    oidc: OidcConfig
    namespace: pulumi.Input[str]
    # Provider whose default namespace is Keycloak's: the operator manifest names none.
    namespaced_provider: k8s.Provider
    flavour: Flavour
    # Where Authorino runs: it reads the realm's keys and discovery document from Keycloak.
    authorino_namespace: str
    # Where the key service runs, when it does: it reads the tier groups' members
    # (components/access/self_service.py).
    key_service_namespace: str | None = None
    # Where the gateway runs: browsers reach the user realm through it (components/access/realm.py).
    gateway_namespace: str | None = None
    footprint: Footprint = "standard"


class Keycloak(pulumi.ComponentResource):
    """Keycloak in production mode (`start`, PostgreSQL, a fixed hostname, a generated admin).

    It knows no tier and no user: the realm and its users are access's (components/access/realm.py).
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:keycloak:Keycloak"
    # The Keycloak CR: the realm waits for the server it is imported into.
    server: pulumi.Resource
    admin: pulumi.Output[dict[str, Any]]

    def __init__(self, name: str, args: KeycloakArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        crds = k8s.yaml.v2.ConfigGroup(
            f"{name}-crds", files=list(versions.KEYCLOAK_CRDS_URLS), opts=pulumi.ResourceOptions(parent=self)
        )
        operator = k8s.yaml.v2.ConfigFile(
            f"{name}-operator",
            file=versions.KEYCLOAK_OPERATOR_URL,
            opts=pulumi.ResourceOptions(parent=self, provider=args.namespaced_provider, depends_on=[crds]),
        )
        database = self._database(name, args)
        admin_password = self._password(f"{name}-admin")
        admin = k8s.core.v1.Secret(
            f"{name}-admin",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=ADMIN_SECRET, namespace=args.namespace),
            string_data={"username": "maas-admin", "password": admin_password},
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.server = k8s.apiextensions.CustomResource(
            f"{name}-server",
            api_version="k8s.keycloak.org/v2beta1",
            kind="Keycloak",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=KEYCLOAK_NAME,
                namespace=args.namespace,
                annotations={"pulumi.com/waitFor": "condition=Ready", "pulumi.com/timeoutSeconds": "900"},
            ),
            spec={
                "instances": 1,
                "image": versions.KEYCLOAK_IMAGE,
                "startOptimized": False,
                "db": {
                    "vendor": "postgres",
                    "host": DB_SERVICE,
                    "port": 5432,
                    "database": DB_NAME,
                    "usernameSecret": {"name": DB_SECRET, "key": "username"},
                    "passwordSecret": {"name": DB_SECRET, "key": "password"},
                },
                "bootstrapAdmin": {"user": {"secret": ADMIN_SECRET}},
                # A fixed URL for what the realm's frontendUrl does not set (the master realm,
                # the admin console); backchannel URLs follow the request, so in-cluster callers
                # are sent to the in-cluster URL (keycloak/keycloak@main
                # services/src/main/java/org/keycloak/url/HostnameV2Provider.java getBaseUri).
                "hostname": {"hostname": default_hostname(), "strict": True, "backchannelDynamic": True},
                # TLS ends at the gateway, which browsers reach the realm through: Keycloak takes
                # the scheme from X-Forwarded-Proto, or it marks no cookie Secure:
                # keycloak/keycloak@main services/src/main/java/org/keycloak/cookie/DefaultCookieProvider.java
                "proxy": {"headers": "xforwarded"},
                "http": {"httpEnabled": True},
                "ingress": {"enabled": False},
                # Off: the operator's own policy admits every source to the HTTP and management
                # ports (KeycloakNetworkPolicyDependentResource), and policies add up; this
                # component's doors admit Authorino alone.
                "networkPolicy": {"enabled": False},
                "resources": footprint.resources(args.footprint, "keycloak", KEYCLOAK_RESOURCES),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[operator, database, admin]),
        )
        self.admin = pulumi.Output.secret(pulumi.Output.all(username="maas-admin", password=admin_password))
        clients = [
            network.pods(upstream.AUTHORINO_PODS.labels, args.authorino_namespace),
            network.pods(ADMIN_CLIENT_LABELS),
            *(
                [network.pods(KEY_SERVICE_LABELS, args.key_service_namespace)]
                if args.key_service_namespace
                else []
            ),
            *(
                [network.pods(upstream.gateway_pod_labels(GATEWAY_NAME), args.gateway_namespace)]
                if args.gateway_namespace
                else []
            ),
        ]
        database_clients = [network.pods(upstream.KEYCLOAK_DATABASE_CLIENTS)]
        postgres = upstream.Workload(labels=_DB_LABELS, ports={"postgres": 5432}, source="declared here")
        doors = network.doors(
            name,
            args.namespace,
            [
                network.Door("keycloak-http", upstream.KEYCLOAK_SERVER_PODS, ("http",), clients),
                network.Door("keycloak-postgres", postgres, ("postgres",), database_clients),
            ],
            self,
        )
        self.register_outputs({"server": self.server, "admin": self.admin, "networkPolicies": doors})

    def _password(self, name: str) -> pulumi.Output[str]:
        generated = random.RandomPassword(
            name, length=32, special=False, opts=pulumi.ResourceOptions(parent=self)
        )
        return pulumi.Output.secret(generated.result)

    def _database(self, name: str, args: KeycloakArgs) -> pulumi.Resource:
        """A single PostgreSQL with a persistent volume and a generated password."""
        credentials = k8s.core.v1.Secret(
            f"{name}-db-credentials",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=DB_SECRET, namespace=args.namespace),
            string_data={"username": DB_NAME, "password": self._password(f"{name}-db-password")},
            opts=pulumi.ResourceOptions(parent=self),
        )
        labels = _DB_LABELS
        service = k8s.core.v1.Service(
            f"{name}-db-service",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=DB_SERVICE, namespace=args.namespace, labels=labels),
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=labels,
                ports=[k8s.core.v1.ServicePortArgs(name="postgres", port=5432, target_port="postgres")],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        ready = k8s.core.v1.ProbeArgs(
            exec_=k8s.core.v1.ExecActionArgs(command=["pg_isready", "-U", DB_NAME, "-d", DB_NAME]),
            period_seconds=10,
        )
        return k8s.apps.v1.StatefulSet(
            f"{name}-db",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=DB_SERVICE,
                namespace=args.namespace,
                labels=labels,
                # checkov's inline skip (bridgecrewio/checkov@3.3.30
                # checkov/kubernetes/kubernetes_utils.py: "<check>=<why>").
                annotations={"checkov.io/skip1": f"CKV_K8S_40={_UID_REASON}"},
            ),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name=DB_SERVICE,
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        # The kubelet's recursive fsGroup pass makes PGDATA group-writable on
                        # every mount, which PostgreSQL refuses unless the entrypoint's chmod
                        # repairs it: only when the volume's root does not match, read in
                        # kubernetes/kubernetes@master pkg/volume/volume_linux.go SetVolumeOwnership.
                        security_context=_with_root_mismatch_only(args.flavour.pod_security(_POSTGRES_UID)),
                        containers=[
                            k8s.core.v1.ContainerArgs(
                                name="postgres",
                                image=versions.POSTGRES_IMAGE,
                                ports=[k8s.core.v1.ContainerPortArgs(name="postgres", container_port=5432)],
                                env=[
                                    k8s.core.v1.EnvVarArgs(name="POSTGRES_DB", value=DB_NAME),
                                    k8s.core.v1.EnvVarArgs(
                                        name="POSTGRES_USER_FILE", value=f"{_CREDENTIALS_DIR}/username"
                                    ),
                                    k8s.core.v1.EnvVarArgs(
                                        name="POSTGRES_PASSWORD_FILE", value=f"{_CREDENTIALS_DIR}/password"
                                    ),
                                    # A subdirectory: the volume's root may hold lost+found.
                                    k8s.core.v1.EnvVarArgs(
                                        name="PGDATA", value="/var/lib/postgresql/data/pgdata"
                                    ),
                                ],
                                # A tag, not yet a digest (docs/unverified.md): pull what it names now.
                                image_pull_policy="Always",
                                readiness_probe=ready,
                                liveness_probe=ready,
                                resources=k8s.core.v1.ResourceRequirementsArgs(
                                    **footprint.resources(args.footprint, "postgres", POSTGRES_RESOURCES)
                                ),
                                security_context=restricted_container(),
                                # The read-only root's writable places: the data volume, the
                                # server's socket and lock directory (the entrypoint's
                                # docker_create_db_directories), and /tmp.
                                volume_mounts=[
                                    k8s.core.v1.VolumeMountArgs(
                                        name="data", mount_path="/var/lib/postgresql/data"
                                    ),
                                    k8s.core.v1.VolumeMountArgs(name="run", mount_path="/var/run/postgresql"),
                                    k8s.core.v1.VolumeMountArgs(name="tmp", mount_path="/tmp"),
                                    k8s.core.v1.VolumeMountArgs(
                                        name="credentials", mount_path=_CREDENTIALS_DIR, read_only=True
                                    ),
                                ],
                            )
                        ],
                        volumes=[
                            k8s.core.v1.VolumeArgs(
                                name="run", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()
                            ),
                            k8s.core.v1.VolumeArgs(
                                name="credentials",
                                secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=DB_SECRET),
                            ),
                        ],
                        # PostgreSQL never calls the Kubernetes API.
                        automount_service_account_token=False,
                    ),
                ),
                volume_claim_templates=[
                    storage.data_volume(args.oidc.database_storage, args.oidc.storage_class)
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[credentials, service]),
        )
