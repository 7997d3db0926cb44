"""Talking to a deployed stack: its outputs, kubectl, and HTTP through the gateway.

Everything here is bounded in time; nothing sleeps for a fixed while to "let it settle".
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Deployment:
    """A deployed stack: its name, outputs (secrets shown) and kube context."""

    stack: str
    outputs: dict[str, Any]
    context: str = field(init=False)

    def __post_init__(self) -> None:
        self.context = str(self.outputs["kubeContext"])

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 120, stdin: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["kubectl", "--context", self.context, *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=check,
            timeout=timeout,
        )

    def get(self, *args: str) -> Any:
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def wait(self, condition: str, target: str, namespace: str, timeout_s: int = 600) -> None:
        self.kubectl(
            "wait",
            f"--for=condition={condition}",
            target,
            "-n",
            namespace,
            f"--timeout={timeout_s}s",
            timeout=timeout_s + 30,
        )


def stack_outputs(stack: str) -> dict[str, Any]:
    done = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    outputs: dict[str, Any] = json.loads(done.stdout)
    return outputs


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def port_forward(deployment: Deployment, namespace: str, service: str, remote_port: int) -> Iterator[int]:
    """Forwards a local port to a Service for the duration of the block."""
    local = free_port()
    process = subprocess.Popen(
        [
            "kubectl",
            "--context",
            deployment.context,
            "port-forward",
            "-n",
            namespace,
            f"svc/{service}",
            f"{local}:{remote_port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        until(lambda: _connects(local), timeout_s=60, what=f"port-forward to {namespace}/{service}")
        yield local
    finally:
        process.terminate()
        process.wait(timeout=10)


def _connects(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        return True
    return False


def until(check: Callable[[], T], timeout_s: float, what: str, every_s: float = 1.0) -> T:
    """Polls `check` until it returns something truthy (and returns it), or fails after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)


def request(
    port: int,
    host: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 60,
) -> Response:
    """One HTTP request to the forwarded gateway, addressed to a model's host name."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        sent = {"Host": host, **(headers or {})}
        if body is None:
            connection.request("GET", path, headers=sent)
        else:
            sent["Content-Type"] = "application/json"
            connection.request("POST", path, body=json.dumps(body), headers=sent)
        reply = connection.getresponse()
        return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
    finally:
        connection.close()


def chat(model: str, content: str = "Hello!", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": content}], "max_tokens": 16, **extra}


def model_requests_served(deployment: Deployment, namespace: str, model: str) -> float:
    """How many requests the model server says it answered (vLLM's request_success_total).

    Read from the pod through a port-forward (which a NetworkPolicy does not filter), so
    tests can prove that denied requests never reached the model.
    """
    with port_forward(deployment, namespace, f"{model}-predictor", 80) as port:
        metrics = request(port, "localhost", "/metrics").body.decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith("vllm:request_success_total")
    )
