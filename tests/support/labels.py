"""Pod labels and label selectors, as Kubernetes and KServe apply them."""

from __future__ import annotations

from typing import Any

from components.serving.models import ISVC_LABEL
from harness.program import Declared


def predictor_pod_labels(isvc: Declared) -> dict[str, str]:
    """The labels KServe (v0.20, Standard mode) puts on an InferenceService's predictor pods."""
    name = isvc.object_name
    return {
        **isvc.inputs["metadata"].get("labels", {}),
        **isvc.inputs["spec"]["predictor"].get("labels", {}),
        ISVC_LABEL: name,
        "component": "predictor",
        "app": f"isvc.{name}-predictor",
    }


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels, and matchExpressions with Exists or In) selects `labels`."""
    matched = all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())
    for expression in selector.get("matchExpressions", []):
        present = expression["key"] in labels
        if expression["operator"] == "Exists":
            matched = matched and present
        elif expression["operator"] == "In":
            matched = matched and labels.get(expression["key"]) in expression["values"]
        else:
            raise AssertionError(f"operator {expression['operator']} not modelled")
    return matched
