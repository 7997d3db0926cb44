"""Fixtures of the metering tests (observability, chargeback rules, the usage export)."""

from __future__ import annotations

import pytest

from tests.support.prerequisites import tool


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus's promtool, which checks and unit-tests the declared rules."""
    return tool("promtool", "run scripts/install-test-tools.sh (Debian package 'prometheus')")
