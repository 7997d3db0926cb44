"""Fixtures of the metering tests (observability, chargeback rules, the usage export)."""

from __future__ import annotations

import shutil

import pytest

from tests.support.prerequisites import skip_or_fail


@pytest.fixture(scope="session")
def promtool() -> str:
    """Prometheus's promtool, which checks and unit-tests the declared rules."""
    found = shutil.which("promtool")
    if found is None:
        skip_or_fail("no promtool: run scripts/install-test-tools.sh (Debian package 'prometheus')")
    assert found is not None
    return found
