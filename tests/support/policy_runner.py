"""Runs the policy pack in-process on what a stack declares, as `pulumi preview --policy-pack`
hands it to the pack.

The pack's own analyzer servicer (pulumi/pulumi-policy@1.21.0 `pulumi_policy/policy.py`
`_PolicyAnalyzerServicer`, the object `PolicyPack` serves over gRPC) is called with the
requests the engine sends: `Configure` with the stack's `--policy-pack-config`, `Analyze` per
resource with what the provider's Check made of its inputs, `AnalyzeStack` with every
resource's outputs (pulumi/pulumi pkg/resource/deploy/step_generator.go; pkg/resource/plugin/
analyzer_plugin.go `Analyze`, `AnalyzeStack`: properties marshalled with unknowns and secrets
kept). So each policy sees what it sees under the CLI: read-only `_DictProxy` and
`_ListProxy` (pulumi_policy/proxy.py), every number a float (protobuf's Struct), and a read
of an unknown value ending that policy with an advisory. The stack name the policies read
comes, as from the CLI, from PULUMI_PROJECT, PULUMI_STACK and PULUMI_DRY_RUN
(analyzer_plugin.go `constructEnv`; the servicer's `_configure_runtime_settings`).

Read at pulumi/pulumi 3.260 (development), older than the CLI README names. Left out, because
no rule reads them: the provider resource, property dependencies, resource options other
than the parent, the root Stack resource, PULUMI_ORGANIZATION, PULUMI_CONFIG and the stack's
tags. Of the provider's Check only the Secret step is modelled (`checked`); its typed round
trip of built-in kinds (canonical quantities) is not.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jsonschema
from google.protobuf import json_format, struct_pb2
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, Policy
from pulumi_policy.policy import _PolicyAnalyzerServicer

from harness.program import PROJECT_DIR, UNKNOWN, Declared, Evaluation
from maas_policies import PACK_NAME, POLICIES

# pulumi/pulumi@v3.272.0 sdk/go/common/resource/properties.go: how a secret travels in a property map.
_SIG, _SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"
# What the servicer says when a policy read a value unknown in a preview (policy.py, Analyze).
CANNOT_RUN = "can't run policy"
_LEVELS = {proto.ADVISORY: "advisory", proto.MANDATORY: "mandatory", proto.REMEDIATE: "remediate"}
_CONFIG_LEVELS = {
    "advisory": proto.ADVISORY,
    "mandatory": proto.MANDATORY,
    "remediate": proto.REMEDIATE,
    "disabled": proto.DISABLED,
}


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    message: str
    urn: str | None

    @property
    def mandatory(self) -> bool:
        return self.level == "mandatory"

    @property
    def cannot_run(self) -> bool:
        """The policy stopped at a value unknown in a preview and judged nothing."""
        return self.message.startswith(CANNOT_RUN)


def pack_config(stack: str) -> dict[str, dict[str, Any]]:
    """The stack's policy config file, as `--policy-pack-config policies/config/<stack>.json` passes it."""
    path = PROJECT_DIR / "policies" / "config" / f"{stack}.json"
    config: dict[str, dict[str, Any]] = json.loads(path.read_text()) if path.is_file() else {}
    return config


def wire(value: Any, secret_paths: frozenset[str] = frozenset(), path: str = "") -> Any:
    """A property value as the engine marshals it: secrets wrapped in their signature."""
    if isinstance(value, Mapping):
        out: Any = {k: wire(v, secret_paths, f"{path}.{k}" if path else k) for k, v in value.items()}
    elif isinstance(value, list):
        out = [wire(v, secret_paths, f"{path}[{i}]") for i, v in enumerate(value)]
    else:
        out = value
    return {_SIG: _SECRET_SIG, "value": out} if path and path in secret_paths else out


def _struct(props: Mapping[str, Any], secret_paths: frozenset[str]) -> struct_pb2.Struct:
    return json_format.ParseDict(wire(props, secret_paths), struct_pb2.Struct())


def _configure(servicer: _PolicyAnalyzerServicer, config: Mapping[str, Any]) -> None:
    """Configures the pack as the engine does: every policy's level and its schema's defaults
    from the pack's own info, the stack's file over them (`all` first), each policy's
    properties validated against its schema, all of it sent to `Configure` (pulumi/pulumi@v3.272.0
    pkg/resource/analyzer/config.go `ReconcilePolicyPackConfig`, `applyConfig`,
    `validatePolicyConfig`). An invalid file stops the run, as it stops the CLI's."""
    info = servicer.GetAnalyzerInfo(None, None)
    levels = {p.name: p.enforcementLevel for p in info.policies}
    schemas = {p.name: json_format.MessageToDict(p.configSchema) for p in info.policies}
    properties = {
        name: {k: v["default"] for k, v in schema.get("properties", {}).items() if "default" in v}
        for name, schema in schemas.items()
    }
    # An entry may be a level alone (pulumi/pulumi@v3.272.0 pkg/resource/analyzer/config.go
    # parsePolicyPackConfig).
    given = {k: {"enforcementLevel": v} if isinstance(v, str) else v for k, v in config.items()}
    if "all" in given and "enforcementLevel" in given["all"]:
        levels = dict.fromkeys(levels, _CONFIG_LEVELS[str(given["all"]["enforcementLevel"])])
    for name, settings in given.items():
        if "enforcementLevel" in settings:
            levels[name] = _CONFIG_LEVELS[str(settings["enforcementLevel"])]
        properties.setdefault(name, {}).update({k: v for k, v in settings.items() if k != "enforcementLevel"})
    validators = {n: jsonschema.Draft7Validator({"type": "object", **s}) for n, s in schemas.items() if s}
    errors = [
        f"{name}: {error.message}"
        for name, validator in validators.items()
        for error in validator.iter_errors(properties.get(name))
    ]
    if errors:
        raise ValueError(f"policy pack configuration is invalid: {', '.join(errors)}")
    request = proto.ConfigureAnalyzerRequest()
    for name, level in levels.items():
        request.policyConfig[name].enforcementLevel = level
        request.policyConfig[name].properties.update(properties.get(name, {}))
    servicer.Configure(request, None)


@contextlib.contextmanager
def _cli_environment(stack: str) -> Iterator[None]:
    keys = {"PULUMI_PROJECT": "maas-platform", "PULUMI_STACK": stack, "PULUMI_DRY_RUN": "true"}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _violations(response: Any, descriptions: Mapping[str, str]) -> list[Violation]:
    """The response's diagnostics, each message without the description the servicer puts first."""
    found = []
    for diagnostic in response.diagnostics:
        message = diagnostic.message.removeprefix(descriptions[diagnostic.policyName]).lstrip("\n")
        level = _LEVELS[diagnostic.enforcementLevel]
        found.append(Violation(diagnostic.policyName, level, message, diagnostic.urn or None))
    return found


def checked(resource: Declared) -> tuple[dict[str, Any], frozenset[str]]:
    """A resource's inputs as the provider's Check returns them, which is what resource rules
    see, with their secret paths. pulumi-kubernetes (pulumi/pulumi-kubernetes@v4.34.2
    provider/pkg/provider/provider.go Check, normalizeInputs;
    clients/unstructured.go normalizeSecretStringData) moves a Secret's known `stringData` into
    `data`, base64-encoded; inputs holding an unknown are left as they are."""
    inputs = resource.inputs
    string_data = inputs.get("stringData")
    if resource.kind != "Secret" or not string_data or UNKNOWN in json.dumps(inputs):
        return inputs, resource.secret_paths
    encoded = {k: base64.b64encode(str(v).encode()).decode() for k, v in string_data.items()}
    normalized = {k: v for k, v in inputs.items() if k != "stringData"}
    normalized["data"] = {**(inputs.get("data") or {}), **encoded}
    moved = frozenset(
        "data" + path.removeprefix("stringData") if path.startswith("stringData") else path
        for path in resource.secret_paths
    )
    return normalized, moved


def run(
    result: Evaluation,
    config: Mapping[str, Any] | None = None,
    resources: Sequence[Declared] | None = None,
    policies: Sequence[Policy] = POLICIES,
) -> list[Violation]:
    """Every violation the pack reports for `resources` (default: everything the stack declares)."""
    config = pack_config(result.stack) if config is None else config
    declared = list(result.resources if resources is None else resources)
    # A rule without a level of its own is advisory, as `PolicyPack` defaults it (policy.py).
    servicer = _PolicyAnalyzerServicer(PACK_NAME, "0.0.1", list(policies), EnforcementLevel.ADVISORY)
    _configure(servicer, config)
    descriptions = {p.name: p.description for p in policies}
    found: list[Violation] = []
    with _cli_environment(result.stack):
        for resource in declared:
            request = proto.AnalyzeRequest(
                urn=resource.urn,
                type=resource.type,
                name=resource.name,
                properties=_struct(*checked(resource)),
                options=proto.AnalyzerResourceOptions(parent=resource.parent),
            )
            found += _violations(servicer.Analyze(request, None), descriptions)
        stack = proto.AnalyzeStackRequest(
            resources=[
                proto.AnalyzerResource(
                    urn=r.urn,
                    type=r.type,
                    name=r.name,
                    properties=_struct(r.outputs or r.inputs, r.secret_paths),
                    options=proto.AnalyzerResourceOptions(parent=r.parent),
                    parent=r.parent,
                    dependencies=list(r.dependencies),
                )
                for r in declared
            ]
        )
        found += _violations(servicer.AnalyzeStack(stack, None), descriptions)
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
