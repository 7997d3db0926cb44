"""Skips that say so once: the tests that need ../shared, counted in one loud summary line,
and the e2e tests without a deployed stack, folded into one reason."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from harness.program import PROJECT_DIR


def _pytest(*args: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("CI", "MAAS_E2E_STACK", "PYTEST_ADDOPTS")}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
        cwd=PROJECT_DIR,
        env=environment | env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_tests_skipped_without_shared_are_counted_in_one_loud_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "shared")
    out = _pytest(
        "tests/schemas", "tests/program/test_checklist.py", MAAS_SHARED_DIR=missing, MAAS_SCHEMA_DIR=missing
    )
    skipped = int(re.search(r"(\d+) skipped", out).group(1))  # type: ignore[union-attr]
    loud = [line for line in out.splitlines() if "tests skipped without ../shared" in line]
    assert len(loud) == 1, out
    assert f"{skipped} tests skipped without ../shared ({missing})" in loud[0]


def test_e2e_tests_without_a_stack_skip_with_one_reason() -> None:
    out = _pytest("tests/e2e")
    lines = [line for line in out.splitlines() if line.startswith("SKIPPED")]
    skipped = int(re.search(r"(\d+) skipped", out).group(1))  # type: ignore[union-attr]
    assert skipped > 1
    assert lines == [
        f"SKIPPED [{skipped}] tests/e2e/conftest.py: needs a deployed stack: run `make deploy-dev`, "
        "then `make e2e` (MAAS_E2E_STACK=dev); this machine has no cluster"
    ]
