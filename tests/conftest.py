"""Shared fixtures: each stack evaluated once per session, and the schema catalog."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from components.pins import versions
from harness.program import Evaluation, evaluate, stack_names
from harness.validation import HOW_TO_GET_SCHEMAS, SchemaCatalog

STACKS = stack_names()
_evaluated: dict[str, Evaluation] = {}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skips on a developer's machine; in CI a missing prerequisite is a failure."""
    if in_ci():
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


def evaluated(stack: str) -> Evaluation:
    """The stack's file evaluated once; tests must not mutate the result."""
    if stack not in _evaluated:
        result = evaluate(stack)
        if result.error is not None:
            raise AssertionError(f"stack {stack} failed to evaluate: {result.error}") from result.error
        _evaluated[stack] = result
    return _evaluated[stack]


@pytest.fixture(params=STACKS)
def stack(request: pytest.FixtureRequest) -> Evaluation:
    """Each stack the project defines (from its Pulumi.<stack>.yaml), as the program declares it."""
    return evaluated(request.param)


@pytest.fixture
def stack_of() -> Callable[[str], Evaluation]:
    return evaluated


@pytest.fixture(scope="session")
def catalog() -> SchemaCatalog:
    found = SchemaCatalog.locate(versions.KUBERNETES_MINOR)
    if found is None:
        skip_or_fail(HOW_TO_GET_SCHEMAS)
    assert found is not None
    return found


# The policy pack's module is imported by name, as Pulumi does when it runs the pack.
POLICIES_DIR = Path(__file__).resolve().parent.parent / "policies"
if str(POLICIES_DIR) not in sys.path:
    sys.path.insert(0, str(POLICIES_DIR))
