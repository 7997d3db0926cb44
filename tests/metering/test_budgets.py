"""Money budgets (maas:prices.budgets): the alerts fire at the configured fractions of a
budget, from the recording rules that bill (maas:cost:increase), in promtool on synthetic
usage and in a real Prometheus on Limitador-shaped counters."""

from __future__ import annotations

import copy
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.access import policies as access_policies
from components.metering import chargeback
from harness.program import Evaluation, stack_config, typed_config
from tests.support.configs import assert_refused, evaluate_variant
from tests.support.prometheus import Exporter, declared_rules, prometheus, series, serve

# premium's users may spend 10 USD an hour; premiumuser2 has a budget of its own, 4 an hour.
BUDGETS = {
    "tiers": {"premium": [{"amount": 10, "window": "1h"}]},
    "users": {"premiumuser2": [{"amount": 4, "window": "1h"}]},
}


def _with_budgets(budgets: dict[str, Any], stack: str = "dev") -> dict[str, Any]:
    return {"maas:prices": {**stack_config(stack)["maas:prices"], "budgets": budgets}}


@pytest.fixture(scope="module")
def budgeted() -> Evaluation:
    result = evaluate_variant("dev", _with_budgets(BUDGETS))
    assert result.error is None, result.error
    return result


def _budget_group(stack: Evaluation) -> dict[str, Any]:
    (group,) = [g for g in declared_rules(stack)["groups"] if g["name"] == "maas-budgets"]
    return copy.deepcopy(group)


def _summary(rules: list[dict[str, Any]], labels: dict[str, str]) -> str:
    """The summary of the fraction's alert, its templates filled in with `labels`."""
    (rule,) = [r for r in rules if r.get("alert") and r["labels"]["fraction"] == labels["fraction"]]
    return re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels[m.group(1)], rule["annotations"]["summary"])


def test_budgets_alert_at_each_fraction_in_promtool(
    promtool: str, budgeted: Evaluation, tmp_path: Path
) -> None:
    """premiumuser1 spends 0.25 USD every 30 s against premium's 10 an hour: 6.25 by minute 12
    (the 0.5 alert alone), 8.75 by minute 17 (0.8 alone), 10.75 by minute 21 (1.0 alone).
    premiumuser2 spends 0.1 every 30 s against its own 4: 2.5 by minute 12, a quarter of the
    tier's budget but more than half of its own, which is the one that counts."""
    group = _budget_group(budgeted)
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [group]}))

    def cost(user: str, each: float) -> dict[str, str]:
        labels = f'user="{user}", tier="premium", model="simulator", currency="USD"'
        return {"series": f"{chargeback.COST}{{{labels}}}", "values": f"{each}+0x60"}

    def fired(at: str, *alerts: tuple[str, str]) -> dict[str, Any]:
        expected = []
        for user, fraction in alerts:
            labels = {
                "user": user,
                "tier": "premium",
                "currency": "USD",
                "window": "1h",
                "fraction": fraction,
                "severity": "critical" if fraction == "1.0" else "warning",
            }
            expected.append(
                {"exp_labels": labels, "exp_annotations": {"summary": _summary(group["rules"], labels)}}
            )
        return {"eval_time": at, "alertname": "MaasBudgetSpent", "exp_alerts": expected}

    unit = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": group["interval"],
        "tests": [
            {
                "interval": "30s",
                "input_series": [cost("premiumuser1", 0.25), cost("premiumuser2", 0.1)],
                "alert_rule_test": [
                    fired("4m"),
                    fired("12m", ("premiumuser1", "0.5"), ("premiumuser2", "0.5")),
                    fired("17m", ("premiumuser1", "0.8"), ("premiumuser2", "0.8")),
                    fired("21m", ("premiumuser1", "1.0"), ("premiumuser2", "1.0")),
                ],
            }
        ],
    }
    (tmp_path / "budgets.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    tested = subprocess.run(
        [promtool, "test", "rules", "budgets.yml"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_real_prometheus_fires_the_fraction_spent_from_limitadors_counters(
    budgeted: Evaluation, tmp_path: Path
) -> None:
    """The stack's own rules (usage, cost, budgets; every group each second here) on
    Limitador-shaped counters. premiumuser1 makes 10 requests of 100 tokens at dev's premium
    prices (0.001 a request, 0.002 per 1,000 tokens): 0.012 USD; against a budget of 0.02,
    60%: the 0.5 alert. Another 10 make 0.024, 120%: the 1.0 alert, and the 0.5 one stops."""
    rules = declared_rules(budgeted)
    groups = copy.deepcopy(rules["groups"])
    for group in groups:
        group["interval"] = "1s"
    (budget_group,) = [g for g in groups if g["name"] == "maas-budgets"]
    for rule in budget_group["rules"]:
        if rule.get("record") == chargeback.BUDGET_AMOUNT and rule["labels"].get("tier") == "premium":
            rule["expr"] = "vector(0.02)"
    user = {"user": "premiumuser1", "tier": "premium", "model": "simulator"}

    def counters(requests: int) -> dict[Any, float]:
        return {
            series("authorized_calls", **user): 2 * requests,
            series("authorized_hits", **user): 101 * requests,
        }

    def firing(fraction: str = "") -> str:
        at = f', fraction="{fraction}"' if fraction else ""
        return f'ALERTS{{alertname="MaasBudgetSpent", alertstate="firing", user="premiumuser1"{at}}}'

    exporter = Exporter()
    exporter.set(counters(0))
    with (
        serve(exporter) as address,
        prometheus(tmp_path, {"groups": groups}, {"limitador": address}) as server,
    ):
        server.wait_for(f'{chargeback.COST}{{user="premiumuser1"}} == 0')
        exporter.set(counters(10))
        (alert,) = server.wait_for(firing("0.5"))
        assert alert["metric"]["window"] == "1h"
        assert {a["metric"]["fraction"] for a in server.vector(firing())} == {"0.5"}
        exporter.set(counters(20))
        server.wait_for(firing("1.0"))
        server.wait_for(f"absent({firing('0.5')})")


BAD_BUDGETS: dict[str, tuple[dict[str, Any], str]] = {
    "a currency other than the price table's": (
        {"tiers": {"premium": [{"amount": 5, "window": "1h", "currency": "EUR"}]}},
        "maas:prices.budgets.tiers.premium[0].currency: EUR, but the price table is in USD "
        "(maas:prices.currency): state the budget in USD or remove its currency",
    ),
    "a tier whose usage is priced nowhere": (
        {"tiers": {"free": [{"amount": 5, "window": "1h"}]}},
        "maas:prices.budgets.tiers.free: tier 'free' has no price in maas:prices, so nothing is ever "
        "spent against the budget",
    ),
    "a user the stack does not have": (
        {"users": {"mallory": [{"amount": 5, "window": "1h"}]}},
        "maas:prices.budgets.users.mallory: 'mallory' is not in maas:users",
    ),
    "a window Prometheus does not keep": (
        {"tiers": {"premium": [{"amount": 50, "window": "730h"}]}},
        "maas:prices.budgets.tiers.premium[0].window: '730h' is longer than the 1d Prometheus keeps "
        "(maas:observability.retention)",
    ),
    "a window Limitador cannot hold": (
        {"tiers": {"premium": [{"amount": 5, "window": "1500ms"}]}},
        "maas:prices.budgets.tiers.premium[0].window: '1500ms' is not a whole number of seconds",
    ),
    "one window twice": (
        {"users": {"premiumuser1": [{"amount": 5, "window": "1h"}, {"amount": 9, "window": "60m"}]}},
        "maas:prices.budgets.users.premiumuser1[1].window: '60m' is the window of "
        "maas:prices.budgets.users.premiumuser1[0] too",
    ),
    "a fraction of nothing": (
        {"tiers": {"premium": [{"amount": 5, "window": "1h"}]}, "alertAt": [0.5, 0]},
        "maas:prices.budgets.alertAt: entry 1 (0) must be above 0",
    ),
    "no amount": (
        {"tiers": {"premium": [{"amount": 0, "window": "1h"}]}},
        "maas:prices.budgets.tiers.premium[0].amount: Input should be greater than 0",
    ),
}


@pytest.mark.parametrize("case", BAD_BUDGETS, ids=list(BAD_BUDGETS))
def test_a_bad_budget_stops_with_its_message(case: str) -> None:
    budgets, expected = BAD_BUDGETS[case]
    assert_refused("dev", _with_budgets(budgets), expected)


def test_a_stack_has_budget_rules_exactly_where_its_file_declares_budgets(stack: Evaluation) -> None:
    declared = bool(typed_config(stack.stack).prices.budgets.entries())
    assert ("maas-budgets" in [g["name"] for g in declared_rules(stack)["groups"]]) == declared


def test_the_preview_says_no_hard_stop_and_what_the_limits_hold(budgeted: Evaluation) -> None:
    """dev's premium in an hour, per user: the simulator at premium's limits (20 requests per
    2m, 50,000 tokens per 1m: at most 20 x 31 and 50,000 x 61) and the large model at its own
    quota (3 per 2m, 20,000 per 1m: 3 x 31 and 20,000 x 61), at 0.001 a request and 0.002 per
    1,000 tokens: 0.62 + 6.10 + 0.093 + 2.44 = 9.25 USD."""
    said = budgeted.outputs["budgets"]
    assert set(said) == {"tier premium per 1h", "user premiumuser2 per 1h"}
    tier, user = said["tier premium per 1h"], said["user premiumuser2 per 1h"]
    for text in (tier, user):
        assert "alerts at 50%, 80%, 100% of it" in text
        assert "no hard stop" in text
        assert "at most 9.25 USD per 1h" in text
    assert "the limits alone keep the spend under the budget" in tier
    assert "the spend can pass the budget by up to 5.25 USD" in user
    # dev prices per request and per token both: no limit is the spend.
    assert "tier premium pays per request and per token both" in tier
    assert "enforced: a" not in tier + user


# premium pays per request only (0.002 a request): premium's 1 USD an hour is 500 requests,
# premiumuser2's 0.5 an hour 250; enterprise pays per request and per token both.
EXACT_PRICES = {
    "currency": "USD",
    "tiers": {
        "premium": {"perRequest": 0.002},
        "enterprise": {"perRequest": 0.0005, "perThousandTokens": 0.001},
    },
    "budgets": {
        "tiers": {"premium": [{"amount": 1, "window": "1h"}], "enterprise": [{"amount": 3, "window": "1h"}]},
        "users": {"premiumuser2": [{"amount": 0.5, "window": "1h"}]},
    },
}
# "enforced: a request cap of N per user per W (limit NAME of the KIND, ..."
CLAIM = re.compile(
    r"enforced: a (token|request) cap of (\d+) per user per (\w+) \(limit (\S+) of the (\w+)[,)]"
)


def test_the_preview_claims_a_cap_only_where_the_policies_declare_it() -> None:
    """Each `enforced:` in the output `budgets` names a limit of the declared tier policy with
    that rate, counted per user alone; every declared cap is claimed; the budget without one
    says no hard stop and by how much the spend can pass it."""
    result = evaluate_variant("dev", {"maas:prices": EXACT_PRICES})
    assert result.error is None, result.error
    said = result.outputs["budgets"]
    claims = {key: CLAIM.search(text) for key, text in said.items()}
    assert {key for key, found in claims.items() if found} == {
        "tier premium per 1h",
        "user premiumuser2 per 1h",
    }
    claimed = set()
    for found in filter(None, claims.values()):
        unit, limit, window, name, kind = found.groups()
        assert (unit, kind) == ("request", "RateLimitPolicy")
        (policy,) = [o for o in result.objects(kind) if o.object_name == access_policies.policy_name(kind)]
        declared = policy.inputs["spec"]["limits"][name]
        assert {"limit": int(limit), "window": window} in declared["rates"]
        assert declared["counters"] == [{"expression": "auth.identity.userid"}]
        claimed.add(name)
    declared_caps = {
        name
        for kind in ("RateLimitPolicy", "TokenRateLimitPolicy")
        for o in result.objects(kind)
        for name in o.inputs["spec"].get("limits", {})
        if name.startswith("+budget:")
    }
    assert declared_caps == claimed
    assert "500 per user per 1h" in said["tier premium per 1h"]
    assert "250 per user per 1h" in said["user premiumuser2 per 1h"]
    enterprise = said["tier enterprise per 1h"]
    assert "no hard stop" in enterprise
    assert "the spend can pass the budget by up to" in enterprise


def test_a_request_caps_refusal_is_one_free_call_labelled_budget(promtool: str, tmp_path: Path) -> None:
    """A request cap joins the request limit's call (tiers.py budget_caps): a capped user's
    request is 2 calls and 1 + its tokens in hits as anyone's, and one the cap refuses is that
    call refused, no authorized call or hit. Per 30 s: premiumuser1 (premium's cap) 1 request
    of 100 tokens on the simulator, and on the large model 1 of 10 tokens and 1 its token
    quota refuses; premiumuser2 (a cap of its own) 1 of 50 and 1 its cap refuses;
    enterpriseuser1 (no cap) 1 of 100. Each bills 1 request and its tokens, and the cap's
    refusal is a 429 labelled limit="budget"."""
    result = evaluate_variant("dev", {"maas:prices": EXACT_PRICES})
    assert result.error is None, result.error
    (usage,) = [g for g in declared_rules(result)["groups"] if g["name"] == "maas-usage"]
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [usage]}))
    quota = "premium.simulator-large-tokens"
    traffic = {
        # (user, tier, model): (calls, hits, {limit_name: refused}) per 30 s
        ("premiumuser1", "premium", "simulator"): (2, 101, {}),
        ("premiumuser1", "premium", "simulator-large"): (3, 12, {quota: 1}),
        ("premiumuser2", "premium", "simulator"): (2, 51, {"+budget:requests:user:premiumuser2": 1}),
        ("enterpriseuser1", "enterprise", "simulator"): (2, 101, {}),
    }
    inputs = []
    for (user, tier, model), (calls, hits, refused) in traffic.items():
        labels = f'user="{user}", tier="{tier}", model="{model}"'
        inputs.append({"series": f"authorized_calls{{{labels}}}", "values": f"0+{calls}x20"})
        inputs.append({"series": f"authorized_hits{{{labels}}}", "values": f"0+{hits}x20"})
        for name, count in refused.items():
            inputs.append(
                {"series": f'limited_calls{{{labels}, limit_name="{name}"}}', "values": f"0+{count}x20"}
            )

    def samples(record: str, values: dict[tuple[str, str, str], float]) -> dict[str, Any]:
        return {
            "expr": record,
            "eval_time": "5m",
            "exp_samples": [
                {"labels": f'{record}{{user="{u}", tier="{t}", model="{m}"}}', "value": v}
                for (u, t, m), v in values.items()
            ],
        }

    unit = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": usage["interval"],
        "tests": [
            {
                "interval": usage["interval"],
                "input_series": inputs,
                "promql_expr_test": [
                    samples(chargeback.REQUESTS, dict.fromkeys(traffic, 1)),
                    samples(chargeback.TOKENS, dict(zip(traffic, (100, 10, 50, 100), strict=True))),
                    {
                        "expr": f'{chargeback.REJECTED}{{limit="budget"}}',
                        "eval_time": "5m",
                        "exp_samples": [
                            {
                                "labels": f'{chargeback.REJECTED}{{user="premiumuser2", tier="premium", '
                                'model="simulator", limit="budget"}',
                                "value": 1,
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "usage.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    tested = subprocess.run(
        [promtool, "test", "rules", "usage.yml"],
        cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_price_per_input_or_output_token_is_refused() -> None:
    """Prices are per request and per 1,000 tokens, input and output together (docs/metering.md
    "Input and output tokens are one price, on every stack"): a split price is no key."""
    prices = {"currency": "USD", "tiers": {"premium": {"perThousandInputTokens": 0.001}}}
    assert_refused(
        "dev", {"maas:prices": prices}, "maas:prices.tiers.premium.perThousandInputTokens: unknown key"
    )
