"""The policy pack as a whole: real stacks pass, rules are named and documented, copies agree."""

from __future__ import annotations

import re
from typing import Any

from components.access import tiers
from components.config import GATEWAY_NAME, MODEL_HEADER
from components.pins import upstream
from components.serving import gateway, models
from harness.program import PROJECT_DIR, Evaluation, evaluate, stack_names
from maas_policies import POLICIES, access, isolation, metering, objects
from tests.support import policy_runner


def test_every_real_stack_passes_the_pack(stack: Evaluation) -> None:
    assert policy_runner.run(stack) == []


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
    assert isolation._ISVC_LABEL == models.ISVC_LABEL
    assert metering.METERED_PATHS == models.METERED_PATHS
    assert metering.STREAM_USAGE_MARK in gateway.REQUEST_BODY_LUA.read_text()
    assert metering.FORCE_USAGE_FLAG == models.FORCE_USAGE_FLAG
    assert access.TIERS_ANNOTATION == models.TIERS_ANNOTATION
    assert access.MODEL_HEADER == MODEL_HEADER
    assert access.USAGE_PATHS == upstream.OPENAI_USAGE_PATHS
    for what, pods in (("Authorino", upstream.AUTHORINO_PODS), ("Limitador", upstream.LIMITADOR_PODS)):
        labels, ports = isolation.KUADRANT_SERVERS[what]
        assert labels == pods.labels
        assert sorted(ports.values()) == sorted(pods.ports.values())
    # Limitador's pods declare their ports' names; Authorino's declare none.
    assert isolation.KUADRANT_SERVERS["Limitador"][1] == upstream.LIMITADOR_PODS.ports
    assert access.model_predicate("org/m-1") == tiers.model_predicate("org/m-1")
    # The tier the access rules read from the limits' and the AuthPolicy's predicates.
    for pattern in (access._TIER_IS, access._TIER_IN):
        assert pattern.pattern.startswith(re.escape(tiers.TIER)), pattern.pattern
    matched = access._TIER_IS.search(tiers.tier_predicate("gold"))
    assert matched is not None
    assert matched.group(1) == "gold"


def _readme_policy_table() -> list[tuple[str, str]]:
    """(rule, level) of each row of README.md's table under "## Policy pack", in order."""
    text = (PROJECT_DIR / "README.md").read_text()
    section = text.split("\n## Policy pack\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([^`]+)` \| ([^|]+?) \|", section, re.MULTILINE)


def _documented_level(policy: Any) -> str:
    """The level as README.md writes it: the pack's enforcement level, and for a rule that
    holds only outside the stacks its config names as dev (`devStacks`), which those are."""
    level = str(policy.enforcement_level.value)
    schema = policy.config_schema.properties if policy.config_schema else {}
    if "devStacks" in schema:
        return f"{level} outside {', '.join(schema['devStacks']['default'])}"
    return level


def test_the_readme_lists_every_policy_with_its_level() -> None:
    documented = _readme_policy_table()
    assert documented, "README.md: no policy table under ## Policy pack"
    assert documented == [(p.name, _documented_level(p)) for p in POLICIES]
