"""Isolation: model pods admit traffic from named sources only."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

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
