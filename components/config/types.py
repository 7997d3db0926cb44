"""The value types stack config is made of: each refuses a bad value with a message that says the fix."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kuadrant's rate window syntax (RateLimitPolicy and TokenRateLimitPolicy CRDs); Gateway
# API durations (HTTPRoute timeouts) use the same one.
_WINDOW = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
# Kubernetes resource quantities: 100m, 1.5, 8Gi, 1e3.
_QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$")
_SERVED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
# Prometheus durations (retention): 12h, 15d, 1w.
_PROMETHEUS_DURATION = re.compile(r"^([0-9]+)(ms|s|m|h|d|w|y)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def no_repeats(values: list[str], key: str, what: str) -> None:
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{key}[{seen[value]}] and {key}[{index}] have the same {what} '{value}'")
        seen[value] = index


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


def window_seconds(window: str) -> float:
    """A window ("2m", "1h30m", "500ms", already validated) in seconds."""
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    return sum(int(number) * units[unit] for number, unit in re.findall(r"([0-9]+)(ms|h|m|s)", window))


def prometheus_seconds(duration: str) -> float:
    """A Prometheus duration ("15d", "1w", already validated) in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
    return sum(int(number) * units[unit] for number, unit in _PROMETHEUS_DURATION.findall(duration))


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


def _quantity(amount: str) -> str:
    if not _QUANTITY.match(amount):
        raise ValueError(f"'{amount}' is not a Kubernetes quantity (e.g. 500m, 2, 8Gi)")
    return amount


def _quantities(value: dict[str, str]) -> dict[str, str]:
    for resource, amount in value.items():
        try:
            _quantity(amount)
        except ValueError as exc:
            raise ValueError(f"{resource}: {exc}") from None
        if "gpu" in resource:
            raise ValueError(
                f"{resource}: GPUs are requested with the model's gpu block, which also pins the node"
            )
    return value


def _served_name(value: str) -> str:
    if not _SERVED_NAME.match(value):
        raise ValueError(f"'{value}' is not a model id: use letters, digits and . _ / - (at most 128)")
    return value


def _prometheus_duration(value: str) -> str:
    if not _PROMETHEUS_DURATION.match(value):
        raise ValueError(f"'{value}' is not a Prometheus duration: a number and one of ms, s, m, h, d, w, y")
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise ValueError(f"'{value}' is not an ISO 4217 currency code, e.g. USD, EUR")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsName = Annotated[str, AfterValidator(_dns_subdomain)]
Window = Annotated[str, AfterValidator(_window)]
PositiveInt = Annotated[int, Field(ge=1)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Quantities = Annotated[dict[str, str], AfterValidator(_quantities)]
ServedName = Annotated[str, AfterValidator(_served_name)]
PrometheusDuration = Annotated[str, AfterValidator(_prometheus_duration)]
Currency = Annotated[str, AfterValidator(_currency)]


class Section(BaseModel):
    """Strict, closed, camelCase keys: a typo or a quoted number is an error, not a default."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
    )
