"""Capacity: Kuadrant's generated configuration stays well inside the caps nothing reports.

Past its cap the operator only logs a failed write and keeps the old EnvoyFilter (or, on
a fresh install, writes none), policies stay Enforced and the wasm-shim lets every host it
has no action set for through (Kuadrant/kuadrant-operator@v1.5.2 istio_extension_reconciler.go,
Kuadrant/wasm-shim@v0.14.1 kuadrant_filter.rs): new models would be served unauthenticated and
unmetered. So a stack is refused while its estimate (kuadrant_size.py) is past a share of
each cap, before anything is applied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UnknownValueError

from maas_policies import kuadrant_size, objects

_KINDS = ("Gateway", "HTTPRoute", "AuthPolicy", "RateLimitPolicy", "TokenRateLimitPolicy", "TelemetryPolicy")
_FIX = {
    "wasm config (EnvoyFilter)": (
        "fewer action sets: each is one listener x route rule x hostname x match and repeats every "
        "tier's limits, so serve fewer models or tiers on this gateway, or give the routes fewer "
        "hostnames, rules and matches"
    ),
    "largest AuthConfig": "fewer authorization rules in the AuthPolicy (models restricted to tiers)",
    "Limitador limits (ConfigMap)": (
        "fewer routes or tiers: Limitador holds every tier's limits for every route"
    ),
}


def _known(value: Any) -> Any:
    """Plain data from the analyzer's proxies; a value only a create computes (a first
    preview) becomes "", which changes a size by its length only."""
    if isinstance(value, Mapping):
        found = {}
        for key in value:
            try:
                found[str(key)] = _known(value[key])
            except UnknownValueError:
                found[str(key)] = ""
        return found
    if isinstance(value, Sequence) and not isinstance(value, str):
        items = []
        for index in range(len(value)):
            try:
                items.append(_known(value[index]))
            except UnknownValueError:
                items.append("")
        return items
    return value


def _fits(args: StackValidationArgs, report: ReportViolation) -> None:
    share = float(args.get_config().get("share", kuadrant_size.SHARE))
    declared = [_known(r.props) for r in args.resources if objects.kind(r.resource_type, r.props) in _KINDS]
    for gateway, estimate in kuadrant_size.estimate(declared).items():
        for what, (size, cap) in estimate.over(share).items():
            report(
                objects.refusal(
                    f"Gateway {gateway}",
                    f"Kuadrant's {what} would be about {size:,} bytes, {100 * size / cap:.0f}% of its "
                    f"{cap:,}-byte cap, past the {100 * share:.0f}% this pack allows ({estimate.action_sets} "
                    f"action sets, {estimate.auth_configs} AuthConfigs, {estimate.limits} limits); past the "
                    "cap Kuadrant keeps its old configuration and reports nothing, and what it leaves out "
                    "is served without authentication or limits",
                    _FIX[what],
                ),
                None,
            )


KUADRANT_CONFIG_FITS = StackValidationPolicy(
    name="kuadrant-config-fits",
    description="Kuadrant's wasm config, AuthConfigs and Limitador limits stay within a share of their caps.",
    validate=_fits,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=PolicyConfigSchema(
        properties={
            "share": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": kuadrant_size.SHARE}
        }
    ),
)
