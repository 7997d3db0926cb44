"""Pod labels and label selectors, as Kubernetes and KServe apply them."""

from __future__ import annotations

from components.serving.model_deployment import ISVC_LABEL
from harness.program import Declared

# Label selectors as the API server reads them: one reader, the policy pack's.
from maas_policies.network import selects

__all__ = ["predictor_pod_labels", "selects"]


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
