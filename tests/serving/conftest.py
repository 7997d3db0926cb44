"""Fixtures of the serving tests: the runtimes of the gateway's Lua filter and the model list."""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.prerequisites import tool

GO_SOURCE = Path(__file__).parent / "decoders" / "simulator_request.go"


@pytest.fixture(scope="session")
def luajit() -> str:
    """LuaJIT, Envoy's Lua runtime, which runs the gateway's filter in the tests."""
    return tool("luajit", "`make check` installs it (scripts/install-test-tools.sh)")


@pytest.fixture(scope="session")
def nginx() -> str:
    """nginx, which serves the shared host's model list, to run its generated configuration."""
    return tool("nginx", "`make check` installs it (scripts/install-test-tools.sh)")


@pytest.fixture(scope="session")
def simulator_decoder(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[list[bytes]], list[dict[str, Any]]]:
    """The simulator's request decoding (tests/serving/decoders/simulator_request.go), built
    once per session with Debian's Go."""
    go = tool("go", "`make check` installs it (scripts/install-test-tools.sh, Debian package golang-go)")
    where = tmp_path_factory.mktemp("go")
    binary = where / "simulator_request"
    built = subprocess.run(
        [go, "build", "-o", str(binary), str(GO_SOURCE)],
        capture_output=True, text=True, check=False, timeout=300,
        env={"GOCACHE": str(where / "cache"), "GOPATH": str(where / "path"), "HOME": str(where),
             "GO111MODULE": "off", "PATH": str(Path(go).parent)},
    )  # fmt: skip
    assert built.returncode == 0, built.stderr

    def decode(bodies: list[bytes]) -> list[dict[str, Any]]:
        lines = "".join(base64.b64encode(b).decode() + "\n" for b in bodies)
        done = subprocess.run(
            [str(binary)], input=lines, capture_output=True, text=True, check=True, timeout=60
        )
        return [json.loads(line) for line in done.stdout.splitlines()]

    return decode
