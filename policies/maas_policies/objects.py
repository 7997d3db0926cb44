"""Reading Kubernetes objects as the policies see them (resource inputs, camelCase)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from pulumi_policy import PolicyResource, StackValidationArgs
from pulumi_policy.proxy import UnknownValueError

# Pod templates inside workload kinds: kind -> path of keys to the pod spec.
_POD_SPEC_PATHS: dict[str, tuple[str, ...]] = {
    "Pod": ("spec",),
    "Deployment": ("spec", "template", "spec"),
    "StatefulSet": ("spec", "template", "spec"),
    "DaemonSet": ("spec", "template", "spec"),
    "ReplicaSet": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
}

# A copy of components/names.py GATEWAY_NAME (tests/policies/test_pack.py ties them).
GATEWAY_NAME = "inference-gateway"


def kind(resource_type: str, props: Mapping[str, Any]) -> str:
    """The Kubernetes kind of a resource ("" for Pulumi machinery such as Helm releases)."""
    if not resource_type.startswith("kubernetes:") or resource_type.startswith(
        ("kubernetes:helm", "kubernetes:yaml")
    ):
        return ""
    return str(props.get("kind", ""))


def is_patch(resource_type: str) -> bool:
    """A server-side apply patch (e.g. kubernetes:apps/v1:DeploymentPatch): it owns a few
    fields of an object declared elsewhere, such as a chart's."""
    return resource_type.startswith("kubernetes:") and resource_type.endswith("Patch")


def from_upstream_manifest(urn: str) -> bool:
    """An object of a manifest or chart the program applies as published (a child of a
    kubernetes:yaml ConfigFile/ConfigGroup or a helm.sh/v4 Chart): upstream's workload, not
    one of ours. A URN carries its parents' types: `...::<parent type>$<type>::<name>`."""
    type_chain = urn.split("::")[-2] if urn.count("::") >= 3 else ""
    return any(t.startswith(("kubernetes:yaml", "kubernetes:helm.sh/v4")) for t in type_chain.split("$")[:-1])


def of_kind(args: StackValidationArgs, kind_: str) -> list[PolicyResource]:
    """The stack's resources of one Kubernetes kind."""
    return [r for r in args.resources if kind(r.resource_type, r.props) == kind_]


def name(props: Mapping[str, Any]) -> str:
    metadata = props.get("metadata") or {}
    namespace = metadata.get("namespace")
    return f"{namespace}/{metadata.get('name')}" if namespace else str(metadata.get("name"))


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def pod_specs(
    kind_: str, props: Mapping[str, Any]
) -> Iterator[tuple[str, Mapping[str, Any], list[Mapping[str, Any]]]]:
    """(where, pod-level scheduling fields, containers) for every pod an object will run.

    An InferenceService's predictor is a pod spec whose `model` is one more container; a
    ServingRuntime's containers are templates (resources come from the InferenceService).
    """
    if kind_ in _POD_SPEC_PATHS:
        spec = _dig(props, _POD_SPEC_PATHS[kind_]) or {}
        containers = [*(spec.get("initContainers") or []), *(spec.get("containers") or [])]
        yield "pod", spec, containers
    elif kind_ == "InferenceService":
        predictor = _dig(props, ("spec", "predictor")) or {}
        containers = [*(predictor.get("initContainers") or []), *(predictor.get("containers") or [])]
        if predictor.get("model"):
            containers.append(predictor["model"])
        yield "predictor", predictor, containers
    elif kind_ == "ServingRuntime":
        spec = props.get("spec") or {}
        yield "runtime", spec, list(spec.get("containers") or [])


def gpu_resources(containers: list[Mapping[str, Any]]) -> set[str]:
    """Names of GPU resources the containers request or limit (e.g. nvidia.com/gpu)."""
    found = set()
    for container in containers:
        resources = container.get("resources") or {}
        for section in ("requests", "limits"):
            found |= {r for r in (resources.get(section) or {}) if "gpu" in r.lower()}
    return found


def targets_gpu_nodes(spec: Mapping[str, Any]) -> tuple[bool, bool]:
    """(selects GPU nodes, tolerates GPU taints) for a pod spec."""
    selector = spec.get("nodeSelector") or {}
    selects = any("gpu" in key.lower() for key in selector)
    affinity = (
        _dig(spec, ("affinity", "nodeAffinity", "requiredDuringSchedulingIgnoredDuringExecution")) or {}
    )
    for term in affinity.get("nodeSelectorTerms") or []:
        selects = selects or any(
            "gpu" in str(e.get("key", "")).lower() for e in term.get("matchExpressions") or []
        )
    tolerates = any("gpu" in str(t.get("key", "")).lower() for t in spec.get("tolerations") or [])
    return selects, tolerates


def known(props: Mapping[str, Any], key: str) -> Any:
    """props[key], or None where a preview cannot know it: under the CLI, reading a value only a
    create computes raises UnknownValueError and ends the policy (pulumi/pulumi-policy@v1.21.0
    sdk/python/lib/pulumi_policy/proxy.py, policy.py `Analyze`). A rule that calls this says beside it what it
    does then."""
    try:
        return props.get(key)
    except UnknownValueError:
        return None


def string_leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """(path, text) of every string inside a nested object, e.g. ("values.grafana.adminPassword", "...").

    Under the CLI a list arrives as pulumi-policy's `_ListProxy`, a Sequence and not a list
    (pulumi/pulumi-policy@v1.21.0 sdk/python/lib/pulumi_policy/proxy.py), so lists are
    recognised as sequences."""
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from string_leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, Sequence):
        for index, item in enumerate(value):
            yield from string_leaves(item, f"{path}[{index}]")


def refusal(subject: str, problem: str, fix: str) -> str:
    """A violation message: what, why, and how to fix it (Pulumi adds the rule's name)."""
    return f"{subject}: {problem}. Fix: {fix}"
