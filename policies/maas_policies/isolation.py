"""Isolation: model pods admit traffic from named sources only; an exposed gateway speaks HTTPS."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from maas_policies import keys, network, objects, relaxation

# Set by KServe on every predictor pod. A copy of components/serving/model_deployment.py ISVC_LABEL
# (tests/policies/test_pack.py ties them): the pack runs without the program's modules.
_ISVC_LABEL = "serving.kserve.io/inferenceservice"


def _predictor_labels(isvc: Mapping[str, Any]) -> dict[str, str]:
    metadata, predictor = isvc.get("metadata") or {}, (isvc.get("spec") or {}).get("predictor") or {}
    return {
        **(metadata.get("labels") or {}),
        **(predictor.get("labels") or {}),
        _ISVC_LABEL: str(metadata.get("name")),
    }


def _isolates(policy: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    spec = policy.get("spec") or {}
    selector = (spec.get("podSelector") or {}).get("matchLabels") or {}
    if not selector or any(labels.get(k) != v for k, v in selector.items()):
        return False
    ingress_typed = "Ingress" in (spec.get("policyTypes") or ["Ingress"])
    # A rule without `from` admits every source: that isolates nothing.
    return ingress_typed and all(rule.get("from") for rule in spec.get("ingress") or [])


def _models_isolated(args: StackValidationArgs, report: ReportViolation) -> None:
    policies = objects.of_kind(args, "NetworkPolicy")
    for isvc in objects.of_kind(args, "InferenceService"):
        subject = objects.name(isvc.props)
        namespace = (isvc.props.get("metadata") or {}).get("namespace")
        beside = [p for p in policies if (p.props.get("metadata") or {}).get("namespace") == namespace]
        labels = _predictor_labels(isvc.props)
        if not any(_isolates(p.props, labels) for p in beside) and not relaxation.exempt(
            args.get_config(), subject, report, "models-isolated"
        ):
            report(
                objects.refusal(
                    f"InferenceService {subject}",
                    "no NetworkPolicy restricts who reaches its pods: anything in the cluster can call the "
                    "model without the gateway",
                    "a NetworkPolicy admitting the gateway's pods only",
                ),
                isvc.urn,
            )


MODELS_ISOLATED = StackValidationPolicy(
    name="models-isolated",
    description="Every model's pods are selected by a NetworkPolicy that admits named sources only.",
    validate=_models_isolated,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)


# Istio's annotation for the Service type of a Gateway's deployment (istio/istio@1.30
# pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go, annotation.NetworkingServiceType).
_SERVICE_TYPE = "networking.istio.io/service-type"
_EXPOSED_TYPES = ("LoadBalancer", "NodePort")


def _exposure(gateway: PolicyResource, routes: list[PolicyResource]) -> str | None:
    """How a Gateway is reached from beyond the cluster, or None: its Service type, or an
    OpenShift Route to its Service (<name>-<class>, as Istio names it)."""
    metadata, spec = gateway.props.get("metadata") or {}, gateway.props.get("spec") or {}
    # Without the annotation Istio makes a LoadBalancer (istio/istio@1.30.3 pilot/pkg/config/kube/
    # gatewaycommon/classinfo.go DefaultServiceType).
    service_type = (metadata.get("annotations") or {}).get(_SERVICE_TYPE, "LoadBalancer")
    if service_type in _EXPOSED_TYPES:
        return f"a {service_type} Service"
    service = f"{metadata.get('name')}-{spec.get('gatewayClassName')}"
    if any(((r.props.get("spec") or {}).get("to") or {}).get("name") == service for r in routes):
        return "an OpenShift Route"
    return None


def _redirects_only(route: Mapping[str, Any]) -> bool:
    """Every rule of the route only redirects to https (no backend)."""
    rules = (route.get("spec") or {}).get("rules") or [{}]
    for rule in rules:
        filters = rule.get("filters") or []
        redirect = [f for f in filters if f.get("type") == "RequestRedirect"]
        if rule.get("backendRefs") or len(redirect) != 1 or len(filters) != 1:
            return False
        if (redirect[0].get("requestRedirect") or {}).get("scheme") != "https":
            return False
    return True


def _gateway_https(args: StackValidationArgs, report: ReportViolation) -> None:
    routes, openshift_routes = objects.of_kind(args, "HTTPRoute"), objects.of_kind(args, "Route")
    for gateway in objects.of_kind(args, "Gateway"):
        subject = objects.name(gateway.props)
        exposed = _exposure(gateway, openshift_routes)
        if exposed is None or relaxation.exempt(args.get_config(), subject, report, "gateway-https"):
            continue
        name = (gateway.props.get("metadata") or {}).get("name")
        listeners = (gateway.props.get("spec") or {}).get("listeners") or []
        if not any(listener.get("protocol") == "HTTPS" for listener in listeners):
            report(
                objects.refusal(
                    f"Gateway {subject}",
                    f"it is exposed beyond the cluster ({exposed}) without an HTTPS listener: API keys "
                    "and tokens cross the network in clear text",
                    "maas:gateway.https: {enabled: true, only: true}",
                ),
                gateway.urn,
            )
        for listener in (entry for entry in listeners if entry.get("protocol") == "HTTP"):
            for route in routes:
                attached = any(
                    parent.get("name") == name and parent.get("sectionName") in (None, listener.get("name"))
                    for parent in (route.props.get("spec") or {}).get("parentRefs") or []
                )
                if attached and not _redirects_only(route.props):
                    report(
                        objects.refusal(
                            f"Gateway {subject}, listener {listener.get('name')}",
                            f"it is exposed beyond the cluster ({exposed}) and its plain-HTTP listener "
                            f"serves HTTPRoute {objects.name(route.props)}, not only a redirect to https",
                            "maas:gateway.https.only: true (no HTTP listener), or attach routes to the "
                            "HTTPS listener only",
                        ),
                        route.urn,
                    )


GATEWAY_HTTPS = StackValidationPolicy(
    name="gateway-https",
    description="A gateway exposed beyond the cluster has an HTTPS listener, and a plain-HTTP "
    "listener at most redirects to it.",
    validate=_gateway_https,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)


def _namespaces(args: StackValidationArgs) -> dict[str, dict[str, str]]:
    """The stack's namespaces and their labels."""
    return {
        str((ns.props.get("metadata") or {}).get("name")): dict(
            (ns.props.get("metadata") or {}).get("labels") or {}
        )
        for ns in objects.of_kind(args, "Namespace")
    }


def _network_policies(args: StackValidationArgs) -> list[Mapping[str, Any]]:
    return [p.props for p in objects.of_kind(args, "NetworkPolicy")]


def _deny_by_default(args: StackValidationArgs, report: ReportViolation) -> None:
    denying = {
        (p.get("metadata") or {}).get("namespace")
        for p in _network_policies(args)
        if network.denies_by_default(p)
    }
    for namespace in objects.of_kind(args, "Namespace"):
        name = str((namespace.props.get("metadata") or {}).get("name"))
        if name in denying or relaxation.exempt(
            args.get_config(), name, report, "namespaces-deny-by-default"
        ):
            continue
        report(
            objects.refusal(
                f"Namespace {name}",
                "no NetworkPolicy denies ingress by default, so every pod in it admits any caller "
                "its own policies do not select",
                "a NetworkPolicy with podSelector {} and policyTypes [Ingress] and no rules "
                "(components/cluster/network.py DEFAULT_DENY)",
            ),
            namespace.urn,
        )


NAMESPACES_DENY_BY_DEFAULT = StackValidationPolicy(
    name="namespaces-deny-by-default",
    description="Every namespace the stack declares has a default-deny ingress NetworkPolicy.",
    validate=_deny_by_default,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)

# Copies of components/pins/upstream.py AUTHORINO_PODS and LIMITADOR_PODS (a test ties them):
# the pods the Kuadrant instance runs in its namespace, and every port they listen on.
# Ports by the names their pods declare (a door may name them): Limitador's; Authorino's pods
# declare none, so only numbers reach them.
KUADRANT_SERVERS: dict[str, tuple[dict[str, str], dict[str, int]]] = {
    "Authorino": (
        {"authorino-resource": "authorino", "control-plane": "controller-manager"},
        {"50051": 50051, "5001": 5001, "8083": 8083, "8080": 8080, "8081": 8081},
    ),
    "Limitador": ({"app": "limitador", "limitador-resource": "limitador"}, {"http": 8080, "grpc": 8081}),
}
# Our own stores, known by their images: what holds credentials and budgets.
_STORES = {"postgres": "PostgreSQL", "redis": "Redis"}


def _servers(args: StackValidationArgs) -> list[tuple[str, network.Endpoint]]:
    """(what, pod) for Authorino, Limitador and every PostgreSQL and Redis the stack runs."""
    found = []
    for kuadrant in objects.of_kind(args, "Kuadrant"):
        namespace = (kuadrant.props.get("metadata") or {}).get("namespace")
        for what, (labels, named) in KUADRANT_SERVERS.items():
            listening = {name: (port, "TCP") for name, port in named.items()}
            found.append((what, network.Endpoint(what, "10.244.0.10", namespace, labels, listening)))
    for resource in args.resources:
        kind = objects.kind(resource.resource_type, resource.props)
        if kind not in ("Deployment", "StatefulSet") or objects.is_patch(resource.resource_type):
            continue
        template = (resource.props.get("spec") or {}).get("template") or {}
        containers = (template.get("spec") or {}).get("containers") or []
        image = str(containers[0].get("image", "")).rsplit("/", 1)[-1] if containers else ""
        store = _STORES.get(image.split(":")[0].split("@")[0])
        if store is None:
            continue
        ports = {
            str(p.get("name") or p["containerPort"]): (int(p["containerPort"]), str(p.get("protocol", "TCP")))
            for c in containers
            for p in c.get("ports") or []
        }
        labels = dict((template.get("metadata") or {}).get("labels") or {})
        namespace = (resource.props.get("metadata") or {}).get("namespace")
        found.append(
            (
                f"{store} {objects.name(resource.props)}",
                network.Endpoint(store, "10.244.0.11", namespace, labels, ports),
            )
        )
    return found


def _strangers(server: network.Endpoint, policies: list[Mapping[str, Any]]) -> list[network.Endpoint]:
    """Who must not reach `server`: a pod of a namespace of nobody's, a pod of its own
    namespace that no door names, an address outside the cluster, and, for each pod selector
    a door of the server names, a pod with those labels in a namespace of nobody's (labels
    anyone may put on a pod; the namespace is what says who it is)."""
    elsewhere = "maas-policy-stranger"
    strangers = [
        network.Endpoint("a pod in another namespace", "10.244.9.1", elsewhere, {"app": "x"}),
        network.Endpoint(f"a pod in {server.namespace}", "10.244.9.2", server.namespace, {"app": "x"}),
        network.Endpoint("an address outside the cluster", "203.0.113.9"),
    ]
    for policy in network.isolating(policies, server):
        for rule in (policy.get("spec") or {}).get("ingress") or []:
            for peer in rule.get("from") or []:
                labels = dict(((peer.get("podSelector") or {}).get("matchLabels")) or {})
                if labels:
                    name = f"a pod labelled {labels} in another namespace"
                    strangers.append(network.Endpoint(name, "10.244.9.3", elsewhere, labels))
    return strangers


def _documented_clients(args: StackValidationArgs, report: ReportViolation) -> None:
    policies, namespaces = _network_policies(args), _namespaces(args)
    for what, server in _servers(args):
        strangers = _strangers(server, policies)
        for stranger in strangers:
            reached = sorted(
                port
                for port, _ in server.ports.values()
                if network.admits(policies, namespaces, stranger, server, port)
            )
            if reached and not relaxation.exempt(args.get_config(), what, report, "documented-clients"):
                report(
                    objects.refusal(
                        f"{what} in {server.namespace}",
                        f"{stranger.name} reaches its ports {', '.join(map(str, reached))}: it must admit "
                        "its documented clients only",
                        "the namespace's default deny, and doors naming its clients' pods "
                        "(components/cluster/network.py Door)",
                    ),
                    None,
                )


DOCUMENTED_CLIENTS = StackValidationPolicy(
    name="documented-clients",
    description="Authorino, Limitador, PostgreSQL and Redis admit their documented clients only: no "
    "pod of another namespace, no other pod of theirs, no address outside the cluster reaches them.",
    validate=_documented_clients,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)


def _runs_as_root(pod: Mapping[str, Any], containers: list[Mapping[str, Any]]) -> bool:
    """Whether a container may run as root: neither it nor its pod says runAsNonRoot, or a
    user id 0 is set (kubernetes/pod-security-admission@v0.36.2 policy/check_runAsNonRoot.go and
    check_runAsUser.go read the same fields, the container's over the pod's)."""
    pod_context = pod.get("securityContext") or {}
    for container in containers:
        context = container.get("securityContext") or {}
        non_root = context.get("runAsNonRoot", pod_context.get("runAsNonRoot"))
        user = context.get("runAsUser", pod_context.get("runAsUser"))
        if non_root is not True or user == 0:
            return True
    return False


_READING = frozenset({"get", "list", "watch"})
# How RBAC names service accounts besides ServiceAccount subjects (kubernetes/kubernetes@v1.36.4
# pkg/apis/rbac/helpers.go, staging apiserver serviceaccount/util.go): the User
# system:serviceaccount:<namespace>:<name>, the Groups system:serviceaccounts and
# system:serviceaccounts:<namespace>, and system:authenticated, which holds them all.
_SA_USER = "system:serviceaccount:"
_ALL_SA_GROUPS = ("system:serviceaccounts", "system:authenticated")
_NAMESPACE_SA_GROUP = "system:serviceaccounts:"


def _read_only(rules: list[Mapping[str, Any]] | None) -> bool:
    """Rules that get, list and watch, and never Secrets (whose contents reading hands over)."""
    return rules is not None and all(
        set(rule.get("verbs") or ["*"]) <= _READING
        and not {"secrets", "*"} & set(rule.get("resources") or ["*"])
        for rule in rules
    )


def _readers(args: StackValidationArgs) -> set[tuple[str, str]]:
    """(namespace, service account) pairs that may only read their own namespace: an account
    of its own (not `default`), bound by RoleBindings of that namespace to Roles that get,
    list and watch anything but Secrets, and granted nothing else, directly or through a
    group, by any binding."""

    def where(props: Mapping[str, Any]) -> tuple[str, str]:
        metadata = props.get("metadata") or {}
        return str(metadata.get("namespace", "")), str(metadata.get("name", ""))

    roles = {where(role.props): role.props.get("rules") or [] for role in objects.of_kind(args, "Role")}
    granted: dict[tuple[str, str], bool] = {}
    widened: set[str] = set()  # namespaces whose every account was given more than reading
    everyone = False
    for kind_ in ("RoleBinding", "ClusterRoleBinding"):
        for binding in objects.of_kind(args, kind_):
            namespace = where(binding.props)[0]
            ref = binding.props.get("roleRef") or {}
            local = kind_ == "RoleBinding" and ref.get("kind") == "Role"
            reads = local and _read_only(roles.get((namespace, str(ref.get("name", "")))))
            for subject in binding.props.get("subjects") or []:
                kind, name = subject.get("kind"), str(subject.get("name", ""))
                if kind == "ServiceAccount":
                    key = (str(subject.get("namespace", namespace)), name)
                elif kind == "User" and name.startswith(_SA_USER) and name.count(":") == 3:
                    key = (name.split(":")[2], name.split(":")[3])
                elif kind == "Group" and not reads:
                    everyone |= name in _ALL_SA_GROUPS
                    if name.startswith(_NAMESPACE_SA_GROUP):
                        widened.add(name.removeprefix(_NAMESPACE_SA_GROUP))
                    continue
                else:
                    continue
                granted[key] = granted.get(key, True) and reads and key[0] == namespace
    return {
        key
        for key, reads in granted.items()
        if reads and key[1] != "default" and key[0] not in widened and not everyone
    }


def _least_privilege(args: StackValidationArgs, report: ReportViolation) -> None:
    # A key service writes key Secrets: its account passes when that is all it may do
    # (keys.py key-writers-confined refuses it otherwise).
    readers = _readers(args) | keys.confined_key_writers(args)
    for resource in args.resources:
        kind = objects.kind(resource.resource_type, resource.props)
        if objects.is_patch(resource.resource_type) or kind == "ServingRuntime":
            continue
        if objects.from_upstream_manifest(resource.urn):
            continue  # e.g. the Keycloak operator's own Deployment, as its project publishes it
        for _, pod, containers in objects.pod_specs(kind, resource.props):
            subject = objects.name(resource.props)
            problems = []
            if _runs_as_root(pod, containers):
                problems.append("a container may run as root (no runAsNonRoot: true, or runAsUser: 0)")
            account = (
                str(resource.props.get("metadata", {}).get("namespace", "")),
                pod.get("serviceAccountName") or "default",
            )
            if pod.get("automountServiceAccountToken") is not False and account not in readers:
                problems.append(
                    "it mounts a service-account token, and its service account is not one that only "
                    "reads its own namespace"
                )
            if problems and not relaxation.exempt(args.get_config(), subject, report, "least-privilege"):
                report(
                    objects.refusal(
                        f"{kind} {subject}",
                        "; ".join(problems),
                        "runAsNonRoot: true with the image's non-root user, and "
                        "automountServiceAccountToken: false (components/cluster/security.py "
                        "restricted_container, Flavour.pod_security), or, for a workload that reads the "
                        "API, a service account of its own bound to a Role that only gets, lists "
                        "and watches; an image that must run as root is exempted by name in the "
                        "stack's pack config, with the reason",
                    ),
                    resource.urn,
                )


LEAST_PRIVILEGE = StackValidationPolicy(
    name="least-privilege",
    description="No workload of ours runs as root or mounts a service-account token, except one "
    "whose own service account may only read its namespace (a pooled model's endpoint picker); "
    "upstream manifests' and charts' workloads are theirs.",
    validate=_least_privilege,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)
