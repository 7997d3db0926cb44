"""The key service, deployed: users mint, list and revoke their own API keys after logging in
with Keycloak (docs/access.md "Self-service keys").

The program (key_service/server.py, standard library only) and its page are shipped in a
ConfigMap and run on the pinned official Python image: no image of ours, no registry. Every
file of key_service/ but its __init__.py is shipped, read when the program runs, and their
digest is on the pod template, so `pulumi up` after an edit rolls the pods.

Each key is a Secret in Authorino's namespace (the only place Authorino reads keys from). The
service account may touch Secrets there and nothing else (a Role, not a ClusterRole), and an
admission policy lets it write only Secrets labelled as minted by it: RBAC cannot narrow a
write by label. It can read the namespace's other Secrets (RBAC cannot narrow a read either).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.access import tiers
from components.access.key_service import portal
from components.access.realm import KEY_SERVICE_CLIENT, PORTAL_CLIENT
from components.cluster import network
from components.cluster.rollout import content_digest
from components.cluster.security import restricted_container
from components.config import KeyServiceConfig, OidcConfig, Rate, TierConfig
from components.config.types import window_seconds
from components.flavour.protocol import Flavour, Reading
from components.names import GATEWAY_NAME, KEY_SERVICE, KEY_SERVICE_LABELS
from components.pins import versions
from components.platform.keycloak import default_hostname
from components.serving import gateway as gw

CODE_DIR = Path(__file__).with_name("key_service")
# What the pods run: key_service/server.py, as mounted from the ConfigMap.
APP_DIR = "/app"
ENTRYPOINT = "server.py"
PORT = 8080
SERVICE_PORT = 80
# No user in the image: one of our own, above the host's range (checkov CKV_K8S_40).
SERVER_UID = 10102
# Why checkov's findings do not apply (checkov.io/skip annotations).
_TOKEN_REASON = "it reads and writes its key Secrets through the API, with a Role on secrets in one namespace"
_SECRETS_REASON = (
    "keys are Secrets where Authorino reads them; an admission policy confines its writes to its own"
)
# On the pod template: the digest of the shipped files, so a change of code rolls the pods.
CODE_ANNOTATION = "maas-platform/code-sha256"
# The label every key Secret the service writes carries (key_service/server.py MINTED_BY_LABEL):
# the admission policy lets the service account write no other Secret.
MINTED_BY_LABEL = "maas-platform/minted-by"
MINTED_BY = KEY_SERVICE
# What the service account may do with Secrets in Authorino's namespace: what server.py calls
# (create, merge-patch, delete, get, list) and a watch; never update, deletecollection or any
# other resource.
SECRET_VERBS = ("get", "list", "watch", "create", "patch", "delete")
# The paths the gateway sends to the service; an API key is accepted on the usage path only.
API_PATHS = ("/v1/api-keys", "/v1/usage", "/v1/admin")
KEY_PATHS = ("/v1/usage",)
PAGE_PATH = "/portal"
# The page, shipped rendered (shipped_files).
PAGE_FILE = portal.PAGE.name
CLIENT_SECRET_DIR = "/etc/key-service/keycloak"
# Where the pod's own account token is mounted (automounted: server.py reads it there too,
# key_service/server.py SA_DIR).
SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The CA of the flavour's Prometheus, where it has one (Reading.ca_annotations), and the Role
# its proxy checks (Reading.grants), named alike.
PROMETHEUS_CA = f"{KEY_SERVICE}-prometheus-ca"
PROMETHEUS_CA_DIR = "/etc/key-service/prometheus-ca"
PROMETHEUS_READER = f"{KEY_SERVICE}-prometheus-reader"
# Each tier's key cap and lifetime, as JSON (the policy pack reads it: keys-expire).
KEY_TIERS_ENV = "KEY_TIERS"
CLIENT_SECRET = f"{KEY_SERVICE}-keycloak-client"
# The RateLimitPolicy's limits (rate_limit_spec). Neither name ends in -requests or -tokens,
# so GET /v1/usage could not take them for a tier's (key_service/server.py limit_of).
MINT_LIMIT = "key-mints"
CALL_LIMIT = "key-calls"
# What mints: the one call that writes a Secret (key_service/server.py _route). The route
# matches PathPrefix, so this predicate picks the exact path the service mints on.
MINT_PATH = "/v1/api-keys"


def code_files(directory: Path = CODE_DIR) -> dict[str, str]:
    """Every file the service runs from: all of key_service/ but the package marker (and
    Python's caches, which are folders)."""
    files = {
        path.name: path.read_text()
        for path in sorted(directory.iterdir())
        if path.is_file() and path.name != "__init__.py"
    }
    if ENTRYPOINT not in files:
        raise FileNotFoundError(f"{directory / ENTRYPOINT} is missing: the key service has no program to run")
    return files


def shipped_files(issuer: str, directory: Path = CODE_DIR) -> dict[str, str]:
    """What the ConfigMap holds: the code, and the page as served, with the realm's issuer,
    the portal client and its Content-Security-Policy written in (key_service/portal.py
    render). The digest is taken over these, so a change of issuer rolls the pods too."""
    files = code_files(directory)
    if PAGE_FILE in files:
        files[PAGE_FILE] = portal.render(issuer, PORTAL_CLIENT, directory / PAGE_FILE)
    return files


def portal_urls(gateway: gw.InferenceGateway) -> tuple[str, ...]:
    """Every URL a browser may open the page at: the shared host on each listener's scheme
    (the listeners are named after them), and the way users reach the gateway from their
    machine (the flavour's client: through the port-forward on kind)."""
    urls = [f"{scheme}://{gateway.api_host}{PAGE_PATH}/" for scheme in gateway.listeners]
    urls.append(f"{gateway.client(gateway.api_host).base_url}{PAGE_PATH}/")
    return tuple(dict.fromkeys(urls))


def service_account_user(namespace: str) -> str:
    """How the API server names the service account in admission requests."""
    return f"system:serviceaccount:{namespace}:{KEY_SERVICE}"


def _ours(obj: str) -> str:
    return (
        f"has({obj}.metadata.labels) && '{MINTED_BY_LABEL}' in {obj}.metadata.labels && "
        f"{obj}.metadata.labels['{MINTED_BY_LABEL}'] == '{MINTED_BY}'"
    )


def writes_ours_only() -> str:
    """CEL of the admission policy: a Secret the service creates, changes or deletes is one it
    minted, before and after (a change may not adopt another Secret by adding the label, nor
    give one away by removing it). `oldObject` is null on CREATE and `object` on DELETE
    (kubernetes/api@10b39a3 admissionregistration/v1/types.go Validation.Expression)."""
    return (
        f"(request.operation == 'CREATE' || ({_ours('oldObject')})) && "
        f"(request.operation == 'DELETE' || ({_ours('object')}))"
    )


def key_tiers(tier_table: Sequence[TierConfig]) -> str:
    """KEY_TIERS, as server.py reads it: each tier's key cap and lifetime, in table order
    (lowest first: a user in two tier groups gets the higher)."""
    return json.dumps(
        {
            t.name: {"maxKeys": t.keys.max_keys, "maxLifetimeDays": t.keys.max_lifetime_days}
            for t in tier_table
        }
    )


def _rates(rates: Sequence[Rate]) -> list[dict[str, Any]]:
    """One Limitador limit per rate (components/config/model.py Rates)."""
    return [{"limit": rate.limit, "window": rate.window} for rate in rates]


def rate_limit_spec(config: KeyServiceConfig, route: str) -> dict[str, Any]:
    """The key service's RateLimitPolicy: per user (the identity Authorino resolved, as the
    tier limits count it), mints and every call of its API. Kuadrant files these limits under
    `<namespace>/<route>` (Kuadrant/kuadrant-operator@v1.5.2
    internal/controller/ratelimit_workflow_helpers.go LimitsNamespaceFromRoute), the key
    service's own route, so they never join the tier limits GET /v1/usage lists
    (components/serving/model_list.py limits_namespace). `request.method` and
    `request.url_path` are well-known attributes of the wasm-shim's predicates
    (Kuadrant/wasm-shim@v0.14.1 src/data/cel.rs new_well_known_attribute_map)."""
    counters = [{"expression": tiers.USER_ID}]
    mints = [{"predicate": "request.method == 'POST'"}, {"predicate": f"request.url_path == '{MINT_PATH}'"}]
    return {
        "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": route},
        "limits": {
            MINT_LIMIT: {"rates": _rates(config.mints), "when": mints, "counters": counters},
            CALL_LIMIT: {"rates": _rates(config.calls), "counters": counters},
        },
    }


@dataclass(frozen=True, kw_only=True)
class KeyServiceArgs:
    config: KeyServiceConfig
    tiers: Sequence[TierConfig]
    oidc: OidcConfig
    # The realm as browsers reach it, where the page sends them to log in (Realm.issuer),
    # and where Authorino reads its signing keys, in-cluster.
    oidc_issuer: str
    oidc_keys: str
    # Where it runs (beside the gateway's routes), and where the keys are (Authorino's): the
    # namespaces' outputs, so everything waits for its namespace.
    namespace: pulumi.Output[str]
    keys_namespace: pulumi.Output[str]
    gateway: gw.InferenceGateway
    flavour: Flavour
    # The secret of its Keycloak client (components/access/realm.py KEY_SERVICE_CLIENT).
    client_secret: pulumi.Input[str]
    # Where `GET /v1/usage` reads what enforces and what bills: Limitador's HTTP API and the
    # Limitador namespace of the tier limits (components/platform/kuadrant.py limitador_url,
    # components/serving/model_list.py limits_namespace), and the flavour's Prometheus
    # (Metrics.reading; None: no Prometheus to ask, and usage answers 503).
    limitador_url: pulumi.Input[str]
    limits_namespace: pulumi.Input[str]
    prometheus: Reading | None
    # The namespace a reader's grants go to (Reading.grant_namespace), as the namespace's
    # output, so they wait for it.
    grants_namespace: pulumi.Output[str] | None = None
    # Kuadrant (the AuthPolicy and RateLimitPolicy CRDs, Authorino) and the realm its client lives in.
    after: Sequence[pulumi.Resource] = ()


class KeyService(pulumi.ComponentResource):
    """The key service: its code, pods, account, rights, doors, route, AuthPolicy and
    RateLimitPolicy."""

    TYPE: ClassVar[str] = "maas:access:KeyService"
    # Its API's route and its page's: the tier policies wait for them as for every route.
    routes: tuple[pulumi.Resource, pulumi.Resource]

    def __init__(self, name: str, args: KeyServiceArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        metadata = k8s.meta.v1.ObjectMetaArgs(
            name=KEY_SERVICE, namespace=args.namespace, labels=KEY_SERVICE_LABELS
        )
        files = shipped_files(args.oidc_issuer)
        code = k8s.core.v1.ConfigMap(f"{name}-code", metadata=metadata, data=files, opts=child)
        account = k8s.core.v1.ServiceAccount(f"{name}-account", metadata=metadata, opts=child)
        client_secret = k8s.core.v1.Secret(
            f"{name}-client-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=CLIENT_SECRET, namespace=args.namespace, labels=KEY_SERVICE_LABELS
            ),
            string_data={"secret": args.client_secret},
            opts=child,
        )
        rights = [*self._rights(name, args, account), *self._reading(name, args, account)]
        deployment = k8s.apps.v1.Deployment(
            f"{name}-server",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=KEY_SERVICE,
                namespace=args.namespace,
                labels=KEY_SERVICE_LABELS,
                annotations={"checkov.io/skip1": f"CKV_K8S_38={_TOKEN_REASON}"},
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                replicas=args.config.replicas,
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=KEY_SERVICE_LABELS),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=KEY_SERVICE_LABELS, annotations={CODE_ANNOTATION: content_digest(files)}
                    ),
                    spec=_pod(args),
                ),
            ),
            # It must be able to read keys before it reports ready.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[code, client_secret, *rights]),
        )
        budget = k8s.policy.v1.PodDisruptionBudget(
            f"{name}-budget",
            metadata=metadata,
            spec=k8s.policy.v1.PodDisruptionBudgetSpecArgs(
                max_unavailable=1, selector=k8s.meta.v1.LabelSelectorArgs(match_labels=KEY_SERVICE_LABELS)
            ),
            opts=child,
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata,
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=KEY_SERVICE_LABELS,
                ports=[k8s.core.v1.ServicePortArgs(name="http", port=SERVICE_PORT, target_port=PORT)],
            ),
            opts=child,
        )
        door = network.ingress_only(
            f"{name}-isolation",
            name=f"{KEY_SERVICE}-ingress",
            namespace=args.namespace,
            selects=KEY_SERVICE_LABELS,
            ports=[PORT],
            peers=[network.pods(gw.POD_LABELS)],
            opts=child,
        )
        route = self._route(f"{name}-route", KEY_SERVICE, API_PATHS, args, service)
        page = self._route(f"{name}-page-route", f"{KEY_SERVICE}-page", (PAGE_PATH,), args, service)
        self.routes = (route, page)
        auth = k8s.apiextensions.CustomResource(
            f"{name}-auth",
            api_version="kuadrant.io/v1",
            kind="AuthPolicy",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=KEY_SERVICE,
                namespace=args.namespace,
                annotations={"pulumi.com/waitFor": "condition=Enforced"},
            ),
            spec=tiers.key_service_auth_spec(args.tiers, KEY_SERVICE, args.oidc_keys, KEY_PATHS),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[route, *args.after]),
        )
        limits = k8s.apiextensions.CustomResource(
            f"{name}-limits",
            api_version="kuadrant.io/v1",
            kind="RateLimitPolicy",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=KEY_SERVICE,
                namespace=args.namespace,
                annotations={"pulumi.com/waitFor": "condition=Enforced"},
            ),
            spec=rate_limit_spec(args.config, KEY_SERVICE),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[route, *args.after]),
        )
        self.register_outputs(
            {
                "code": code,
                "account": account,
                "clientSecret": client_secret,
                "rights": rights,
                "deployment": deployment,
                "budget": budget,
                "service": service,
                "door": door,
                "routes": self.routes,
                "auth": auth,
                "limits": limits,
            }
        )

    def _rights(
        self, name: str, args: KeyServiceArgs, account: k8s.core.v1.ServiceAccount
    ) -> list[pulumi.Resource]:
        """Secrets in Authorino's namespace, and of those only its own to write."""
        where = k8s.meta.v1.ObjectMetaArgs(
            name=KEY_SERVICE, namespace=args.keys_namespace, labels=KEY_SERVICE_LABELS
        )
        child = pulumi.ResourceOptions(parent=self)
        role = k8s.rbac.v1.Role(
            f"{name}-role",
            metadata=where,
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(api_groups=[""], resources=["secrets"], verbs=list(SECRET_VERBS))
            ],
            opts=child,
        )
        binding = self._binding(
            f"{name}-role-binding",
            k8s.meta.v1.ObjectMetaArgs(
                name=KEY_SERVICE,
                namespace=args.keys_namespace,
                labels=KEY_SERVICE_LABELS,
                annotations={"checkov.io/skip1": f"CKV2_K8S_5={_SECRETS_REASON}"},
            ),
            (KEY_SERVICE, role),
            account,
            args,
        )
        admission = f"{GATEWAY_NAME}-{KEY_SERVICE}-writes-own-keys"
        policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{name}-writes-own",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=admission, labels=KEY_SERVICE_LABELS),
            spec=k8s.admissionregistration.v1.ValidatingAdmissionPolicySpecArgs(
                failure_policy="Fail",
                match_constraints=k8s.admissionregistration.v1.MatchResourcesArgs(
                    resource_rules=[
                        k8s.admissionregistration.v1.NamedRuleWithOperationsArgs(
                            api_groups=[""],
                            api_versions=["v1"],
                            operations=["CREATE", "UPDATE", "DELETE"],
                            resources=["secrets"],
                        )
                    ]
                ),
                match_conditions=[
                    k8s.admissionregistration.v1.MatchConditionArgs(
                        name="key-service",
                        expression=args.namespace.apply(
                            lambda namespace: (
                                f"request.userInfo.username == '{service_account_user(namespace)}'"
                            )
                        ),
                    )
                ],
                validations=[
                    k8s.admissionregistration.v1.ValidationArgs(
                        expression=writes_ours_only(),
                        message=(
                            f"The key service writes only the key Secrets it minted (label "
                            f"{MINTED_BY_LABEL}={MINTED_BY}). Fix: write other Secrets with another account."
                        ),
                    )
                ],
            ),
            opts=child,
        )
        policy_binding = k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{name}-writes-own-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=admission, labels=KEY_SERVICE_LABELS),
            spec=k8s.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpecArgs(
                policy_name=policy.metadata.name,
                validation_actions=["Deny"],
                match_resources=k8s.admissionregistration.v1.MatchResourcesArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={"kubernetes.io/metadata.name": args.keys_namespace}
                    )
                ),
            ),
            opts=child,
        )
        return [role, binding, policy, policy_binding]

    def _reading(
        self, name: str, args: KeyServiceArgs, account: k8s.core.v1.ServiceAccount
    ) -> list[pulumi.Resource]:
        """What the flavour's Prometheus asks of a reader: the CA of its certificate, and the
        grants it checks, in the one namespace it names."""
        reading = args.prometheus
        child = pulumi.ResourceOptions(parent=self)
        made: list[pulumi.Resource] = []
        if reading is not None and reading.ca_annotations is not None:
            made.append(
                k8s.core.v1.ConfigMap(
                    f"{name}-prometheus-ca",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=PROMETHEUS_CA,
                        namespace=args.namespace,
                        labels=KEY_SERVICE_LABELS,
                        annotations=reading.ca_annotations,
                    ),
                    opts=child,
                )
            )
        if reading is not None and reading.grants:
            if args.grants_namespace is None:
                raise ValueError(f"the reader's grants need the namespace {reading.grant_namespace}'s output")
            where = k8s.meta.v1.ObjectMetaArgs(
                name=PROMETHEUS_READER, namespace=args.grants_namespace, labels=KEY_SERVICE_LABELS
            )
            role = k8s.rbac.v1.Role(
                f"{name}-prometheus-role", metadata=where, rules=list(reading.grants), opts=child
            )
            made += [
                role,
                self._binding(
                    f"{name}-prometheus-role-binding", where, (PROMETHEUS_READER, role), account, args
                ),
            ]
        return made

    def _binding(
        self,
        name: str,
        metadata: k8s.meta.v1.ObjectMetaArgs,
        role: tuple[str, k8s.rbac.v1.Role],
        account: k8s.core.v1.ServiceAccount,
        args: KeyServiceArgs,
    ) -> k8s.rbac.v1.RoleBinding:
        """The service's account bound to `role` (its name and the resource)."""
        return k8s.rbac.v1.RoleBinding(
            name,
            metadata=metadata,
            role_ref=k8s.rbac.v1.RoleRefArgs(
                api_group="rbac.authorization.k8s.io", kind="Role", name=role[0]
            ),
            subjects=[
                k8s.rbac.v1.SubjectArgs(
                    kind="ServiceAccount", name=account.metadata.name, namespace=args.namespace
                )
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role[1]]),
        )

    def _route(
        self,
        name: str,
        route_name: str,
        prefixes: Sequence[str],
        args: KeyServiceArgs,
        service: k8s.core.v1.Service,
    ) -> k8s.apiextensions.CustomResource:
        """A route to the service for `prefixes`, on every host of the gateway like the policy
        route: a route of the shared host's own with a policy would take that host's requests
        from the tier policies (the wasm-shim takes a request's sets from the nearest host
        entry only, Kuadrant/wasm-shim@v0.14.1 src/kuadrant/pipeline/factory.rs select_blueprint;
        policies/maas_policies/access.py _anchors)."""
        return k8s.apiextensions.CustomResource(
            name,
            api_version="gateway.networking.k8s.io/v1",
            kind="HTTPRoute",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=route_name, namespace=args.namespace, labels=KEY_SERVICE_LABELS
            ),
            spec={
                "parentRefs": [
                    {"name": GATEWAY_NAME, "sectionName": listener} for listener in args.gateway.listeners
                ],
                "rules": [
                    {
                        "matches": [{"path": {"type": "PathPrefix", "value": prefix}} for prefix in prefixes],
                        "backendRefs": [{"name": KEY_SERVICE, "port": SERVICE_PORT}],
                    }
                ],
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=[args.gateway, service]),
        )


def environment(args: KeyServiceArgs) -> dict[str, pulumi.Input[str]]:
    """What server.py reads (key_service/server.py Config.from_env)."""
    environment: dict[str, pulumi.Input[str]] = {
        "KEYS_NAMESPACE": args.keys_namespace,
        KEY_TIERS_ENV: key_tiers(args.tiers),
        "PORT": str(PORT),
        "SWEEP_INTERVAL_SECONDS": f"{window_seconds(args.config.sweep_interval):g}",
        "TIER_SYNC_INTERVAL_SECONDS": f"{window_seconds(args.config.tier_sync_interval):g}",
        "TOMBSTONE_RETENTION_DAYS": str(args.config.audit_retention_days),
        # In-cluster: its token and admin calls are backchannel (components/platform/keycloak.py).
        "KEYCLOAK_URL": default_hostname(),
        "KEYCLOAK_REALM": args.oidc.realm,
        "KEYCLOAK_CLIENT_ID": KEY_SERVICE_CLIENT,
        "KEYCLOAK_CLIENT_SECRET_FILE": f"{CLIENT_SECRET_DIR}/secret",
        "LIMITADOR_URL": args.limitador_url,
        "LIMITADOR_NAMESPACE": args.limits_namespace,
        # The root is read-only: no bytecode cache to write.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    reading = args.prometheus
    if reading is not None:
        environment["PROMETHEUS_URL"] = reading.url
        if reading.bearer_token:
            # Its own account's token, the one server.py sends the Kubernetes API.
            environment["PROMETHEUS_BEARER_TOKEN_FILE"] = f"{SA_DIR}/token"
        if reading.ca_annotations is not None:
            environment["PROMETHEUS_CA_FILE"] = f"{PROMETHEUS_CA_DIR}/{reading.ca_key}"
    return environment


def _pod(args: KeyServiceArgs) -> k8s.core.v1.PodSpecArgs:
    """Pod Security "restricted" with a read-only root; the API token of its own account."""

    def probe(path: str) -> k8s.core.v1.ProbeArgs:
        return k8s.core.v1.ProbeArgs(
            http_get=k8s.core.v1.HTTPGetActionArgs(path=path, port=PORT), period_seconds=10, timeout_seconds=5
        )

    with_ca = args.prometheus is not None and args.prometheus.ca_annotations is not None
    resources: dict[str, Any] = {
        "requests": dict(args.config.resources.requests),
        "limits": dict(args.config.resources.limits),
    }
    return k8s.core.v1.PodSpecArgs(
        service_account_name=KEY_SERVICE,
        security_context=args.flavour.pod_security(SERVER_UID),
        containers=[
            k8s.core.v1.ContainerArgs(
                name="server",
                image=versions.PYTHON_IMAGE,
                command=["python3", f"{APP_DIR}/{ENTRYPOINT}"],
                env=[
                    k8s.core.v1.EnvVarArgs(name=key, value=value) for key, value in environment(args).items()
                ],
                ports=[k8s.core.v1.ContainerPortArgs(name="http", container_port=PORT, protocol="TCP")],
                readiness_probe=probe("/readyz"),
                liveness_probe=probe("/healthz"),
                resources=k8s.core.v1.ResourceRequirementsArgs(**resources),
                security_context=restricted_container(),
                volume_mounts=[
                    k8s.core.v1.VolumeMountArgs(name="code", mount_path=APP_DIR, read_only=True),
                    k8s.core.v1.VolumeMountArgs(name="client", mount_path=CLIENT_SECRET_DIR, read_only=True),
                    *(
                        [
                            k8s.core.v1.VolumeMountArgs(
                                name="prometheus-ca", mount_path=PROMETHEUS_CA_DIR, read_only=True
                            )
                        ]
                        if with_ca
                        else []
                    ),
                ],
            )
        ],
        volumes=[
            k8s.core.v1.VolumeArgs(
                name="code", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=KEY_SERVICE)
            ),
            k8s.core.v1.VolumeArgs(
                name="client", secret=k8s.core.v1.SecretVolumeSourceArgs(secret_name=CLIENT_SECRET)
            ),
            *(
                [
                    k8s.core.v1.VolumeArgs(
                        name="prometheus-ca",
                        config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=PROMETHEUS_CA),
                    )
                ]
                if with_ca
                else []
            ),
        ],
    )
