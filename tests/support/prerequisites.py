"""What a test does when something it runs is missing: skip locally, fail in CI."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

# The steering repository's checkout beside this one: CRD schemas, manifest cases with known
# verdicts, CHECKLIST.md. MAAS_SHARED_DIR names another place (the tests of this skip use it).
SHARED = Path(os.environ.get("MAAS_SHARED_DIR") or Path(__file__).resolve().parents[3] / "shared")
# In the reason of every skip for want of it: tests/conftest.py counts them in one line.
WITHOUT_SHARED = "without ../shared"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def skip_or_fail(reason: str) -> None:
    """Skips on a developer's machine; in CI a missing prerequisite is a failure."""
    if in_ci():
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


def skip_without_shared(reason: str, fail_in_ci: bool = False) -> None:
    """Skips a test that needs ../shared, saying so in a form the session summary counts."""
    text = f"{WITHOUT_SHARED} ({SHARED}): {reason}"
    if fail_in_ci:
        skip_or_fail(text)
    pytest.skip(text)


def tool(name: str, how_to_get: str) -> str:
    """The path of a command the tests run, from PATH, this virtualenv (where wheels such as
    actionlint's put it) or the sbin directories (Debian's nginx), or a skip (a failure in
    CI) saying how to get it."""
    found = shutil.which(name) or shutil.which(
        name, path=os.pathsep.join([str(Path(sys.executable).parent), "/usr/sbin", "/sbin"])
    )
    if found is None:
        skip_or_fail(f"no {name}: {how_to_get}")
    assert found is not None
    return found
