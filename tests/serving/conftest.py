"""Fixtures of the serving tests: the runtimes of the gateway's Lua filter and the model list."""

from __future__ import annotations

import pytest

from tests.support.prerequisites import tool


@pytest.fixture(scope="session")
def luajit() -> str:
    """LuaJIT, Envoy's Lua runtime, which runs the gateway's filter in the tests."""
    return tool("luajit", "`make check` installs it (scripts/install-test-tools.sh)")


@pytest.fixture(scope="session")
def nginx() -> str:
    """nginx, which serves the shared host's model list, to run its generated configuration."""
    return tool("nginx", "`make check` installs it (scripts/install-test-tools.sh)")
