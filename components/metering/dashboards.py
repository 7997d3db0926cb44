"""The Grafana dashboard of usage and cost, generated from the tiers and models of the stack."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, table, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

from components.config import ModelConfig, TierConfig
from components.metering import chargeback
from components.pins import upstream

UID = "maas-usage"
# kube-prometheus-stack provisions its Prometheus datasource with this uid.
DATASOURCE = DataSourceRef(type_val="prometheus", uid="prometheus")
_FILTER = '{tier=~"$tier", model=~"$model"}'


def _per_second(series: str, by: str) -> str:
    """A usage series (what each evaluation interval added) as a rate per second."""
    return (
        f"sum by ({by}) (avg_over_time({series}{_FILTER}[$__rate_interval])) / {chargeback.INTERVAL_SECONDS}"
    )


def _in_range(series: str, by: str, selector: str = _FILTER) -> str:
    """A usage series summed over the dashboard's range."""
    return f"sum by ({by}) (sum_over_time({series}{selector}[$__range]))"


def _query(expr: str, legend: str = "", instant: bool = False) -> prometheus.Dataquery:
    query = prometheus.Dataquery().ref_id("A").expr(expr).legend_format(legend)
    return query.instant().format(PromQueryFormat.TABLE) if instant else query.range()


def _timeseries(title: str, unit: str, expr: str, legend: str) -> timeseries.Panel:
    return timeseries.Panel().title(title).unit(unit).datasource(DATASOURCE).with_target(_query(expr, legend))


def _table(title: str, expr: str) -> table.Panel:
    return table.Panel().title(title).datasource(DATASOURCE).with_target(_query(expr, instant=True))


def _choice(name: str, values: Sequence[str]) -> dashboard.CustomVariable:
    return (
        dashboard.CustomVariable(name)
        .label(name.title())
        .values(",".join(values))
        .multi(True)
        .include_all(True)
    )


def usage_dashboard(tiers: Sequence[TierConfig], models: Sequence[ModelConfig]) -> dict[str, Any]:
    """Usage (rates), cost over the selected range, per tier and model, and model health."""
    requests, tokens, rejected, cost = (
        chargeback.REQUESTS,
        chargeback.TOKENS,
        chargeback.REJECTED,
        chargeback.COST,
    )
    board = (
        dashboard.Dashboard("MaaS usage and cost")
        .uid(UID)
        .tags(["maas-platform", "generated"])
        .refresh("30s")
        .time("now-24h", "now")
        .with_variable(_choice("tier", [t.name for t in tiers]))
        .with_variable(_choice("model", [m.name for m in models]))
        .with_row(dashboard.Row("Usage"))
        .with_panel(
            _timeseries(
                "Requests / s by tier",
                "reqps",
                _per_second(requests, "tier"),
                "{{tier}}",
            )
        )
        .with_panel(
            _timeseries(
                "Tokens / s by model",
                "short",
                _per_second(tokens, "model"),
                "{{model}}",
            )
        )
        .with_panel(
            _timeseries(
                "429 / s by tier and limit",
                "reqps",
                _per_second(rejected, "tier, limit"),
                "{{tier}} ({{limit}} limit)",
            )
        )
        .with_row(dashboard.Row("Requests per tier in the selected range"))
    )
    for tier in tiers:
        board = board.with_panel(
            stat.Panel()
            .title(tier.name)
            .description(tier.description)
            .datasource(DATASOURCE)
            .with_target(
                _query(
                    f'sum(sum_over_time({requests}{{tier="{tier.name}", model=~"$model"}}[$__range]))',
                    instant=True,
                )
            )
        )
    board = (
        board.with_row(dashboard.Row("Cost in the selected range"))
        .with_panel(
            _table(
                "Usage and cost per user",
                f"sort_desc({_in_range(cost, 'user, tier, currency')})",
            )
        )
        .with_panel(_table("Cost per model", _in_range(cost, "model, currency")))
        .with_panel(_table("Tokens per user", f"topk(20, {_in_range(tokens, 'user')})"))
        .with_row(dashboard.Row("Model servers"))
        .with_panel(
            _timeseries(
                "Request latency p95",
                "s",
                "histogram_quantile(0.95, sum by (le, model) "
                '(rate(vllm:e2e_request_latency_seconds_bucket{model=~"$model"}[$__rate_interval])))',
                "{{model}}",
            )
        )
        .with_panel(
            _timeseries(
                "Requests running",
                "short",
                'sum by (model) (vllm:num_requests_running{model=~"$model"})',
                "{{model}}",
            )
        )
        .with_panel(
            _timeseries(
                "Requests waiting (what scaled models follow)",
                "short",
                f'sum by (model) ({upstream.QUEUE_METRIC}{{model=~"$model"}})',
                "{{model}}",
            )
        )
        .with_panel(
            # Every model server pod exports the queue gauge: one series per replica.
            _timeseries(
                "Replicas",
                "short",
                f'count by (model) ({upstream.QUEUE_METRIC}{{model=~"$model"}})',
                "{{model}}",
            )
        )
    )
    if any(m.scheduling == "pool" for m in models):
        board = (
            board.with_row(dashboard.Row("Scheduling (pooled models)"))
            .with_panel(
                _timeseries(
                    "Admitted and shed / s by tier",
                    "reqps",
                    f"sum by (tier, outcome) ({chargeback.SCHEDULED}{_FILTER})",
                    "{{tier}} {{outcome}}",
                )
            )
            .with_panel(
                _timeseries(
                    "Waiting in the picker by tier",
                    "short",
                    f"sum by (tier) ({chargeback.SCHEDULER_QUEUE}{_FILTER})",
                    "{{tier}}",
                )
            )
        )
    built: dict[str, Any] = json.loads(JSONEncoder(sort_keys=True).encode(board.build()))
    return built


def queries(board: dict[str, Any]) -> list[str]:
    """Every PromQL expression of a dashboard's panels."""
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]
