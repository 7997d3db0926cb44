"""Fixtures of the serving tests (models, routes, the gateway's stream-usage filter)."""

from __future__ import annotations

import shutil

import pytest

from tests.support.prerequisites import skip_or_fail


@pytest.fixture(scope="session")
def luajit() -> str:
    """LuaJIT, Envoy's Lua runtime, which runs the gateway's filter in the tests."""
    found = shutil.which("luajit")
    if found is None:
        skip_or_fail("no luajit: `make check` installs it (scripts/install-test-tools.sh)")
    assert found is not None
    return found
