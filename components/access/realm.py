"""The Keycloak realm of the tiers and users: a group per tier, the users with generated
passwords, a public client whose tokens carry the `groups` claim the AuthPolicy turns into
a tier, the Job that keeps the users, and the realm's declared clients and groups, in step
with the stack, and the route browsers reach the realm by, through the gateway."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.access.tiers import ADMIN_GROUP
from components.cluster.access import Namespace
from components.cluster.rollout import content_digest
from components.cluster.security import restricted_container
from components.config import OidcConfig, TierConfig, UserConfig, model
from components.flavour.protocol import Flavour
from components.names import GATEWAY_NAME
from components.pins import versions
from components.platform.keycloak import (
    ADMIN_CLIENT_LABELS,
    ADMIN_SECRET,
    HTTP_PORT,
    KEYCLOAK_NAME,
    SERVICE,
    Keycloak,
    default_hostname,
)
from components.serving import gateway as gw

PASSWORDS_SECRET = "keycloak-user-passwords"
# The stack file's users are members of this group too (the import and the user sync put
# them there): the sync deletes only its members that the file no longer lists, never a
# self-service user an administrator added to a tier group.
STACK_USERS_GROUP = model.STACK_USERS_GROUP
# The key service's confidential client (components/access/self_service.py): its service
# account may view users and groups (realm-management's view-users), to read each tier
# group's members for the tier sync, and nothing else. Its secret comes from this Secret
# through a placeholder, as the users' passwords do.
KEY_SERVICE_CLIENT = "maas-key-service"
KEY_SERVICE_CLIENT_SECRET = "keycloak-key-service-client"
_KEY_SERVICE_PLACEHOLDER = "KEY_SERVICE_CLIENT_SECRET"
# The key service's page (components/access/key_service/page.html): a public client, the
# authorization code flow with PKCE (S256) only, back to the page on the shared host.
PORTAL_CLIENT = "maas-portal"
# The route browsers reach the realm by, in the gateway's namespace, and its ReferenceGrant.
REALM_ROUTE = "keycloak-realm"
# Day 2: a Job of the Keycloak image runs this script with its admin CLI after every change
# of the users, so the realm follows the stack file (the operator imports a realm once:
# KeycloakRealmImportJobDependentResource creates its Job once, with `--override=false`).
USER_SYNC = "keycloak-user-sync"
USER_SYNC_SCRIPT = Path(__file__).with_name("keycloak_users.sh")
# The Keycloak image's user (keycloak/keycloak quarkus/container/Dockerfile: USER 1000).
_KEYCLOAK_UID = 1000
_KEYCLOAK_UID_REASON = (
    "the Keycloak image runs its CLI as its own user 1000 (quarkus/container/Dockerfile), "
    "whose home and files it owns; another UID was not tried with the image"
)
_USER_SYNC_DIR = "/etc/keycloak-user-sync"
# The clients' secrets the sync fills in (a file per placeholder, as the import's placeholders
# name them): mounted from their Secrets, never in the ConfigMap.
_CLIENT_SECRETS_DIR = "/etc/keycloak-client-secrets"
# The fields of a declared client the sync brings in step on every run (how it is reached and
# how it logs in, and its secret); the rest (enabled, mappers, an administrator's own
# settings) is left as it is.
# What of the realm the sync brings in step on every run: where browsers reach it, and the
# lockout of a user after repeated failed logins (its login pages are public).
OWNED_REALM_ATTRIBUTES = ("frontendUrl",)
OWNED_REALM_FIELDS = ("bruteForceProtected",)
OWNED_CLIENT_FIELDS = (
    "publicClient",
    "standardFlowEnabled",
    "implicitFlowEnabled",
    "directAccessGrantsEnabled",
    "serviceAccountsEnabled",
    "redirectUris",
    "webOrigins",
    "attributes",
    "secret",
)
_USER_SYNC_RESOURCES = {
    "requests": {"cpu": "100m", "memory": "256Mi"},
    "limits": {"cpu": "1", "memory": "512Mi"},
}


@dataclass(frozen=True, kw_only=True)
class RealmArgs:
    oidc: OidcConfig
    tiers: Sequence[TierConfig]
    users: Sequence[UserConfig]
    domain: str
    namespace: pulumi.Input[str]
    # The server the realm lives in; until issue 28 it was also these resources' parent.
    keycloak: Keycloak
    flavour: Flavour
    # The key service's client and the administrators' group (tiers.ADMIN_GROUP).
    key_service: bool = False
    # Where the page lives, every URL a browser may open it at (components/access/
    # self_service.py portal_urls): the portal client's redirect URIs.
    portal_urls: Sequence[str] = ()
    # The gateway browsers reach the realm through, and the namespace of its routes.
    gateway: gw.InferenceGateway
    route_namespace: Namespace


class Realm(pulumi.ComponentResource):
    """The realm, imported once by the operator and kept in step with the stack file by the
    user sync Job. Its resources were Keycloak's children: each keeps that URN as an alias."""

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:access:Realm"
    passwords: pulumi.Output[dict[str, str]]
    # The key service client's secret, when it has one (a secret output).
    key_service_secret: pulumi.Output[str] | None
    # The realm's URL as browsers reach it and tokens carry it (`iss`).
    issuer: str
    # The route browsers reach the realm by: the page waits for it.
    route: pulumi.Resource

    def __init__(self, name: str, args: RealmArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        self._keycloak = args.keycloak
        frontend = frontend_url(args.oidc, args.gateway)
        self.issuer = f"{frontend}/realms/{args.oidc.realm}"
        passwords = {user.name: self._password(f"{name}-user-{user.name}") for user in args.users}
        passwords_secret = k8s.core.v1.Secret(
            f"{name}-user-passwords",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=PASSWORDS_SECRET, namespace=args.namespace),
            string_data=passwords,
            opts=self._moved(),
        )
        # The operator fills ${NAME} in the import from these Secrets: the clients' only.
        placeholders: dict[str, Any] = {}
        client_secret_resources: list[pulumi.Resource] = []
        # The clients' placeholders (the sync fills them from the same Secrets as the operator).
        client_secrets: dict[str, dict[str, str]] = {}
        self.key_service_secret = None
        if args.key_service:
            self.key_service_secret = self._password(f"{name}-key-service-client")
            client_secret_resources.append(
                k8s.core.v1.Secret(
                    f"{name}-key-service-client",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=KEY_SERVICE_CLIENT_SECRET, namespace=args.namespace
                    ),
                    string_data={"secret": self.key_service_secret},
                    opts=pulumi.ResourceOptions(parent=self),
                )
            )
            client_secrets[_KEY_SERVICE_PLACEHOLDER] = {"name": KEY_SERVICE_CLIENT_SECRET, "key": "secret"}
            placeholders[_KEY_SERVICE_PLACEHOLDER] = {"secret": client_secrets[_KEY_SERVICE_PLACEHOLDER]}
        declared = realm(
            args.oidc,
            args.tiers,
            key_service=args.key_service,
            portal_urls=args.portal_urls,
            frontend=frontend,
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
                # So no secret is in the CR.
                "placeholders": placeholders,
                "realm": declared,
            },
            opts=self._moved(depends_on=[args.keycloak.server, *client_secret_resources]),
        )
        self.passwords = pulumi.Output.secret(pulumi.Output.all(**passwords) if passwords else {})
        user_sync = self._user_sync(
            name, args, declared, client_secrets, realm_import, [passwords_secret, *client_secret_resources]
        )
        self.route = self._route(name, args, realm_import, frontend)
        self.register_outputs(
            {
                "passwords": self.passwords,
                "userSync": user_sync,
                "keyServiceSecret": self.key_service_secret,
                "issuer": self.issuer,
                "route": self.route,
            }
        )

    def _route(
        self, name: str, args: RealmArgs, realm_import: pulumi.Resource, frontend: str
    ) -> pulumi.Resource:
        """The realm's pages and the static files they load, through the gateway on every host
        like the key service's routes, and the grant that lets a route of the gateway's
        namespace send to Keycloak's Service (Gateway API: a cross-namespace backendRef needs a
        ReferenceGrant in the target's namespace; Istio reads v1beta1, istio/istio@1.30.3
        pkg/config/schema/gvr/resources.gen.go ReferenceGrant). Nothing else of Keycloak is
        routed: not the master realm, the admin console or the admin API."""
        grant = k8s.apiextensions.CustomResource(
            f"{name}-route-grant",
            api_version="gateway.networking.k8s.io/v1beta1",
            kind="ReferenceGrant",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=REALM_ROUTE, namespace=args.namespace),
            spec={
                "from": [
                    {
                        "group": "gateway.networking.k8s.io",
                        "kind": "HTTPRoute",
                        "namespace": args.route_namespace.output,
                    }
                ],
                "to": [{"group": "", "kind": "Service", "name": SERVICE}],
            },
            # The gateway waits for the Gateway API release that serves ReferenceGrant.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.gateway]),
        )
        return k8s.apiextensions.CustomResource(
            f"{name}-route",
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=REALM_ROUTE, namespace=args.route_namespace.output),
            spec={
                "parentRefs": [
                    {"name": GATEWAY_NAME, "sectionName": listener} for listener in args.gateway.listeners
                ],
                "rules": [
                    {
                        "matches": [
                            {"path": {"type": "PathPrefix", "value": prefix}}
                            for prefix in realm_paths(args.oidc.realm)
                        ],
                        "filters": [as_frontend(frontend)],
                        "backendRefs": [{"name": SERVICE, "namespace": args.namespace, "port": HTTP_PORT}],
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.gateway, grant, realm_import]),
        )

    def _moved(self, **options: Any) -> pulumi.ResourceOptions:
        """Options of a child: known by the URN it had as Keycloak's child, so `pulumi up`
        moves the live resource here instead of replacing it."""
        return pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(parent=self._keycloak)], **options)

    def _password(self, name: str) -> pulumi.Output[str]:
        generated = random.RandomPassword(name, length=32, special=False, opts=self._moved())
        return pulumi.Output.secret(generated.result)

    def _user_sync(
        self,
        name: str,
        args: RealmArgs,
        declared: Mapping[str, Any],
        client_secrets: Mapping[str, Mapping[str, str]],
        realm_import: pulumi.Resource,
        secrets: Sequence[pulumi.Resource],
    ) -> k8s.batch.v1.Job:
        """The Job that brings the realm's users, and its declared clients and groups, in step
        with the stack (keycloak_users.sh). Why a Job of the Keycloak image:
        docs/architecture.md, "The realm's day 2"."""
        files = user_sync_files(args.tiers, args.users, args.domain, declared)
        config = k8s.core.v1.ConfigMap(
            f"{name}-user-sync-files",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=USER_SYNC, namespace=args.namespace),
            data=files,
            opts=self._moved(),
        )
        # A change of users, tiers or script changes the template, so a new Job runs.
        digest = content_digest(files)[:16]
        return k8s.batch.v1.Job(
            f"{name}-user-sync",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=USER_SYNC,
                namespace=args.namespace,
                labels=ADMIN_CLIENT_LABELS,
                annotations={
                    "checkov.io/skip1": f"CKV_K8S_40={_KEYCLOAK_UID_REASON}",
                    # A Job that failed stays failed: the next `pulumi up` runs a new one rather
                    # than wait on it (pulumi/pulumi-kubernetes@v4.32.0
                    # provider/pkg/metadata/annotations.go).
                    "pulumi.com/replaceUnready": "true",
                },
            ),
            spec=k8s.batch.v1.JobSpecArgs(
                backoff_limit=3,
                active_deadline_seconds=900,
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=ADMIN_CLIENT_LABELS, annotations={"maas-platform/users-digest": digest}
                    ),
                    spec=_user_sync_pod(args, client_secrets),
                ),
            ),
            # A fixed name: the old Job goes before its replacement comes.
            opts=self._moved(
                # The Secrets first: a new user's password, a client's secret, must be there
                # when the Job reads them.
                depends_on=[realm_import, config, *secrets, args.keycloak.server],
                delete_before_replace=True,
            ),
        )


def _user_sync_pod(
    args: RealmArgs, client_secrets: Mapping[str, Mapping[str, str]]
) -> k8s.core.v1.PodSpecArgs:
    """Pod Security "restricted", a read-only root, no API token (it calls Keycloak only).
    `client_secrets`: placeholder -> the Secret's name and key, mounted as a file named like
    the placeholder."""
    env = {
        "KEYCLOAK_URL": default_hostname(),
        "REALM": args.oidc.realm,
        "MANAGED_GROUP": STACK_USERS_GROUP,
        "ADMIN_DIR": "/etc/keycloak-admin",
        "PASSWORDS_DIR": "/etc/keycloak-user-passwords",
        "USERS_FILE": f"{_USER_SYNC_DIR}/users",
        "TIERS_FILE": f"{_USER_SYNC_DIR}/tiers",
        "GROUPS_FILE": f"{_USER_SYNC_DIR}/groups",
        "CLIENTS_FILE": f"{_USER_SYNC_DIR}/clients",
        "CLIENTS_DIR": _USER_SYNC_DIR,
        "ROLES_FILE": f"{_USER_SYNC_DIR}/roles",
        "REALM_FILE": f"{_USER_SYNC_DIR}/realm.json",
        "SECRETS_DIR": _CLIENT_SECRETS_DIR,
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
    if client_secrets:
        # A file per placeholder, from each client's Secret, in one directory.
        volumes[_CLIENT_SECRETS_DIR] = k8s.core.v1.VolumeArgs(
            name="client-secrets",
            projected=k8s.core.v1.ProjectedVolumeSourceArgs(
                sources=[
                    k8s.core.v1.VolumeProjectionArgs(
                        secret=k8s.core.v1.SecretProjectionArgs(
                            name=ref["name"], items=[k8s.core.v1.KeyToPathArgs(key=ref["key"], path=name)]
                        )
                    )
                    for name, ref in client_secrets.items()
                ]
            ),
        )
    container = k8s.core.v1.ContainerArgs(
        name="sync",
        image=versions.KEYCLOAK_IMAGE,
        # A tag, not yet a digest (docs/unverified.md): pull what it names now.
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


def user_sync_files(
    tiers: Sequence[TierConfig],
    users: Sequence[UserConfig],
    domain: str,
    declared: Mapping[str, Any] | None = None,
) -> dict[str, str]:
    """What the user sync reads: its script, the users ("<user> <tier> <email>") and the tiers;
    from `declared`, the realm the import is made of (one source for both): its groups (a
    name a line), its clients (`clients`: a clientId a line; `client.<clientId>.json`, the
    import's representation, to create one; `owned.<clientId>.json`, its OWNED_CLIENT_FIELDS,
    to update one), its service accounts' client roles (`roles`: "<clientId> <client>
    <role>") and its OWNED_REALM_FIELDS and OWNED_REALM_ATTRIBUTES (`realm.json`). A client's secret stays a
    placeholder here."""
    declared = declared or {}
    files = {
        "sync.sh": USER_SYNC_SCRIPT.read_text(),
        "users": "".join(f"{u.name} {u.tier} {email(u, domain)}\n" for u in users),
        "tiers": "".join(f"{t.name}\n" for t in tiers),
        "groups": "".join(f"{g['name']}\n" for g in declared.get("groups", [])),
        "clients": "".join(f"{c['clientId']}\n" for c in declared.get("clients", [])),
        "roles": "".join(
            f"{u['serviceAccountClientId']} {client} {role}\n"
            for u in declared.get("users", [])
            if "serviceAccountClientId" in u
            for client, roles in u.get("clientRoles", {}).items()
            for role in roles
        ),
    }
    attributes = declared.get("attributes", {})
    owned: dict[str, Any] = {key: declared[key] for key in OWNED_REALM_FIELDS if key in declared}
    if any(key in attributes for key in OWNED_REALM_ATTRIBUTES):
        owned["attributes"] = {key: attributes[key] for key in OWNED_REALM_ATTRIBUTES if key in attributes}
    if owned:
        files["realm.json"] = _json(owned)
    for client in declared.get("clients", []):
        owned = {key: client[key] for key in OWNED_CLIENT_FIELDS if key in client}
        files[f"client.{client['clientId']}.json"] = _json(client)
        files[f"owned.{client['clientId']}.json"] = _json(owned)
    return files


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":")) + "\n"


def email(user: UserConfig, domain: str) -> str:
    """Keycloak refuses the password grant to users without one ("not fully set up")."""
    return f"{user.name}@{domain}"


def key_service_client() -> dict[str, Any]:
    """The key service's client: confidential, client credentials only (its service account),
    no user logs in through it."""
    return {
        "clientId": KEY_SERVICE_CLIENT,
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": False,
        "secret": f"${{{_KEY_SERVICE_PLACEHOLDER}}}",
        "serviceAccountsEnabled": True,
        "standardFlowEnabled": False,
        "directAccessGrantsEnabled": False,
    }


def key_service_account() -> dict[str, Any]:
    """The client's service-account user, as a realm export writes it (keycloak/keycloak@5ffdbd9
    model/storage-private/src/main/java/org/keycloak/exportimport/util/ExportUtils.java exportUser:
    `serviceAccountClientId`, `clientRoles`; not read at 26.7.4, docs/unverified.md):
    realm-management's view-users."""
    return {
        "username": f"service-account-{KEY_SERVICE_CLIENT}",
        "enabled": True,
        "serviceAccountClientId": KEY_SERVICE_CLIENT,
        "clientRoles": {"realm-management": ["view-users"]},
    }


def groups_mapper() -> dict[str, Any]:
    """The `groups` claim (group names, no path) the AuthPolicy turns into a tier."""
    return {
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


def portal_client(urls: Sequence[str]) -> dict[str, Any]:
    """The page's client: public (a browser keeps no secret), the authorization code flow with
    PKCE S256 required and no password grant, redirects to the page only; its tokens carry
    the same `groups` claim as the CLI's."""
    if not urls:
        raise ValueError("the portal client needs the page's URLs for its redirect URIs")
    origins: list[str] = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in origins:
            origins.append(origin)
    return {
        "clientId": PORTAL_CLIENT,
        "enabled": True,
        "protocol": "openid-connect",
        "publicClient": True,
        "standardFlowEnabled": True,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": False,
        "redirectUris": list(urls),
        "webOrigins": origins,
        "attributes": {"pkce.code.challenge.method": "S256"},
        "protocolMappers": [groups_mapper()],
    }


def frontend_url(oidc: OidcConfig, gateway: gw.InferenceGateway) -> str:
    """Where browsers reach the realm: as configured, else the shared host as users reach
    the gateway (on kind, through its port-forward)."""
    return oidc.hostname or gateway.client(gateway.api_host).base_url


def as_frontend(frontend: str) -> dict[str, Any]:
    """The filter that makes every request through the gateway the realm's frontend URL to
    Keycloak: scheme, host and port as browsers typed them, whatever a client or a port-forward
    sent. Keycloak takes them from X-Forwarded-* (spec.proxy.headers), and a request that is not
    exactly the frontend gets backchannel URLs of its own: Quarkus drops the port when only
    X-Forwarded-Proto comes (quarkusio/quarkus@main
    extensions/vertx-http/runtime/src/main/java/io/quarkus/vertx/http/runtime/ForwardedParser.java
    processXForwarded), and Envoy adds no
    X-Forwarded-Port (envoyproxy/envoy@main source/common/http/conn_manager_utility.cc), so
    discovery through kind's port-forward would lose :8000 (keycloak/keycloak@main
    services/src/main/java/org/keycloak/url/HostnameV2Provider.java isFrontendRequest)."""
    url = urllib.parse.urlsplit(frontend)
    return {
        "type": "RequestHeaderModifier",
        "requestHeaderModifier": {
            "set": [
                {"name": "X-Forwarded-Host", "value": url.netloc},
                {"name": "X-Forwarded-Proto", "value": url.scheme},
            ]
        },
    }


def realm_paths(name: str) -> tuple[str, ...]:
    """What the gateway sends to Keycloak: the realm's endpoints and pages, and the static
    files its pages load (Keycloak serves them under /resources/)."""
    return (f"/realms/{name}", "/resources")


def realm(
    oidc: OidcConfig,
    tiers: Sequence[TierConfig],
    key_service: bool = False,
    portal_urls: Sequence[str] = (),
    *,
    frontend: str,
) -> dict[str, Any]:
    """The realm: one group per tier, a client mapping groups; with the key service, its
    client, the page's client and the administrators' group. No user of the stack file: the
    user sync creates them, so the import does not grow with users (it would pass the API
    server's object size near 4,400 of them, issue 29).
    `frontend`: the realm's URL for browsers and its issuer; Keycloak's own hostname stays
    in-cluster (keycloak/keycloak@main services/src/main/java/org/keycloak/url/HostnameV2Provider.java
    getRealmFrontUriBuilder: a realm's `frontendUrl` attribute comes first)."""
    return {
        "realm": oidc.realm,
        "enabled": True,
        "attributes": {"frontendUrl": frontend},
        # Its login pages are public (through the gateway): a user is locked out for a while
        # after repeated failed logins, with Keycloak's default steps.
        "bruteForceProtected": True,
        "groups": [{"name": tier.name} for tier in tiers]
        + [{"name": STACK_USERS_GROUP}]
        + ([{"name": ADMIN_GROUP}] if key_service else []),
        "users": [key_service_account()] if key_service else [],
        "clients": [
            *([key_service_client(), portal_client(portal_urls)] if key_service else []),
            {
                "clientId": oidc.client_id,
                "enabled": True,
                "protocol": "openid-connect",
                "publicClient": True,
                "standardFlowEnabled": False,
                "directAccessGrantsEnabled": True,
                "protocolMappers": [groups_mapper()],
            },
        ],
    }
