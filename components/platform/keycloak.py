"""Keycloak for OIDC: operator, database, a production-mode server and the realm of tiers."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.cluster import network, storage
from components.cluster.security import restricted_container
from components.config import Footprint, OidcConfig, TierConfig, UserConfig
from components.flavour.protocol import Flavour
from components.names import KEYCLOAK_NAMESPACE
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
PASSWORDS_SECRET = "keycloak-user-passwords"
# Day 2: a Job of the Keycloak image runs this script with its admin CLI after every change
# of the users, so the realm follows the stack file (the operator imports a realm once:
# KeycloakRealmImportJobDependentResource creates its Job once, with `--override=false`).
USER_SYNC = "keycloak-user-sync"
USER_SYNC_SCRIPT = Path(__file__).with_name("keycloak_users.sh")
USER_SYNC_LABELS = {"app.kubernetes.io/name": USER_SYNC, "app.kubernetes.io/part-of": "maas-platform"}
# The Keycloak image's user (keycloak/keycloak quarkus/container/Dockerfile: USER 1000).
_KEYCLOAK_UID = 1000
_KEYCLOAK_UID_REASON = (
    "the Keycloak image runs its CLI as its own user 1000 (quarkus/container/Dockerfile), "
    "whose home and files it owns; another UID was not tried with the image"
)
_USER_SYNC_DIR = "/etc/keycloak-user-sync"
_USER_SYNC_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
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
    """In-cluster URL: Authorino reaches it, and tokens fetched through a port-forward
    carry it as issuer too (Keycloak's hostname is fixed, not taken from requests)."""
    return f"http://{SERVICE}.{namespace}.svc.cluster.local:{HTTP_PORT}"


def issuer_url(oidc: OidcConfig) -> str:
    return f"{oidc.hostname or default_hostname()}/realms/{oidc.realm}"


@dataclass(frozen=True, kw_only=True)
class KeycloakArgs:
    oidc: OidcConfig
    tiers: Sequence[TierConfig]
    users: Sequence[UserConfig]
    domain: str
    namespace: pulumi.Input[str]
    # Provider whose default namespace is Keycloak's: the operator manifest names none.
    namespaced_provider: k8s.Provider
    flavour: Flavour
    # Where Authorino runs: it reads the realm's keys and discovery document from Keycloak.
    authorino_namespace: str
    footprint: Footprint = "standard"


class Keycloak(pulumi.ComponentResource):
    """Keycloak in production mode (`start`, PostgreSQL, a fixed hostname, a generated admin).

    The realm is generated from the tier table and users: a group per tier, each user in
    its tier's group with a generated password, and a public client whose token carries
    the `groups` claim the AuthPolicy turns into a tier. The operator imports a realm only
    once: later user changes go through Keycloak's admin console or API.
    """

    TYPE: ClassVar[str] = "maas:keycloak:Keycloak"
    passwords: pulumi.Output[dict[str, str]]
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
        self._server = k8s.apiextensions.CustomResource(
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
                "hostname": {"hostname": args.oidc.hostname or default_hostname(), "strict": True},
                # TLS ends at whatever fronts Keycloak; in-cluster callers use plain HTTP.
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
        self.passwords, realm_import = self._realm(name, args)
        self.admin = pulumi.Output.secret(pulumi.Output.all(username="maas-admin", password=admin_password))
        user_sync = self._user_sync(name, args, realm_import)
        clients = [
            network.pods(upstream.AUTHORINO_PODS.labels, args.authorino_namespace),
            network.pods(USER_SYNC_LABELS),
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
        self.register_outputs(
            {
                "passwords": self.passwords,
                "admin": self.admin,
                "userSync": user_sync,
                "networkPolicies": doors,
            }
        )

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
                # checkov's inline skip (checkov 3.3.30 kubernetes/kubernetes_utils.py: "<check>=<why>").
                annotations={"checkov.io/skip1": f"CKV_K8S_40={_UID_REASON}"},
            ),
            spec=k8s.apps.v1.StatefulSetSpecArgs(
                service_name=DB_SERVICE,
                replicas=1,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(labels=labels),
                    spec=k8s.core.v1.PodSpecArgs(
                        security_context=args.flavour.pod_security(_POSTGRES_UID),
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
                                # A tag, not yet a digest (README "Unverified"): pull what it names now.
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

    def _realm(self, name: str, args: KeycloakArgs) -> tuple[pulumi.Output[dict[str, str]], pulumi.Resource]:
        """The realm import; returns each user's generated password (a secret), and the import."""
        passwords = {user.name: self._password(f"{name}-user-{user.name}") for user in args.users}
        self._passwords_secret = k8s.core.v1.Secret(
            f"{name}-user-passwords",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PASSWORDS_SECRET, namespace=args.namespace),
            string_data=passwords,
            opts=pulumi.ResourceOptions(parent=self),
        )
        realm_import = k8s.apiextensions.CustomResource(
            f"{name}-realm",
            api_version="k8s.keycloak.org/v2beta1",
            kind="KeycloakRealmImport",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=f"realm-{args.oidc.realm}",
                namespace=args.namespace,
                annotations={"pulumi.com/waitFor": "condition=Done"},
            ),
            spec={
                "keycloakCRName": KEYCLOAK_NAME,
                # The operator fills ${NAME} from these Secrets, so no password is in the CR.
                "placeholders": {
                    placeholder(user.name): {"secret": {"name": PASSWORDS_SECRET, "key": user.name}}
                    for user in args.users
                },
                "realm": realm(args.oidc, args.tiers, args.users, args.domain),
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._server]),
        )
        return pulumi.Output.secret(pulumi.Output.all(**passwords) if passwords else {}), realm_import

    def _user_sync(self, name: str, args: KeycloakArgs, realm_import: pulumi.Resource) -> k8s.batch.v1.Job:
        """The Job that brings the realm's users in step with the stack file (keycloak_users.sh).

        Its pod template carries a digest of the users, tiers and script: a change of any of
        them changes the template, which pulumi-kubernetes replaces rather than updates
        (v4.32.0 provider/pkg/provider/diff.go: a Job's `.spec.template` forces a new one),
        and `pulumi up` waits for the new Job to complete (await/awaiters.go jobAwaiter).
        Chosen over keycloak-config-cli, which never deletes users and has no image built for
        Keycloak 26.7, and over the Pulumi Keycloak provider, which needs Keycloak's admin API
        reachable from where `pulumi up` runs: this needs only the Kubernetes API, and its
        CLI is the pinned Keycloak image's own."""
        files = user_sync_files(args.tiers, args.users, args.domain)
        config = k8s.core.v1.ConfigMap(
            f"{name}-user-sync-files",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=USER_SYNC, namespace=args.namespace),
            data=files,
            opts=pulumi.ResourceOptions(parent=self),
        )
        digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
        return k8s.batch.v1.Job(
            f"{name}-user-sync",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=USER_SYNC,
                namespace=args.namespace,
                labels=USER_SYNC_LABELS,
                annotations={
                    "checkov.io/skip1": f"CKV_K8S_40={_KEYCLOAK_UID_REASON}",
                    # A Job that failed stays failed: the next `pulumi up` runs a new one
                    # rather than wait on it (pulumi-kubernetes v4.32.0 metadata/annotations.go).
                    "pulumi.com/replaceUnready": "true",
                },
            ),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=3,
                active_deadline_seconds=900,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=USER_SYNC_LABELS, annotations={"maas-platform/users-digest": digest}
                    ),
                    spec=_user_sync_pod(args),
                ),
            ),
            # A fixed name: the old Job goes before its replacement comes.
            opts=pulumi.ResourceOptions(
                parent=self,
                # The passwords first: a new user's must be in the Secret when the Job reads it.
                depends_on=[realm_import, config, self._passwords_secret, self._server],
                delete_before_replace=True,
            ),
        )


def _user_sync_pod(args: KeycloakArgs) -> k8s.core.v1.PodSpecArgs:
    """Pod Security "restricted", a read-only root, no API token (it calls Keycloak only)."""
    env = {
        "KEYCLOAK_URL": default_hostname(),
        "REALM": args.oidc.realm,
        "ADMIN_DIR": "/etc/keycloak-admin",
        "PASSWORDS_DIR": "/etc/keycloak-user-passwords",
        "USERS_FILE": f"{_USER_SYNC_DIR}/users",
        "TIERS_FILE": f"{_USER_SYNC_DIR}/tiers",
        "KCADM": "/opt/keycloak/bin/kcadm.sh",
        # The CLI's session file, beside the JVM's scratch files: the root is read-only.
        "KCADM_CONFIG": "/tmp/kcadm.config",
    }
    volumes = {
        _USER_SYNC_DIR: k8s.core.v1.VolumeArgs(
            name="files", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=USER_SYNC)
        ),
        env["ADMIN_DIR"]: k8s.core.v1.VolumeArgs(
            name="admin", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=ADMIN_SECRET)
        ),
        env["PASSWORDS_DIR"]: k8s.core.v1.VolumeArgs(
            name="passwords", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=PASSWORDS_SECRET)
        ),
        "/tmp": k8s.core.v1.VolumeArgs(name="tmp", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs()),
    }
    container = k8s.core.v1.ContainerArgs(
        name="sync",
        image=versions.KEYCLOAK_IMAGE,
        # A tag, not yet a digest (README "Unverified"): pull what it names now.
        image_pull_policy="Always",
        command=["/bin/bash", f"{_USER_SYNC_DIR}/sync.sh"],
        env=[k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in env.items()],
        resources=k8s.core.v1.ResourceRequirementsArgs(
            requests=_USER_SYNC_RESOURCES["requests"], limits=_USER_SYNC_RESOURCES["limits"]
        ),
        security_context=restricted_container(),
        volume_mounts=[
            k8s.core.v1.VolumeMountArgs(name=str(v.name), mount_path=path, read_only=path != "/tmp")
            for path, v in volumes.items()
        ],
    )
    return k8s.core.v1.PodSpecArgs(
        restart_policy="Never",
        security_context=args.flavour.pod_security(_KEYCLOAK_UID),
        automount_service_account_token=False,
        containers=[container],
        volumes=list(volumes.values()),
    )


def user_sync_files(tiers: Sequence[TierConfig], users: Sequence[UserConfig], domain: str) -> dict[str, str]:
    """What the user sync reads: its script, the users ("<user> <tier> <email>") and the tiers."""
    return {
        "sync.sh": USER_SYNC_SCRIPT.read_text(),
        "users": "".join(f"{u.name} {u.tier} {email(u, domain)}\n" for u in users),
        "tiers": "".join(f"{t.name}\n" for t in tiers),
    }


def email(user: UserConfig, domain: str) -> str:
    """Keycloak refuses the password grant to users without one ("not fully set up")."""
    return f"{user.name}@{domain}"


def placeholder(user: str) -> str:
    return "PASSWORD_" + re.sub(r"[^A-Z0-9]", "_", user.upper())


def realm(
    oidc: OidcConfig, tiers: Sequence[TierConfig], users: Sequence[UserConfig], domain: str
) -> dict[str, Any]:
    """The realm: one group per tier, users in their tier's group, a client mapping groups."""
    return {
        "realm": oidc.realm,
        "enabled": True,
        "groups": [{"name": tier.name} for tier in tiers],
        "users": [
            {
                "username": user.name,
                "enabled": True,
                "email": email(user, domain),
                "emailVerified": True,
                "firstName": user.name,
                "lastName": user.tier,
                "credentials": [
                    {"type": "password", "value": f"${{{placeholder(user.name)}}}", "temporary": False}
                ],
                "groups": [f"/{user.tier}"],
            }
            for user in users
        ],
        "clients": [
            {
                "clientId": oidc.client_id,
                "enabled": True,
                "protocol": "openid-connect",
                "publicClient": True,
                "standardFlowEnabled": False,
                "directAccessGrantsEnabled": True,
                "protocolMappers": [
                    {
                        "name": "groups",
                        "protocol": "openid-connect",
                        "protocolMapper": "oidc-group-membership-mapper",
                        "consentRequired": False,
                        # Keycloak reads mapper settings as strings.
                        "config": {
                            "claim.name": "groups",
                            "full.path": "false",
                            "access.token.claim": "true",
                            "id.token.claim": "true",
                            "userinfo.token.claim": "true",
                        },
                    }
                ],
            }
        ],
    }
