"""The route shape before issue 27, rebuilt from a stack of today: for the size estimator's
cross-check against what issue 27 measured, and for the pack's refusal of that shape."""

from __future__ import annotations

import dataclasses
from typing import Any

from components.access import tiers
from components.access.realm import REALM_ROUTE
from components.names import KEY_SERVICE, KEY_SERVICE_LABELS
from components.serving.model_list import POLICY_ROUTE
from harness.program import Declared, Evaluation

GATEWAY = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "inference-gateway"}


def _before(declared: Declared) -> Declared | None:
    if declared.is_k8s_object and declared.object_name == POLICY_ROUTE:
        return None
    # Nor was there a key service (issue 29).
    if declared.is_k8s_object and declared.inputs.get("metadata", {}).get("labels") == KEY_SERVICE_LABELS:
        return None
    if declared.kind in ("AuthPolicy", "RateLimitPolicy") and declared.object_name == KEY_SERVICE:
        return None
    # Nor a route to the realm's pages (issue 29).
    if declared.kind in ("HTTPRoute", "ReferenceGrant") and declared.object_name == REALM_ROUTE:
        return None
    if declared.kind not in ("AuthPolicy", "RateLimitPolicy", "TokenRateLimitPolicy"):
        return declared

    def retarget(props: dict[str, Any]) -> dict[str, Any]:
        spec = {**props["spec"], "targetRef": GATEWAY}
        if "limits" in spec:
            per_user = [{"expression": tiers.USER_ID}]
            spec["limits"] = {name: {**limit, "counters": per_user} for name, limit in spec["limits"].items()}
        return {**props, "spec": spec}

    return dataclasses.replace(declared, inputs=retarget(declared.inputs), outputs=retarget(declared.outputs))


def on_the_gateway(result: Evaluation) -> Evaluation:
    """The stack as it was before issue 27: the tier policies on the Gateway, so on every model
    route (each on 2 hosts with 4 matches), limits counted per user and route, no policy route."""
    shaped = [_before(r) for r in result.resources]
    return dataclasses.replace(result, resources=[r for r in shaped if r is not None])
