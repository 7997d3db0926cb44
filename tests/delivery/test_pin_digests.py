"""Image digests pinned by a maintained mechanism: scripts/pin_digests.py run on a copy of
components/pins/versions.py with a recording stand-in for docker on PATH (answering as
`docker buildx imagetools inspect --format '{{json .Manifest}}'` does: the tag's descriptor,
docs.docker.com reference/cli/docker/buildx/imagetools/inspect), and the scheduled workflow
that runs it and opens the pull request, its shell run with stand-ins for git and gh."""

from __future__ import annotations

import hashlib
import json
import os
import runpy
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.pins import versions
from harness.program import PROJECT_DIR
from tests.program import test_checkov
from tests.support.prerequisites import tool

SCRIPT = PROJECT_DIR / "scripts" / "pin_digests.py"
WORKFLOW = PROJECT_DIR / ".github" / "workflows" / "pin-digests.yml"
IMAGES = {name: value for name, value in vars(versions).items() if name.endswith("_IMAGE")}
# The stand-in: each call appended to $STANDIN_LOG; a ref listed in $STANDIN_DOWN fails as an
# unreachable registry; any other answers a digest derived from the ref and $STANDIN_SALT.
DOCKER = """#!/usr/bin/env python3
import hashlib, json, os, sys
with open(os.environ["STANDIN_LOG"], "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\\n")
ref = sys.argv[4]
if ref in os.environ.get("STANDIN_DOWN", "").split():
    sys.stderr.write("ERROR: failed to do request: dial tcp: i/o timeout\\n")
    sys.exit(1)
digest = "sha256:" + hashlib.sha256((ref + os.environ.get("STANDIN_SALT", "")).encode()).hexdigest()
print(json.dumps({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": digest, "size": 1}))
"""


def _digest(ref: str, salt: str = "") -> str:
    return "sha256:" + hashlib.sha256((ref + salt).encode()).hexdigest()


def _tag(value: str) -> str:
    return value.split("@", 1)[0]


def _run(tmp_path: Path, down: tuple[str, ...] = (), salt: str = "") -> tuple[int, dict[str, Any], list[Any]]:
    """The script on a versions.py in tmp_path: (exit status, the module's values, docker's calls)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "docker").write_text(DOCKER.replace("/usr/bin/env python3", sys.executable))
    (bin_dir / "docker").chmod(0o755)
    log = tmp_path / "docker.log"
    log.write_text("")
    env = {
        "PATH": str(bin_dir),
        "STANDIN_LOG": str(log),
        "STANDIN_DOWN": " ".join(down),
        "STANDIN_SALT": salt,
    }
    done = subprocess.run(
        [sys.executable, str(SCRIPT), str(tmp_path / "versions.py")],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    return done.returncode, runpy.run_path(str(tmp_path / "versions.py")), calls


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    (tmp_path / "versions.py").write_text((PROJECT_DIR / "components/pins/versions.py").read_text())
    return tmp_path


def test_every_image_gets_its_tags_digest_and_keeps_its_tag(copy: Path) -> None:
    status, pinned, calls = _run(copy)
    assert status == 0
    for name, value in IMAGES.items():
        assert pinned[name] == f"{_tag(value)}@{_digest(_tag(value))}", name
    # An f-string's value resolved, as the program sees it (the version in the tag).
    assert [c[:3] for c in calls] == [["buildx", "imagetools", "inspect"]] * len(IMAGES)
    assert {c[3] for c in calls} == {_tag(v) for v in IMAGES.values()}
    assert all(c[4:] == ["--format", "{{json .Manifest}}"] for c in calls)
    text = (copy / "versions.py").read_text()
    assert 'f"ghcr.io/llm-d/llm-d-router-endpoint-picker:{LLM_D_ROUTER_VERSION}"' in text


def test_what_it_writes_passes_the_linters(copy: Path) -> None:
    _run(copy)
    ruff = tool("ruff", "requirements-dev.txt")
    config = ["--config", str(PROJECT_DIR / "pyproject.toml")]
    for command in (["check", *config], ["format", "--check", *config]):
        done = subprocess.run(
            [ruff, *command, str(copy / "versions.py")], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_second_run_changes_nothing_and_a_moved_tag_gets_its_new_digest(copy: Path) -> None:
    _run(copy)
    first = (copy / "versions.py").read_text()
    _run(copy)
    assert (copy / "versions.py").read_text() == first
    _, moved, _ = _run(copy, salt="rebuilt")
    for name, value in IMAGES.items():
        assert moved[name] == f"{_tag(value)}@{_digest(_tag(value), 'rebuilt')}", name


def test_an_image_whose_registry_does_not_answer_is_left_as_it_is(copy: Path) -> None:
    unreachable = _tag(versions.MODEL_LIST_IMAGE)
    status, pinned, _ = _run(copy, down=(unreachable,))
    assert status == 0
    assert pinned["MODEL_LIST_IMAGE"] == versions.MODEL_LIST_IMAGE
    assert (
        pinned["SIMULATOR_IMAGE"]
        == f"{_tag(versions.SIMULATOR_IMAGE)}@{_digest(_tag(versions.SIMULATOR_IMAGE))}"
    )
    everything = tuple(_tag(v) for v in IMAGES.values())
    status, pinned, _ = _run(copy, down=everything)
    assert status == 1, "nothing resolved at all: the run fails"


def test_checkovs_known_digest_failures_go_as_pins_land(copy: Path) -> None:
    """A workload's missing digest is a known failure only while its image has none."""
    _, pinned, _ = _run(copy)
    assert test_checkov.known_failures({k: v for k, v in pinned.items() if k in IMAGES}) == {}
    now = test_checkov.known_failures(IMAGES)
    assert {resource for resource, _ in now} == {
        resource
        for resource, image in test_checkov.DIGEST_WORKLOADS.items()
        if "@sha256:" not in IMAGES[image]
    }


def _workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def test_the_workflow_runs_weekly_and_on_demand_with_the_script() -> None:
    workflow = _workflow()
    # PyYAML reads the key `on` as True (YAML 1.1).
    triggers: dict[Any, Any] = {str(k): v for k, v in workflow.items()}["True"]
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert triggers["schedule"] == [{"cron": "23 4 * * 1"}]
    assert workflow["permissions"] == {"contents": "write", "pull-requests": "write"}
    runs = [s.get("run", "") for s in workflow["jobs"]["pin"]["steps"]]
    assert "python3 scripts/pin_digests.py components/pins/versions.py" in runs


STANDIN_SHELL = """#!/bin/sh
echo "$(basename "$0") $*" >> "$STANDIN_LOG"
case "$(basename "$0") $1 $2" in
  "git diff --quiet") exit "$(cat "$STANDIN_STATE/diff")" ;;
  "gh pr list") cat "$STANDIN_STATE/prs" ;;
esac
"""


@pytest.mark.parametrize(
    ("changed", "open_pr", "expected"),
    [
        (False, "", []),
        (
            True,
            "",
            ["git switch -C pin-image-digests", "git push --force origin pin-image-digests", "gh pr create"],
        ),
        (True, "7", ["git push --force origin pin-image-digests"]),
    ],
)
def test_the_pull_request_step_opens_one_only_when_a_digest_changed(
    tmp_path: Path, changed: bool, open_pr: str, expected: list[str]
) -> None:
    (step,) = [s for s in _workflow()["jobs"]["pin"]["steps"] if "gh pr" in s.get("run", "")]
    bin_dir, state = tmp_path / "bin", tmp_path / "state"
    bin_dir.mkdir()
    state.mkdir()
    for name in ("git", "gh"):
        (bin_dir / name).write_text(STANDIN_SHELL)
        (bin_dir / name).chmod(0o755)
    (state / "diff").write_text("1" if changed else "0")
    (state / "prs").write_text(open_pr)
    log = tmp_path / "calls"
    log.write_text("")
    env = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STANDIN_LOG": str(log),
        "STANDIN_STATE": str(state),
    }
    # GitHub runs a step's `run` with bash -e {0} (shell: bash's documented default).
    done = subprocess.run(
        ["bash", "-e", "-c", step["run"]], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    calls = log.read_text().splitlines()
    for call in expected:
        assert any(c.startswith(call) for c in calls), (call, calls)
    assert any(c.startswith("gh pr create") for c in calls) == ("gh pr create" in expected)
    assert any(c.startswith("git commit") for c in calls) == changed
