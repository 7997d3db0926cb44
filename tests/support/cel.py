"""Evaluating the program's generated CEL offline, as Authorino and the wasm-shim would."""

from __future__ import annotations

import functools
from typing import Any

import celpy
from celpy.adapter import json_to_cel


@functools.cache
def _program(expression: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(expression))


def activation(values: dict[str, Any]) -> dict[str, Any]:
    """Plain JSON-like values as CEL values, converted once for many evaluations."""
    return {k: json_to_cel(v) for k, v in values.items()}


def evaluate(expression: str, values: dict[str, Any]) -> Any:
    return _program(expression).evaluate(activation(values))


def evaluate_in(expression: str, converted: dict[str, Any]) -> Any:
    """As `evaluate`, with an activation already converted by `activation`."""
    return _program(expression).evaluate(converted)
