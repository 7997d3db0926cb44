"""How a stack relaxes a rule: named exemptions, each with a recorded reason.

In the pack's config file for a stack (policies/config/<stack>.json):

    {"images-pinned": {"exemptions": ["llm/my-test-runtime"], "reason": "built in CI, tag set per run"}}

An exemption without a reason is itself a violation. Whole rules are relaxed with Pulumi's
own `enforcementLevel` (advisory, disabled) in the same object, next to a `reason`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyConfigSchema, ReportViolation

from maas_policies import objects

SCHEMA = PolicyConfigSchema(
    properties={
        "exemptions": {"type": "array", "items": {"type": "string"}},
        "reason": {"type": "string"},
    }
)


def exempt(config: Mapping[str, Any], subject: str, report: ReportViolation, rule: str) -> bool:
    """True when `subject` (namespace/name, or a resource name) is exempted with a reason."""
    exemptions = config.get("exemptions") or []
    if subject not in exemptions:
        return False
    if not str(config.get("reason", "")).strip():
        fix = 'add "reason" next to "exemptions" in the stack\'s policy config'
        report(objects.refusal(subject, f"the exemption from {rule} has no reason", fix), None)
        return False
    return True
