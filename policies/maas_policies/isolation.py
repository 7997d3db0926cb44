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

from maas_policies import objects, relaxation

# Set by KServe on every predictor pod. A copy of components/serving/models.py ISVC_LABEL
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


# Istio's annotation for the Service type of a Gateway's deployment (istio 1.30
# pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go, annotation.NetworkingServiceType).
_SERVICE_TYPE = "networking.istio.io/service-type"
_EXPOSED_TYPES = ("LoadBalancer", "NodePort")


def _exposure(gateway: PolicyResource, routes: list[PolicyResource]) -> str | None:
    """How a Gateway is reached from beyond the cluster, or None: its Service type, or an
    OpenShift Route to its Service (<name>-<class>, as Istio names it)."""
    metadata, spec = gateway.props.get("metadata") or {}, gateway.props.get("spec") or {}
    # Without the annotation Istio makes a LoadBalancer (istio 1.30.3 pilot/pkg/config/kube/
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
