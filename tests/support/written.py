"""The deploy's check that Kuadrant wrote the gateway's wasm config (scripts/kuadrant_written.py,
standard library only, run as a script) as a module, and what it compares: the stack's
Gateway, HTTPRoutes and Kuadrant policies as the program declares them."""

from __future__ import annotations

import functools
import importlib.util
import sys
from typing import Any

from harness.program import PROJECT_DIR, Evaluation
from maas_policies import kuadrant_size

KINDS = ("Gateway", "HTTPRoute", "AuthPolicy", "RateLimitPolicy", "TokenRateLimitPolicy")


@functools.cache
def check() -> Any:
    spec = importlib.util.spec_from_file_location(
        "kuadrant_written", PROJECT_DIR / "scripts" / "kuadrant_written.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def declared(stack: Evaluation) -> list[dict[str, Any]]:
    """The objects the action sets are built from, as `kubectl get -o json` lists them."""
    return [kuadrant_size.plain(o.inputs) for o in stack.objects() if o.kind in KINDS]
