"""The guards of the maas-platform policy pack."""

from __future__ import annotations

import re

from pulumi_policy import Policy

PACK_NAME = "maas-platform"

# Credentials the public demos ship and that must never reach a cluster outside dev. This
# module is the one file allowed to spell them out.
KNOWN_DEFAULT_CREDENTIALS = re.compile(
    r"admin123|password123|changeme|\b(?:free|premium|enterprise)user\d*_key\b",
    re.IGNORECASE,
)

POLICIES: list[Policy] = []
