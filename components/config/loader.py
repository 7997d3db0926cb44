"""Reads the running stack's `maas:` config into the model, or refuses it with every problem.

One message per problem, each naming the key and the fix; nothing is declared before
the whole config is valid.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any

import pulumi
from pydantic import BaseModel, ValidationError

from components.config.model import NAMESPACE, SECRET_KEYS, StackConfig


class ConfigError(pulumi.RunError):
    """A stack config that cannot be deployed; Pulumi prints the message without a trace."""

    def __init__(self, stack: str, problems: list[str]):
        self.stack = stack
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        plural = "s" if len(problems) > 1 else ""
        super().__init__(
            f"stack '{stack}' has {len(problems)} configuration problem{plural} "
            f"(Pulumi.{stack}.yaml):\n{lines}"
        )


def load(stack: str | None = None, raw: Mapping[str, Any] | None = None) -> StackConfig:
    """Reads and validates the `maas:` config of the running stack, or raises ConfigError.

    Reads at call time (not import time): tests evaluate several stacks in one process.
    """
    stack = stack or pulumi.get_stack()
    raw = dict(pulumi.runtime.config.CONFIG.get()) if raw is None else dict(raw)
    problems: list[str] = []
    if not _default_provider_disabled(raw.get(_DISABLE_DEFAULTS)):
        problems.append(
            f"{_DISABLE_DEFAULTS}: must list 'kubernetes' (Pulumi.yaml sets it) so that no "
            "resource can fall back to the ambient kubeconfig"
        )
    for name in SECRET_KEYS:
        key = f"{NAMESPACE}:{name}"
        if key in raw and not pulumi.runtime.config.is_config_secret(key):
            problems.append(
                f"{key}: a credential must not be stored in plain text; set it with "
                f"`scripts/pulumi.sh config set --secret {key} <value> --stack {stack}`"
            )
    values: dict[str, Any] = {}
    prefix = f"{NAMESPACE}:"
    project_prefix = f"{pulumi.get_project()}:"
    for key, text in sorted(raw.items()):
        if key.startswith(project_prefix):
            short = key[len(project_prefix) :]
            problems.append(
                f"{key}: this program reads the '{NAMESPACE}' namespace; rename the key to {prefix}{short}"
            )
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        field = _field_by_alias(StackConfig, name)
        if field is not None and not _is_plain_string(field.annotation) and text in _EMPTY:
            problems.append(
                f"{key}: the key is there but holds nothing (an empty `{key}:` line in the stack "
                "file); write its value under it, or delete the line to take the default"
            )
            continue
        if field is not None and not _is_plain_string(field.annotation) and isinstance(text, str):
            try:
                values[name] = json.loads(text)
            except json.JSONDecodeError:
                values[name] = text
        else:
            values[name] = text
    try:
        # JSON mode: the values are what the stack file's YAML holds (lists, not tuples).
        config = StackConfig.model_validate_json(json.dumps(values))
    except ValidationError as exc:
        problems.extend(_describe(error, values) for error in exc.errors())
    else:
        problems.extend(config.cross_problems())
    if problems:
        raise ConfigError(stack, problems)
    return config


_DISABLE_DEFAULTS = "pulumi:disable-default-providers"
# What an empty `maas:users:` line (YAML null) reaches the program as: nothing, or its text.
_EMPTY = (None, "", "null", "None")


def _default_provider_disabled(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return False
    return isinstance(value, list) and bool({"kubernetes", "*"} & set(value))


def _describe(error: Mapping[str, Any], values: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    path = _render_path(loc, values)
    kind = error["type"]
    if kind == "missing":
        return f"{path}: required but not set; add it to the stack file"
    if kind == "extra_forbidden":
        accepted = _accepted_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), accepted, n=1)
        guess = f"; did you mean '{close[0]}'?" if close else ""
        where = f"; accepted keys here: {', '.join(accepted)}" if accepted else ""
        return f"{path}: unknown key{guess}{where}"
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {json.dumps(got, default=str)})"
    message = str(error["msg"]).removeprefix("Value error, ")
    hints = {
        "string_type": '; quote values such as "true" or "1" that must stay strings',
        "bool_type": "; write true or false without quotes",
        "int_type": "; write a whole number without quotes",
    }
    return f"{path}: {message}{shown}{hints.get(kind, '')}"


def _render_path(loc: tuple[Any, ...], values: Mapping[str, Any] | None = None) -> str:
    """`maas:users[1412] (name: alice).teir`: an entry of a list is named as well as counted."""
    if not loc:
        return f"{NAMESPACE}:<root>"
    text = f"{NAMESPACE}:{loc[0]}"
    current: Any = (values or {}).get(loc[0])
    rest = loc[1:]
    for position, part in enumerate(rest):
        if isinstance(part, int) and isinstance(current, dict):
            continue  # the one-entry form of a list (a limit's single rate): no index in the file
        if isinstance(part, int):
            text += f"[{part}]"
            current = current[part] if isinstance(current, list) and 0 <= part < len(current) else None
            name = current.get("name") if isinstance(current, dict) else None
            # Not when the name itself is the problem: the message shows it.
            naming = rest[position + 1 : position + 2] != ("name",)
            if naming and isinstance(name, str | int) and not isinstance(name, bool):
                text += f" (name: {name})"
        else:
            text += f".{part}"
            current = current.get(part) if isinstance(current, dict) else None
    return text


def _field_by_alias(model: type[BaseModel], alias: str) -> Any:
    for name, field in model.model_fields.items():
        if (field.alias or name) == alias:
            return field
    return None


def _is_plain_string(annotation: Any) -> bool:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation is str


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model class found by following a validation error's location."""
    current: Any = StackConfig
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            # The item type: tuple[X, ...] ends in Ellipsis, dict[K, V] in the value type.
            args = [a for a in typing.get_args(current) if a is not Ellipsis]
            current = args[-1] if args else None
            continue
        field = _field_by_alias(current, part)
        if field is None:
            return None
        current = field.annotation
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0] if len(members) == 1 else annotation
            if len(members) != 1:
                return annotation
        else:
            return annotation


def _accepted_keys(loc: tuple[Any, ...]) -> list[str]:
    model = _model_at(loc)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]
