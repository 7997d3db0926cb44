"""A real Prometheus server for tests, fed by a small exporter of Limitador-shaped counters,
and the rules a stack gives it.

Both listen on 127.0.0.1 only, on free ports, and stop when the test ends.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from harness.program import Evaluation
from tests.support.ports import free_port
from tests.support.prerequisites import tool

# A series: (metric name, labels) -> value.
Series = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def declared_rules(stack: Evaluation) -> dict[str, Any]:
    """The spec of the stack's PrometheusRule: its recording rules and alerts."""
    (rule,) = stack.objects("PrometheusRule")
    spec: dict[str, Any] = rule.inputs["spec"]
    return spec


def series(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return name, tuple(sorted(labels.items()))


@dataclass
class Exporter:
    """Serves whatever counters the test sets, in Prometheus's text format."""

    values: Series = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, values: Series) -> None:
        with self.lock:
            self.values = dict(values)

    def exposition(self) -> str:
        with self.lock:
            lines = []
            for (name, labels), value in sorted(self.values.items()):
                rendered = ",".join(f'{k}="{v}"' for k, v in labels)
                lines.append(f"{name}{{{rendered}}} {value}")
        return "\n".join(lines) + "\n"


@contextlib.contextmanager
def serve(exporter: Exporter) -> Iterator[str]:
    """Runs the exporter; yields its host:port."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = exporter.exposition().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Prometheus:
    url: str

    def query(self, expr: str, at: float | None = None) -> dict[str, Any]:
        parameters = {"query": expr, **({"time": repr(at)} if at is not None else {})}
        with urllib.request.urlopen(
            f"{self.url}/api/v1/query?{urllib.parse.urlencode(parameters)}", timeout=10
        ) as r:
            body: dict[str, Any] = json.load(r)
        return body

    def vector(self, expr: str) -> list[dict[str, Any]]:
        body = self.query(expr)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def wait_for(self, expr: str, timeout_s: float = 60) -> list[dict[str, Any]]:
        """Polls until `expr` returns samples (bounded)."""
        deadline = time.monotonic() + timeout_s
        while True:
            found = self.vector(expr)
            if found:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"Prometheus returned nothing for {expr} within {timeout_s}s")
            time.sleep(0.5)


# prometheus-operator/prometheus-operator@v0.93.0 pkg/prometheus/promcfg.go generateRelabelConfig: each field
# of a monitor's RelabelConfig under its Prometheus name, set ones only, the action lower-cased.
_RELABEL_FIELDS = {
    "sourceLabels": "source_labels",
    "separator": "separator",
    "targetLabel": "target_label",
    "regex": "regex",
    "modulus": "modulus",
    "replacement": "replacement",
    "action": "action",
}


def scrape_relabel_configs(relabelings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A monitor's relabelings as the operator writes them into Prometheus's config."""
    unknown = {key for r in relabelings for key in r} - set(_RELABEL_FIELDS)
    assert not unknown, f"fields the operator does not translate: {unknown}"
    # Separator and replacement are pointers there: set, even to "", they are written.
    unset = {"sourceLabels": [], "targetLabel": "", "regex": "", "modulus": 0, "action": ""}
    return [
        {
            _RELABEL_FIELDS[key]: value.lower() if key == "action" else value
            for key, value in r.items()
            if key not in unset or value != unset[key]
        }
        for r in relabelings
    ]


@contextlib.contextmanager
def prometheus(
    workdir: Path,
    rules: dict[str, Any],
    targets: dict[str, str],
    metric_relabelings: dict[str, list[dict[str, Any]]] | None = None,
) -> Iterator[Prometheus]:
    """A Prometheus scraping `targets` (component -> host:port) every second, evaluating `rules`.

    Each target gets the `maas_component` label the program's monitors add, and a monitor's
    `metricRelabelings` (component -> list) as its scrape's metric_relabel_configs.
    """
    binary = tool("prometheus", "run scripts/install-test-tools.sh (Debian package 'prometheus')")
    (workdir / "rules.yml").write_text(yaml.safe_dump(rules, sort_keys=False))
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules.yml"],
        "scrape_configs": [
            {
                "job_name": component,
                "static_configs": [{"targets": [address], "labels": {"maas_component": component}}],
                **(
                    {"metric_relabel_configs": scrape_relabel_configs(metric_relabelings[component])}
                    if metric_relabelings and component in metric_relabelings
                    else {}
                ),
            }
            for component, address in targets.items()
        ],
    }
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "prometheus.log").open("w"),
    )
    server = Prometheus(f"http://127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + 30
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as ready,
            ):
                if ready.status == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"Prometheus did not start: {(workdir / 'prometheus.log').read_text()[-2000:]}"
                )
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        process.wait(timeout=20)
