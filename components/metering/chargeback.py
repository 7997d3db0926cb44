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

A money budget's cap (components/access/tiers.py budget_caps, in requests only) joins the
request limit's call and changes none of this: its 429 is the request limit's row, with
limit_name +budget:requests:… when the cap is the full limit Limitador names (the first
counter it finds full: Kuadrant/limitador@v2.4.0 limitador/src/storage/in_memory.rs
check_and_update).

The combinations are not counters across pods, so each scraped series' growth per evaluation
interval (`INTERVAL`) is recorded first and only those increases are summed, combined and
priced: docs/metering.md, "From counters to requests, tokens and cost". The model label is the
catalog name (components/access/tiers.py telemetry_labels).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from components.access import tiers as tier_names
from components.config import ModelConfig, PricesConfig, Rate, TierConfig
from components.config.types import window_seconds
from components.pins import upstream

# Per user, tier and model, what each evaluation interval added: sum them over a window.
REQUESTS = "maas:requests:increase"
TOKENS = "maas:tokens:increase"
REJECTED = "maas:rejected_requests:increase"
COST = "maas:cost:increase"
PRICE_PER_REQUEST = "maas:price_per_request"
PRICE_PER_1K_TOKENS = "maas:price_per_1k_tokens"
_CALLS = "maas:limitador_authorized_calls:increase"
_HITS = "maas:limitador_authorized_hits:increase"
_LIMITED = "maas:limitador_limited_calls:increase"
# How often the usage rules run; each increase is taken against the previous evaluation, so
# the group carries this interval itself rather than inherit Prometheus's.
INTERVAL_SECONDS = 30
INTERVAL = f"{INTERVAL_SECONDS}s"
# How long a series may go unscraped (a Prometheus restart, a failed scrape) and still be
# followed across the gap rather than counted again from 0.
BRIDGED_GAP = "1h"
USAGE_LABELS = ("user", "tier", "model")
# A tier is throttled hard when more than this share of its requests gets 429 for 10 minutes.
THROTTLE_ALERT_RATIO = 0.5
# The model servers' own token counters, per model: vLLM's, which llm-d-inference-sim exports
# alike (llm-d/llm-d-inference-sim@v0.10.2 pkg/llm-d-inference-sim/metrics.go PromptTokensTotalMetricName,
# GenerationTokensTotalMetricName, added when a request's processing ends, whether or not
# the client still reads it).
SERVED_TOKEN_COUNTERS = ("vllm:prompt_tokens_total", "vllm:generation_tokens_total")
# Tokens served but never charged: a stream cut before its end (the wasm-shim reports usage
# only from the stream's last chunk), a token report lost on its way to Limitador. Alert
# when an hour's uncharged tokens pass both bounds.
UNCHARGED_ALERT_TOKENS = 1000
UNCHARGED_ALERT_SHARE = 0.05

# Pooled models: the picker's flow-control outcomes and queue, per tier (the picker labels
# them by priority, components/access/tiers.py priorities).
SCHEDULED = "maas:scheduled_requests:rate5m"
SCHEDULER_QUEUE = "maas:scheduler_queue:size"
# Outcomes that refuse a request because the pool is saturated: its band's queue was full,
# or it waited past the queue timeout (llm-d/llm-d-router@v0.10.0 pkg/epp/flowcontrol/types/
# outcomes.go). Not RejectedNoEndpoints (no replica: MaasModelDown) nor
# EvictedContextCancelled (the client gave up).
SHED_OUTCOMES = ("RejectedCapacity", "EvictedTTL")


def _by(labels: Sequence[str]) -> str:
    return f"by ({', '.join(labels)})"


def _increase(metric: str, interval: str) -> str:
    """Per scraped series of a model's callers (`user` and `model`, from the TelemetryPolicy),
    what the counter grew since the previous evaluation, restarts and new series counted from
    0 (docs/architecture.md, "Usage counted across restarts")."""
    now = f'{metric}{{user!="", model!=""}}'
    before = f"last_over_time({now}[{BRIDGED_GAP}] offset {interval})"
    grown = f"(({now} - {before}) >= 0 or {now})"
    return grown


def _refused(limits: str) -> str:
    """Per user, tier and model, the calls limits matching the regex `limits` refused; 0 where
    none did."""
    return f'(sum without (limit_name) ({_LIMITED}{{limit_name=~"{limits}"}}) or {_CALLS} * 0)'


def usage_rules(
    tiers: Sequence[TierConfig],
    models: Sequence[ModelConfig],
    prices: PricesConfig,
    interval: str,
) -> list[dict[str, Any]]:
    """Recording rules, in evaluation order: what each counter grew, usage, prices, cost; all
    per evaluation `interval`, which must be the group's.

    Limitador counts an authorized call for the request limit's call (one hit) and for each
    token limit's check, and hits for each token report (Kuadrant/limitador@v2.4.0
    limitador-server/src/envoy_rls/server.rs should_rate_limit, kuadrant_service.rs
    check_rate_limit, report). So an admitted request is 2 calls and 1 + its tokens in hits,
    one refused by a token limit 1 call and 1 hit: a refused check ends the request with no
    further call (Kuadrant/wasm-shim@v0.14.1 src/configuration/legacy_translation.rs
    build_ratelimit_on_reply, a terminal deny). A budget cap is one more limit in the request
    limit's call (tiers.py budget_caps), so its 429 is that call's, and adds no call or hit."""
    by_usage = _by(USAGE_LABELS)
    # A model's own quota is named <tier>.<model>-tokens: the dot, escaped, matches itself only.
    token_limits = "|".join(n.replace(".", "\\\\.") for n in tier_names.limit_names(tiers, models, "tokens"))
    # Users who were never refused by a token limit have no such series: count them as 0.
    refused = _refused(token_limits)
    requests = f"({_CALLS} - {refused}) / 2"
    tokens = f"{_HITS} - ({_CALLS} + {refused}) / 2"
    rules: list[dict[str, Any]] = [
        {"record": _CALLS, "expr": f"sum {by_usage} ({_increase('authorized_calls', interval)})"},
        {"record": _HITS, "expr": f"sum {by_usage} ({_increase('authorized_hits', interval)})"},
        {
            "record": _LIMITED,
            "expr": (f"sum {_by((*USAGE_LABELS, 'limit_name'))} ({_increase('limited_calls', interval)})"),
        },
        {"record": REQUESTS, "expr": requests},
        {"record": TOKENS, "expr": tokens},
        {
            # `limit`: which limit refused the request, "requests", "tokens" or "budget" (a
            # budget cap in the request limit's call, tiers.py budget_limit_name).
            "record": REJECTED,
            "expr": (
                "sum without (limit_name) (label_replace("
                f'label_replace({_LIMITED}, "limit", "$1", "limit_name", ".*-(requests|tokens)"),'
                f' "limit", "budget", "limit_name", "{tier_names.budget_limit_pattern()}"))'
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
    # This interval's usage at this interval's price.
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


# Budgets (maas:prices.budgets): per user, tier, currency and budget window, what was spent
# in the window, the budgets as series, and the share of its budget each user has spent.
BUDGET_SPEND = "maas:budget_spend:sum"
BUDGET_AMOUNT = "maas:budget_amount"
BUDGET_SPENT = "maas:budget_spent:ratio"
# How often the budget group sums its windows: a month of 30 s increases is a large range.
BUDGET_INTERVAL = "1m"


def budget_rules(prices: PricesConfig) -> list[dict[str, Any]]:
    """What each user spent per budget window, against the user's own budget if the stack
    file names one, else the tier's; an alert per configured fraction, firing while the
    share spent is between it and the next, so one fires at a time. The stop, where a count
    of Limitador's is the spend, is a limit of the tier policies (tiers.py budget_caps)."""
    entries = prices.budgets.entries()
    if not entries:
        return []
    windows = sorted({b.window for _, _, b in entries}, key=window_seconds)
    own = f'{BUDGET_AMOUNT}{{user!=""}}'
    rules: list[dict[str, Any]] = [
        {
            "record": BUDGET_SPEND,
            "expr": f"sum by (user, tier, currency) (sum_over_time({COST}[{window}]))",
            "labels": {"window": window},
        }
        for window in windows
    ]
    rules.extend(
        {
            "record": BUDGET_AMOUNT,
            "expr": f"vector({budget.amount!r})",
            "labels": {kind: name, "window": budget.window, "currency": prices.currency},
        }
        for kind, name, budget in entries
    )
    rules.append(
        {
            "record": BUDGET_SPENT,
            "expr": (
                f"{BUDGET_SPEND} / on (user, window) group_left () {own}"
                f" or ({BUDGET_SPEND} unless on (user) {own})"
                f' / on (tier, window) group_left () {BUDGET_AMOUNT}{{tier!=""}}'
            ),
        }
    )
    fractions = prices.budgets.alert_at
    for index, fraction in enumerate(fractions):
        below = f" < {fractions[index + 1]!r}" if index + 1 < len(fractions) else ""
        rules.append(
            {
                "alert": "MaasBudgetSpent",
                "expr": f"{BUDGET_SPENT} >= {fraction!r}{below}",
                "labels": {
                    "severity": "critical" if fraction >= 1 else "warning",
                    "fraction": f"{fraction!r}",
                },
                "annotations": {
                    "summary": "{{ $labels.user }} (tier {{ $labels.tier }}) has spent "
                    f"{fraction:.0%} or more of a budget per {{{{ $labels.window }}}} in "
                    "{{ $labels.currency }}. Whether a cap stops spending at the budget, and what "
                    'holds where none does, is in the stack output budgets (docs/metering.md "Budgets").',
                },
            }
        )
    return rules


def _most_in(rates: Sequence[Rate], seconds: float) -> int:
    """The most a limit of `rates` admits in any `seconds`: a window starts at the first hit
    after the last one expired (Kuadrant/limitador@v2.4.0
    limitador/src/storage/atomic_expiring_value.rs), so at most floor(seconds / window) + 1
    of its windows start in that time; the tightest rate bounds it."""
    return min(r.limit * (int(seconds // window_seconds(r.window)) + 1) for r in rates)


def budget_statements(
    tiers: Sequence[TierConfig], models: Sequence[ModelConfig], prices: PricesConfig, users: dict[str, str]
) -> dict[str, str]:
    """What the preview says of each budget (stack output `budgets`): alerted, and either
    stopped by the cap the tier policies declare (tiers.py budget_caps, the same call) or, where
    no Limitador count is the spend, what the limits enforce instead: at most this much spend
    per budget window for one user, summed over the models the tier may use at their prices.
    `users`: user -> tier."""
    by_name = {t.name: t for t in tiers}
    caps = {
        (c.tier if c.user is None else None, c.user): c
        for c in tier_names.budget_caps(tiers, models, prices, users)
    }
    alerts = ", ".join(f"{f:.0%}" for f in prices.budgets.alert_at)
    found = {}
    for kind, name, budget in prices.budgets.entries():
        tier = by_name[name if kind == "tier" else users[name]]
        who = f"each user of tier {name}" if kind == "tier" else f"user {name}"
        said = (
            f"{budget.amount:g} {prices.currency} per {budget.window} for {who}: alerts at {alerts} "
            "of it (Prometheus, from the billing rules); "
        )
        cap = caps.get((name, None) if kind == "tier" else (None, name))
        if cap is not None:
            (limit,) = [n for n, window in cap.rates if window == budget.window]
            each = f"{cap.price:g} {prices.currency}"
            found[f"{kind} {name} per {budget.window}"] = said + _stopped(cap, limit, budget.window, each)
            continue
        seconds = window_seconds(budget.window)
        most = 0.0
        for model in (m for m in models if m.admits(tier.name)):
            price = prices.price(tier.name, model.name)
            requests = _most_in(model.own_rates(tier.name, "requests") or tier.requests, seconds)
            tokens = _most_in(model.own_rates(tier.name, "tokens") or tier.tokens, seconds)
            most += requests * price.per_request + tokens / 1000 * price.per_thousand_tokens
        held = (
            "the limits alone keep the spend under the budget"
            if most <= budget.amount
            else f"the spend can pass the budget by up to {most - budget.amount:.2f} {prices.currency}"
        )
        why = _why_no_cap(tier, models, prices)
        found[f"{kind} {name} per {budget.window}"] = said + (
            f"no hard stop: {why}. Enforced instead: tier "
            f"{tier.name}'s request and token limits and its models' own quotas, at most {most:.2f} "
            f"{prices.currency} per {budget.window} at these prices, so {held}, give or take what the last "
            "request of each token window takes past its limit (docs/metering.md)."
        )
    return found


def _why_no_cap(tier: TierConfig, models: Sequence[ModelConfig], prices: PricesConfig) -> str:
    """Why no limit holds a budget of `tier` exactly (tiers.py budget_caps makes none)."""
    found = {prices.price(tier.name, m.name) for m in models if m.admits(tier.name)}
    none = "no one count Limitador keeps is the spend, since"
    if len(found) > 1:
        return f"{none} the models of tier {tier.name} are priced apart, and one token limit spans them"
    if any(p.per_request > 0 and p.per_thousand_tokens > 0 for p in found):
        return f"{none} tier {tier.name} pays per request and per token both"
    if any(p.per_thousand_tokens > 0 for p in found):
        return (
            f"tier {tier.name} pays per token alone, and a cap in tokens would be a second token limit, "
            "which the wasm-shim (v0.14.1) checks in a chain after the first, whose report waits for "
            "the answer: the tier's own token limit would be checked after the model answered "
            "(components/access/tiers.py _budget_unit)"
        )
    return f"{none} tier {tier.name}'s usage is unpriced"


def _stopped(cap: tier_names.BudgetCap, limit: int, window: str, price: str) -> str:
    """The stop a cap holds, in the preview's words; `price`: what each model charges."""
    return (
        f"enforced: a request cap of {limit} per user per {window} (limit {cap.name} of the "
        f"RateLimitPolicy, in the same Limitador call as the tier's request limit, before the request), "
        f"counted across the user's models, each at {price} per request and nothing per token, so "
        "spending stops at the budget."
    )


def _down(alert: str, selector: str, summary: str, minutes: int = 5, **labels: str) -> dict[str, Any]:
    return {
        "alert": alert,
        "expr": f"absent(up{{{selector}}} == 1)",
        "for": f"{minutes}m",
        "labels": {"severity": "critical", **labels},
        "annotations": {"summary": summary},
    }


def alert_rules(models: Sequence[ModelConfig]) -> list[dict[str, Any]]:
    # Served: what the model servers counted (per pod, then summed); charged: the usage rules.
    served = " + ".join(
        f'sum by (model) (increase({counter}{{maas_component="model"}}[1h]))'
        for counter in SERVED_TOKEN_COUNTERS
    )
    served = f"({served})"
    charged = f"sum by (model) (sum_over_time({TOKENS}[1h]))"
    uncharged = f"({served} - ({charged} or {served} * 0))"
    rejected = f"sum by (tier) (sum_over_time({REJECTED}[10m]))"
    admitted = f"sum by (tier) (sum_over_time({REQUESTS}[10m]))"
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
            "alert": "MaasTokensUncharged",
            "expr": (
                f"{uncharged} > {UNCHARGED_ALERT_TOKENS} and {uncharged} > {UNCHARGED_ALERT_SHARE} * {served}"
            ),
            "for": "15m",
            "labels": {"severity": "warning"},
            "annotations": {
                "summary": "Model {{ $labels.model }} served more tokens in the last hour than were "
                "charged: streams cut before their end, or token reports that never reached Limitador.",
            },
        },
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
    tiers: Sequence[TierConfig],
    models: Sequence[ModelConfig],
    prices: PricesConfig,
    interval: str = INTERVAL,
    read_labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The PrometheusRule spec, which is also a plain Prometheus rule file (`promtool`).

    `interval`: the usage group's evaluation interval (a test's Prometheus runs faster).
    `read_labels`: labels on the series the key service reads (REQUESTS, TOKENS, COST), which
    a tenancy proxy shows it only so labelled (components/flavour/protocol.py Reading)."""
    usage = usage_rules(tiers, models, prices, interval)
    for rule in usage:
        if read_labels and rule.get("record") in (REQUESTS, TOKENS, COST):
            # Both sides of COST's sum carry them, so its vectors still match.
            rule["labels"] = dict(read_labels)
    groups = [
        {"name": "maas-usage", "interval": interval, "rules": usage},
        {"name": "maas-alerts", "rules": alert_rules(models)},
    ]
    budgets = budget_rules(prices)
    if budgets:
        groups.append({"name": "maas-budgets", "interval": BUDGET_INTERVAL, "rules": budgets})
    if any(m.scheduling == "pool" for m in models):
        paying = prices.paying([t.name for t in tiers])
        groups.append({"name": "maas-scheduling", "rules": scheduling_rules(tiers, paying)})
    return {"groups": groups}
