"""Pooled models: every inference request goes through the pool's endpoint picker, and only
the authentication layer says which priority a request has."""

from __future__ import annotations

import re
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
from maas_policies.access import covers, match_usage_paths

# KServe's label on a predictor's pods, and its predictor Service's name
# (kserve/kserve@v0.20.0 pkg/constants/constants.go InferenceServicePodLabelKey, PredictorServiceName).
ISVC_LABEL = "serving.kserve.io/inferenceservice"
PREDICTOR_SUFFIX = "-predictor"
# Copy of components/pins/upstream.py ENDPOINT_PICKER_HEADERS and OBJECTIVE_HEADER (a test ties
# them): the request headers llm-d's endpoint picker takes priority, fairness, model rewrites
# and latency objectives from (llm-d/llm-d-router@v0.10.0 pkg/epp/metadata/consts.go).
PICKER_HEADERS = (
    "x-llm-d-inference-objective",
    "x-gateway-inference-objective",
    "x-llm-d-inference-fairness-id",
    "x-gateway-inference-fairness-id",
    "x-llm-d-model-name-rewrite",
    "x-gateway-model-name-rewrite",
    "x-llm-d-slo-ttft-ms",
    "x-slo-ttft-ms",
    "x-llm-d-slo-tpot-ms",
    "x-slo-tpot-ms",
    "x-llm-d-video-fps",
    "x-llm-d-video-duration-seconds",
    "x-llm-d-video-resolution",
    "x-gateway-destination-endpoint-subset",
    "x-gateway-destination-endpoint",
    "x-gateway-destination-endpoint-scores",
    "x-gateway-destination-endpoint-served",
)
OBJECTIVE_HEADER = "x-llm-d-inference-objective"
# A copy of components/names.py MODEL_HEADER (a test ties them): set by the gateway alone.
MODEL_HEADER = "x-maas-model"
_REQUEST_HEADER = re.compile(r"request\.headers\[\s*['\"]([^'\"]+)['\"]\s*\]")
_MODELS_PATH = "/v1/models"


def _namespace(resource: PolicyResource) -> str:
    return str((resource.props.get("metadata") or {}).get("namespace", ""))


def _pooled(args: StackValidationArgs) -> dict[tuple[str, str], str]:
    """(namespace, InferenceService) -> the InferencePool that schedules its pods."""
    pooled = {}
    for pool in objects.of_kind(args, "InferencePool"):
        labels = ((pool.props.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if ISVC_LABEL in labels:
            pooled[(_namespace(pool), str(labels[ISVC_LABEL]))] = objects.name(pool.props)
    return pooled


def _schedules(match: Mapping[str, Any]) -> bool:
    """Whether a route match takes requests that schedule work: anything but the model list."""
    path = match.get("path") or {}
    if path.get("type") == "Exact":
        return path.get("value") != _MODELS_PATH
    return bool(match_usage_paths(match))


def _pools_not_bypassed(args: StackValidationArgs, report: ReportViolation) -> None:
    pooled = _pooled(args)
    services = {
        (_namespace(s), objects.name(s.props).rsplit("/", 1)[-1]): (s.props.get("spec") or {}).get("selector")
        or {}
        for s in objects.of_kind(args, "Service")
    }
    for route in objects.of_kind(args, "HTTPRoute"):
        namespace = _namespace(route)
        for rule in (route.props.get("spec") or {}).get("rules") or []:
            if not any(_schedules(match) for match in rule.get("matches") or [{}]):
                continue
            for ref in rule.get("backendRefs") or []:
                if ref.get("kind", "Service") != "Service" or ref.get("group", "") != "":
                    continue
                service = str(ref.get("name", ""))
                where = (str(ref.get("namespace", namespace)), service)
                model = service.removesuffix(PREDICTOR_SUFFIX) if service.endswith(PREDICTOR_SUFFIX) else None
                selected = services.get(where, {}).get(ISVC_LABEL)
                for candidate in {model, selected} - {None}:
                    pool = pooled.get((where[0], str(candidate)))
                    if pool and not relaxation.exempt(
                        args.get_config(), objects.name(route.props), report, "pools-not-bypassed"
                    ):
                        report(
                            objects.refusal(
                                f"HTTPRoute {objects.name(route.props)}",
                                f"sends inference requests for {candidate} to Service {service}, around "
                                f"its InferencePool {pool}: no priority, no saturation control",
                                f"send its inference paths to the InferencePool {pool} (backendRef group "
                                "inference.networking.k8s.io, kind InferencePool); only /v1/models may "
                                "stay on the Service",
                            ),
                            route.urn,
                        )


POOLS_NOT_BYPASSED = StackValidationPolicy(
    name="pools-not-bypassed",
    description="A pooled model's inference requests reach it only through its InferencePool, so its "
    "endpoint picker applies tier priority and holds requests when it is saturated.",
    validate=_pools_not_bypassed,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)


def _sets_picker_header(modifier: Mapping[str, Any] | None) -> list[str]:
    found = []
    for operation in ("set", "add"):
        for header in (modifier or {}).get(operation) or []:
            if str(header.get("name", "")).lower() in PICKER_HEADERS:
                found.append(str(header.get("name")))
    return found


def _route_header_setters(route: PolicyResource) -> list[str]:
    spec = route.props.get("spec") or {}
    found = []
    for rule in spec.get("rules") or []:
        filters = [
            *(rule.get("filters") or []),
            *(f for ref in rule.get("backendRefs") or [] for f in ref.get("filters") or []),
        ]
        for item in filters:
            found += _sets_picker_header(item.get("requestHeaderModifier"))
    return found


def _picker_headers(policy: PolicyResource) -> dict[str, Any]:
    """The endpoint-picker headers an AuthPolicy sets on success (its defaults or overrides)."""
    spec = policy.props.get("spec") or {}
    effective = spec.get("overrides") or spec.get("defaults") or spec
    headers = (
        (((effective.get("rules") or {}).get("response") or {}).get("success") or {}).get("headers")
    ) or {}
    return {
        str(name).lower(): value for name, value in headers.items() if str(name).lower() in PICKER_HEADERS
    }


def _not_from_identity(value: Any) -> str | None:
    """Why a header's value is not the authenticated identity's, if it is not: it must read
    auth.identity, and no request header but the gateway's own model header."""
    expression = str(((value.get("plain") or {}) if isinstance(value, Mapping) else {}).get("expression", ""))
    if "auth.identity" not in expression:
        return "is not computed from the authenticated identity (auth.identity)"
    read = _REQUEST_HEADER.findall(expression)
    if expression.count("request.headers") != len(read) or set(read) - {MODEL_HEADER}:
        return "reads request headers a client sends"
    return None


def _priority_from_identity(args: StackValidationArgs, report: ReportViolation) -> None:
    if not objects.of_kind(args, "InferencePool") and not objects.of_kind(args, "InferenceObjective"):
        return
    config = args.get_config()
    for route in objects.of_kind(args, "HTTPRoute"):
        setters = _route_header_setters(route)
        if setters and not relaxation.exempt(
            config, objects.name(route.props), report, "priority-from-identity"
        ):
            report(
                objects.refusal(
                    f"HTTPRoute {objects.name(route.props)}",
                    f"sets {', '.join(setters)}, which only the authentication layer may set",
                    "remove the header modifier; Authorino sets the objective from the tier "
                    "(components/access/tiers.py scheduling_headers)",
                ),
                route.urn,
            )
    fix = (
        f"response.success.headers.{OBJECTIVE_HEADER} with an expression of auth.identity.tier "
        "(components/access/tiers.py scheduling_headers)"
    )
    gateway_sets_it = False
    pooled_routes = [
        route
        for route in objects.of_kind(args, "HTTPRoute")
        for rule in (route.props.get("spec") or {}).get("rules") or []
        if any(ref.get("kind") == "InferencePool" for ref in rule.get("backendRefs") or [])
    ]
    for policy in objects.of_kind(args, "AuthPolicy"):
        headers = _picker_headers(policy)
        # In force on every pooled model's route: on the Gateway, or on the route of every host.
        covers_pools = all(covers(policy, route, objects.GATEWAY_NAME, args) for route in pooled_routes)
        gateway_sets_it |= covers_pools and OBJECTIVE_HEADER in headers
        for name, value in headers.items():
            problem = _not_from_identity(value)
            if problem and not relaxation.exempt(
                config, objects.name(policy.props), report, "priority-from-identity"
            ):
                report(
                    objects.refusal(f"AuthPolicy {objects.name(policy.props)}", f"its {name} {problem}", fix),
                    policy.urn,
                )
    if not gateway_sets_it and not relaxation.exempt(config, "AuthPolicy", report, "priority-from-identity"):
        report(
            objects.refusal(
                "the Gateway's AuthPolicy",
                "pooled models are scheduled by priority, and it sets no objective",
                fix,
            ),
            None,
        )


PRIORITY_FROM_IDENTITY = StackValidationPolicy(
    name="priority-from-identity",
    description="Where models are pooled, the priority objective a request carries is set by the "
    "authentication layer from the validated identity, and no route sets any endpoint-picker header.",
    validate=_priority_from_identity,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)
