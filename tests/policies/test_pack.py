"""The policy pack as a whole: real stacks pass, rules are named and documented, copies agree."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pulumi_policy import (
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from components.access import realm, self_service, tiers
from components.config import DEFAULT_TIERS, KeyServiceConfig
from components.flavour import openshift
from components.metering import chargeback
from components.names import GATEWAY_NAME, KEY_SERVICE, KEY_SERVICE_LABELS, MODEL_HEADER
from components.pins import upstream
from components.platform import keycloak
from components.serving import gateway, model_deployment, vllm_serving_runtime
from harness.program import PROJECT_DIR, UNKNOWN, Evaluation, evaluate, stack_names
from maas_policies import POLICIES, access, isolation, keys, metering, objects
from tests.support import policy_runner
from tests.support.configs import simulator


def test_every_real_stack_passes_the_pack(stack: Evaluation) -> None:
    """As on a second `pulumi up`: every value known."""
    assert policy_runner.run(stack) == []


@pytest.mark.parametrize("name", stack_names())
def test_a_first_preview_of_every_stack_passes_and_every_rule_judges_it(name: str) -> None:
    """As the first `pulumi preview` of a new stack: what only a create computes is unknown.
    A rule that reads such a value stops with "can't run policy" (an advisory), which fails
    here unless the rule says what it does then (objects.known)."""
    preview = evaluate(name, preview=True)
    assert preview.error is None
    unknown = [r for r in preview.resources if UNKNOWN in json.dumps(r.inputs)]
    assert unknown, "a first preview of every stack leaves generated Secrets unknown"
    assert policy_runner.run(preview) == []


def _plain(value: Any) -> Any:
    """A policy's view as plain data, proxies opened."""
    if isinstance(value, Mapping):
        assert not isinstance(value, dict), "the analyzer hands read-only proxies, not dicts"
        return {k: _plain(value[k]) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, str):
        assert not isinstance(value, list), "the analyzer hands list proxies, not lists"
        return [_plain(v) for v in value]
    assert not isinstance(value, int) or isinstance(value, bool), "numbers arrive as floats"
    return value


def test_each_policy_sees_what_the_analyzer_hands_it(stack_of: Any) -> None:
    """For one resource of every type: proxies (pulumi/pulumi-policy@v1.21.0
    sdk/python/lib/pulumi_policy/proxy.py), floats (protobuf's
    Struct has no integers), secrets opened (deserialize.py), the inputs to a resource rule
    and the outputs to a stack rule; and a read of an unknown ends the rule with its path."""
    stack = stack_of("dev")
    sample = list({r.type: r for r in stack.resources}.values())
    seen: dict[str, Any] = {}
    seen_stack: dict[str, Any] = {}

    def resource_spy(args: ResourceValidationArgs, _: ReportViolation) -> None:
        seen[args.urn] = _plain(args.props)

    def stack_spy(args: StackValidationArgs, _: ReportViolation) -> None:
        seen_stack.update({r.urn: _plain(r.props) for r in args.resources})

    spies = [
        ResourceValidationPolicy("resource-spy", "sees inputs", resource_spy),
        StackValidationPolicy("stack-spy", "sees outputs", stack_spy),
    ]
    assert policy_runner.run(stack, {}, sample, spies) == []
    as_struct = functools.partial(json.loads, parse_int=float)
    for resource in sample:
        checked, _ = policy_runner.checked(resource)
        assert seen[resource.urn] == as_struct(json.dumps(checked)), resource.urn
        assert seen_stack[resource.urn] == as_struct(json.dumps(resource.outputs)), resource.urn
    assert any(resource.secret_paths for resource in sample), "the sample carries secrets"

    def reads_string_data(args: ResourceValidationArgs, _: ReportViolation) -> None:
        args.props.get("stringData")

    preview = evaluate("dev", preview=True)
    generated = [r for r in preview.resources if r.kind == "Secret" and UNKNOWN in json.dumps(r.inputs)][:1]
    reader = ResourceValidationPolicy("reader", "reads stringData", reads_string_data)
    (stopped,) = policy_runner.run(preview, {}, generated, [reader])
    assert stopped.cannot_run
    assert stopped.level == "advisory"
    assert ".stringData can't be known during preview" in stopped.message


def test_the_pack_config_is_reconciled_and_validated_as_the_engine_does(stack_of: Any) -> None:
    """Schema defaults fill what a stack's file leaves out; a value off its schema stops the run."""
    stack = stack_of("dev")
    configs: list[Mapping[str, Any]] = []
    schema = PolicyConfigSchema(properties={"stacks": {"type": "array", "default": ["dev"]}, "why": {}})
    spy = ResourceValidationPolicy(
        "config-spy", "reads its config", lambda a, _: configs.append(a.get_config()), config_schema=schema
    )
    policy_runner.run(stack, {}, stack.resources[:1], [spy])
    policy_runner.run(stack, {"config-spy": {"why": "given"}}, stack.resources[:1], [spy])
    assert configs == [{"stacks": ["dev"]}, {"stacks": ["dev"], "why": "given"}]
    with pytest.raises(ValueError, match="no-default-credentials: 'dev' is not of type 'array'"):
        policy_runner.run(stack, {"no-default-credentials": {"devStacks": "dev"}})


def test_policies_are_named_described_and_unique() -> None:
    names = [p.name for p in POLICIES]
    assert len(names) == len(set(names)) >= 12
    assert all(p.description and re.fullmatch(r"[a-z0-9-]+", p.name) for p in POLICIES)


def test_every_stack_has_a_pack_config() -> None:
    for stack in stack_names():
        assert policy_runner.pack_config(stack), f"policies/config/{stack}.json"
    assert evaluate("dev").error is None


def test_the_pack_and_the_program_use_the_same_pulumi() -> None:
    def pins(path: str) -> dict[str, str]:
        lines = (PROJECT_DIR / path).read_text().splitlines()
        return dict(line.split("==") for line in lines if "==" in line and not line.startswith("#"))

    assert pins("policies/requirements.txt")["pulumi"] == pins("requirements.txt")["pulumi"]


def test_the_packs_copies_of_program_constants_match_the_originals() -> None:
    """The pack runs in its own virtualenv without the program's modules, so it copies them."""
    assert objects.GATEWAY_NAME == GATEWAY_NAME
    assert isolation._ISVC_LABEL == model_deployment.ISVC_LABEL
    assert metering.METERED_PATHS == model_deployment.METERED_PATHS
    assert metering.STREAM_USAGE_MARK in gateway.REQUEST_BODY_LUA.read_text()
    assert metering.FORCE_USAGE_FLAG == vllm_serving_runtime.FORCE_USAGE_FLAG
    assert access.TIERS_ANNOTATION == model_deployment.TIERS_ANNOTATION
    assert access.MODEL_HEADER == MODEL_HEADER
    assert access.USAGE_PATHS == upstream.OPENAI_USAGE_PATHS
    for what, pods in (("Authorino", upstream.AUTHORINO_PODS), ("Limitador", upstream.LIMITADOR_PODS)):
        labels, ports = isolation.KUADRANT_SERVERS[what]
        assert labels == pods.labels
        assert sorted(ports.values()) == sorted(pods.ports.values())
    # Limitador's pods declare their ports' names; Authorino's declare none.
    assert isolation.KUADRANT_SERVERS["Limitador"][1] == upstream.LIMITADOR_PODS.ports
    assert access.model_predicate("org/m-1") == tiers.model_predicate("org/m-1")
    assert keys.KEY_SERVICE_LABELS == KEY_SERVICE_LABELS
    assert set(self_service.SECRET_VERBS) == keys.KEY_SECRET_VERBS
    tenancy = ({openshift.TENANCY_GROUP}, {openshift.TENANCY_RESOURCE}, {openshift.TENANCY_VERB})
    assert tenancy == keys.METRICS_READ
    assert metering.KEY_SERVICE == KEY_SERVICE
    assert (*self_service.API_PATHS, self_service.PAGE_PATH) == metering.KEY_SERVICE_PATHS
    assert metering.KEYCLOAK_SERVICE == keycloak.SERVICE
    assert realm.realm_paths("maas") == (f"{metering.REALM_PREFIX}maas", metering.REALM_STATIC)
    assert keys.KEY_TIERS_ENV == self_service.KEY_TIERS_ENV
    # What mints and whom the key service's limits count (self_service.py rate_limit_spec).
    assert access.MINT_PATH == self_service.MINT_PATH
    assert access.USER_ID == tiers.USER_ID
    mints = self_service.rate_limit_spec(KeyServiceConfig(), "r")["limits"][self_service.MINT_LIMIT]
    assert {c["predicate"] for c in mints["when"]} == access.MINT_PREDICATES
    # The tier the access rules read from the limits' and the AuthPolicy's predicates.
    for pattern in (access._TIER_IS, access._TIER_IN):
        assert pattern.pattern.startswith(re.escape(tiers.TIER)), pattern.pattern
    matched = access._TIER_IS.search(tiers.tier_predicate("gold"))
    assert matched is not None
    assert matched.group(1) == "gold"
    assert metering.PRICE_RECORD == chargeback.PRICE_PER_REQUEST
    assert metering.BUDGET_RECORD == chargeback.BUDGET_AMOUNT
    # A budget's cap (components/access/tiers.py budget_limit_name).
    assert access._BUDGET_CAP.match(tiers.budget_limit_name("gold", None))
    assert access._BUDGET_CAP.match(tiers.budget_limit_name("gold", "alice"))
    assert not access._BUDGET_CAP.match(tiers.request_limit_name("gold"))
    # A model's quota and its tier's limit for the other models (components/access/tiers.py _limits).
    model = access._MODEL_IS.fullmatch(tiers.model_predicate("org/m-1"))
    assert model is not None
    assert model.group(1) == "org/m-1"
    spec = tiers.rate_limit_spec(
        DEFAULT_TIERS, "r", [simulator("m", limits={"free": {"requests": {"limit": 1, "window": "1m"}}})]
    )
    left_out = spec["limits"]["free-requests"]["when"][-1]["predicate"]
    assert access._MODELS_OUT.fullmatch(left_out) is not None, left_out


def _readme_policy_table() -> list[tuple[str, str]]:
    """(rule, level) of each row of docs/policy-pack.md's table under "# Policy pack", in order."""
    text = (PROJECT_DIR / "docs" / "policy-pack.md").read_text()
    section = text.split("# Policy pack\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \| ([^|]+?) \|", section, re.MULTILINE)


def _documented_level(policy: Any) -> str:
    """The level as docs/policy-pack.md writes it: the pack's enforcement level, and for a rule that
    holds only outside the stacks its config names as dev (`devStacks`), which those are."""
    level = str(policy.enforcement_level.value)
    schema = policy.config_schema.properties if policy.config_schema else {}
    if "devStacks" in schema:
        return f"{level} outside {', '.join(schema['devStacks']['default'])}"
    return level


def test_the_readme_lists_every_policy_with_its_level() -> None:
    documented = _readme_policy_table()
    assert documented, "docs/policy-pack.md: no policy table under # Policy pack"
    assert documented == [(p.name, _documented_level(p)) for p in POLICIES]
