"""What the platform's own pods request: `standard`, as each chart or component says, or
`small`, for one 4-CPU node (`maas:cluster.footprint`; kind on a GitHub runner, where dev
and dev-oidc run the end-to-end suite). Only requests change: limits stay, so a busy pod
still uses what the node has free. tests/platform/test_runner_fit.py adds every pod up."""

from __future__ import annotations

from typing import Any

from components.config import Footprint

# Requests on a small node, against the standard ones: istiod 500m, 2048Mi (istio/istio@1.30.3
# manifests/charts/istio-control/istio-discovery/values.yaml `resources`), sized for a mesh
# where here it programs one gateway; Keycloak 500m, 1Gi and its PostgreSQL 250m, 256Mi
# (components/platform/keycloak.py), for a platform's users where CI has five; KEDA's three
# pods 100m each (kedacore/charts@v2.20.2 keda/values.yaml `resources`).
SMALL: dict[str, dict[str, str]] = {
    "istiod": {"cpu": "100m", "memory": "256Mi"},
    "keycloak": {"cpu": "100m", "memory": "512Mi"},
    "postgres": {"cpu": "50m", "memory": "128Mi"},
    "keda": {"cpu": "50m", "memory": "100Mi"},
}


def resources(footprint: Footprint, component: str, standard: dict[str, Any]) -> dict[str, Any]:
    """`standard` ({"requests": ..., "limits": ...}) with a small footprint's requests."""
    if footprint == "standard":
        return standard
    return {**standard, "requests": SMALL[component]}
