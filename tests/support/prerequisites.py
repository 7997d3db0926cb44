"""What a test does when something it runs is missing: skip locally, fail in CI."""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skips on a developer's machine; in CI a missing prerequisite is a failure."""
    if in_ci():
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)
