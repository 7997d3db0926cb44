"""Runs the policy pack in-process on what a stack declares, as `pulumi preview --policy-pack` would.

Each policy's own `validate` is called: resource policies with the resource's inputs,
stack policies with every resource's outputs (here, what the mocks answered). The stack
name the policies read (`pulumi.get_stack()`) is the evaluated stack's.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi_policy import (
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from harness.program import PROJECT_DIR, Declared, Evaluation
from maas_policies import POLICIES


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    message: str
    urn: str | None

    @property
    def mandatory(self) -> bool:
        return self.level == "mandatory"


def pack_config(stack: str) -> dict[str, dict[str, Any]]:
    """The stack's policy config file, as `--policy-pack-config policies/config/<stack>.json` passes it."""
    path = PROJECT_DIR / "policies" / "config" / f"{stack}.json"
    config: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}
    return config


def _options() -> PolicyResourceOptions:
    return PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [])


def _reporter(report: Callable[[str, str | None], None], urn: str) -> Callable[[str, str | None], None]:
    """A resource policy's callback: violations are about the resource being validated."""

    def reporter(message: str, _: str | None = None) -> None:
        report(message, urn)

    return reporter


def run(
    result: Evaluation,
    config: Mapping[str, Mapping[str, Any]] | None = None,
    resources: Sequence[Declared] | None = None,
) -> list[Violation]:
    """Every violation the pack reports for `resources` (default: everything the stack declares)."""
    config = pack_config(result.stack) if config is None else config
    declared = list(result.resources if resources is None else resources)
    pulumi.runtime.configure(
        pulumi.runtime.Settings(project="maas-platform", stack=result.stack, dry_run=True)
    )
    found: list[Violation] = []
    for policy in POLICIES:
        settings = dict(config.get(policy.name, {}))
        default = policy.enforcement_level.value if policy.enforcement_level else "advisory"
        level = str(settings.pop("enforcementLevel", default))
        if level == "disabled":
            continue

        def report(message: str, urn: str | None = None, name: str = policy.name, lvl: str = level) -> None:
            found.append(Violation(name, lvl, message, urn))

        if isinstance(policy, ResourceValidationPolicy):
            for resource in declared:
                args = ResourceValidationArgs(
                    resource.type, resource.inputs, resource.urn, resource.name, _options(), None, settings
                )
                policy.validate(args, _reporter(report, resource.urn))
        elif isinstance(policy, StackValidationPolicy):
            stack = [
                PolicyResource(r.type, r.outputs or r.inputs, r.urn, r.name, _options(), None, None, [], {})
                for r in declared
            ]
            policy.validate(StackValidationArgs(stack, settings), report)
    return found


def added(result: Evaluation, kind: str, inputs: dict[str, Any]) -> Declared:
    """One more object, `inputs`, declared like the stack's first of `kind` (same parent and
    provider), its URN named after its own metadata."""
    like = next(r for r in result.resources if r.kind == kind)
    name = f"extra-{inputs['metadata']['name']}"
    urn = like.urn.rsplit("::", 1)[0] + f"::{name}"
    return Declared(**{**like.__dict__, "urn": urn, "name": name, "inputs": inputs, "outputs": inputs})


def replaced(resources: Sequence[Declared], target: Declared, inputs: dict[str, Any]) -> list[Declared]:
    """The resources with one of them declared differently (inputs and outputs alike)."""
    changed = Declared(**{**target.__dict__, "inputs": inputs, "outputs": inputs})
    return [changed if r.urn == target.urn else r for r in resources]


def violations(
    result: Evaluation, resources: Sequence[Declared] | None = None, **config: Any
) -> list[Violation]:
    """What the pack reports, with the stack's own pack config plus `config` (policy name -> settings)."""
    return run(result, pack_config(result.stack) | config, resources)


def edited(
    stack: Evaluation, kind: str, name: str, edit: Callable[[dict[str, Any]], object]
) -> list[Declared]:
    """The stack's resources with one object's inputs changed in place by `edit` (on a deep copy)."""
    target = stack.one(kind, name)
    inputs = copy.deepcopy(target.inputs)
    edit(inputs)
    return replaced(stack.resources, target, inputs)


def assert_only(
    found: list[Violation],
    policy: str,
    *fragments: str,
    level: str = "mandatory",
    also: str | tuple[str, ...] = "",
) -> None:
    """Exactly `policy` (and `also`) refused at `level`, with every fragment in a message of `policy`."""
    others = {also} if isinstance(also, str) else set(also)
    assert {v.policy for v in found} == ({policy} | others) - {""}, found
    assert all(v.level == level for v in found), found
    mine = [v.message for v in found if v.policy == policy]
    for fragment in fragments:
        assert any(fragment in message for message in mine), (fragment, found)
