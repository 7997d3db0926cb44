"""Authorization rules evaluated as Authorino evaluates them (Kuadrant/authorino@v0.26.2
pkg/service/auth_pipeline.go): a rule holds for a request when all its `when` predicates do
(a predicate that errors, e.g. on a missing header, skips the rule); the request is admitted
when every rule that holds admits it.
"""

from __future__ import annotations

from typing import Any

from celpy.evaluation import CELEvalError

from components.config.model import ModelConfig
from components.names import MODEL_HEADER
from tests.support import cel


def admitted(rules: dict[str, Any], tier: str, model: str | None) -> bool:
    """Whether Authorino admits a caller of `tier` calling `model` (None: the model list)."""
    request: dict[str, dict[str, Any]] = {
        "auth": {"identity": {"userid": "u", "tier": tier}},
        "request": {"headers": {"host": "api.maas.local", **({MODEL_HEADER: model} if model else {})}},
    }
    converted = cel.activation(request)

    def holds(expression: str) -> bool:
        # An error (a missing key, say) holds neither as a condition nor as a pattern.
        try:
            return bool(cel.evaluate_in(expression, converted))
        except CELEvalError:
            return False

    for rule in rules.values():
        if all(holds(c["predicate"]) for c in rule.get("when", [])) and not all(
            holds(p["predicate"]) for p in rule["patternMatching"]["patterns"]
        ):
            return False
    return True


def admitted_models(rules: dict[str, Any], tier: str, models: list[ModelConfig]) -> list[str]:
    return [m.served_name for m in models if admitted(rules, tier, m.served_name)]
