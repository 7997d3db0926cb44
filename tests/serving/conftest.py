"""Fixtures of the serving tests (models, routes, the gateway's request-body filter)."""

from __future__ import annotations

import pytest

from tests.support.prerequisites import tool


@pytest.fixture(scope="session")
def luajit() -> str:
    """LuaJIT, Envoy's Lua runtime, which runs the gateway's filter in the tests."""
    return tool("luajit", "`make check` installs it (scripts/install-test-tools.sh)")
