"""The stack's configuration: one typed model, validated before any resource exists.

Every key lives under the `maas:` namespace of a `Pulumi.<stack>.yaml`. Defaults live
here and nowhere else; stack files hold only what differs between stacks.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)
from pydantic.alias_generators import to_camel

NAMESPACE = "maas"
# The Gateway every model route attaches to; KServe is told its "<namespace>/<name>".
GATEWAY_NAME = "inference-gateway"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kuadrant's rate window syntax (RateLimitPolicy and TokenRateLimitPolicy CRDs).
_WINDOW = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")


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


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"'{value}' is not a DNS-1123 label: use at most 63 lowercase letters, digits "
            "and '-', starting and ending with a letter or digit"
        )
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f"'{value}' is not a DNS name: use lowercase labels of letters, digits and '-' "
            "joined by '.', e.g. maas.local"
        )
    return value


def _window(value: str) -> str:
    if not _WINDOW.match(value):
        hint = ""
        days = re.fullmatch(r"([0-9]+)d", value)
        if days:
            hint = f" ('d' is not a unit: write {int(days.group(1)) * 24}h)"
        raise ValueError(
            f"'{value}' is not a Kuadrant window{hint}: use numbers with the units h, m, s "
            "or ms, e.g. 2m, 24h, 1h30m"
        )
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsName = Annotated[str, AfterValidator(_dns_subdomain)]
Window = Annotated[str, AfterValidator(_window)]
PositiveInt = Annotated[int, Field(ge=1)]


class _Section(BaseModel):
    """Strict, closed, camelCase keys: a typo or a quoted number is an error, not a default."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
    )


class ClusterConfig(_Section):
    context: str = Field(min_length=1, description="kubeconfig context to deploy to")
    kubeconfig: str | None = Field(
        default=None,
        description="path to a kubeconfig file; default: $KUBECONFIG or ~/.kube/config",
    )


class Namespaces(_Section):
    models: DnsLabel = "llm"
    observability: DnsLabel = "llm-observability"
    kuadrant: DnsLabel = "kuadrant-system"
    istio: DnsLabel = "istio-system"
    cert_manager: DnsLabel = "cert-manager"
    kserve: DnsLabel = "kserve"
    keycloak: DnsLabel = "keycloak"

    @model_validator(mode="after")
    def _distinct(self) -> Namespaces:
        seen: dict[str, str] = {}
        for role, name in self.model_dump(by_alias=True).items():
            if name in seen:
                raise ValueError(
                    f"'{role}' and '{seen[name]}' both use namespace '{name}': "
                    "give each layer its own namespace"
                )
            seen[name] = role
        return self


class StackConfig(_Section):
    cluster: ClusterConfig
    domain: DnsName = "maas.local"
    namespaces: Namespaces = Namespaces()

    def namespaces_in_use(self) -> dict[str, str]:
        """Role -> namespace, for the namespaces this stack's layers deploy into."""
        roles = ["models", "istio", "cert_manager", "kserve", "kuadrant"]
        return {role.replace("_", "-"): getattr(self.namespaces, role) for role in roles}


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
        if field is not None and not _is_plain_string(field.annotation) and isinstance(text, str):
            try:
                values[name] = json.loads(text)
            except json.JSONDecodeError:
                values[name] = text
        else:
            values[name] = text
    try:
        config = StackConfig.model_validate(values)
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    if problems:
        raise ConfigError(stack, problems)
    return config


_DISABLE_DEFAULTS = "pulumi:disable-default-providers"


def _default_provider_disabled(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return False
    return isinstance(value, list) and bool({"kubernetes", "*"} & set(value))


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    path = _render_path(loc)
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


def _render_path(loc: tuple[Any, ...]) -> str:
    if not loc:
        return f"{NAMESPACE}:<root>"
    text = f"{NAMESPACE}:{loc[0]}"
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
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
            args = typing.get_args(current)
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
