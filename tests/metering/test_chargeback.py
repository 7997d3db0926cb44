"""The usage, cost and alert rules, checked and unit-tested with promtool itself."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.metering import chargeback
from harness.program import Evaluation, stack_config, typed_config
from tests.support.prometheus import declared_rules

# Labels a scrape of Limitador adds besides those Limitador itself sets.
SCRAPED = 'job="kuadrant-system/limitador", pod="limitador-limitador-7d9f", maas_component="limitador"'


def _promtool(promtool: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=120
    )


def _limitador(
    user: str, tier: str, model: str, calls: int, hits: int, limited: dict[str, int], minutes: int = 30
) -> list[dict[str, str]]:
    """Input series shaped like Limitador's /metrics (with telemetry labels): 0, then the given
    values, reported every minute for `minutes` as Limitador keeps doing."""
    labels = f'user="{user}", tier="{tier}", model="{model}", {SCRAPED}'
    found = [
        {"series": f"authorized_calls{{{labels}}}", "values": f"0 {calls}+0x{minutes}"},
        {"series": f"authorized_hits{{{labels}}}", "values": f"0 {hits}+0x{minutes}"},
    ]
    found += [
        {"series": f'limited_calls{{{labels}, limit_name="{name}"}}', "values": f"0 {count}+0x{minutes}"}
        for name, count in limited.items()
    ]
    return found


def _price(stack: str, tier: str, model: str) -> tuple[float, float]:
    """The stack file's price for a tier and model, read without the program's help."""
    prices = stack_config(stack).get("maas:prices", {})
    chosen = prices.get("models", {}).get(model, {}).get(tier) or prices.get("tiers", {}).get(tier) or {}
    return float(chosen.get("perRequest", 0)), float(chosen.get("perThousandTokens", 0))


def test_the_declared_rules_pass_promtool_check(promtool: str, stack: Evaluation, tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(declared_rules(stack)))
    checked = _promtool(promtool, "check", "rules", "rules.yml", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS" in checked.stdout, checked.stdout + checked.stderr


def _scenario(stack: Evaluation) -> tuple[list[dict[str, str]], list[dict[str, Any]]]:
    """Traffic of two users on the stack's first model, and the usage and cost it must yield.

    alice (2nd tier): 10 requests admitted with 100 tokens each, 2 refused by the request
    limit, 1 refused by the token limit. bob (1st tier): 5 admitted with 100 tokens each.
    """
    tiers = stack.outputs["tiers"]
    model = next(iter(stack.outputs["models"]))
    alice_tier, bob_tier = tiers[1], tiers[0]
    series = _limitador(
        "alice", alice_tier, model, calls=2 * 10 + 1, hits=10 * 101 + 1,
        limited={f"{alice_tier}-requests": 2, f"{alice_tier}-tokens": 1},
    ) + _limitador("bob", bob_tier, model, calls=2 * 5, hits=5 * 101, limited={})  # fmt: skip
    expected = {
        "alice": (alice_tier, 10, 1000, {"requests": 2, "tokens": 1}),
        "bob": (bob_tier, 5, 500, {}),
    }
    currency = stack_config(stack.stack).get("maas:prices", {}).get("currency", "USD")

    # Labels a rule adds itself (on OpenShift, the namespace the key service's reads need:
    # components/metering/chargeback.py), as the declared rules say.
    added = {
        rule["record"]: "".join(f', {k}="{v}"' for k, v in sorted(rule.get("labels", {}).items()))
        for group in declared_rules(stack)["groups"]
        for rule in group["rules"]
        if "record" in rule
    }

    def over_the_run(metric: str, samples: list[tuple[str, Any]]) -> dict[str, Any]:
        """What the recorded series add up to over the whole run (as the export sums them)."""
        return {
            "expr": f"sum_over_time({metric}[30m])",
            "eval_time": "30m",
            "exp_samples": [
                {"labels": f"{{{labels}{added.get(metric, '')}}}", "value": value}
                for labels, value in samples
            ],
        }

    tests: list[dict[str, Any]] = [
        over_the_run(
            metric,
            [(f'user="{u}", tier="{t[0]}", model="{model}"', t[pick]) for u, t in expected.items()],
        )
        for metric, pick in ((chargeback.REQUESTS, 1), (chargeback.TOKENS, 2))
    ]
    tests.append(
        over_the_run(
            chargeback.REJECTED,
            [
                (f'user="alice", tier="{alice_tier}", model="{model}", limit="{k}"', v)
                for k, v in expected["alice"][3].items()
            ],
        )
    )
    cost_samples = []
    for user, (tier, requests, tokens, _) in expected.items():
        per_request, per_1k = _price(stack.stack, tier, model)
        cost = requests * per_request + tokens / 1000 * per_1k
        cost_samples.append((f'user="{user}", tier="{tier}", model="{model}", currency="{currency}"', cost))
    tests.append(over_the_run(chargeback.COST, cost_samples))
    return series, tests


def test_usage_and_cost_from_limitador_shaped_counters(
    promtool: str, stack: Evaluation, tmp_path: Path
) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(declared_rules(stack)))
    series, expressions = _scenario(stack)
    unit = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": chargeback.INTERVAL,
        "tests": [{"interval": "1m", "input_series": series, "promql_expr_test": expressions}],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    tested = _promtool(promtool, "test", "rules", "test.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def _alert_test(
    stack: Evaluation,
    input_series: list[dict[str, str]],
    alert: str,
    fires_at: str,
    quiet_at: str,
    labels: dict[str, str],
) -> dict[str, Any]:
    rule = next(
        r
        for group in declared_rules(stack)["groups"]
        for r in group["rules"]
        if r.get("alert") == alert and all(r["labels"].get(k, v) == v for k, v in labels.items())
    )
    summary = rule["annotations"]["summary"].replace("{{ $labels.tier }}", labels.get("tier", ""))
    return {
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [
            {"eval_time": quiet_at, "alertname": alert, "exp_alerts": []},
            {
                "eval_time": fires_at,
                "alertname": alert,
                "exp_alerts": [{"exp_labels": labels, "exp_annotations": {"summary": summary}}],
            },
        ],
    }


def test_alerts_fire_when_a_component_is_down_or_a_tier_is_throttled(
    promtool: str, stack: Evaluation, tmp_path: Path
) -> None:
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(declared_rules(stack)))
    model, *other_models = stack.outputs["models"]
    tier = stack.outputs["tiers"][0]
    up = 'up{{maas_component="{}", job="j", instance="i"{}}}'
    healthy_then_down = "1 1 0x20"
    healthy = [{"series": up.format("model", f', model="{m}"'), "values": "1x30"} for m in other_models]
    throttled = [
        # 100 requests admitted, then over 20 minutes, 200 refused by the request limit.
        *_limitador("carol", tier, model, calls=200, hits=100 * 101, limited={}),
        {
            "series": (
                f'limited_calls{{user="carol", tier="{tier}", model="{model}", '
                f'{SCRAPED}, limit_name="{tier}-requests"}}'
            ),
            "values": "0+0x10 0+20x20",
        },
    ]
    critical = {"severity": "critical"}
    limitador = [{"series": up.format("limitador", ""), "values": healthy_then_down}]
    authorino = [{"series": up.format("authorino", ""), "values": healthy_then_down}]
    one_model = [{"series": up.format("model", f', model="{model}"'), "values": healthy_then_down}, *healthy]
    cases = [
        _alert_test(stack, limitador, "MaasLimitadorDown", "15m", "4m", critical),
        _alert_test(stack, authorino, "MaasAuthorinoDown", "15m", "4m", critical),
        _alert_test(stack, one_model, "MaasModelDown", "20m", "8m", {**critical, "model": model}),
        _alert_test(
            stack, throttled, "MaasTierThrottled", "25m", "5m", {"severity": "warning", "tier": tier}
        ),
    ]
    unit = {"rule_files": ["rules.yml"], "evaluation_interval": chargeback.INTERVAL, "tests": cases}
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    tested = _promtool(promtool, "test", "rules", "alerts.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_the_pickers_outcomes_per_tier_and_the_paying_tier_alert(
    promtool: str, stack_of: Any, tmp_path: Path
) -> None:
    """On dev (tiers free, premium, enterprise; premium and enterprise priced): the picker's
    counters by priority band become rates per tier; a paying tier waiting past the queue
    timeout for 5 minutes pages, the free tier shed does not."""
    stack = stack_of("dev")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(declared_rules(stack)))
    picker = 'maas_component="endpoint-picker", model="simulator", inference_pool="simulator", job="j"'

    def outcome(name: str, priority: int, per_minute: int) -> dict[str, str]:
        labels = f'{picker}, outcome="{name}", priority="{priority}"'
        return {
            "series": f"llm_d_epp_flow_control_requests_total{{{labels}}}",
            "values": f"0+{per_minute}x30",
        }

    series = [
        outcome("Dispatched", 2, 60),
        outcome("EvictedTTL", 0, 30),  # free: shed, no alert
        outcome("EvictedTTL", 1, 6),  # premium: shed, the alert
        outcome("EvictedContextCancelled", 2, 6),  # enterprise: its clients gave up, no alert
    ]
    scheduled = "maas:scheduled_requests:rate5m"
    enterprise_dispatched = 'tier="enterprise", model="simulator", outcome="Dispatched"'
    unit = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": series,
                "promql_expr_test": [
                    {
                        "expr": f'{scheduled}{{tier="enterprise", outcome="Dispatched"}}',
                        "eval_time": "10m",
                        "exp_samples": [
                            {
                                "labels": f"{scheduled}{{{enterprise_dispatched}}}",
                                "value": 1,
                            }
                        ],
                    }
                ],
                "alert_rule_test": [
                    {"eval_time": "4m", "alertname": "MaasPayingTierShed", "exp_alerts": []},
                    {
                        "eval_time": "12m",
                        "alertname": "MaasPayingTierShed",
                        "exp_alerts": [
                            {
                                "exp_labels": {
                                    "severity": "critical",
                                    "tier": "premium",
                                    "model": "simulator",
                                },
                                "exp_annotations": {
                                    "summary": "Model simulator is saturated and refuses requests of the "
                                    "paying tier premium: add replicas, or raise "
                                    "maas:scheduler.queueTimeout."
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    (tmp_path / "scheduling.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    tested = _promtool(promtool, "test", "rules", "scheduling.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_a_pooled_models_picker_down_pages(promtool: str, stack_of: Any, tmp_path: Path) -> None:
    """The pool fails closed: without its picker the model refuses everything."""
    stack = stack_of("dev")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(declared_rules(stack)))
    picker = [
        {
            "series": 'up{maas_component="endpoint-picker", model="simulator", job="j", instance="i"}',
            "values": "1 1 0x20",
        }
    ]
    down = _alert_test(
        stack, picker, "MaasEndpointPickerDown", "15m", "4m", {"severity": "critical", "model": "simulator"}
    )
    unit = {"rule_files": ["rules.yml"], "evaluation_interval": "1m", "tests": [down]}
    (tmp_path / "picker.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    tested = _promtool(promtool, "test", "rules", "picker.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.mark.parametrize("component", ["limitador", "authorino", "gateway", "model", "endpoint-picker"])
def test_every_component_an_alert_watches_is_labelled_by_a_monitor(stack: Evaluation, component: str) -> None:
    rules = yaml.safe_dump(declared_rules(stack))
    pooled = any(m.scheduling == "pool" for m in typed_config(stack.stack).models)
    # Pickers exist, and are watched, only where a model is pooled.
    assert (f'maas_component="{component}"' in rules) is (component != "endpoint-picker" or pooled)
    if f'maas_component="{component}"' not in rules:
        return
    monitors = stack.objects("PodMonitor") + stack.objects("ServiceMonitor")
    marked = {
        relabel.get("replacement")
        for monitor in monitors
        for endpoint in monitor.inputs["spec"].get(
            "podMetricsEndpoints", monitor.inputs["spec"].get("endpoints", [])
        )
        for relabel in endpoint.get("relabelings", [])
        if relabel.get("targetLabel") == "maas_component"
    }
    assert component in marked


def test_tokens_served_but_not_charged_raise_an_alert(promtool: str, stack_of: Any, tmp_path: Path) -> None:
    """The model's servers count 500 tokens a minute. Charged 100 of them (the rest streamed
    to clients that closed the stream before its usage chunk): the alert fires. Every token
    report lost (Limitador saw the checks only, docs/metering.md "Token reports that never
    arrive"): it fires. Charged all of them: it stays quiet."""
    stack = stack_of("dev")
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(declared_rules(stack)))
    model, tier = next(iter(stack.outputs["models"])), stack.outputs["tiers"][0]
    server = f'maas_component="model", model="{model}", model_name="{model}", pod="p", job="j", instance="i"'
    limitador = f'user="u", tier="{tier}", model="{model}", {SCRAPED}'

    def case(charged_per_minute: int, fires: bool) -> dict[str, Any]:
        series = [
            {"series": f"vllm:prompt_tokens_total{{{server}}}", "values": "0+100x90"},
            {"series": f"vllm:generation_tokens_total{{{server}}}", "values": "0+400x90"},
            # one request a minute, its tokens as the wasm-shim reported them
            {"series": f"authorized_calls{{{limitador}}}", "values": "0+2x90"},
            {"series": f"authorized_hits{{{limitador}}}", "values": f"0+{1 + charged_per_minute}x90"},
        ]
        summary = (
            f"Model {model} served more tokens in the last hour than were charged: streams cut "
            "before their end, or token reports that never reached Limitador."
        )
        expected = [
            {"exp_labels": {"severity": "warning", "model": model}, "exp_annotations": {"summary": summary}}
        ]
        return {
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [
                {
                    "eval_time": "85m",
                    "alertname": "MaasTokensUncharged",
                    "exp_alerts": expected if fires else [],
                }
            ],
        }

    unit = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": chargeback.INTERVAL,
        "tests": [case(100, fires=True), case(0, fires=True), case(500, fires=False)],
    }
    (tmp_path / "uncharged.yml").write_text(yaml.safe_dump(unit, sort_keys=False))
    tested = _promtool(promtool, "test", "rules", "uncharged.yml", cwd=tmp_path)
    assert tested.returncode == 0, tested.stdout + tested.stderr
