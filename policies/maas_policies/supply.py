"""Pins: every image, chart and manifest bundle names an exact version."""

from __future__ import annotations

import re

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from maas_policies import objects, relaxation

_EXACT_VERSION = re.compile(r"^v?\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$")
_VERSIONED_URL = re.compile(r"/v?\d+\.\d+\.\d+/")


def image_pinned(image: str) -> bool:
    """A digest, or a tag other than `latest` (a registry port is not a tag)."""
    if "@sha256:" in image:
        return True
    last = image.rsplit("/", 1)[-1]
    return ":" in last and last.rsplit(":", 1)[1] not in ("", "latest")


def _images(args: ResourceValidationArgs, report: ReportViolation) -> None:
    kind = objects.kind(args.resource_type, args.props)
    subject = objects.name(args.props)
    config = args.get_config()
    images = [
        str(c.get("image"))
        for _, _, containers in objects.pod_specs(kind, args.props)
        for c in containers
        if c.get("image")
    ]
    if kind == "Keycloak" and args.props.get("spec", {}).get("image"):
        images.append(str(args.props["spec"]["image"]))
    if kind == "Keycloak" and not args.props.get("spec", {}).get("image"):
        images.append("(the operator's default image)")
    for image in images:
        if not image_pinned(image) and not relaxation.exempt(config, subject, report, "images-pinned"):
            problem = f"image '{image}' is not pinned"
            report(
                objects.refusal(f"{kind} {subject}", problem, "use a release tag or a @sha256 digest"), None
            )


def _charts(args: ResourceValidationArgs, report: ReportViolation) -> None:
    props = args.props
    subject = str(props.get("name") or args.name)
    if args.resource_type == "kubernetes:helm.sh/v3:Release":
        version = str(props.get("version") or "")
        repository = (props.get("repositoryOpts") or {}).get("repo") or ""
        chart = str(props.get("chart") or "")
        if not _EXACT_VERSION.match(version):
            problem = f"chart version '{version}' is not an exact version"
            report(objects.refusal(f"Helm release {subject}", problem, "pin it, e.g. 1.2.3"), None)
        if not chart.startswith("oci://") and not str(repository).startswith("https://"):
            problem = "no https or oci:// repository"
            report(
                objects.refusal(f"Helm release {subject}", problem, "name where the chart comes from"), None
            )
    elif args.resource_type in ("kubernetes:yaml/v2:ConfigFile", "kubernetes:yaml/v2:ConfigGroup"):
        files = [props["file"]] if props.get("file") else list(props.get("files") or [])
        for url in files:
            if str(url).startswith("http") and not _VERSIONED_URL.search(str(url)):
                report(
                    objects.refusal(
                        f"manifest {args.name}", f"{url} names no release", "use the release tag's URL"
                    ),
                    None,
                )


IMAGES_PINNED = ResourceValidationPolicy(
    name="images-pinned",
    description="Every container image names a release tag (not latest) or a digest.",
    validate=_images,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)

CHARTS_PINNED = ResourceValidationPolicy(
    name="charts-pinned",
    description="Every Helm release pins its chart version and repository; manifest URLs name a release.",
    validate=_charts,
    enforcement_level=EnforcementLevel.MANDATORY,
)
