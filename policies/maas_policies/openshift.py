"""OpenShift: operators come pinned from OLM, and our pods leave their user ids to the cluster."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from maas_policies import objects

# A CSV name: <operator>.v<semantic version> (operator-framework/api v0.45.0 names CSVs so;
# OLM resolves startingCSV by that name).
_CSV = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?\.v\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
_APPROVALS = ("Automatic", "Manual")
# What restricted-v2 assigns from the namespace's annotated range and refuses otherwise
# (openshift/cluster-kube-apiserver-operator c813e820bb94 bindata/bootkube/scc-manifests/
# 0000_20_kube-apiserver-operator_00_scc-restricted-v2.yaml: runAsUser MustRunAsRange,
# fsGroup MustRunAs); runAsGroup and supplementalGroups it leaves free.
_POD_IDS = ("runAsUser", "fsGroup")
_CONTAINER_IDS = ("runAsUser",)


def _subscription_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    if objects.kind(args.resource_type, props) != "Subscription" or not str(
        props.get("apiVersion", "")
    ).startswith("operators.coreos.com/"):
        return
    spec = props.get("spec") or {}
    subject = f"Subscription {objects.name(props)}"
    if not spec.get("channel"):
        report(objects.refusal(subject, "no channel", "name the channel the starting CSV is in"), None)
    starting = str(spec.get("startingCSV") or "")
    if not _CSV.match(starting):
        problem = f"startingCSV '{starting}' is not a CSV of an exact version"
        report(
            objects.refusal(
                subject,
                problem,
                "pin it (components/pins/versions.py OLM_*), e.g. my-operator.v1.2.3; without it OLM "
                "installs whatever heads the channel",
            ),
            None,
        )
    if spec.get("installPlanApproval") not in _APPROVALS:
        report(
            objects.refusal(
                subject,
                "installPlanApproval is not set",
                "set Automatic or Manual (maas:openshift.approval), so the choice is written down",
            ),
            None,
        )


def targets_openshift(args: StackValidationArgs) -> bool:
    """A stack that declares OpenShift's APIs (Routes, OLM subscriptions) runs on OpenShift."""
    return any(
        str(r.props.get("apiVersion", "")).startswith(("route.openshift.io/", "operators.coreos.com/"))
        for r in args.resources
        if objects.kind(r.resource_type, r.props)
    )


def _fixed_ids(where: str, pod: Mapping[str, Any], containers: list[Mapping[str, Any]]) -> list[str]:
    context = pod.get("securityContext") or {}
    found = [f"{where} {key} {context[key]}" for key in _POD_IDS if context.get(key) is not None]
    for container in containers:
        own = container.get("securityContext") or {}
        found += [
            f"container {container.get('name')} {key} {own[key]}"
            for key in _CONTAINER_IDS
            if own.get(key) is not None
        ]
    return found


def _no_fixed_ids(args: StackValidationArgs, report: ReportViolation) -> None:
    if not targets_openshift(args):
        return
    for resource in args.resources:
        kind = objects.kind(resource.resource_type, resource.props)
        if (
            not kind
            or objects.from_upstream_manifest(resource.urn)
            or objects.is_patch(resource.resource_type)
        ):
            continue
        for where, pod, containers in objects.pod_specs(kind, resource.props):
            fixed = _fixed_ids(where, pod, containers)
            if fixed:
                report(
                    objects.refusal(
                        f"{kind} {objects.name(resource.props)}",
                        f"asks for fixed ids on OpenShift ({', '.join(fixed)}), which restricted-v2 "
                        "refuses unless they fall in the namespace's range",
                        "leave them out and let the cluster assign them (components/flavour/openshift.py "
                        "OpenShift.pod_security); never grant anyuid",
                    ),
                    resource.urn,
                )


OPERATORS_PINNED = ResourceValidationPolicy(
    name="operators-pinned",
    description="Every OLM Subscription names its channel, an exact starting CSV and its approval.",
    validate=_subscription_pinned,
    enforcement_level=EnforcementLevel.MANDATORY,
)

NO_FIXED_IDS_ON_OPENSHIFT = StackValidationPolicy(
    name="no-fixed-ids-on-openshift",
    description="On OpenShift no pod of ours asks for a user id or fsGroup: restricted-v2 assigns them.",
    validate=_no_fixed_ids,
    enforcement_level=EnforcementLevel.MANDATORY,
)
