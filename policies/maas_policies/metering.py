"""Metering: every token a model produces through the gateway is counted.

Kuadrant's token limits read `usage.total_tokens` from the response
(Kuadrant/kuadrant-operator@v1.5.2 ratelimit_workflow_helpers.go); a stream carries it only when the request
asked for it (llm-d/llm-d-inference-sim@v0.10.2 pkg/api/request.go) or vLLM forces it. So: routes
publish only endpoints whose usage is read, vLLM forces usage into streams, and the
gateway asks for it in every streamed request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, ReportViolation, StackValidationArgs, StackValidationPolicy

from maas_policies import objects, relaxation

# Copies of components/serving/model_deployment.py METERED_PATHS and the vLLM force flag of
# components/serving/vllm_serving_runtime.py (a test ties them):
# the pack runs in its own virtualenv, without the program's modules.
METERED_PATHS = ("/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/v1/models")
FORCE_USAGE_FLAG = "--enable-force-include-usage"
# Copies of components/metering/chargeback.py PRICE_PER_REQUEST and BUDGET_AMOUNT (a test
# ties them): the price rules carry the table's currency, the budget rules theirs.
PRICE_RECORD = "maas:price_per_request"
BUDGET_RECORD = "maas:budget_amount"
_WINDOW_PART = re.compile(r"([0-9]+)(ms|h|m|s)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
# What the gateway's Lua filter must set (components/serving/lua/request_body.lua).
STREAM_USAGE_MARK = '"include_usage":true'


# Copies of components/access/self_service.py API_PATHS, PAGE_PATH and components/names.py
# KEY_SERVICE (a test ties them): the key service's paths produce no tokens.
KEY_SERVICE = "key-service"
KEY_SERVICE_PATHS = ("/v1/api-keys", "/v1/usage", "/v1/admin", "/portal")


def _key_service_only(rule: Mapping[str, Any]) -> bool:
    """A rule that sends only the key service's own paths to the key service alone."""
    backends = rule.get("backendRefs") or []
    paths = [m.get("path") or {} for m in rule.get("matches") or [{}]]
    return all(b.get("name") == KEY_SERVICE and not b.get("namespace") for b in backends) and all(
        p.get("type") == "PathPrefix" and p.get("value") in KEY_SERVICE_PATHS for p in paths
    )


# Copies of components/platform/keycloak.py SERVICE and the prefixes of components/access/
# realm.py realm_paths (a test ties them): the realm's pages, through which people log in.
KEYCLOAK_SERVICE = "keycloak-service"
REALM_PREFIX = "/realms/"
REALM_STATIC = "/resources"


def _keycloak_only(rule: Mapping[str, Any]) -> bool:
    """A rule that sends one realm's pages and Keycloak's static files to Keycloak alone."""
    backends = rule.get("backendRefs") or []
    paths = [m.get("path") or {} for m in rule.get("matches") or [{}]]
    return all(b.get("name") == KEYCLOAK_SERVICE for b in backends) and all(
        p.get("type") == "PathPrefix" and (p.get("value") == REALM_STATIC or _one_realm(str(p.get("value"))))
        for p in paths
    )


def _one_realm(path: str) -> bool:
    name = path.removeprefix(REALM_PREFIX)
    # Not master: it administers Keycloak itself.
    return path.startswith(REALM_PREFIX) and name not in ("", "master") and "/" not in name


def _unmetered_matches(route: Mapping[str, Any]) -> list[str]:
    """The route's matches that publish more than the metered endpoints."""
    found = []
    for rule in (route.get("spec") or {}).get("rules") or []:
        if not rule.get("backendRefs"):
            continue  # it reaches no server (a redirect): it publishes nothing
        if _key_service_only(rule) or _keycloak_only(rule):
            continue  # keys, usage and logging in: no model answers there
        # A rule without matches matches every path (Gateway API: default PathPrefix "/").
        for match in rule.get("matches") or [{}]:
            path = match.get("path") or {"type": "PathPrefix", "value": "/"}
            if path.get("type", "PathPrefix") != "Exact" or path.get("value") not in METERED_PATHS:
                found.append(f"{path.get('type', 'PathPrefix')} {path.get('value', '/')}")
    return found


def _on_gateway(route: Mapping[str, Any]) -> bool:
    parents = (route.get("spec") or {}).get("parentRefs") or []
    return any(p.get("name") == objects.GATEWAY_NAME for p in parents)


def _asks_streams_for_usage(envoy_filter: Mapping[str, Any]) -> bool:
    spec = envoy_filter.get("spec") or {}
    targets = spec.get("targetRefs") or []
    if not any(t.get("kind") == "Gateway" and t.get("name") == objects.GATEWAY_NAME for t in targets):
        return False
    return any(STREAM_USAGE_MARK in text for _, text in objects.string_leaves(spec.get("configPatches")))


def _vllm_containers(runtime: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    containers = (runtime.get("spec") or {}).get("containers") or []
    return [c for c in containers if "vllm" in str(c.get("image", "")).lower()]


def _budgets_priced(args: StackValidationArgs, report: ReportViolation) -> None:
    """A budget's amount is in a currency the price rules bill in, and its window is whole
    seconds (Kuadrant/kuadrant-operator@v1.5.2 api/v1/ratelimitpolicy_types.go Duration.Seconds
    truncates, should a cap be derived from it for Limitador)."""
    for rule in objects.of_kind(args, "PrometheusRule"):
        rules = [r for g in (rule.props.get("spec") or {}).get("groups") or [] for r in g.get("rules") or []]
        currencies = {
            (r.get("labels") or {}).get("currency") for r in rules if r.get("record") == PRICE_RECORD
        }
        for budget in (r for r in rules if r.get("record") == BUDGET_RECORD):
            labels = budget.get("labels") or {}
            who = f"tier {labels['tier']}" if labels.get("tier") else f"user {labels.get('user')}"
            subject = (
                f"PrometheusRule {objects.name(rule.props)} (budget of {who} per {labels.get('window')})"
            )
            if labels.get("currency") not in currencies - {None}:
                report(
                    objects.refusal(
                        subject,
                        f"its currency {labels.get('currency')} is not one the price table bills in "
                        f"({', '.join(sorted(c for c in currencies if c)) or 'none'}), so no spend is "
                        "ever compared with it",
                        "state budgets in maas:prices.currency, and price the usage (maas:prices)",
                    ),
                    rule.urn,
                )
            window = str(labels.get("window", ""))
            seconds = sum(int(n) * _SECONDS[unit] for n, unit in _WINDOW_PART.findall(window))
            if seconds < 1 or seconds != int(seconds):
                report(
                    objects.refusal(
                        subject,
                        f"window {window} is not whole seconds: Limitador could not hold a cap from it",
                        "a window of at least 1s in whole seconds",
                    ),
                    rule.urn,
                )


def _usage_metered(args: StackValidationArgs, report: ReportViolation) -> None:
    _budgets_priced(args, report)
    config = args.get_config()
    routes = [r for r in objects.of_kind(args, "HTTPRoute") if _on_gateway(r.props)]
    for route in routes:
        subject = objects.name(route.props)
        unmetered = _unmetered_matches(route.props)
        if unmetered and not relaxation.exempt(config, subject, report, "usage-metered"):
            report(
                objects.refusal(
                    f"HTTPRoute {subject}",
                    f"publishes endpoints whose token usage the limits cannot read ({', '.join(unmetered)})",
                    f"match only the metered endpoints, each as an Exact path: {', '.join(METERED_PATHS)}",
                ),
                route.urn,
            )
    if routes and not any(_asks_streams_for_usage(f.props) for f in objects.of_kind(args, "EnvoyFilter")):
        report(
            objects.refusal(
                f"Gateway {objects.GATEWAY_NAME}",
                "nothing asks streamed requests for usage, so a stream without stream_options is never "
                "charged tokens",
                "the EnvoyFilter of components/serving/gateway.py "
                "(Lua that sets stream_options.include_usage)",
            ),
            None,
        )
    for runtime in objects.of_kind(args, "ServingRuntime"):
        subject = objects.name(runtime.props)
        for container in _vllm_containers(runtime.props):
            flags = [*(container.get("command") or []), *(container.get("args") or [])]
            if FORCE_USAGE_FLAG not in flags and not relaxation.exempt(
                config, subject, report, "usage-metered"
            ):
                report(
                    objects.refusal(
                        f"ServingRuntime {subject}",
                        "vLLM does not force usage into streamed responses",
                        f"add {FORCE_USAGE_FLAG} to the container's args",
                    ),
                    runtime.urn,
                )


USAGE_METERED = StackValidationPolicy(
    name="usage-metered",
    description="Model routes publish only metered endpoints, every stream carries its usage, and "
    "every budget is in the price table's currency, over a window Limitador can hold.",
    validate=_usage_metered,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)
