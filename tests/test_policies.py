"""The policy pack, run in-process: real stacks pass; a broken variant per rule is refused."""

from __future__ import annotations

import copy
import re
from typing import Any

import pytest

from harness.program import PROJECT_DIR, Declared, Evaluation, evaluate, stack_config
from maas_policies import KNOWN_DEFAULT_CREDENTIALS, POLICIES
from tests import policy_runner
from tests.configs import evaluate_variant
from tests.policy_runner import Violation, replaced


def _violations(
    result: Evaluation, resources: list[Declared] | None = None, **config: Any
) -> list[Violation]:
    settings = policy_runner.pack_config(result.stack) | config
    return policy_runner.run(result, settings, resources)


def _only(
    found: list[Violation], policy: str, *fragments: str, level: str = "mandatory", also: str = ""
) -> None:
    """Exactly `policy` (and `also`) refused at `level`, with every fragment in a message of `policy`."""
    assert {v.policy for v in found} == {policy, also} - {""}, found
    assert all(v.level == level for v in found), found
    mine = [v.message for v in found if v.policy == policy]
    for fragment in fragments:
        assert any(fragment in message for message in mine), (fragment, found)


def _edited(stack: Evaluation, kind: str, name: str, edit: Any) -> list[Declared]:
    target = stack.one(kind, name)
    inputs = copy.deepcopy(target.inputs)
    edit(inputs)
    return replaced(stack.resources, target, inputs)


def test_every_real_stack_passes_the_pack(stack: Evaluation) -> None:
    assert policy_runner.run(stack) == []


def test_policies_are_named_described_and_unique() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names)) >= 12
    assert all(p.description and re.fullmatch(r"[a-z0-9-]+", p.name) for p in POLICIES)


@pytest.mark.parametrize(
    ("kind", "missing", "also"),
    [("AuthPolicy", "authentication", ""), ("RateLimitPolicy", "limits", "tiers-limited")],
)
def test_an_unprotected_route_is_refused(stack_of: Any, kind: str, missing: str, also: str) -> None:
    stack = stack_of("dev")
    without = [r for r in stack.resources if r.kind != kind]
    found = _violations(stack, without)
    _only(
        found,
        "routes-protected",
        "HTTPRoute llm/simulator",
        f"reachable without {missing}",
        "Fix:",
        also=also,
    )


def test_a_tier_without_a_token_limit_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    (tokens,) = stack.objects("TokenRateLimitPolicy")
    resources = _edited(
        stack, "TokenRateLimitPolicy", tokens.object_name, lambda i: i["spec"]["limits"].pop("premium-tokens")
    )
    _only(_violations(stack, resources), "tiers-limited", "admits tier 'premium', which has no token limit")


def test_a_higher_tier_with_lower_limits_only_warns() -> None:
    tiers = copy.deepcopy(stack_config("dev").get("maas:tiers")) or [
        {"name": t, "requests": {"limit": r, "window": "2m"}, "tokens": {"limit": k, "window": "1m"}}
        for t, r, k in (("free", 5, 10000), ("premium", 20, 50000), ("enterprise", 100, 200000))
    ]
    tiers[1]["requests"]["limit"] = 2
    result = evaluate_variant("dev", {"maas:tiers": tiers})
    assert result.error is None
    _only(
        _violations(result),
        "tier-limits-grow",
        "tier 'premium': gets fewer requests per second than 'free'",
        level="advisory",
    )


def test_limitador_replicas_without_redis_are_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    resources = _edited(stack, "Limitador", "limitador", lambda i: i["spec"].update(replicas=3))
    _only(
        _violations(stack, resources),
        "limitador-shared-storage",
        "3 replicas keep separate in-memory counters",
    )
    shared = evaluate_variant(
        "dev",
        {"maas:limitador": {"replicas": 3, "storage": "redis"}},
        secrets={"maas:limitadorRedisUrl": "redis://r:6379"},
    )
    assert policy_runner.run(shared) == []


@pytest.mark.parametrize(
    ("field", "fragment"),
    [("tolerations", "does not tolerate the GPU nodes' taint"), ("nodeSelector", "selects no GPU node")],
)
def test_a_gpu_model_that_could_land_on_a_cpu_node_is_refused(
    stack_of: Any, field: str, fragment: str
) -> None:
    stack = stack_of("gpu")
    resources = _edited(
        stack, "InferenceService", "qwen3-0-6b-instruct", lambda i: i["spec"]["predictor"].pop(field)
    )
    _only(
        _violations(stack, resources),
        "gpu-workloads-pinned",
        "InferenceService llm/qwen3-0-6b-instruct",
        fragment,
    )


def test_a_cpu_workload_on_gpu_nodes_only_warns(stack_of: Any) -> None:
    stack = stack_of("dev")
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    resources = _edited(
        stack,
        "InferenceService",
        "simulator",
        lambda i: i["spec"]["predictor"].update(tolerations=[toleration]),
    )
    _only(
        _violations(stack, resources),
        "cpu-workloads-off-gpu-nodes",
        "requests no GPU but tolerates GPU nodes",
        level="advisory",
    )


def test_a_container_without_limits_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    resources = _edited(
        stack,
        "InferenceService",
        "simulator",
        lambda i: i["spec"]["predictor"]["containers"][0]["resources"].pop("limits"),
    )
    _only(
        _violations(stack, resources),
        "container-resources",
        "container kserve-container: no limits.cpu, limits.memory",
    )


@pytest.mark.parametrize(
    ("image", "refused"),
    [
        ("ghcr.io/llm-d/llm-d-inference-sim:latest", True),
        ("ghcr.io/llm-d/llm-d-inference-sim", True),
        ("localhost:5000/llm-d-inference-sim", True),
        ("ghcr.io/llm-d/llm-d-inference-sim@sha256:" + "a" * 64, False),
        ("localhost:5000/llm-d-inference-sim:v1.2.3", False),
    ],
)
def test_unpinned_images_are_refused(stack_of: Any, image: str, refused: bool) -> None:
    stack = stack_of("dev")
    resources = _edited(
        stack,
        "InferenceService",
        "simulator",
        lambda i: i["spec"]["predictor"]["containers"][0].update(image=image),
    )
    found = _violations(stack, resources)
    if refused:
        _only(
            found,
            "images-pinned",
            f"image '{image}' is not pinned",
            "Fix: use a release tag or a @sha256 digest",
        )
    else:
        assert found == []


@pytest.mark.parametrize("version", ["^1.5", "", "latest", "1.5"])
def test_an_unpinned_chart_is_refused(stack_of: Any, version: str) -> None:
    stack = stack_of("dev")
    release = stack.release("kuadrant-operator")
    resources = replaced(stack.resources, release, {**release.inputs, "version": version})
    _only(
        _violations(stack, resources),
        "charts-pinned",
        f"Helm release kuadrant-operator: chart version '{version}'",
    )


def test_a_demo_credential_is_refused_outside_dev_only(stack_of: Any) -> None:
    leaked = KNOWN_DEFAULT_CREDENTIALS.pattern.split("|")[0]
    for name in ("gpu", "dev"):
        stack = stack_of(name)
        resources = _edited(
            stack, "Secret", "grafana-admin", lambda i: i["stringData"].update({"admin-password": leaked})
        )
        found = _violations(stack, resources)
        if name == "dev":
            assert found == []
        else:
            _only(
                found,
                "no-default-credentials",
                "Secret llm-observability/grafana-admin",
                "known default or demo credential",
            )


def test_a_plain_text_credential_in_helm_values_is_refused_outside_dev(stack_of: Any) -> None:
    stack = stack_of("gpu")
    release = stack.release("monitoring")
    values = copy.deepcopy(release.inputs["values"])
    values["grafana"]["adminPassword"] = "not-generated-anywhere"
    resources = replaced(stack.resources, release, {**release.inputs, "values": values})
    _only(
        _violations(stack, resources),
        "no-default-credentials",
        "values.grafana.adminPassword holds a credential in plain text",
    )


def test_keycloak_without_a_database_is_refused_outside_dev(stack_of: Any) -> None:
    stack = stack_of("gpu")
    resources = _edited(stack, "Keycloak", "keycloak", lambda i: i["spec"].pop("db"))
    _only(_violations(stack, resources), "keycloak-production-mode", "lacks a database (spec.db)")


@pytest.mark.parametrize("how", ["removed", "admits everyone"])
def test_a_model_without_network_isolation_is_refused(stack_of: Any, how: str) -> None:
    stack = stack_of("dev")
    policy = stack.one("NetworkPolicy", "simulator-ingress")
    if how == "removed":
        resources = [r for r in stack.resources if r.urn != policy.urn]
    else:
        open_to_all = copy.deepcopy(policy.inputs)
        open_to_all["spec"]["ingress"] = [{"ports": [{"port": 8080, "protocol": "TCP"}]}]
        resources = replaced(stack.resources, policy, open_to_all)
    _only(
        _violations(stack, resources),
        "models-isolated",
        "InferenceService llm/simulator",
        "without the gateway",
    )


def test_a_stack_relaxes_a_rule_only_with_a_reason(stack_of: Any) -> None:
    stack = stack_of("dev")
    resources = _edited(
        stack,
        "InferenceService",
        "simulator",
        lambda i: i["spec"]["predictor"]["containers"][0].update(image="sim:latest"),
    )
    explained = {"exemptions": ["llm/simulator"], "reason": "a locally built simulator for a demo"}
    assert _violations(stack, resources, **{"images-pinned": explained}) == []
    unexplained = _violations(stack, resources, **{"images-pinned": {"exemptions": ["llm/simulator"]}})
    assert any("has no reason" in v.message for v in unexplained)
    assert any("is not pinned" in v.message for v in unexplained)


def test_the_pack_and_the_program_use_the_same_pulumi() -> None:
    def pins(path: str) -> dict[str, str]:
        lines = (PROJECT_DIR / path).read_text().splitlines()
        return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))

    assert pins("policies/requirements.txt")["pulumi"] == pins("requirements.txt")["pulumi"]


def test_every_stack_has_a_pack_config() -> None:
    for stack in ("dev", "gpu"):
        assert policy_runner.pack_config(stack), f"policies/config/{stack}.json"
    assert evaluate("dev").error is None


@pytest.mark.parametrize(
    ("matches", "fragment"),
    [
        ([{"path": {"type": "PathPrefix", "value": "/v1"}}], "PathPrefix /v1"),
        ([{"path": {"type": "Exact", "value": "/v1/responses"}}], "Exact /v1/responses"),
        (None, "PathPrefix /"),
    ],
)
def test_a_route_publishing_unmetered_endpoints_is_refused(
    stack_of: Any, matches: list[dict[str, Any]] | None, fragment: str
) -> None:
    stack = stack_of("dev")

    def widen(inputs: dict[str, Any]) -> None:
        rule = inputs["spec"]["rules"][0]
        if matches is None:
            rule.pop("matches")
        else:
            rule["matches"] = [*rule["matches"], *matches]

    resources = _edited(stack, "HTTPRoute", "simulator", widen)
    _only(_violations(stack, resources), "usage-metered", "HTTPRoute llm/simulator", fragment, "Fix:")


def test_a_gateway_that_does_not_ask_streams_for_usage_is_refused(stack_of: Any) -> None:
    stack = stack_of("dev")
    without = [r for r in stack.resources if r.kind != "EnvoyFilter"]
    _only(_violations(stack, without), "usage-metered", "a stream without stream_options is never charged")


def test_vllm_without_forced_usage_is_refused(stack_of: Any) -> None:
    stack = stack_of("gpu")

    def unforce(inputs: dict[str, Any]) -> None:
        inputs["spec"]["containers"][0]["args"].remove("--enable-force-include-usage")

    resources = _edited(stack, "ServingRuntime", "vllm-openai", unforce)
    _only(_violations(stack, resources), "usage-metered", "ServingRuntime llm/vllm-openai", "Fix: add")


def test_the_packs_copies_of_program_constants_match_the_originals() -> None:
    """The pack runs in its own virtualenv without the program's modules, so it copies them."""
    from components.serving import gateway, models
    from components.config import GATEWAY_NAME
    from maas_policies import metering, objects

    assert objects.GATEWAY_NAME == GATEWAY_NAME
    assert metering.METERED_PATHS == models.METERED_PATHS
    assert metering.STREAM_USAGE_MARK in gateway.STREAM_USAGE_LUA.read_text()
