"""scripts/install-test-tools.sh, run with recording stand-ins for apt-get, systemctl, sudo
and id on PATH (tests/delivery/scripts/standin.py): it installs what is missing and leaves
every service it did not start as it found it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.program import PROJECT_DIR

STANDIN = Path(__file__).parent / "scripts" / "standin.py"
SCRIPT = PROJECT_DIR / "scripts" / "install-test-tools.sh"
# The commands the script looks up; a test puts a stand-in for those a machine already has.
LOOKED_UP = ("promtool", "prometheus", "shellcheck", "luajit", "go", "openssl", "nginx", "chromium")
MUTATING = ("stop", "disable", "mask", "kill", "restart", "reload", "try-restart")


class Machine:
    def __init__(self, root: Path):
        self.bin = root / "bin"
        self.state = root / "state"
        self.log = root / "log"
        for folder in (self.bin, self.state):
            folder.mkdir()
        for tool in ("apt-get", "systemctl", "sudo", "id"):
            self.put(tool, tool)

    def put(self, name: str, tool: str = "") -> None:
        """A command on PATH: a recording stand-in, or (no tool) one that does nothing."""
        path = self.bin / name
        body = f'exec "{sys.executable}" "{STANDIN}" {tool} "$@"' if tool else "exit 0"
        path.write_text(f"#!/bin/sh\n{body}\n")
        path.chmod(0o755)

    def unit(self, name: str) -> None:
        """A unit already running and enabled before the script: the developer's own."""
        (self.state / f"unit-{name}-active").touch()
        (self.state / f"unit-{name}-enabled").touch()

    def running(self, name: str) -> bool:
        return (self.state / f"unit-{name}-active").exists()

    def run(self) -> list[list[str]]:
        bash = shutil.which("bash")
        assert bash
        done = subprocess.run(
            [bash, str(SCRIPT)],
            env={
                "PATH": str(self.bin),
                "STANDIN_STATE": str(self.state),
                "STANDIN_LOG": str(self.log),
                "STANDIN_PYTHON": sys.executable,
            },
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        if not self.log.exists():
            return []
        return [[e["tool"], *e["argv"]] for e in map(json.loads, self.log.read_text().splitlines())]


@pytest.fixture
def machine(tmp_path: Path) -> Machine:
    return Machine(tmp_path)


def _mutations(calls: list[list[str]], unit: str) -> list[list[str]]:
    return [c for c in calls if c[0] == "systemctl" and c[1] in MUTATING and unit in c[2:]]


def test_the_services_the_install_started_are_stopped_and_a_developers_nginx_is_left(
    machine: Machine,
) -> None:
    """Prometheus is missing and installed (its postinst starts it); nginx is the developer's,
    running: the script undoes the first and never touches the second."""
    machine.put("nginx")
    machine.unit("nginx")
    calls = machine.run()
    install = next(c for c in calls if c[:2] == ["apt-get", "install"])
    assert "prometheus" in install
    assert "nginx" not in install
    assert ["sudo", "apt-get", *install[1:]] in calls
    assert ["sudo", "systemctl", "stop", "prometheus"] in calls
    assert ["sudo", "systemctl", "disable", "prometheus"] in calls
    assert not machine.running("prometheus")
    assert _mutations(calls, "nginx") == []
    assert machine.running("nginx")


def test_a_prometheus_running_before_the_install_is_not_stopped(machine: Machine) -> None:
    """A developer's Prometheus unit (its binaries off PATH) was active before: left running."""
    machine.unit("prometheus")
    calls = machine.run()
    assert any(c[:2] == ["apt-get", "install"] and "prometheus" in c for c in calls)
    assert _mutations(calls, "prometheus") == []
    assert machine.running("prometheus")


def test_nothing_missing_installs_nothing_and_touches_no_service(machine: Machine) -> None:
    for name in LOOKED_UP:
        machine.put(name)
    machine.unit("nginx")
    machine.unit("prometheus")
    calls = machine.run()
    assert [c for c in calls if c[0] in ("apt-get", "systemctl", "sudo")] == []


def test_a_machine_without_chromium_gets_debians_chromium_only(machine: Machine) -> None:
    """The key page's browser test needs Chromium (tests/access/test_portal_page.py)."""
    for name in LOOKED_UP:
        if name != "chromium":
            machine.put(name)
    calls = machine.run()
    installs = [c for c in calls if c[:2] == ["apt-get", "install"]]
    assert installs
    assert all([a for a in c[2:] if not a.startswith("-")] == ["chromium"] for c in installs)
    assert [c for c in calls if c[0] == "systemctl" and c[1] in MUTATING] == []
