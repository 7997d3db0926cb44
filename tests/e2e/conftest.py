"""End-to-end tests against a deployed stack; skipped unless MAAS_E2E_STACK names one.

Run them after `make deploy-dev` with `make e2e` (or MAAS_E2E_STACK=<stack> pytest tests/e2e).
The readiness tests run first; tests marked `disruptive` (they take Authorino or Limitador
away for a while) run last; tests marked `window` wait on a rate-limit window and are
rerun up to twice. After every test, the leak oracle checks that each model answered
exactly the requests the gateway admitted to it: a 401, 403 or 429 that reached a model
fails the test that sent it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator, Iterator
from typing import cast

import pytest

from harness.program import typed_config
from tests.e2e.cluster import stack_outputs
from tests.e2e.platform import LEAK, Live, Platform

STACK_ENV = "MAAS_E2E_STACK"
# Reruns of a window test (pytest-rerunfailures' `flaky` marker), and when each group runs.
WINDOW_RERUNS = 2
_ORDER = {"readiness": 0, "disruptive": 2}
NO_STACK = (
    f"needs a deployed stack: run `make deploy-dev`, then `make e2e` ({STACK_ENV}=dev); "
    "this machine has no cluster"
)


def _group(item: pytest.Item) -> int:
    if item.get_closest_marker("disruptive"):
        return _ORDER["disruptive"]
    return _ORDER["readiness"] if "test_readiness_e2e" in str(item.path) else 1


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    e2e = [item for item in items if "/e2e/" in str(item.path)]
    for item in e2e:
        item.add_marker(pytest.mark.e2e)
        if not os.environ.get(STACK_ENV):
            item.add_marker(pytest.mark.skip(reason=NO_STACK))
        if item.get_closest_marker("window"):
            # A leak is never retried away: the oracle fails in teardown, which would rerun too
            # (pytest-rerunfailures 16.7 `rerun_except`).
            item.add_marker(pytest.mark.flaky(reruns=WINDOW_RERUNS, rerun_except=LEAK))
    # A stable sort: readiness first, disruptive last, the rest in file order.
    ordered = sorted(e2e, key=_group)
    positions = [i for i, item in enumerate(items) if "/e2e/" in str(item.path)]
    for position, item in zip(positions, ordered, strict=True):
        items[position] = item


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Every e2e test skipped for want of a stack reports from here, so that the summary
    folds them into one line (pytest-dev/pytest@9.2 src/_pytest/terminal.py _folded_skips: by path and
    reason) instead of one per test."""
    report = yield
    longrepr = report.longrepr
    if report.skipped and isinstance(longrepr, tuple) and NO_STACK in str(longrepr[2]):
        # No line: the summary folds a skip without one by path and reason alone.
        report.longrepr = cast(tuple[str, int, str], (__file__, None, longrepr[2]))
    return report


@pytest.fixture(scope="session")
def platform() -> Iterator[Live]:
    stack = os.environ.get(STACK_ENV)
    if not stack:
        pytest.skip(NO_STACK)
    missing = [tool for tool in ("kubectl", "pulumi") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} on PATH")
    live = Live(stack, typed_config(stack), stack_outputs(stack))
    try:
        yield live
    finally:
        live.close()


@pytest.fixture(scope="session", autouse=True)
def ready(platform: Live) -> None:
    """The readiness gate: no test runs against a platform that is not ready yet; each
    would fail for that reason instead of its own."""
    platform.wait_ready()


@pytest.fixture(autouse=True)
def no_denied_request_reaches_a_model(request: pytest.FixtureRequest) -> Iterator[None]:
    """The leak oracle around every test that talks to the platform."""
    if "platform" not in request.fixturenames:
        yield
        return
    p: Platform = request.getfixturevalue("platform")
    with p.leak_oracle():
        yield
