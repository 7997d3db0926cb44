"""The end-to-end suite's own plumbing: port-forwards that die, test order, tokenizers."""

from __future__ import annotations

import contextlib
import http.server
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from harness.program import PROJECT_DIR
from tests.e2e import platform, scenarios
from tests.e2e.cluster import SERVED_METRIC, Forward, port_forward, request
from tests.e2e.platform import Live
from tests.suite.fake import Faults, _Pool, fake_platform
from tests.suite.test_scenarios import _config
from tests.support.prerequisites import tool

# Listens on the port kubectl would (the last argument), then dies the way kubectl does
# when the pod behind it goes.
DYING_KUBECTL = textwrap.dedent(
    """
    import socket, sys
    port = int(sys.argv[-1].split(":")[0])
    server = socket.socket()
    server.bind(("127.0.0.1", port))
    server.listen()
    connection, _ = server.accept()
    connection.close()
    sys.stderr.write("error: lost connection to pod\\n")
    sys.exit(1)
    """
)


# Stands in for `kubectl port-forward`: serves /metrics on the local port kubectl would,
# and notes each start in the file named by its first argument.
FORWARDING_KUBECTL = textwrap.dedent(
    f"""
    import http.server, sys
    open(sys.argv[1], "a").write(sys.argv[-2] + "\\n")

    class Metrics(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = b'{SERVED_METRIC}{{model_name="m"}} 3\\n'
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = int(sys.argv[-1].split(":")[0])
    http.server.HTTPServer(("127.0.0.1", port), Metrics).serve_forever()
    """
)


class _Forwarded(Live):
    """A Live stack whose port-forwards are FORWARDING_KUBECTL, started `starts` records."""

    def __init__(self, starts: Path):
        outputs = {"models": {}, "kubeContext": "none", "gatewayService": "llm/inference-gateway-istio"}
        super().__init__("dev", _config(), outputs)
        self.starts = starts

    def forward(self, namespace: str, target: str, port: int) -> contextlib.AbstractContextManager[Forward]:
        return port_forward(
            [sys.executable, "-c", FORWARDING_KUBECTL, str(self.starts), target], port, target
        )

    def started(self) -> list[str]:
        return self.starts.read_text().split() if self.starts.exists() else []


def test_a_dead_gateway_port_forward_is_started_again(tmp_path: Path) -> None:
    live = _Forwarded(tmp_path / "starts")
    try:
        first = live.gateway_port()
        assert live._gateway is not None
        live._gateway.process.kill()
        live._gateway.process.wait(timeout=10)
        second = live.gateway_port()
        assert request(second, "simulator.maas.local", "/metrics").status == 200
        assert live.started() == ["svc/inference-gateway-istio"] * 2, (first, second)
    finally:
        live.close()


def test_the_leak_oracle_keeps_one_port_forward_per_pod_for_the_session(tmp_path: Path) -> None:
    """The oracle reads every pod before and after every test: one forward each, reused."""
    live = _Forwarded(tmp_path / "starts")
    try:
        for _ in range(3):
            assert [live._metrics(pod) for pod in ("a-predictor-0", "a-predictor-1")] == [
                f'{SERVED_METRIC}{{model_name="m"}} 3\n'
            ] * 2
        assert sorted(live.started()) == ["pod/a-predictor-0", "pod/a-predictor-1"]
    finally:
        live.close()


def test_the_readiness_gate_waits_minutes_once_and_names_what_is_not_ready(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One bound for the whole gate (not one per condition, which added up to 55 minutes);
    a stack that never gets ready fails with what is still pending."""
    live = _Forwarded(Path("/nonexistent"))
    waits: list[float] = []

    def until(check: Callable[[], object], timeout_s: float, what: str, every_s: float = 1.0) -> object:
        waits.append(timeout_s)
        if not check():
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        return True

    monkeypatch.setattr(platform, "until", until)
    monkeypatch.setattr(Live, "_all", lambda self, resource, condition, namespace=None: resource != "gateway")
    with pytest.raises(AssertionError, match=r"still not ready: gateway Programmed$"):
        live.wait_ready()
    assert sum(waits) <= 10 * 60, waits


def test_a_dead_port_forward_fails_with_what_kubectl_said() -> None:
    with port_forward([sys.executable, "-c", DYING_KUBECTL], 80, "llm/svc/gateway") as forward:
        forward.process.wait(timeout=10)
        with pytest.raises(AssertionError, match="exited \\(1\\): error: lost connection to pod"):
            forward.check()


@pytest.mark.parametrize("tokens_per_word", [0.5, 1.0, 1.3, 2.5])
def test_the_token_limit_scenario_holds_for_any_tokenizer(tokens_per_word: float) -> None:
    """The prompt is sized from the warm-up's cost, not from a guess of tokens per word."""
    with fake_platform(_config(), Faults(tokens_per_word=tokens_per_word)) as p, p.leak_oracle():
        scenarios.token_limit(p, "not streamed")


def test_readiness_runs_first_and_disruptive_tests_last() -> None:
    collected = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "tests/e2e"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    tests = [line for line in collected if "::" in line]
    files = [test.split("::")[0] for test in tests]
    assert files[0].endswith("test_readiness_e2e.py"), tests[:3]
    disruptive = [
        "restart_with_redis",
        "reset_on_a_limitador_restart",
        "failure_modes",
        "scales_on_its_queue",
        "picker_is_gone",
    ]
    assert all(any(d in test for d in disruptive) for test in tests[-4:]), tests[-5:]


def test_https_requests_present_the_host_as_sni_and_check_the_certificate(tmp_path: Path) -> None:
    """An HTTPS-only gateway picks its listener by SNI: the e2e client must send the model's
    host, and trust only the certificate it was given (a self-signed one, as cert-manager's)."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    openssl = tool("openssl", "`make check` installs it (scripts/install-test-tools.sh)")
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=maas",
         "-addext", "subjectAltName=DNS:*.maas.local", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    seen: list[str | None] = []
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server_tls.sni_callback = lambda _sock, name, _ctx: seen.append(name)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = server_tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        trusted = ssl.create_default_context(cadata=cert.read_text())
        assert request(port, "simulator.maas.local", "/v1/models", tls=trusted).status == 200
        assert seen == ["simulator.maas.local"]
        with pytest.raises(ssl.SSLCertVerificationError):
            request(port, "simulator.other.local", "/v1/models", tls=trusted)
        with pytest.raises(ssl.SSLCertVerificationError):
            request(port, "simulator.maas.local", "/v1/models", tls=ssl.create_default_context())
    finally:
        server.shutdown()
        server.server_close()


def test_the_fake_picker_dispatches_as_it_arrives_until_it_has_seen_the_pool_saturated() -> None:
    """The fake models llm-d's reactive saturation detector (tests/suite/fake.py _Pool): a
    burst into an idle pool is served first come, first served, whatever the priorities;
    once a refresh has seen the replicas' queue at its threshold, arrivals are held and the
    higher priority goes first. This is why L17 saturates the pool before its burst."""

    def burst(pool: _Pool, arrivals: list[tuple[str, int]]) -> list[str]:
        order: list[str] = []
        threads = []

        def call(name: str, priority: int) -> None:
            if pool.serve(priority, name):
                order.append(name)

        for name, priority in arrivals:
            thread = threading.Thread(target=call, args=(name, priority))
            thread.start()
            threads.append(thread)
            time.sleep(0.005)  # arrivals in this order, all within one refresh (50 ms)
        for thread in threads:
            thread.join(timeout=10)
        return order

    idle = _Pool(slots=1, replicas=1, depth=1, fifo=False, fairness="", service_s=0.2, ttl_s=None)
    assert burst(idle, [("low-1", 0), ("low-2", 0), ("top", 10)]) == ["low-1", "low-2", "top"]
    busy = _Pool(slots=1, replicas=1, depth=1, fifo=False, fairness="", service_s=0.2, ttl_s=None)
    filler = [threading.Thread(target=busy.serve, args=(5, "filler")) for _ in range(2)]
    for thread in filler:
        thread.start()
    time.sleep(0.06)  # a refresh later: one filler runs, one waits at the replica
    assert burst(busy, [("low-1", 0), ("low-2", 0), ("top", 10)]) == ["top", "low-1", "low-2"]
    for thread in filler:
        thread.join(timeout=10)
