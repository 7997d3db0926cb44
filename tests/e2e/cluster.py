"""Talking to a deployed stack: kubectl, port-forwards, and HTTP through the gateway.

Everything here is bounded in time; nothing sleeps for a fixed while to "let it settle".
"""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tests.support.ports import free_port

T = TypeVar("T")


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def stack_outputs(stack: str) -> dict[str, Any]:
    """The stack's outputs, secrets shown, from its state (scripts/e2e.sh selects the backend)."""
    done = subprocess.run(
        ["pulumi", "stack", "output", "--json", "--show-secrets", "--stack", stack],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    outputs: dict[str, Any] = json.loads(done.stdout)
    return outputs


class Forward:
    """A running `kubectl port-forward`: its local port, and a check that it is still alive.

    kubectl exits when the pod behind it goes (a restart, a rollout); every request
    through it checks first, so the failure says what kubectl said instead of
    "connection refused" (finding 6 of issue 12).
    """

    def __init__(self, process: subprocess.Popen[bytes], port: int, stderr: Any, what: str):
        self.process, self.port, self._stderr, self.what = process, port, stderr, what

    def alive(self) -> bool:
        return self.process.poll() is None

    def check(self) -> None:
        if not self.alive():
            self._stderr.seek(0)
            said = self._stderr.read().decode(errors="replace").strip() or "(nothing on stderr)"
            raise AssertionError(
                f"the port-forward to {self.what} exited ({self.process.returncode}): {said}"
            )


@contextlib.contextmanager
def port_forward(
    command: Sequence[str], remote_port: int, what: str, timeout_s: float = 60
) -> Iterator[Forward]:
    """Runs `command` (a `kubectl port-forward <target>` without ports) for the block."""
    local = free_port()
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            [*command, f"{local}:{remote_port}"], stdout=subprocess.DEVNULL, stderr=stderr
        )
        forward = Forward(process, local, stderr, what)
        try:

            def connected() -> bool:
                forward.check()
                return _connects(local)

            until(connected, timeout_s=timeout_s, what=f"port-forward to {what}", every_s=0.2)
            yield forward
        finally:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
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
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(every_s)


class Addressed(http.client.HTTPSConnection):
    """HTTPS to a forwarded local port, presenting `host` as SNI (the gateway picks its
    listener and certificate by it) and checking the certificate against `host`."""

    def __init__(self, port: int, host: str, context: ssl.SSLContext, timeout_s: float):
        super().__init__("127.0.0.1", port, timeout=timeout_s, context=context)
        self._server_name, self._tls = host, context

    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._server_name)


def request(
    port: int,
    host: str,
    path: str,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    timeout_s: float = 60,
    tls: ssl.SSLContext | None = None,
    first: int | None = None,
    method: str | None = None,
) -> Response:
    """One HTTP request to a forwarded port, addressed to `host` (a model's host name);
    over HTTPS when `tls` says what to trust. With `first`, only the response's first bytes
    are read before the connection is closed (a client that stops reading a stream). The
    method is GET without a body and POST with one, unless `method` says otherwise."""
    connection = (
        Addressed(port, host, tls, timeout_s)
        if tls is not None
        else http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    )
    try:
        sent = {"Host": host, **(headers or {})}
        if body is None:
            connection.request(method or "GET", path, headers=sent)
        else:
            sent["Content-Type"] = "application/json"
            connection.request(method or "POST", path, body=json.dumps(body), headers=sent)
        reply = connection.getresponse()
        read = reply.read(first) if first is not None else reply.read()
        return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, read)
    finally:
        connection.close()


# The model servers' count of answered requests, `vllm:request_success_total`: vLLM's
# (vllm-project/vllm@v0.31.0 vllm/v1/metrics/loggers.py) and the simulator's
# (llm-d/llm-d-inference-sim@v0.10.2 docs/metrics.md).
SERVED_METRIC = "vllm:request_success_total"


# The tokens they generated: vLLM's and the simulator's `vllm:generation_tokens_total`
# (llm-d/llm-d-inference-sim@v0.10.2 pkg/llm-d-inference-sim/metrics.go, added when a request's
# processing ends).
GENERATED_METRIC = "vllm:generation_tokens_total"


def counted(metrics: str, name: str) -> float:
    """A counter's value in one model server's /metrics text, summed over its series."""
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in metrics.splitlines()
        if line.startswith(name) and line[len(name) : len(name) + 1] in ("{", " ")
    )


def served(metrics: str) -> float:
    """The requests one model server answered, from its /metrics text."""
    return counted(metrics, SERVED_METRIC)
