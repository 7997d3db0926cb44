"""Everything the stack declares reports ready on the cluster, with current status (bounded waits).

The same wait gates every other end-to-end test (tests/e2e/conftest.py); here it is the test.
"""

from __future__ import annotations

import json

from harness.program import evaluate
from tests.e2e.platform import Live, condition_holds
from tests.support import written


def test_gateway_programmed_policies_enforced_models_ready(platform: Live) -> None:
    platform.wait_ready()


def test_kuadrant_is_ready(platform: Live) -> None:
    (kuadrant,) = platform.get("kuadrant", "-A")["items"]
    assert condition_holds(kuadrant, "Ready")


def test_kuadrant_wrote_every_action_set_the_stack_declares(platform: Live) -> None:
    """The gateway's wasm config (the operator's EnvoyFilter) holds an action set for every
    listener x metered path of the stack's policy route, each with its AuthConfig scope and
    every tier's limits: the deploy's own check (scripts/kuadrant_written.py), here against
    the objects the program declares rather than those the cluster lists."""
    objects = written.declared(evaluate(platform.stack))
    check = written.check()
    (gateway,) = [o for o in objects if o["kind"] == "Gateway"]
    namespace, name = gateway["metadata"]["namespace"], f"kuadrant-{gateway['metadata']['name']}"
    lacking: list[str] = []

    def complete() -> bool:
        envoy_filter = platform.kubectl(
            "get",
            "envoyfilters.networking.istio.io",
            "-n",
            namespace,
            name,
            "--ignore-not-found",
            "-o",
            "json",
        ).stdout
        lacking[:] = check.problems(
            objects, gateway, json.loads(envoy_filter) if envoy_filter.strip() else None
        )
        return not lacking

    try:
        platform.until(complete, 120, f"EnvoyFilter {namespace}/{name} to hold every action set")
    except AssertionError as error:
        raise AssertionError(f"{error}; lacking: {lacking}") from None
