"""The usage export against a real Prometheus running the stack's rules; no HTTP is mocked."""

from __future__ import annotations

import csv
import http.server
import io
import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from commands import usage
from components.metering import chargeback
from harness.program import PROJECT_DIR, Evaluation, typed_config
from tests.support.prometheus import (
    Exporter,
    Prometheus,
    Series,
    declared_rules,
    prometheus,
    series,
    serve,
)

ALICE = {"user": "alice", "tier": "premium", "model": "simulator"}
BOB = {"user": "bob", "tier": "free", "model": "simulator"}
CAROL = {"user": "carol", "tier": "enterprise", "model": "simulator"}


def _counters(scale: int) -> Series:
    """Limitador's counters after alice's and bob's traffic, times `scale` (0: before any).

    alice (premium): 10 admitted with 100 tokens each, 2 refused by the request limit and 1
    by the token limit. bob (free): 5 admitted with 100 tokens each. carol (enterprise): 1
    admitted with 2,000 tokens.
    """
    values: Series = {
        series("authorized_calls", **ALICE): (2 * 10 + 1) * scale,
        series("authorized_hits", **ALICE): (10 * 101 + 1) * scale,
        series("limited_calls", **ALICE, limit_name="premium-requests"): 2 * scale,
        series("limited_calls", **ALICE, limit_name="premium-tokens"): 1 * scale,
        series("authorized_calls", **BOB): 2 * 5 * scale,
        series("authorized_hits", **BOB): 5 * 101 * scale,
        series("authorized_calls", **CAROL): 2 * scale,
        series("authorized_hits", **CAROL): 2001 * scale,
        series("limitador_up"): 1,
    }
    return values


def _picker(scale: int) -> Series:
    """The simulator's endpoint picker after the same traffic: requests per priority band
    (0: free, 2: enterprise; components/access/tiers.py priorities), one enterprise request
    shed, one free request waiting."""
    pool = {"inference_pool": "simulator", "model": "simulator"}
    return {
        series("llm_d_epp_flow_control_requests_total", outcome="Dispatched", priority="0", **pool): 5
        * scale,
        series("llm_d_epp_flow_control_requests_total", outcome="Dispatched", priority="2", **pool): 1
        * scale,
        series("llm_d_epp_flow_control_requests_total", outcome="EvictedTTL", priority="2", **pool): 1
        * scale,
        series("llm_d_epp_flow_control_queue_size", priority="0", fairness_id="bob", **pool): 1,
    }


@pytest.fixture(scope="module")
def running(
    tmp_path_factory: pytest.TempPathFactory, stack_of: Callable[[str], Evaluation]
) -> Iterator[tuple[Prometheus, float]]:
    """Prometheus with the dev stack's rules, after the traffic; and the time of its last evaluation.

    The usage group runs every second here (every 30 s as declared) so the test is quick: the
    same rules, with their interval and the offset it sets."""
    cfg = typed_config("dev")
    assert chargeback.rule_groups(cfg.tiers, cfg.models, cfg.prices) == declared_rules(stack_of("dev"))
    rules = chargeback.rule_groups(cfg.tiers, cfg.models, cfg.prices, interval="1s")
    exporter, picker = Exporter(), Exporter()
    exporter.set(_counters(0))
    picker.set(_picker(0))
    with (
        serve(exporter) as address,
        serve(picker) as picker_address,
        prometheus(
            tmp_path_factory.mktemp("prometheus"),
            rules,
            {"limitador": address, "endpoint-picker": picker_address},
        ) as server,
    ):
        server.wait_for('maas:requests:increase{user="alice"} == 0')
        server.wait_for('maas:scheduled_requests:rate5m{tier="free"} == 0')
        exporter.set(_counters(1))
        picker.set(_picker(1))
        server.wait_for('sum_over_time(maas:tokens:increase{user="alice"}[1m]) == 1000')
        server.wait_for('maas:scheduled_requests:rate5m{tier="enterprise", outcome="EvictedTTL"} > 0')
        server.wait_for('sum_over_time(maas:cost:increase{user="alice"}[1m]) > 0')
        (sample,) = server.vector('timestamp(maas:cost:increase{user="alice"})')
        yield server, float(sample["value"][1])


def _expected() -> dict[str, dict[str, Any]]:
    """From the dev stack's price table: premium 0.001 per request and 0.002 per 1,000 tokens,
    enterprise 0.0005 and 0.001, free nothing."""
    return {
        "carol": {
            "tier": "enterprise",
            "model": "simulator",
            "requests": 1,
            "tokens": 2000,
            "rejected": 0,
            "cost": 0.0025,
        },
        "alice": {
            "tier": "premium",
            "model": "simulator",
            "requests": 10,
            "tokens": 1000,
            "rejected": 3,
            "cost": 0.012,
        },
        "bob": {
            "tier": "free",
            "model": "simulator",
            "requests": 5,
            "tokens": 500,
            "rejected": 0,
            "cost": 0.0,
        },
    }


def test_collect_returns_usage_and_cost_per_user_tier_and_model(running: tuple[Prometheus, float]) -> None:
    server, until = running
    rows = {row.user: row for row in usage.collect(server.url, "10m", until)}
    assert set(rows) == {"alice", "bob", "carol"}
    for user, expected in _expected().items():
        row = rows[user]
        measured = {"tier": row.tier, "model": row.model, "requests": row.requests, "tokens": row.tokens}
        assert measured | {"rejected": row.rejected} == {k: v for k, v in expected.items() if k != "cost"}
        assert row.cost == pytest.approx(expected["cost"], abs=1e-9)
        assert row.currency == "USD"


def test_the_command_prints_csv_and_json(running: tuple[Prometheus, float]) -> None:
    server, until = running
    command = [
        sys.executable,
        "-m",
        "commands.usage",
        "--prometheus",
        server.url,
        "--since",
        "10m",
        "--until",
        repr(until),
    ]
    printed = subprocess.run(
        [*command, "--format", "csv"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    table = list(csv.DictReader(io.StringIO(printed.stdout)))
    assert list(table[0]) == list(usage.FIELDS)
    assert {r["user"]: (r["requests"], r["tokens"], r["cost"]) for r in table} == {
        "alice": ("10", "1000", "0.012"),
        "bob": ("5", "500", "0.0"),
        "carol": ("1", "2000", "0.0025"),
    }
    as_json = subprocess.run(
        [*command, "--format", "json"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    )
    assert {r["user"]: r["tokens"] for r in json.loads(as_json.stdout)} == {
        "alice": 1000,
        "bob": 500,
        "carol": 2000,
    }


def test_the_command_fails_clearly_without_prometheus() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "commands.usage", "--prometheus", "http://127.0.0.1:9", "--since", "1d"],
        cwd=PROJECT_DIR, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.startswith("usage export failed:")


def test_every_dashboard_query_runs_and_the_usage_panels_show_the_traffic(
    running: tuple[Prometheus, float], stack_of: Callable[[str], Evaluation]
) -> None:
    server, until = running
    board = json.loads(
        next(iter(stack_of("dev").one("ConfigMap", "maas-usage-dashboard").inputs["data"].values()))
    )
    substitutions = {"$__rate_interval": "1m", "$__range": "10m", "$tier": ".*", "$model": ".*"}
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in substitutions.items():
                expr = expr.replace(variable, value)
            answer = server.query(expr, until)
            assert answer["status"] == "success", f"{panel['title']}: {answer}"
            if "maas:" in expr:
                assert answer["data"]["result"], f"{panel['title']}: no data for {expr}"


def test_the_export_sends_the_token_it_is_given_and_none_otherwise(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenShift's Thanos querier wants a bearer token; it comes from the environment only."""
    seen: list[str | None] = []

    class Querier(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            body = json.dumps({"status": "success", "data": {"resultType": "vector", "result": []}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            return

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Querier)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        monkeypatch.setenv(usage.TOKEN_ENV, "sha256~token")
        assert usage.main(["--prometheus", url, "--since", "1h"]) == 0
        assert len(seen) == 4
        assert set(seen) == {"Bearer sha256~token"}
        seen.clear()
        monkeypatch.delenv(usage.TOKEN_ENV)
        assert usage.main(["--prometheus", url, "--since", "1h"]) == 0
        assert len(seen) == 4
        assert set(seen) == {None}
    finally:
        server.shutdown()
