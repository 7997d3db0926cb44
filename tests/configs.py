"""Builds variants of a stack's real config for tests: same file, a few keys changed."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from harness.program import Evaluation, evaluate, stack_config

REMOVE = object()


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
