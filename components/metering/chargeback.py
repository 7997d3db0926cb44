"""Usage and cost from Limitador's counters: the Prometheus recording rules and alerts.

With both a RateLimitPolicy and a TokenRateLimitPolicy on every request, Limitador's
counters move like this (Limitador v2.4 and wasm-shim v0.14, per user/tier/model):

| event                         | authorized_calls | authorized_hits | limited_calls     |
|-------------------------------|------------------|-----------------|-------------------|
| request admitted, t tokens    | +2               | +1 + t          |                   |
| 429 by the request limit      |                  |                 | +1 (limit_name: <tier>-requests) |
| 429 by the token limit        | +1               | +1              | +1 (limit_name: <tier>-tokens)   |

`limit_name` exists because the Limitador runs with `telemetry: exhaustive`. Hence, with
A, H, L the counters and Lt the token-limit 429s:

    admitted requests = (A - Lt) / 2        tokens = H - (A + Lt) / 2

Both are counters again (they only grow, and reset when Limitador restarts), so
`increase()` and `rate()` apply to the recorded series. The model is the catalog name the
TelemetryPolicy labels each counter with (components/access/tiers.py telemetry_labels):
every model's counters share one route's namespace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from components.access import tiers as tier_names
from components.config import ModelConfig, PricesConfig, TierConfig
from components.pins import upstream

REQUESTS = "maas:requests:total"
TOKENS = "maas:tokens:total"
REJECTED = "maas:rejected_requests:total"
COST = "maas:cost:total"
PRICE_PER_REQUEST = "maas:price_per_request"
PRICE_PER_1K_TOKENS = "maas:price_per_1k_tokens"
_CALLS = "maas:limitador_authorized_calls:sum"
_HITS = "maas:limitador_authorized_hits:sum"
_LIMITED = "maas:limitador_limited_calls:sum"
USAGE_LABELS = ("user", "tier", "model")
# A tier is throttled hard when more than this share of its requests gets 429 for 10 minutes.
THROTTLE_ALERT_RATIO = 0.5

# Pooled models: the picker's flow-control outcomes and queue, per tier (the picker labels
# them by priority, components/access/tiers.py priorities).
SCHEDULED = "maas:scheduled_requests:rate5m"
SCHEDULER_QUEUE = "maas:scheduler_queue:size"
# Outcomes that refuse a request because the pool is saturated: its band's queue was full,
# or it waited past the queue timeout (llm-d-router v0.10.0 pkg/epp/flowcontrol/types/
# outcomes.go). Not RejectedNoEndpoints (no replica: MaasModelDown) nor
# EvictedContextCancelled (the client gave up).
SHED_OUTCOMES = ("RejectedCapacity", "EvictedTTL")


def _by(labels: Sequence[str]) -> str:
    return f"by ({', '.join(labels)})"


def _with_model(metric: str) -> str:
    """The metric's series of callers of a model (`user` and `model`, from the TelemetryPolicy)."""
    return f'{metric}{{user!="", model!=""}}'


def usage_rules(
    tiers: Sequence[TierConfig], models: Sequence[ModelConfig], prices: PricesConfig
) -> list[dict[str, Any]]:
    """Recording rules, in evaluation order: normalised counters, usage, prices, cost."""
    by_usage = _by(USAGE_LABELS)
    token_limits = "|".join(tier_names.token_limit_name(t.name) for t in tiers)
    token_rejections = f'sum without (limit_name) ({_LIMITED}{{limit_name=~"{token_limits}"}})'
    # Users who were never refused by a token limit have no such series: count them as 0.
    token_rejections_or_zero = f"({token_rejections} or {_CALLS} * 0)"
    rules: list[dict[str, Any]] = [
        {"record": _CALLS, "expr": f"sum {by_usage} ({_with_model('authorized_calls')})"},
        {"record": _HITS, "expr": f"sum {by_usage} ({_with_model('authorized_hits')})"},
        {
            "record": _LIMITED,
            "expr": f"sum {_by((*USAGE_LABELS, 'limit_name'))} ({_with_model('limited_calls')})",
        },
        {"record": REQUESTS, "expr": f"({_CALLS} - {token_rejections_or_zero}) / 2"},
        {"record": TOKENS, "expr": f"{_HITS} - ({_CALLS} + {token_rejections_or_zero}) / 2"},
        {
            # `limit`: which limit refused the request, "requests" or "tokens".
            "record": REJECTED,
            "expr": (
                "sum without (limit_name) "
                f'(label_replace({_LIMITED}, "limit", "$1", "limit_name", ".*-(requests|tokens)"))'
            ),
        },
    ]
    for tier in tiers:
        for model in models:
            price = prices.price(tier.name, model.name)
            labels = {"tier": tier.name, "model": model.name, "currency": prices.currency}
            rules.append(
                {"record": PRICE_PER_REQUEST, "expr": f"vector({price.per_request!r})", "labels": labels}
            )
            rules.append(
                {
                    "record": PRICE_PER_1K_TOKENS,
                    "expr": f"vector({price.per_thousand_tokens!r})",
                    "labels": labels,
                }
            )
    rules.append(
        {
            "record": COST,
            "expr": (
                f"{REQUESTS} * on (tier, model) group_left (currency) {PRICE_PER_REQUEST}"
                f" + {TOKENS} / 1000 * on (tier, model) group_left (currency) {PRICE_PER_1K_TOKENS}"
            ),
        }
    )
    return rules


def _down(alert: str, selector: str, summary: str, minutes: int = 5, **labels: str) -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": f"absent(up{{{selector}}} == 1)",
        "for": f"{minutes}m",
        "labels": {"severity": "critical", **labels},
        "annotations": {"summary": summary},
    }


def alert_rules(models: Sequence[ModelConfig]) -> list[dict[str, Any]]:
    rejected = f"sum by (tier) (rate({REJECTED}[10m]))"
    admitted = f"sum by (tier) (rate({REQUESTS}[10m]))"
    rules = [
        _down(
            "MaasLimitadorDown",
            'maas_component="limitador"',
            "Limitador is down: requests pass without rate or token limits, and usage is not metered.",
        ),
        _down(
            "MaasAuthorinoDown",
            'maas_component="authorino"',
            "Authorino is down: every model request fails with 500.",
        ),
        _down(
            "MaasGatewayDown",
            'maas_component="gateway"',
            "The inference gateway is down: no model is reachable.",
        ),
        *(
            _down(
                "MaasModelDown",
                f'maas_component="model", model="{model.name}"',
                f"Model {model.name} has no healthy server.",
                minutes=10,
                model=model.name,
            )
            for model in models
        ),
        *(
            # Its pool fails closed: without the picker the model answers 5xx.
            _down(
                "MaasEndpointPickerDown",
                f'maas_component="endpoint-picker", model="{model.name}"',
                f"The endpoint picker of {model.name} is down: the model refuses every request.",
                model=model.name,
            )
            for model in models
            if model.scheduling == "pool"
        ),
        {
            "alert": "MaasTierThrottled",
            # A tier refused on every request has no admitted series: count it as 0.
            "expr": f"{rejected} / (({admitted} or {rejected} * 0) + {rejected}) > {THROTTLE_ALERT_RATIO}",
            "for": "10m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "More than half of tier {{ $labels.tier }}'s requests are refused with 429.",
            },
        },
    ]
    return rules


def scheduling_rules(tiers: Sequence[TierConfig], paying: Sequence[str]) -> list[dict[str, Any]]:
    """Per tier, what the pooled models' pickers did with its requests (per second, by model
    and outcome) and how many wait in their queues; an alert when a paying tier is shed."""
    picker = 'maas_component="endpoint-picker"'
    rules: list[dict[str, Any]] = []
    for tier, priority in tier_names.priorities(tiers).items():
        band = f'{picker}, priority="{priority}"'
        rules.append(
            {
                "record": SCHEDULED,
                "expr": f"sum by (model, outcome) (rate({upstream.FLOW_CONTROL_REQUESTS}{{{band}}}[5m]))",
                "labels": {"tier": tier},
            }
        )
        rules.append(
            {
                "record": SCHEDULER_QUEUE,
                "expr": f"sum by (model) ({upstream.FLOW_CONTROL_QUEUE_SIZE}{{{band}}})",
                "labels": {"tier": tier},
            }
        )
    if paying:
        shed = "|".join(SHED_OUTCOMES)
        rules.append(
            {
                "alert": "MaasPayingTierShed",
                "expr": (
                    f'sum by (tier, model) ({SCHEDULED}{{outcome=~"{shed}", tier=~"{"|".join(paying)}"}}) > 0'
                ),
                "for": "5m",
                "labels": {"severity": "critical"},
                "annotations": {
                    "summary": "Model {{ $labels.model }} is saturated and refuses requests of the paying "
                    "tier {{ $labels.tier }}: add replicas, or raise maas:scheduler.queueTimeout.",
                },
            }
        )
    return rules


def rule_groups(
    tiers: Sequence[TierConfig], models: Sequence[ModelConfig], prices: PricesConfig
) -> dict[str, Any]:
    """The PrometheusRule spec, which is also a plain Prometheus rule file (`promtool`)."""
    groups = [
        {"name": "maas-usage", "rules": usage_rules(tiers, models, prices)},
        {"name": "maas-alerts", "rules": alert_rules(models)},
    ]
    if any(m.scheduling == "pool" for m in models):
        paying = prices.paying([t.name for t in tiers])
        groups.append({"name": "maas-scheduling", "rules": scheduling_rules(tiers, paying)})
    return {"groups": groups}
