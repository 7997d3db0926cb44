"""Checks Kubernetes objects the way an API server would, without an API server.

- Custom resources: the upstream CRDs' JSON Schemas (layout of datreeio/CRDs-catalog,
  `<group>/<kind>_<version>.json`), closed with additionalProperties: false.
- Core kinds: the strict OpenAPI schemas shipped by `kubernetes-validate` for one
  Kubernetes minor.
- What plain JSON Schema misses and an API server rejects: the CRDs' CEL rules
  (`x-kubernetes-validations`, after applying schema defaults), duplicate keys in
  list-maps and sets, and the name and label formats of object metadata.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import celpy
import jsonschema
from celpy import celtypes
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from referencing import Registry, Resource

SCHEMA_DIR_ENV = "MAAS_SCHEMA_DIR"
_PROJECT = Path(__file__).resolve().parent.parent
# Where schemas are looked for when MAAS_SCHEMA_DIR is unset: the steering repository's
# copy beside this checkout, then what `make schemas` downloads.
DEFAULT_SCHEMA_DIRS = (_PROJECT.parent / "shared" / "schemas", _PROJECT / ".schemas")
HOW_TO_GET_SCHEMAS = (
    "no CRD schema directory found: run `make schemas` (converts the pinned upstream CRDs into "
    f"./.schemas), or set {SCHEMA_DIR_ENV} to a directory laid out like datreeio/CRDs-catalog "
    "(<group>/<kind>_<version>.json)"
)

# API groups served by Kubernetes itself; everything else is a custom resource.
_BUILTIN_GROUPS = {
    "",
    "admissionregistration.k8s.io",
    "apiextensions.k8s.io",
    "apps",
    "autoscaling",
    "batch",
    "certificates.k8s.io",
    "coordination.k8s.io",
    "discovery.k8s.io",
    "networking.k8s.io",
    "node.k8s.io",
    "policy",
    "rbac.authorization.k8s.io",
    "scheduling.k8s.io",
    "storage.k8s.io",
}

_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kinds whose names the API server checks as DNS labels (Service: DNS-1035) not subdomains.
_LABEL_NAMED_KINDS = {"Namespace": _DNS_LABEL, "Service": _DNS_1035}


class SchemaCatalog:
    """Finds the schema of any object and validates it."""

    def __init__(self, directories: Sequence[Path], kubernetes_minor: str):
        self.directories = list(directories)
        self.kubernetes_minor = kubernetes_minor

    @classmethod
    def locate(cls, kubernetes_minor: str) -> SchemaCatalog | None:
        """The directories named by MAAS_SCHEMA_DIR (path-separated), else the first default found."""
        named = os.environ.get(SCHEMA_DIR_ENV)
        if named:
            found = [Path(p) for p in named.split(os.pathsep) if p and Path(p).is_dir()]
        else:
            found = [p for p in DEFAULT_SCHEMA_DIRS if p.is_dir()][:1]
        return cls(found, kubernetes_minor) if found else None

    def problems(self, obj: Mapping[str, Any], partial: bool = False) -> list[str]:
        """Every reason an API server would refuse `obj`; empty when it would accept it.

        `partial`: a server-side apply patch, which names only the fields it owns, so the
        fields the full object requires may be missing (nothing else is forgiven)."""
        api_version = str(obj.get("apiVersion", ""))
        kind = str(obj.get("kind", ""))
        group, _, version = api_version.rpartition("/")
        if group in _BUILTIN_GROUPS:
            validator = _core_validator(kind, api_version, self.kubernetes_minor)
        else:
            validator = self._crd_validator(group, kind, version)
        if validator is None:
            return [f"no schema for {kind} {api_version}: unknown kind or version"]
        found = [
            _render(e)
            for e in validator.iter_errors(dict(obj))
            if not (partial and e.validator == "required")
        ]
        found.extend(_metadata_problems(kind, obj.get("metadata") or {}))
        return sorted(set(found))

    def _crd_validator(self, group: str, kind: str, version: str) -> jsonschema.protocols.Validator | None:
        for directory in self.directories:
            path = directory / group / f"{kind.lower()}_{version}.json"
            if path.is_file():
                return _crd_validator_for(path)
        return None


def _render(error: jsonschema.ValidationError) -> str:
    where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{where or '<root>'}: {error.message}"


# --- validators -------------------------------------------------------------------------


def _list_map_keys(
    validator: Any, keys: list[str], instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    if not isinstance(instance, list):
        return
    seen: dict[tuple[Any, ...], int] = {}
    for index, item in enumerate(instance):
        if not isinstance(item, dict):
            continue
        key = tuple(json.dumps(item.get(k), sort_keys=True) for k in keys)
        if key in seen:
            shown = ", ".join(f"{k}={item.get(k)!r}" for k in keys)
            yield jsonschema.ValidationError(f"duplicate entry ({shown}) at [{seen[key]}] and [{index}]")
        seen.setdefault(key, index)


def _list_type(validator: Any, list_type: str, instance: Any, schema: Mapping[str, Any]) -> Iterator[Any]:
    if list_type != "set" or not isinstance(instance, list):
        return
    texts = [json.dumps(item, sort_keys=True) for item in instance]
    for text in sorted({t for t in texts if texts.count(t) > 1}):
        yield jsonschema.ValidationError(f"duplicate value {text} in a set")


def _cel_rules(
    validator: Any, rules: list[Mapping[str, Any]], instance: Any, schema: Mapping[str, Any]
) -> Iterator[Any]:
    subject = _with_defaults(instance, schema)
    for rule in rules:
        text = rule["rule"]
        if "oldSelf" in text:
            continue  # transition rules compare with a stored object; a create has none
        try:
            passed = _cel_program(text).evaluate({"self": json_to_cel(subject)})
        except CELEvalError as exc:
            yield jsonschema.ValidationError(f"CEL rule cannot be evaluated ({exc.args[0]}): {text}")
            continue
        if passed is not True and not (isinstance(passed, celtypes.BoolType) and bool(passed)):
            yield jsonschema.ValidationError(rule.get("message") or f"failed rule: {text}")


_EXTRA_KEYWORDS = {
    "x-kubernetes-list-map-keys": _list_map_keys,
    "x-kubernetes-list-type": _list_type,
    "x-kubernetes-validations": _cel_rules,
}


def _extend(base: Any) -> Any:
    return jsonschema.validators.extend(base, _EXTRA_KEYWORDS)


@cache
def _crd_validator_for(path: Path) -> jsonschema.protocols.Validator:
    schema = json.loads(path.read_text())
    validator: jsonschema.protocols.Validator = _extend(jsonschema.Draft4Validator)(schema)
    return validator


@cache
def _core_validator(kind: str, api_version: str, minor: str) -> jsonschema.protocols.Validator | None:
    root = resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{minor}.0-local-strict"
    # "apps/v1" -> "apps-v1", "networking.k8s.io/v1" -> "networking-v1", "v1" -> "v1"
    suffix = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_file = root / f"{kind.lower()}-{suffix}.json"
    if not schema_file.is_file():
        return None
    schema = json.loads(schema_file.read_text())
    definitions = json.loads((root / "_definitions.json").read_text())
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    validator: jsonschema.protocols.Validator = _extend(jsonschema.Draft202012Validator)(
        schema, registry=registry
    )
    return validator


# --- CEL ------------------------------------------------------------------------------


def _split(text: celtypes.StringType, separator: celtypes.StringType) -> celtypes.ListType:
    return celtypes.ListType([celtypes.StringType(p) for p in str(text).split(str(separator))])


# Kubernetes' CEL environment adds the strings extension library; CRD rules use split().
_K8S_FUNCTIONS: dict[str, Any] = {"split": _split}


@cache
def _cel_program(text: str) -> Any:
    environment = celpy.Environment()
    return environment.program(environment.compile(text), functions=_K8S_FUNCTIONS)


def _with_defaults(instance: Any, schema: Mapping[str, Any]) -> Any:
    """The object as the API server validates it: with the schema's defaults filled in."""
    if isinstance(instance, dict):
        result = dict(instance)
        for name, sub in (schema.get("properties") or {}).items():
            if name not in result and "default" in sub:
                result[name] = sub["default"]
            if name in result:
                result[name] = _with_defaults(result[name], sub)
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict):
            known = set(schema.get("properties") or {})
            for name in result:
                if name not in known:
                    result[name] = _with_defaults(result[name], extra)
        return result
    if isinstance(instance, list) and isinstance(schema.get("items"), dict):
        return [_with_defaults(item, schema["items"]) for item in instance]
    return instance


# --- metadata -------------------------------------------------------------------------


def _metadata_problems(kind: str, metadata: Mapping[str, Any]) -> list[str]:
    found = []
    name = metadata.get("name")
    if isinstance(name, str):
        pattern = _LABEL_NAMED_KINDS.get(kind, _DNS_SUBDOMAIN)
        limit = 63 if kind in _LABEL_NAMED_KINDS else 253
        if len(name) > limit or not pattern.match(name):
            found.append(f".metadata.name: '{name}' is not a valid {kind} name")
    for key, value in (metadata.get("labels") or {}).items():
        found.extend(_key_problems("labels", key))
        if not isinstance(value, str) or len(value) > 63 or not _LABEL_VALUE.match(value):
            found.append(f".metadata.labels.{key}: '{value}' is not a valid label value")
    for key in metadata.get("annotations") or {}:
        found.extend(_key_problems("annotations", key))
    return found


def _key_problems(field: str, key: str) -> list[str]:
    prefix, _, name = key.rpartition("/")
    bad = len(name) > 63 or not _LABEL_NAME.match(name)
    bad = bad or (bool(prefix) and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)))
    return [f".metadata.{field}: '{key}' is not a valid key"] if bad else []
