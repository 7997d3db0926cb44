"""The maas-platform policy pack: guards that refuse an unsafe stack before anything is applied."""

from __future__ import annotations

from pulumi_policy import Policy

from maas_policies.access import (
    LIMITADOR_SHARED_STORAGE,
    MODEL_TIERS_ENFORCED,
    ROUTES_PROTECTED,
    SHARED_COUNTERS,
    TIER_LIMITS_GROW,
    TIERS_LIMITED,
)
from maas_policies.credentials import KEYCLOAK_PRODUCTION, KNOWN_DEFAULT_CREDENTIALS, NO_DEFAULT_CREDENTIALS
from maas_policies.isolation import (
    DOCUMENTED_CLIENTS,
    GATEWAY_HTTPS,
    LEAST_PRIVILEGE,
    MODELS_ISOLATED,
    NAMESPACES_DENY_BY_DEFAULT,
)
from maas_policies.metering import USAGE_METERED
from maas_policies.scheduling import (
    CONTAINER_RESOURCES,
    CPU_WORKLOADS_OFF_GPU_NODES,
    GPU_WORKLOADS_PINNED,
    REPLICAS_BOUNDED,
)
from maas_policies.supply import CHARTS_PINNED, IMAGES_PINNED

PACK_NAME = "maas-platform"

POLICIES: list[Policy] = [
    ROUTES_PROTECTED,
    TIERS_LIMITED,
    TIER_LIMITS_GROW,
    LIMITADOR_SHARED_STORAGE,
    SHARED_COUNTERS,
    GPU_WORKLOADS_PINNED,
    CPU_WORKLOADS_OFF_GPU_NODES,
    CONTAINER_RESOURCES,
    IMAGES_PINNED,
    CHARTS_PINNED,
    NO_DEFAULT_CREDENTIALS,
    KEYCLOAK_PRODUCTION,
    MODELS_ISOLATED,
    USAGE_METERED,
    MODEL_TIERS_ENFORCED,
    GATEWAY_HTTPS,
    NAMESPACES_DENY_BY_DEFAULT,
    DOCUMENTED_CLIENTS,
    LEAST_PRIVILEGE,
    REPLICAS_BOUNDED,
]

__all__ = ["KNOWN_DEFAULT_CREDENTIALS", "PACK_NAME", "POLICIES"]
