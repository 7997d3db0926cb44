"""The deploy's check that Kuadrant wrote the gateway's wasm config (scripts/kuadrant_written.py,
standard library only, run as a script) as a module, and what it compares: the stack's
Gateway, HTTPRoutes and Kuadrant policies as the program declares them."""

from __future__ import annotations

from typing import Any

from harness.program import Evaluation
from maas_policies import kuadrant_size
from tests.support.scripts import script_module

KINDS = ("Gateway", "HTTPRoute", "AuthPolicy", "RateLimitPolicy", "TokenRateLimitPolicy")


def check() -> Any:
    return script_module("kuadrant_written")


def declared(stack: Evaluation) -> list[dict[str, Any]]:
    """The objects the action sets are built from, as `kubectl get -o json` lists them."""
    return [kuadrant_size.plain(o.inputs) for o in stack.objects() if o.kind in KINDS]
