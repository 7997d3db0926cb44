"""Everything the stack declares reports ready on the cluster, with current status (bounded waits).

The same wait gates every other end-to-end test (tests/e2e/conftest.py); here it is the test.
"""

from __future__ import annotations

from tests.e2e.platform import Live, condition_holds


def test_gateway_programmed_policies_enforced_models_ready(platform: Live) -> None:
    platform.wait_ready()


def test_kuadrant_is_ready(platform: Live) -> None:
    (kuadrant,) = platform.get("kuadrant", "-A")["items"]
    assert condition_holds(kuadrant, "Ready")
