"""The bill the export gives, in promtool, from Limitador-shaped counters as two replicas and
Prometheus really produce them: a request's check and its report on either pod, pods scraped
at different moments, a pod replaced (its series go stale, the new pod's start from its
first increment), a price changed between two deployments.

Each scenario evaluates the export's own queries (`commands.usage.queries`) with the stack's
recording rules, and asks for the truth: what the pods counted, at the price of the time.
The export rounds as `commands.usage.collect` does.

The shape of the counters (Kuadrant/limitador@v2.4.0 limitador-server/src/prometheus_metrics.rs):
a counter per label set, created at its first increment, per process; the request limit's
check and the token limit's report are separate calls to Limitador (wasm-shim v0.14.1),
each answered by whichever replica the gateway's connection reaches.
"""

from __future__ import annotations

import copy
import random
import subprocess
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from commands import usage
from components.metering import chargeback
from harness.program import Evaluation
from tests.support.prometheus import declared_rules

STEP = 5  # seconds between input samples
SCRAPE = 30  # Prometheus's scrape interval (kube-prometheus-stack's default)
END = 30 * 60
# Prices fed as the two deployments' price series would be (binary-exact, so the rounded
# export is exact): per request, per 1,000 tokens.
PRICES = {0: (0.5, 2.0)}
CURRENCY = "USD"


@dataclass
class Pod:
    name: str
    offset: int  # when, within each scrape interval, Prometheus scrapes it
    start: int = 0
    end: int = END + SCRAPE  # the pod is gone from this second on

    def scrapes(self) -> list[int]:
        first = self.start + (self.offset - self.start) % SCRAPE
        return [t for t in range(first, min(self.end, END + 1), SCRAPE)]


@dataclass
class Cluster:
    """Limitador's counters, per pod and label set, as increments over time."""

    pods: dict[str, Pod]
    increments: dict[tuple[str, str, tuple[tuple[str, str], ...]], list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )
    # user -> (tier, requests, tokens, cost) as truly used
    truth: dict[str, list[Any]] = field(default_factory=dict)

    def _count(self, at: int, pod: str, metric: str, labels: dict[str, str], by: int) -> None:
        self.increments[(pod, metric, tuple(sorted(labels.items())))].append((at, by))

    def admitted(
        self, at: int, user: str, tier: str, model: str, tokens: int, check: str, report: str
    ) -> None:
        """The request limit's check at `at` on one pod, the token report 5 s later on another."""
        labels = {"user": user, "tier": tier, "model": model}
        self._count(at, check, "authorized_calls", labels, 1)
        self._count(at, check, "authorized_hits", labels, 1)
        self._count(at + 5, report, "authorized_calls", labels, 1)
        self._count(at + 5, report, "authorized_hits", labels, tokens)
        per_request, per_1k = price_at(at)
        row = self.truth.setdefault(user, [tier, 0, 0, 0.0])
        row[1] += 1
        row[2] += tokens
        row[3] += per_request + tokens / 1000 * per_1k

    def failed(self, at: int, user: str, tier: str, model: str, check: str, token_check: str) -> None:
        """Admitted by both limits, then answered without `usage` (the picker shed it with 429,
        the model failed with 5xx or refused with 4xx): the token report never goes (its
        message needs `usage.total_tokens`), so the request is billed and its tokens are 0."""
        labels = {"user": user, "tier": tier, "model": model}
        self._count(at, check, "authorized_calls", labels, 1)
        self._count(at, check, "authorized_hits", labels, 1)
        self._count(at, token_check, "authorized_calls", labels, 1)
        row = self.truth.setdefault(user, [tier, 0, 0, 0.0])
        row[1] += 1
        row[3] += price_at(at)[0]

    def refused_by_tokens(
        self, at: int, user: str, tier: str, model: str, check: str, limit: str, limit_name: str = ""
    ) -> None:
        """The request limit admits on one pod, the token limit (the tier's unless named)
        refuses on another: 429, free."""
        labels = {"user": user, "tier": tier, "model": model}
        self._count(at, check, "authorized_calls", labels, 1)
        self._count(at, check, "authorized_hits", labels, 1)
        refused = {**labels, "limit_name": limit_name or f"{tier}-tokens"}
        self._count(at, limit, "limited_calls", refused, 1)
        self.truth.setdefault(user, [tier, 0, 0, 0.0])

    def input_series(self) -> list[dict[str, str]]:
        """What Prometheus scraped: each series from the first scrape after its first increment
        while its pod lives, then a staleness marker."""
        found = []
        for (pod_name, metric, labels), increments in sorted(self.increments.items()):
            pod = self.pods[pod_name]
            assert all(pod.start <= t < pod.end - SCRAPE for t, _ in increments), "counted by a dead pod"
            first = min(t for t, _ in increments)
            values = ["_"] * (END // STEP + 1)
            for scrape in pod.scrapes():
                if scrape >= first:
                    values[scrape // STEP] = str(sum(by for t, by in increments if t <= scrape))
            gone = pod.scrapes()[-1] + SCRAPE
            if gone <= END:
                values[gone // STEP] = "stale"
            rendered = ", ".join(f'{k}="{v}"' for k, v in labels)
            pod_labels = f'pod="{pod_name}", instance="{pod_name}:8080", job="kuadrant-system/limitador"'
            found.append({"series": f"{metric}{{{rendered}, {pod_labels}}}", "values": " ".join(values)})
        return found


def price_at(at: int) -> tuple[float, float]:
    return PRICES[max(t for t in PRICES if t <= at)]


def _price_series(tiers: list[str], models: list[str]) -> list[dict[str, str]]:
    """The price series as the deployments in force recorded them (one sample per evaluation)."""
    found = []
    for index, name in enumerate((chargeback.PRICE_PER_REQUEST, chargeback.PRICE_PER_1K_TOKENS)):
        values = " ".join(str(price_at(t)[index]) for t in range(0, END + 1, STEP))
        for tier in tiers:
            for model in models:
                labels = f'tier="{tier}", model="{model}", currency="{CURRENCY}"'
                found.append({"series": f"{name}{{{labels}}}", "values": values})
    return found


def _bill(promtool: str, stack: Evaluation, cluster: Cluster, model: str, tmp_path: Path) -> None:
    """The export over the whole run equals the truth."""
    rules = copy.deepcopy(declared_rules(stack))  # the session's stack is shared
    (usage_group,) = [g for g in rules["groups"] if g["name"] == "maas-usage"]
    # The prices come as series (as deployed before and after a change), not as the rules.
    usage_group["rules"] = [
        r
        for r in usage_group["rules"]
        if r.get("record") not in (chargeback.PRICE_PER_REQUEST, chargeback.PRICE_PER_1K_TOKENS)
    ]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules))
    tiers = sorted({row[0] for row in cluster.truth.values()})
    queries = usage.queries(f"{END // 60}m")
    rounded = {  # as commands.usage.collect rounds: counts to units, cost to 1e-6
        "requests": (f"round({queries['requests']})", 1, ""),
        "tokens": (f"round({queries['tokens']})", 2, ""),
        "cost": (f"round(({queries['cost']}) * 1000000)", 3, f', currency="{CURRENCY}"'),
    }
    tests = [
        {
            "expr": expr,
            "eval_time": f"{END}s",
            "exp_samples": [
                {
                    "labels": f'{{user="{user}", tier="{row[0]}", model="{model}"{extra}}}',
                    "value": round(row[pick] * (1000000 if measure == "cost" else 1)),
                }
                for user, row in sorted(cluster.truth.items())
            ],
        }
        for measure, (expr, pick, extra) in rounded.items()
    ]
    unit = {
        "rule_files": ["rules.yml"],
        # promtool runs every group at this interval; the stack's usage group says the same.
        "evaluation_interval": usage_group["interval"],
        "tests": [
            {
                "interval": f"{STEP}s",
                "input_series": cluster.input_series() + _price_series(tiers, [model]),
                "promql_expr_test": tests,
            }
        ],
    }
    (tmp_path / "bill.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    tested = subprocess.run(
        [promtool, "test", "rules", "bill.yml"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_group_runs_at_the_interval_its_increases_are_taken_over(stack_of: Any) -> None:
    rules = declared_rules(stack_of("gpu"))
    (usage_group,) = [g for g in rules["groups"] if g["name"] == "maas-usage"]
    assert usage_group["interval"] == chargeback.INTERVAL
    assert f"offset {chargeback.INTERVAL})" in yaml.safe_dump(usage_group, width=10_000)


def test_a_replica_replaced_halfway_bills_what_was_used(promtool: str, stack_of: Any, tmp_path: Path) -> None:
    """gpu's two Limitador replicas; one is replaced at 15 minutes. alice sends a request every
    20 s, bob three in all; each check and report reaches either live pod."""
    stack = stack_of("gpu")
    model = next(iter(stack.outputs["models"]))
    tier = stack.outputs["tiers"][-1]
    pods = {"a": Pod("a", 5), "b": Pod("b", 20, end=15 * 60), "c": Pod("c", 10, start=15 * 60)}
    cluster = Cluster(pods)
    chance = random.Random(26)
    for at in range(40, END - 2 * SCRAPE, 20):
        live = [p for p in pods.values() if p.start <= at and at + 5 < p.end - SCRAPE]
        check, report = chance.choice(live).name, chance.choice(live).name
        cluster.admitted(at, "alice", tier, model, 100 + at % 7, check, report)
    for at, check, report in ((100, "b", "a"), (700, "a", "b"), (1200, "c", "a")):
        cluster.admitted(at, "bob", tier, model, 250, check, report)
    _bill(promtool, stack, cluster, model, tmp_path)


def test_out_of_step_scrapes_of_a_sparse_user_bill_what_was_used(
    promtool: str, stack_of: Any, tmp_path: Path
) -> None:
    """No restart: the pods are scraped 20 s apart, and a sparse user's calls land on both, a
    token-limit 429 among them (its check on one pod, its refusal on the other)."""
    stack = stack_of("gpu")
    model = next(iter(stack.outputs["models"]))
    tier = stack.outputs["tiers"][-1]
    cluster = Cluster({"a": Pod("a", 25), "b": Pod("b", 5)})
    for at in (60, 300, 545, 900, 1300, 1500):
        cluster.admitted(at, "dave", tier, model, 100, "a", "b")
    for at in (400, 1000, 1400):
        cluster.refused_by_tokens(at, "dave", tier, model, "a", "b")
    _bill(promtool, stack, cluster, model, tmp_path)


def test_a_429_of_a_models_own_token_quota_is_free(promtool: str, stack_of: Any, tmp_path: Path) -> None:
    """dev's premium users have a token quota of their own on the large model (its limit is
    premium.simulator-large-tokens): its 429s are token refusals, billed nothing, as the
    tier's are."""
    stack = stack_of("dev")
    cluster = Cluster({"a": Pod("a", 25), "b": Pod("b", 5)})
    for at in (60, 300, 545, 900):
        cluster.admitted(at, "gina", "premium", "simulator-large", 100, "a", "b")
    for at in (400, 1000, 1400):
        cluster.refused_by_tokens(
            at, "gina", "premium", "simulator-large", "a", "b", "premium.simulator-large-tokens"
        )
    _bill(promtool, stack, cluster, "simulator-large", tmp_path)


def test_a_price_change_bills_each_interval_at_its_own_price(
    promtool: str, stack_of: Any, tmp_path: Path, monkeypatch: Any
) -> None:
    """One pod, steady traffic; the prices double at 15 minutes (a new deployment's rules)."""
    monkeypatch.setitem(PRICES, 15 * 60, (1.0, 4.0))
    stack = stack_of("gpu")
    model = next(iter(stack.outputs["models"]))
    tier = stack.outputs["tiers"][-1]
    cluster = Cluster({"a": Pod("a", 5)})
    for at in [*range(40, 14 * 60, 30), *range(16 * 60, END - 2 * SCRAPE, 30)]:
        cluster.admitted(at, "erin", tier, model, 500, "a", "a")
    _bill(promtool, stack, cluster, model, tmp_path)


def test_a_request_answered_without_usage_pays_the_request_price_and_no_tokens(
    promtool: str, stack_of: Any, tmp_path: Path
) -> None:
    """What is billed (docs/metering.md "What is billed"): a request both limits admitted and
    the picker shed (429) or the model failed (5xx, 4xx) pays the per-request price and no
    tokens, on two replicas. frank's served requests and failed ones interleave."""
    stack = stack_of("gpu")
    model = next(iter(stack.outputs["models"]))
    tier = stack.outputs["tiers"][-1]
    cluster = Cluster({"a": Pod("a", 25), "b": Pod("b", 5)})
    for at in (60, 400, 900, 1300):
        cluster.admitted(at, "frank", tier, model, 300, "a", "b")
    for at, check, token_check in ((200, "a", "b"), (210, "b", "b"), (700, "b", "a"), (1500, "a", "a")):
        cluster.failed(at, "frank", tier, model, check, token_check)
    _bill(promtool, stack, cluster, model, tmp_path)
