"""API keys issued in the cluster: whoever mints them writes key Secrets and nothing else, and
every key they mint expires on a production stack.

A key service (components/access/self_service.py) or a portal writes Secrets where Authorino
reads keys; a write grant wider than Secrets in that one namespace would let it (or whoever
takes it over) change anything else. Kuadrant's chart binds its developer-portal controller's
account to a ClusterRole that writes Secrets in every namespace, rendered whether or not the
portal is enabled (Kuadrant/kuadrant-operator@v1.5.2 charts/kuadrant-operator/templates/
manifests.yaml, `developer-portal-manager-role`): no pod of ours may run as that account.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from maas_policies import objects, relaxation

# Copies of components/names.py KEY_SERVICE_LABELS and components/access/self_service.py
# SECRET_VERBS (a test ties them): the pack runs without the program's modules.
KEY_SERVICE_LABELS = {"app.kubernetes.io/name": "key-service", "app.kubernetes.io/part-of": "maas-platform"}
KEY_SECRET_VERBS = frozenset({"get", "list", "watch", "create", "patch", "delete"})
# The one read it may hold elsewhere: what OpenShift's Thanos querier checks before showing a
# namespace's metrics (components/flavour/openshift.py TENANCY_RULE), writing nothing.
METRICS_READ = ({"metrics.k8s.io"}, {"pods"}, {"get"})
# The environment variable the key service reads its tiers' key caps and lifetimes from
# (components/access/key_service/server.py Config.from_env).
KEY_TIERS_ENV = "KEY_TIERS"
# The service account Kuadrant's chart binds to a cluster-wide Secret writer.
PORTAL_ACCOUNT = "developer-portal-controller-manager"
_DEV_STACKS = ["dev"]

SCHEMA = PolicyConfigSchema(
    properties={
        "devStacks": {"type": "array", "items": {"type": "string"}, "default": _DEV_STACKS},
        "exemptions": {"type": "array", "items": {"type": "string"}},
        "reason": {"type": "string"},
    }
)


def _meta(props: Mapping[str, Any]) -> tuple[str, str]:
    metadata = props.get("metadata") or {}
    return str(metadata.get("namespace", "")), str(metadata.get("name", ""))


def grants(args: StackValidationArgs, account: tuple[str, str]) -> list[str]:
    """Every grant the stack gives `account` (namespace, name) beyond Secrets in one namespace
    with the key service's verbs, described; [] when it holds only such grants."""
    roles = {_meta(r.props): r.props.get("rules") or [] for r in objects.of_kind(args, "Role")}
    wider: list[str] = []
    namespaces: set[str] = set()
    user = f"system:serviceaccount:{account[0]}:{account[1]}"
    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for binding in objects.of_kind(args, kind):
            namespace, _ = _meta(binding.props)
            held = any(
                (
                    s.get("kind") == "ServiceAccount"
                    and (s.get("namespace") or namespace, s.get("name")) == account
                )
                or (s.get("kind") == "User" and s.get("name") == user)
                for s in binding.props.get("subjects") or []
            )
            if not held:
                continue
            ref = binding.props.get("roleRef") or {}
            where = f"{kind} {objects.name(binding.props)}"
            if kind == "ClusterRoleBinding" or ref.get("kind") != "Role":
                wider.append(f"{where} grants ClusterRole {ref.get('name')}")
                continue
            for rule in roles.get((namespace, str(ref.get("name", ""))), []):
                groups, resources = set(rule.get("apiGroups") or []), set(rule.get("resources") or [])
                verbs = set(rule.get("verbs") or [])
                if (groups, resources, verbs) == METRICS_READ:
                    continue
                namespaces.add(namespace)
                if groups != {""} or resources != {"secrets"} or not verbs <= KEY_SECRET_VERBS:
                    wider.append(
                        f"{where} grants {sorted(verbs)} on {sorted(resources)} of groups {sorted(groups)}"
                    )
    if len(namespaces) > 1:
        wider.append(f"it is bound in {len(namespaces)} namespaces ({', '.join(sorted(namespaces))})")
    return wider


def key_writers(args: StackValidationArgs) -> dict[tuple[str, str], str]:
    """(namespace, service account) of each key service workload -> the workload."""
    found = {}
    for resource in args.resources:
        kind = objects.kind(resource.resource_type, resource.props)
        if kind != "Deployment" or objects.is_patch(resource.resource_type):
            continue
        template = (resource.props.get("spec") or {}).get("template") or {}
        labels = (template.get("metadata") or {}).get("labels") or {}
        if any(labels.get(k) != v for k, v in KEY_SERVICE_LABELS.items()):
            continue
        pod = template.get("spec") or {}
        namespace, _ = _meta(resource.props)
        found[(namespace, str(pod.get("serviceAccountName") or "default"))] = objects.name(resource.props)
    return found


def confined_key_writers(args: StackValidationArgs) -> set[tuple[str, str]]:
    """Key service accounts granted Secrets in one namespace and nothing else."""
    return {account for account in key_writers(args) if not grants(args, account)}


def _key_writers_confined(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    for account, workload in key_writers(args).items():
        wider = grants(args, account)
        if wider and not relaxation.exempt(config, workload, report, "key-writers-confined"):
            report(
                objects.refusal(
                    f"Deployment {workload} (key service, service account {account[1]})",
                    f"it may write beyond key Secrets in one namespace: {'; '.join(wider)}",
                    "one Role in Authorino's namespace on secrets only, verbs "
                    f"{', '.join(sorted(KEY_SECRET_VERBS))}, bound by a RoleBinding there "
                    "(components/access/self_service.py KeyService._rights)",
                ),
                None,
            )
    for resource in args.resources:
        kind = objects.kind(resource.resource_type, resource.props)
        if objects.is_patch(resource.resource_type):
            continue
        for _, pod, _containers in objects.pod_specs(kind, resource.props):
            subject = objects.name(resource.props)
            if pod.get("serviceAccountName") == PORTAL_ACCOUNT and not relaxation.exempt(
                config, subject, report, "key-writers-confined"
            ):
                report(
                    objects.refusal(
                        f"{kind} {subject}",
                        f"it runs as {PORTAL_ACCOUNT}, which Kuadrant's chart binds to a ClusterRole "
                        "that creates and deletes Secrets in every namespace",
                        "a service account of its own with a Role on what it needs, in its namespace",
                    ),
                    resource.urn,
                )


KEY_WRITERS_CONFINED = StackValidationPolicy(
    name="key-writers-confined",
    description="A key service writes Secrets in one namespace only, through a Role, and no pod runs "
    "as the developer portal's cluster-wide Secret writer.",
    validate=_key_writers_confined,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)


def _tier_lifetimes(container: Mapping[str, Any]) -> dict[str, Any] | None:
    """The key service's tiers (name -> settings) from its environment, None without one."""
    for variable in container.get("env") or []:
        if variable.get("name") == KEY_TIERS_ENV:
            value = json.loads(str(variable.get("value") or "{}"))
            return value if isinstance(value, dict) else {}
    return None


def _keys_expire(args: StackValidationArgs, report: ReportViolation) -> None:
    config = args.get_config()
    if pulumi.get_stack() in (config.get("devStacks") or _DEV_STACKS):
        return
    for resource in args.resources:
        kind = objects.kind(resource.resource_type, resource.props)
        for _, _pod, containers in objects.pod_specs(kind, resource.props):
            for container in containers:
                tiers = _tier_lifetimes(container)
                lasting = sorted(
                    name
                    for name, settings in (tiers or {}).items()
                    if not isinstance(settings, dict)
                    or not isinstance(settings.get("maxLifetimeDays"), int)
                    or settings["maxLifetimeDays"] < 1
                )
                subject = objects.name(resource.props)
                if lasting and not relaxation.exempt(config, subject, report, "keys-expire"):
                    report(
                        objects.refusal(
                            f"{kind} {subject}",
                            f"on a production stack it would mint keys that never expire for tiers "
                            f"{', '.join(lasting)} (no maxLifetimeDays in {KEY_TIERS_ENV})",
                            "maas:tiers[].keys.maxLifetimeDays (components/config/model.py TierKeys)",
                        ),
                        resource.urn,
                    )


KEYS_EXPIRE = StackValidationPolicy(
    name="keys-expire",
    description="Outside dev stacks, every tier a key service mints keys for has a key lifetime.",
    validate=_keys_expire,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SCHEMA,
)
