"""The real components/access/key_service/server.py as a subprocess against the stand-ins,
and a client that calls it as the gateway would (identity in the x-maas-* headers)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.kube_api import KubeApi
from tests.support.ports import free_port

SERVER = Path(__file__).resolve().parents[2] / "components" / "access" / "key_service" / "server.py"
NAMESPACE = "kuadrant-system"


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class KeyService:
    url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        user: str | None = "alice",
        tier: str = "free",
        via: str = "token",
        admin: bool = False,
    ) -> Reply:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method)
        if user is not None:
            request.add_header("x-maas-user", user)
            request.add_header("x-maas-tier", tier)
            request.add_header("x-maas-via", via)
        if admin:
            request.add_header("x-maas-admin", "true")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
                kind = response.headers.get("Content-Type", "")
                return Reply(response.status, json.loads(raw) if "json" in kind else raw.decode())
        except urllib.error.HTTPError as error:
            return Reply(error.code, json.loads(error.read()))

    def audit(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines) if line.startswith('{"')]


@contextlib.contextmanager
def key_service(
    kube: KubeApi,
    tmp: Path,
    tiers: dict[str, dict[str, int]],
    env: dict[str, str] | None = None,
    program: Path = SERVER,
) -> Iterator[KeyService]:
    """server.py (or a copy at `program`) on a free port; its stdout lines are collected;
    stopped after the block."""
    sa = tmp / "serviceaccount"
    sa.mkdir(exist_ok=True)
    (sa / "token").write_text(kube.token)
    port = free_port()
    environment = {
        "PATH": os.environ.get("PATH", ""),
        "KEYS_NAMESPACE": NAMESPACE,
        "KEY_TIERS": json.dumps(tiers),
        "PORT": str(port),
        "KUBE_API_URL": kube.url,
        "KUBE_SA_DIR": str(sa),
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, str(program)], env=environment, stdout=subprocess.PIPE, text=True, bufsize=1
    )
    assert process.stdout is not None
    service = KeyService(f"http://127.0.0.1:{port}", process)
    stdout = process.stdout

    def collect() -> None:
        for line in stdout:
            service.lines.append(line.rstrip("\n"))

    threading.Thread(target=collect, daemon=True).start()
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError):
                if service.call("GET", "/healthz", user=None).status == 200:
                    break
            assert process.poll() is None, f"server.py exited: {service.lines}"
            assert time.monotonic() < deadline, "server.py did not answer /healthz"
            time.sleep(0.05)
        yield service
    finally:
        process.terminate()
        process.wait(timeout=5)


def wait_for(condition: Any, seconds: float = 5.0) -> None:
    """Poll until condition() is truthy; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)
