"""Delivery: workflows and scripts lint clean, and agree with the pins and the README."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import yaml

from components.pins import versions
from harness.program import PROJECT_DIR
from tests.support.prerequisites import tool

WORKFLOWS = sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml"))
SCRIPTS = [*sorted((PROJECT_DIR / "scripts").glob("*.sh")), PROJECT_DIR / ".ci" / "run"]


def _tool(name: str) -> str:
    return tool(name, "`make check` installs it (requirements-dev.txt, scripts/install-test-tools.sh)")


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
    steps = _steps(_workflow("e2e.yml"), "kind")
    runs = [step.get("run", "") for step in steps]
    assert [r for r in runs if r in ("make deploy-dev", "make e2e", "make destroy-dev")] == [
        "make deploy-dev",
        "make e2e",
        "make destroy-dev",
    ]
    # Destroy and the teardown check run whatever failed before them, teardown last.
    destroy, teardown = steps[runs.index("make destroy-dev")], steps[-1]
    assert destroy.get("if") == "always()"
    assert teardown.get("if") == "always()"
    assert teardown["run"].endswith("scripts/check-teardown.sh kind-maas")


def test_workflows_use_the_pinned_tools() -> None:
    """The deploy script fetches the pinned kind, kubectl and Pulumi CLI (scripts/tools.py);
    the preview action installs the same CLI. The CLI matches the SDK in requirements.txt."""
    sdk = dict(
        line.split("==")
        for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()
        if "==" in line
    )
    assert sdk["pulumi"] == versions.PULUMI_VERSION
    (action,) = [
        s for s in _steps(_workflow("preview.yml"), "preview") if "pulumi/actions@" in s.get("uses", "")
    ]
    assert action["with"]["pulumi-version"] == versions.PULUMI_VERSION
    for name, job in (("e2e.yml", "kind"), ("preview.yml", "preview")):
        for step in _steps(_workflow(name), job):
            assert "get.pulumi.com" not in step.get("run", ""), "the CLI comes from scripts/tools.py"
            assert not str(step.get("uses", "")).startswith("helm/kind-action"), "deploy.sh makes the cluster"


def _checkouts(steps: list[dict[str, Any]]) -> dict[str, str]:
    """Checkout path -> which side of the pull request it holds."""
    found = {}
    for step in steps:
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            options = step.get("with") or {}
            found[options.get("path", ".")] = "base" if "base.sha" in str(options.get("ref", "")) else "head"
    return found


def test_pull_requests_get_a_pulumi_preview_diff_with_the_policy_pack() -> None:
    workflow = _workflow("preview.yml")
    keys: dict[Any, Any] = workflow
    triggers = keys["on"] if "on" in keys else keys[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"pull_request"}
    steps = _steps(workflow, "preview")
    (preview,) = [s for s in steps if str(s.get("uses", "")).startswith("pulumi/actions@")]
    options = preview["with"]
    assert options["command"] == "preview"
    assert options["comment-on-pr"] is True
    assert options["diff"] is True
    assert options["cloud-url"].startswith("file://")
    names = [s.get("name") for s in steps]
    assert names.index("Deploy the base branch") < names.index("Preview the pull request")
    assert any("harness.render" in s.get("run", "") for s in _steps(workflow, "manifests"))


def test_the_preview_action_finds_the_pack_and_its_venv_where_the_cli_looks() -> None:
    """pulumi/actions v7 src/main.ts: `resolve(GITHUB_WORKSPACE, work-dir)` is the CLI's cwd,
    and policyPacks / policyPackConfigs are passed unchanged, so they resolve against
    work-dir. The CLI then starts <pack>/venv/bin/python, which nothing but a step before
    it creates (the action installs no dependencies)."""
    steps = _steps(_workflow("preview.yml"), "preview")
    (index,) = [i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("pulumi/actions@")]
    options = steps[index]["with"]
    work_dir = options["work-dir"]
    assert _checkouts(steps)[work_dir] == "head", "the preview runs the pull request's code"
    # This checkout stands for the workspace's `head`: resolve as the CLI would.
    pack = (PROJECT_DIR / options["policyPacks"]).resolve()
    assert (pack / "PulumiPolicy.yaml").is_file(), f"{work_dir}/{options['policyPacks']} is not a pack"
    assert (PROJECT_DIR / options["policyPackConfigs"]).is_file()
    prepared = [s.get("run", "") for s in steps[:index]]
    assert any(f"make -C {work_dir} python-envs" in run for run in prepared), (
        "no step creates the pack's venv"
    )
