"""What pulumi-kubernetes proposes for an object on the next `pulumi up`, and what server-side
apply leaves in the cluster: ports of the upstream code, so a test can ask whether a second run
would see a change.

- `diff`: pulumi/pulumi-kubernetes@main `provider/pkg/provider/provider.go` `Diff` (read
  after 4.32.0; no 4.34.2 tag in the mirror): the live object is pruned to the shape of the old inputs
  (`util.go` `pruneMap`, `pruneSlice`: list items by position) and compared with the new
  inputs by a JSON merge patch (`inputPatch`, RFC 7386: lists compared whole). Inputs are
  normalised by a typed round trip pruned back to their own shape (`normalizeInputs`), which
  changes nothing in the objects compared here.
- `apply`: the API server's merge of an applied configuration into the live object
  (kubernetes-sigs/structured-merge-diff@v6.4.2 `typed/merge.go` `visitListItems`, the same
  since v4.4.1): maps merge; a keyed list keeps the live items in their order, merges the
  shared ones in place and puts each new one before the next shared item (at the end when
  none follows); any other list is atomic and replaced. Shared items the applied list
  reorders are not modelled.
"""

from __future__ import annotations

import copy
import json
from typing import Any

# Keyed list fields of a pod spec and their keys (`+listType=map`, `+listMapKey` in
# kubernetes/api@v0.36.4 core/v1/types.go); any other list, `envFrom` and `args` among them, is atomic.
LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",),
    "initContainers": ("name",),
    "env": ("name",),
    "volumes": ("name",),
    "ports": ("containerPort", "protocol"),
    "volumeMounts": ("mountPath",),
}


def prune_map(source: dict[str, Any] | None, target: dict[str, Any] | None) -> dict[str, Any] | None:
    """pulumi/pulumi-kubernetes@main provider/pkg/provider/util.go pruneMap: the keys of `source` that
    `target` has, recursively."""
    if source is None or target is None:
        return None
    result: dict[str, Any] = {}
    for key, value in source.items():
        if key not in target:
            continue
        wanted = target[key]
        if value is None or wanted is None or type(value) is not type(wanted):
            result[key] = value
        elif isinstance(value, dict):
            result[key] = prune_map(value, wanted)
        elif isinstance(value, list):
            result[key] = prune_slice(value, wanted)
        else:
            result[key] = value
    return result


def prune_slice(source: list[Any] | None, target: list[Any] | None) -> list[Any] | None:
    """pulumi/pulumi-kubernetes@main provider/pkg/provider/util.go pruneSlice: item i of `source` pruned to
    item i of `target`, by position."""
    if source is None or target is None:
        return None
    if not source or not target:
        return []
    if type(source[0]) is not type(target[0]):
        return copy.deepcopy(source)
    result: list[Any] = []
    for index, wanted in enumerate(target):
        if index >= len(source):
            break
        value = source[index]
        if value is None or wanted is None:
            result.append(value)
        elif isinstance(value, dict):
            pruned = prune_map(value, wanted)
            if pruned is not None:
                result.append(pruned)
        elif isinstance(value, list):
            nested = prune_slice(value, wanted)
            if nested is not None:
                result.append(nested)
        else:
            result.append(value)
    return result


def merge_patch(old: Any, new: Any) -> Any:
    """RFC 7386 patch from `old` to `new` (evanphx/json-patch CreateMergePatch): the changed
    keys of objects, null for a removed key, anything else (lists too) whole when unequal."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return new
    patch: dict[str, Any] = {}
    for key in old.keys() - new.keys():
        patch[key] = None
    for key, value in new.items():
        if key not in old:
            patch[key] = value
        elif json.dumps(old[key], sort_keys=True) != json.dumps(value, sort_keys=True):
            patch[key] = merge_patch(old[key], value)
    return patch


def diff(live: dict[str, Any], old_inputs: dict[str, Any], new_inputs: dict[str, Any]) -> dict[str, Any]:
    """The merge patch the provider's Diff computes; empty when it proposes no change."""
    pruned = prune_map(live, old_inputs) or {}
    patch: dict[str, Any] = merge_patch(pruned, new_inputs)
    return patch


def apply(live: Any, applied: Any, field: str = "") -> Any:
    """`applied` merged into `live` as server-side apply merges it (see the module's note)."""
    if isinstance(live, dict) and isinstance(applied, dict):
        merged = dict(live)
        for key, value in applied.items():
            merged[key] = apply(live[key], value, key) if key in live else copy.deepcopy(value)
        return merged
    if isinstance(live, list) and isinstance(applied, list) and field in LIST_KEYS:
        return _merge_keyed(live, applied, field)
    return copy.deepcopy(applied)


def _merge_keyed(live: list[Any], applied: list[Any], field: str) -> list[Any]:
    def key(item: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(item.get(k) for k in LIST_KEYS[field])

    live_keys = {key(item) for item in live}
    applied_keys = [key(item) for item in applied]
    out: list[Any] = []
    next_applied = 0
    for item in live:
        if key(item) not in applied_keys:
            out.append(item)
            continue
        while applied_keys[next_applied] != key(item):
            if applied_keys[next_applied] not in live_keys:
                out.append(copy.deepcopy(applied[next_applied]))
            next_applied += 1
        out.append(apply(item, applied[next_applied], field))
        next_applied += 1
    out += [
        copy.deepcopy(a)
        for a, k in zip(applied[next_applied:], applied_keys[next_applied:], strict=True)
        if k not in live_keys
    ]
    return out


def replaced_on_data_change(obj: dict[str, Any], provider: dict[str, Any]) -> bool:
    """Whether the provider replaces a ConfigMap or Secret whose data changes, rather than
    updating it (pulumi/pulumi-kubernetes@main provider/pkg/provider/diff.go forceNewProperties): unless the
    provider is told
    they are mutable (enableConfigMapMutable, enableSecretMutable), or when the object itself
    is immutable. A replacement under the same name deletes first (provider.go Diff)."""
    setting = {"ConfigMap": "enableConfigMapMutable", "Secret": "enableSecretMutable"}[obj["kind"]]
    return str(provider.get(setting)).lower() != "true" or obj.get("immutable") is True
