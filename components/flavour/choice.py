"""The flavour a stack is installed with, chosen from `maas:flavour`."""

from __future__ import annotations

from collections.abc import Callable

from components.config import StackConfig
from components.flavour.kubernetes import Kubernetes
from components.flavour.openshift import OpenShift
from components.flavour.protocol import Flavour

FLAVOURS: dict[str, Callable[[StackConfig], Flavour]] = {
    "kubernetes": lambda _: Kubernetes(),
    "openshift": lambda config: OpenShift(operators=config.openshift),
}


def choose(config: StackConfig) -> Flavour:
    return FLAVOURS[config.flavour](config)
