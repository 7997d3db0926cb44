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


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """A label selector's `matchLabels` (all Authorino's apiKey selectors use) holds for `labels`
    (Kuadrant/authorino@v0.26.2 pkg/evaluators/identity/api_key.go loadSecrets: a list by the
    rule's label selector)."""
    assert set(selector) == {"matchLabels"}, selector
    return all(labels.get(key) == value for key, value in selector["matchLabels"].items())


def api_key_identity(
    authentication: dict[str, Any], secret: dict[str, Any], path: str = "/v1/chat/completions"
) -> dict[str, Any] | None:
    """The identity a request presenting `secret`'s key to `path` gets, or None (401): each apiKey
    rule holds the Secrets its selector matches in Authorino's namespace (loadSecrets,
    above), a rule whose `when` fails is skipped, and the identity is the Secret with
    the rule's overrides applied (auth.identity.* in later rules). Asserts that at most one rule
    takes the key: two would race, the first to answer winning."""
    request = cel.activation({"request": {"url_path": path, "headers": {}}})
    found = []
    for rule in authentication.values():
        if "apiKey" not in rule or not selects(
            rule["apiKey"]["selector"], secret["metadata"].get("labels", {})
        ):
            continue
        if not all(cel.evaluate_in(c["predicate"], request) for c in rule.get("when", [])):
            continue
        identity = cel.activation({"auth": {"identity": secret}})
        found.append(
            {
                name: value["value"] if "value" in value else cel.evaluate_in(value["expression"], identity)
                for name, value in rule.get("overrides", {}).items()
            }
        )
    assert len(found) <= 1, found
    return found[0] if found else None
