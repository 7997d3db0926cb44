"""Delivery: workflows and scripts lint clean, and agree with the pins and the README."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from components import versions
from harness.program import PROJECT_DIR
from tests.conftest import skip_or_fail

WORKFLOWS = sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml"))
SCRIPTS = [*sorted((PROJECT_DIR / "scripts").glob("*.sh")), PROJECT_DIR / ".ci" / "run"]


def _tool(name: str) -> str:
    """A command from PATH or from this virtualenv (where actionlint's wheel puts it)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        skip_or_fail(
            f"no {name}: `make check` installs it (requirements-dev.txt, scripts/install-test-tools.sh)"
        )
    assert found is not None
    return found


def _workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / name).read_text())
    return loaded


def _steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return steps


def _readme_block(after: str) -> str:
    """The first code block after a sentence of the README."""
    text = (PROJECT_DIR / "README.md").read_text()
    found = re.search(re.escape(after) + r".*?```sh\n(.*?)```", text, re.DOTALL)
    assert found, f"README has no command after {after!r}"
    return found.group(1).strip()


def test_workflows_pass_actionlint() -> None:
    assert len(WORKFLOWS) >= 3
    done = subprocess.run(
        [_tool("actionlint"), *map(str, WORKFLOWS)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_scripts_pass_shellcheck() -> None:
    done = subprocess.run(
        [_tool("shellcheck"), "-x", *map(str, SCRIPTS)],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_runs_the_readme_test_command() -> None:
    command = _readme_block("Run the tests")
    assert command == "make check"
    assert command in (PROJECT_DIR / ".ci" / "run").read_text().splitlines()
    assert any(step.get("run") == "bash .ci/run" for step in _steps(_workflow("ci.yml"), "check"))


def test_the_readme_deploy_command_is_what_the_e2e_job_runs() -> None:
    command = _readme_block("Deploy the `dev` stack")
    assert command == "make deploy-dev"
    runs = [step.get("run", "") for step in _steps(_workflow("e2e.yml"), "kind")]
    assert [r for r in runs if r in ("make deploy-dev", "make e2e", "scripts/destroy-dev.sh")] == [
        "make deploy-dev",
        "make e2e",
        "scripts/destroy-dev.sh",
    ]
    assert runs[-1] == "scripts/check-teardown.sh kind-maas"


def test_workflows_use_the_pinned_kind_pulumi_and_node_image() -> None:
    pulumi = dict(
        line.split("==")
        for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()
        if "==" in line
    )
    for name, job in (("e2e.yml", "kind"), ("preview.yml", "preview")):
        workflow = _workflow(name)
        assert workflow["jobs"][job]["env"]["PULUMI_VERSION"] == pulumi["pulumi"]
        (kind,) = [
            s["with"] for s in _steps(workflow, job) if str(s.get("uses", "")).startswith("helm/kind-action@")
        ]
        assert kind["version"] == versions.KIND_VERSION
        assert kind["node_image"] == versions.KIND_NODE_IMAGE
        assert kind["cluster_name"] == "maas"


def test_pull_requests_get_a_pulumi_preview_diff_with_the_policy_pack() -> None:
    workflow = _workflow("preview.yml")
    keys: dict[Any, Any] = workflow
    triggers = keys["on"] if "on" in keys else keys[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"pull_request"}
    (preview,) = [
        s for s in _steps(workflow, "preview") if str(s.get("uses", "")).startswith("pulumi/actions@")
    ]
    options = preview["with"]
    assert options["command"] == "preview"
    assert options["comment-on-pr"] is True
    assert options["diff"] is True
    assert options["policyPacks"] == "head/policies"
    assert options["cloud-url"].startswith("file://")
    steps = [s.get("name") for s in _steps(workflow, "preview")]
    assert steps.index("Deploy the base branch") < steps.index("Preview the pull request")
    assert any("harness.render" in s.get("run", "") for s in _steps(workflow, "manifests"))
