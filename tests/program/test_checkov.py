"""checkov on what every stack declares: a new failure fails the suite.

checkov 3.3.30 (requirements-checkov.txt, in .tools/checkov) reads the objects as
`harness.render` writes them. Server-side apply patches are left out: they own a few fields
of an object declared elsewhere (a chart's Deployment), which checkov would judge as a whole
workload. Each failure still there is listed below with why; fixing one fails the test too,
until it is struck from the list.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path

from components.pins import versions
from harness.program import PROJECT_DIR, Evaluation, typed_config
from harness.render import render
from tests.support.prerequisites import tool

CHECKOV_HOME = PROJECT_DIR / ".tools" / "checkov" / "bin"
DIGEST = "CKV_K8S_43"
# The workloads of ours whose image may lack a digest, by the versions.py constant it comes from:
# scripts/pin_digests.py (the pin-digests workflow) pins them where a registry answers.
DIGEST_WORKLOADS = {
    "Deployment.llm.model-list": "MODEL_LIST_IMAGE",
    "Job.keycloak.keycloak-user-sync": "KEYCLOAK_IMAGE",
    "Deployment.llm.simulator-epp": "ENDPOINT_PICKER_IMAGE",
    "Deployment.llm.qwen3-0-6b-instruct-epp": "ENDPOINT_PICKER_IMAGE",
}


def known_failures(images: Mapping[str, str]) -> dict[tuple[str, str], str]:
    """checkov's digest failures still expected: a workload's, while its image has none."""
    return {
        (resource, DIGEST): "pinned by tag until the pin-digests workflow's pull request lands "
        "(scripts/pin_digests.py; docs/unverified.md)"
        for resource, image in DIGEST_WORKLOADS.items()
        if "@sha256:" not in images[image]
    }


# (resource as checkov names it, check) -> why it still fails
KNOWN: dict[tuple[str, str], str] = known_failures(
    {name: value for name, value in vars(versions).items() if name.endswith("_IMAGE")}
)

# CKV_K8S_40 wants a user id above 10000 written in the spec; on OpenShift the restricted-v2
# SCC assigns one from the namespace's range (1000000000 and up), so the spec names none.
KNOWN_ON_OPENSHIFT: dict[tuple[str, str], str] = {
    ("Deployment.llm.model-list", "CKV_K8S_40"): "OpenShift picks the user id (restricted-v2)",
    ("Deployment.llm.key-service", "CKV_K8S_40"): "OpenShift picks the user id (restricted-v2)",
}


def _checkov(directory: Path) -> tuple[set[tuple[str, str]], set[str], dict[tuple[str, str], str]]:
    """The failed (resource, check) pairs, every resource checkov judged, and the inline skips
    (an object's `checkov.io/skip<n>: <check>=<why>` annotation) with their reasons."""
    checkov = str(CHECKOV_HOME / "checkov") if (CHECKOV_HOME / "checkov").exists() else None
    checkov = checkov or tool("checkov", "`make test-tools` installs it in .tools/checkov")
    done = subprocess.run(
        [checkov, "-d", str(directory), "--framework", "kubernetes", "--compact", "-o", "json"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr[-2000:]
    reports = json.loads(done.stdout or "[]")
    reports = reports if isinstance(reports, list) else [reports]
    failed, seen, skipped = set(), set(), {}
    for report in reports:
        results = report.get("results") or {}
        for check in results.get("skipped_checks") or []:
            why = (check.get("check_result") or {}).get("suppress_comment") or ""
            skipped[(check["resource"], check["check_id"])] = why
        for outcome in ("passed_checks", "failed_checks"):
            for check in results.get(outcome) or []:
                seen.add(check["resource"])
                if outcome == "failed_checks":
                    failed.add((check["resource"], check["check_id"]))
    return failed, seen, skipped


def test_checkov_finds_nothing_new_on_any_stack(stack: Evaluation, tmp_path: Path) -> None:
    for patch in render(stack, tmp_path):
        if patch.stem.endswith("-patch"):
            patch.unlink()
    failed, seen, skipped = _checkov(tmp_path)
    assert seen, "checkov judged nothing"
    unexplained = sorted(k for k, why in skipped.items() if len(why.split()) < 5)
    assert unexplained == [], f"{stack.stack}: inline skips need their reason: {unexplained}"
    known = KNOWN | (KNOWN_ON_OPENSHIFT if typed_config(stack.stack).flavour == "openshift" else {})
    new = sorted(failed - known.keys())
    assert new == [], f"{stack.stack}: new checkov failures: {new}"
    fixed = sorted(k for k in known if k[0] in seen and k not in failed)
    assert fixed == [], f"{stack.stack}: fixed, strike them from KNOWN: {fixed}"
