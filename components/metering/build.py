"""The metering group: what is scraped, usage and cost rules, the dashboard (with a monitoring stack)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.config import StackConfig
from components.metering import chargeback
from components.metering.observability import Observability, ObservabilityArgs
from components.platform.build import Platform
from components.serving.build import Serving


@dataclass(frozen=True)
class Metering:
    observability: Observability


def build(cfg: StackConfig, platform: Platform, serving: Serving) -> Metering | None:
    if platform.metrics is None:
        return None
    observability = Observability(
        "observability",
        ObservabilityArgs(
            tiers=cfg.tiers,
            models=cfg.models,
            prices=cfg.prices,
            observability_namespace=platform.cluster.namespace("observability").output,
            kuadrant_namespace=platform.cluster.namespace("kuadrant").output,
            models_namespace=platform.cluster.namespace("models").output,
            rule_labels=platform.metrics.rule_labels,
            read_labels=platform.metrics.reading.series_labels if platform.metrics.reading else {},
            after=[
                *([platform.metrics.installed] if platform.metrics.installed else []),
                platform.kuadrant,
                serving.gateway,
            ],
        ),
        platform.on_cluster,
    )
    pulumi.export("usageExport", platform.metrics.usage_export)
    # What each budget is held to, for the preview (docs/metering.md "Budgets").
    budgets = chargeback.budget_statements(cfg.tiers, cfg.models, cfg.prices, cfg.user_tiers)
    if budgets:
        pulumi.export("budgets", budgets)
    return Metering(observability=observability)
