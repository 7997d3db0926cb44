"""Credentials: no demo or default credential, and none in plain text, outside dev stacks."""

from __future__ import annotations

import base64
import binascii
import re

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from maas_policies import objects

# Credentials the public demos ship and that must never reach a cluster outside dev. This
# module is the one file allowed to spell them out.
KNOWN_DEFAULT_CREDENTIALS = re.compile(
    r"admin123|password123|changeme|prom-operator|\b(?:free|premium|enterprise)user\d*_key\b",
    re.IGNORECASE,
)
# Names of settings that hold a credential, and of settings that only point at one.
_CREDENTIAL_NAME = re.compile(r"(password|passwd|secret|token|api_?key|credential)s?$", re.IGNORECASE)
_REFERENCE_NAME = re.compile(r"^existing|(secret|password|token)_?(name|ref|key|file|path)s?$", re.IGNORECASE)


def _holds_credential(name: str) -> bool:
    return bool(_CREDENTIAL_NAME.search(name)) and not _REFERENCE_NAME.search(name)


_DEV_STACKS = ["dev"]

SCHEMA = PolicyConfigSchema(
    properties={
        "devStacks": {"type": "array", "items": {"type": "string"}, "default": _DEV_STACKS},
        "reason": {"type": "string"},
    }
)


def _outside_dev(args: ResourceValidationArgs) -> bool:
    return pulumi.get_stack() not in (args.get_config().get("devStacks") or _DEV_STACKS)


def _decoded(value: str) -> str:
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="ignore")
    except (binascii.Error, ValueError):
        return value


def _default_credentials(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if not _outside_dev(args):
        return
    props = args.props
    kind = objects.kind(args.resource_type, props)
    release = args.resource_type == "kubernetes:helm.sh/v3:Release"
    subject = str(props.get("name") or args.name) if release else objects.name(props)
    where = "Helm release" if release else kind
    scanned: list[tuple[str, str]] = []
    if kind in ("Secret", "ConfigMap"):
        # Content a preview cannot know yet is computed by a create (a generated password), so
        # no literal: it is judged when `pulumi up` checks the resource again with it known.
        string_data, data = objects.known(props, "stringData"), objects.known(props, "data")
        scanned += [(p, v) for p, v in objects.string_leaves(string_data or {}, "stringData")]
        scanned += [(p, _decoded(v)) for p, v in objects.string_leaves(data or {}, "data")]
    for _, _, containers in objects.pod_specs(kind, props):
        for container in containers:
            for env in container.get("env") or []:
                if "value" in env:
                    scanned.append((f"env {env.get('name')}", str(env["value"])))
                    if _holds_credential(str(env.get("name", ""))) and env["value"]:
                        report(
                            objects.refusal(
                                f"{kind} {subject}",
                                f"env {env.get('name')} holds a credential in plain text",
                                "valueFrom a Secret",
                            ),
                            None,
                        )
    if release:
        for path, value in objects.string_leaves(props.get("values") or {}, "values"):
            scanned.append((path, value))
            if _holds_credential(path.rsplit(".", 1)[-1]) and value:
                report(
                    objects.refusal(
                        f"Helm release {subject}",
                        f"{path} holds a credential in plain text",
                        "point the chart at an existing Secret (e.g. existingSecret)",
                    ),
                    None,
                )
    for path, value in scanned:
        if KNOWN_DEFAULT_CREDENTIALS.search(value):
            report(
                objects.refusal(
                    f"{where} {subject}",
                    f"{path} holds a known default or demo credential",
                    "generate it (pulumi-random) or set it with `scripts/pulumi.sh config set --secret`",
                ),
                None,
            )


def _keycloak_production(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if objects.kind(args.resource_type, args.props) != "Keycloak" or not _outside_dev(args):
        return
    spec = args.props.get("spec") or {}
    subject = objects.name(args.props)
    missing = []
    if not (spec.get("db") or {}).get("host") and not (spec.get("db") or {}).get("url"):
        missing.append("a database (spec.db)")
    if not (spec.get("hostname") or {}).get("hostname"):
        missing.append("a hostname (spec.hostname.hostname)")
    if not ((spec.get("bootstrapAdmin") or {}).get("user") or {}).get("secret"):
        missing.append("a generated bootstrap admin (spec.bootstrapAdmin.user.secret)")
    # Every string of the spec, wherever the operator takes a start command or option from
    # (str() of the CLI's read-only mapping is its address, not its text).
    if any("start-dev" in text for _, text in objects.string_leaves(spec)):
        missing.append("production mode (start, not start-dev)")
    if missing:
        problem = f"lacks {', '.join(missing)}"
        report(
            objects.refusal(f"Keycloak {subject}", problem, "configure them; dev mode is for dev stacks"),
            None,
        )


NO_DEFAULT_CREDENTIALS = ResourceValidationPolicy(
    name="no-default-credentials",
    description=(
        "Outside dev stacks, no Secret, ConfigMap, env var or Helm value carries a known default "
        "or demo credential, and no env var or Helm value holds a credential in plain text."
    ),
    validate=_default_credentials,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SCHEMA,
)

KEYCLOAK_PRODUCTION = ResourceValidationPolicy(
    name="keycloak-production-mode",
    description="Outside dev stacks, Keycloak runs in production mode: database, hostname, generated admin.",
    validate=_keycloak_production,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=SCHEMA,
)
