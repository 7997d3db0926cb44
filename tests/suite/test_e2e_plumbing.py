"""The end-to-end suite's own plumbing: port-forwards that die, test order, tokenizers."""

from __future__ import annotations

import http.server
import ssl
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from harness.program import PROJECT_DIR
from tests.e2e import scenarios
from tests.e2e.cluster import port_forward, request
from tests.suite.fake import Faults, fake_platform
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
    disruptive = ["restart_with_redis", "failure_modes", "scales_on_its_queue", "picker_is_gone"]
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
