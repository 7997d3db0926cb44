"""The guards of the maas-platform policy pack."""

from __future__ import annotations

from pulumi_policy import Policy

PACK_NAME = "maas-platform"

POLICIES: list[Policy] = []
