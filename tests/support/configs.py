"""Builds variants of a stack's real config for tests: same file, a few keys changed."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

from components.config import ConfigError, ModelConfig
from harness.program import Evaluation, evaluate, stack_config, stack_names, typed_config

REMOVE = object()
# The local kind cluster's context: kind names it "kind-" + the cluster's name
# (scripts/lib.sh MAAS_KIND_CLUSTER=maas, KINDClusterKey there).
KIND_CONTEXT = "kind-maas"


def kind_stacks() -> list[str]:
    """The stacks `make deploy` puts on the local kind cluster: the ones e2e.yml runs on a
    GitHub runner (tests/delivery/test_delivery.py holds the workflow to them)."""
    return [s for s in stack_names() if typed_config(s).cluster.context == KIND_CONTEXT]


def variant(stack: str, changes: Mapping[str, Any]) -> dict[str, Any]:
    """The stack's config with top-level keys replaced, added, or removed (value REMOVE)."""
    config = copy.deepcopy(stack_config(stack))
    for key, value in changes.items():
        if value is REMOVE:
            config.pop(key, None)
        else:
            config[key] = value
    return config


def evaluate_variant(
    stack: str, changes: Mapping[str, Any], secrets: Mapping[str, str] | None = None
) -> Evaluation:
    return evaluate(stack, variant(stack, changes), secrets)


def assert_refused(
    stack: str, changes: Mapping[str, Any], expected: str, secrets: Mapping[str, str] | None = None
) -> str:
    """The variant stops with a ConfigError naming `expected` and declares nothing; returns the message."""
    result = evaluate_variant(stack, changes, secrets)
    assert isinstance(result.error, ConfigError), result.error
    assert result.resources == []
    message = str(result.error)
    assert expected in message
    return message


def simulator(name: str, **keys: Any) -> ModelConfig:
    """A simulator model of the catalog, host = name, with camelCase `keys` (as a stack file
    writes them: servedModelName, tiers), validated as the loader would."""
    return ModelConfig.model_validate_json(
        json.dumps({"name": name, "host": name, "runtime": "simulator", **keys})
    )
