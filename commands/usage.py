"""Usage and cost per user, tier and model from Prometheus, for chargeback.

    python -m commands.usage --prometheus http://localhost:9090 --since 30d --format csv

With MAAS_PROMETHEUS_TOKEN set, every query carries it as a bearer token: OpenShift's Thanos
querier (its Route, port web) admits a token of anyone granted cluster-monitoring-view, e.g.
`MAAS_PROMETHEUS_TOKEN=$(oc whoami -t)`; the token stays out of the command line.

Reads the recording rules of `components.metering.chargeback` through Prometheus's HTTP
API: requests admitted, tokens, requests refused with 429, and their cost, over `--since`
ending at `--until` (default: now). Each rule records what one evaluation interval added
(restarts and replicas already accounted for, cost at that interval's price), so the export
sums them over the window; usage within one evaluation interval of the window's start may
fall on either side. Requests and tokens are rounded (a request's check and its report may
fall in different intervals).
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import re
import sys
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from components.metering import chargeback

_DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")
FIELDS = ("user", "tier", "model", "requests", "tokens", "rejected", "cost", "currency")


@dataclass(frozen=True)
class Usage:
    user: str
    tier: str
    model: str
    requests: int
    tokens: int
    rejected: int
    cost: float
    currency: str


TOKEN_ENV = "MAAS_PROMETHEUS_TOKEN"


def instant(
    prometheus: str, query: str, at: float | None = None, timeout_s: float = 30
) -> list[dict[str, Any]]:
    """One instant query's result vector (Prometheus HTTP API /api/v1/query)."""
    parameters = {"query": query, **({"time": repr(at)} if at is not None else {})}
    url = f"{prometheus.rstrip('/')}/api/v1/query?{urllib.parse.urlencode(parameters)}"
    token = os.environ.get(TOKEN_ENV)
    # kube-rbac-proxy in front of the Thanos querier reads a bearer token
    # (openshift/cluster-monitoring-operator@release-4.22
    # assets/thanos-querier/kube-rbac-proxy-web-secret.yaml).
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout_s) as response:
        body = json.load(response)
    if body.get("status") != "success":
        raise RuntimeError(f"Prometheus refused {query!r}: {body.get('error', body)}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def queries(since: str) -> dict[str, str]:
    """The export's query per measure, over the window `since` (a Prometheus duration)."""
    if not _DURATION.match(since):
        raise ValueError(f"--since {since!r} is not a Prometheus duration (e.g. 30d, 12h)")
    by = "user, tier, model"
    return {
        "requests": f"sum by ({by}) (sum_over_time({chargeback.REQUESTS}[{since}]))",
        "tokens": f"sum by ({by}) (sum_over_time({chargeback.TOKENS}[{since}]))",
        "rejected": f"sum by ({by}) (sum_over_time({chargeback.REJECTED}[{since}]))",
        "cost": f"sum by ({by}, currency) (sum_over_time({chargeback.COST}[{since}]))",
    }


def collect(prometheus: str, since: str, until: float | None = None, timeout_s: float = 30) -> list[Usage]:
    """One row per user, tier and model that used anything in the window."""
    rows: dict[tuple[str, str, str], dict[str, Any]] = {}
    for measure, query in queries(since).items():
        for sample in instant(prometheus, query, until, timeout_s):
            labels = sample["metric"]
            key = (labels.get("user", ""), labels.get("tier", ""), labels.get("model", ""))
            row = rows.setdefault(key, {"currency": ""})
            row[measure] = float(sample["value"][1])
            row["currency"] = labels.get("currency", row["currency"])
    return [
        Usage(
            user=user,
            tier=tier,
            model=model,
            requests=round(row.get("requests", 0.0)),
            tokens=round(row.get("tokens", 0.0)),
            rejected=round(row.get("rejected", 0.0)),
            cost=round(row.get("cost", 0.0), 6),
            currency=row["currency"],
        )
        for (user, tier, model), row in sorted(rows.items())
    ]


def render(rows: Sequence[Usage], form: str) -> str:
    if form == "json":
        return json.dumps([asdict(row) for row in rows], indent=2) + "\n"
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(asdict(row) for row in rows)
    return out.getvalue()


def _timestamp(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--prometheus", required=True, help="Prometheus URL, e.g. http://localhost:9090")
    parser.add_argument("--since", default="30d", help="window length, a Prometheus duration (default 30d)")
    parser.add_argument("--until", type=_timestamp, help="window end: unix time or ISO 8601 (default now)")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    args = parser.parse_args(argv)
    try:
        rows = collect(args.prometheus, args.since, args.until)
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"usage export failed: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(render(rows, args.format))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
