"""Fixtures every folder shares: each stack evaluated at most once per session.

Folder-specific fixtures live in each folder's conftest.py; helpers in tests/support/.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.program import Evaluation, evaluate, stack_names, typed_config

# The helpers' own asserts report like a test's (values shown on failure).
pytest.register_assert_rewrite("tests.support")

STACKS = stack_names()
# The stacks on plain Kubernetes: Helm charts, our own Prometheus, port-forwards.
KUBERNETES_STACKS = [s for s in STACKS if typed_config(s).flavour == "kubernetes"]
# The stacks with Keycloak, as their stack files say.
OIDC_STACKS = [s for s in STACKS if typed_config(s).auth.oidc.enabled]


class _Stacks:
    """Evaluates a stack's file on first use and keeps the result for the session."""

    def __init__(self) -> None:
        self._evaluated: dict[str, Evaluation] = {}

    def __call__(self, stack: str) -> Evaluation:
        if stack not in self._evaluated:
            result = evaluate(stack)
            if result.error is not None:
                raise AssertionError(f"stack {stack} failed to evaluate: {result.error}") from result.error
            self._evaluated[stack] = result
        return self._evaluated[stack]


@pytest.fixture(scope="session")
def stack_of() -> Callable[[str], Evaluation]:
    """A stack by name, as the program declares it; evaluated once per session, so tests
    must not mutate the result (evaluate a variant with tests.support.configs instead)."""
    return _Stacks()


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest, stack_of: Callable[[str], Evaluation]) -> Evaluation:
    """Each stack the project defines (from its Pulumi.<stack>.yaml), as the program declares it."""
    return stack_of(str(request.param))


@pytest.fixture(params=KUBERNETES_STACKS)
def kubernetes_stack(request: pytest.FixtureRequest, stack_of: Callable[[str], Evaluation]) -> Evaluation:
    """Each stack of the plain-Kubernetes flavour (the OpenShift one: tests/platform/test_openshift.py)."""
    return stack_of(str(request.param))


@pytest.fixture(params=OIDC_STACKS)
def oidc_stack(request: pytest.FixtureRequest, stack_of: Callable[[str], Evaluation]) -> Evaluation:
    """Each stack with Keycloak (OIDC), and so the key service and its page."""
    return stack_of(str(request.param))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One loud line for the tests that skipped for want of ../shared, which would otherwise
    pass by among the other skips."""
    # Here, not at the top: tests.support is imported after its assert rewriting is registered.
    from tests.support.prerequisites import SHARED, WITHOUT_SHARED

    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and WITHOUT_SHARED in str(report.longrepr[2])
    ]
    if skipped:
        terminalreporter.write_sep(
            "!",
            f"{len(skipped)} tests skipped without ../shared ({SHARED}): clone the shared "
            "checkout beside this one (CRD schemas, manifest cases, CHECKLIST.md)",
            yellow=True,
            bold=True,
        )
