"""The cluster preflight, run as the deploy script runs it, against a stand-in kubectl that
answers `get ... -o json` from files and records what it was asked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from commands import preflight
from harness.program import PROJECT_DIR

KUBECTL = """#!/bin/sh
echo "$*" >>"$FAKE_CLUSTER/calls"
[ -f "$FAKE_CLUSTER/forbidden" ] && { echo 'Error from server (Forbidden)' >&2; exit 1; }
name=$(echo "$*" | sed -E 's/.* get [a-z.]+ ([a-z0-9.-]+) .*/\\1/')
[ -f "$FAKE_CLUSTER/$name.json" ] || { echo "Error from server (NotFound)" >&2; exit 1; }
cat "$FAKE_CLUSTER/$name.json"
"""


def _config_map(config: dict[str, Any]) -> dict[str, Any]:
    return {"data": {"config.yaml": yaml.safe_dump(config)}}


READY = {
    preflight.GATEWAY_CRD: {"metadata": {"annotations": {preflight.BUNDLE_VERSION: "v1.5.1"}}},
    preflight.MONITORING[1]: _config_map({"enableUserWorkload": True}),
    preflight.USER_WORKLOAD[1]: _config_map(
        {"namespacesWithoutLabelEnforcement": ["llm-observability"], "prometheus": {"retention": "45d"}}
    ),
}


def _run(tmp_path: Path, stack: str, cluster: dict[str, Any]) -> tuple[subprocess.CompletedProcess[str], str]:
    bin_dir, fake = tmp_path / "bin", tmp_path / "cluster"
    bin_dir.mkdir(exist_ok=True)
    fake.mkdir(exist_ok=True)
    (bin_dir / "kubectl").write_text(KUBECTL)
    (bin_dir / "kubectl").chmod(0o755)
    for name, answer in cluster.items():
        (fake / f"{name}.json").write_text(json.dumps(answer))
    done = subprocess.run(
        [sys.executable, "-m", "commands.preflight", stack],
        cwd=PROJECT_DIR,
        env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_CLUSTER": str(fake)},
        capture_output=True,
        text=True,
        check=False,
    )
    calls = fake / "calls"
    return done, calls.read_text() if calls.exists() else ""


def test_a_ready_openshift_cluster_passes(tmp_path: Path) -> None:
    done, calls = _run(tmp_path, "ocp", READY)
    assert done.returncode == 0, done.stderr
    assert "--context maas-ocp get crd gateways.gateway.networking.k8s.io -o json" in calls
    assert "get configmap user-workload-monitoring-config -n openshift-user-workload-monitoring" in calls


@pytest.mark.parametrize(
    ("broken", "said"),
    [
        (
            {preflight.GATEWAY_CRD: {"metadata": {"annotations": {preflight.BUNDLE_VERSION: "v1.4.1"}}}},
            "Gateway API CRDs v1.4.1: Istio 1.30 needs v1.5 or later",
        ),
        ({preflight.GATEWAY_CRD: {"metadata": {}}}, "Gateway API CRDs absent"),
        (
            {preflight.MONITORING[1]: _config_map({})},
            "user-workload monitoring is off. Fix: set enableUserWorkload",
        ),
        (
            {preflight.USER_WORKLOAD[1]: _config_map({"namespacesWithoutLabelEnforcement": ["other"]})},
            "namespace llm-observability is not in namespacesWithoutLabelEnforcement",
        ),
        (
            {
                preflight.MONITORING[1]: _config_map(
                    {
                        "enableUserWorkload": True,
                        "userWorkload": {"rulesWithoutLabelEnforcementAllowed": False},
                    }
                )
            },
            "userWorkload.rulesWithoutLabelEnforcementAllowed is false",
        ),
        # Red Hat's documented prerequisites of Connectivity Link, installed by hand.
        (
            {
                "servicemeshoperator3": {
                    "metadata": {},
                    "status": {"installedCSV": "servicemeshoperator3.v3.4.1"},
                }
            },
            "Subscription openshift-operators/servicemeshoperator3 exists and is not this stack's",
        ),
        (
            {"cert-manager": {"metadata": {"labels": {}}}},
            "namespace cert-manager exists and is not this stack's",
        ),
    ],
    ids=[
        "old-gateway-api",
        "no-bundle-version",
        "uwm-off",
        "namespace-enforced",
        "exemptions-voided",
        "service-mesh-subscribed",
        "cert-manager-installed",
    ],
)
def test_what_the_cluster_lacks_stops_the_deploy_with_its_fix(
    tmp_path: Path, broken: dict[str, Any], said: str
) -> None:
    done, _ = _run(tmp_path, "ocp", {**READY, **broken})
    assert done.returncode == 1
    problems = [line for line in done.stderr.splitlines() if line.startswith("  - ")]
    assert len(problems) == 1, done.stderr
    assert said in problems[0]
    assert "Fix: " in problems[0]


def test_the_stacks_own_operators_are_not_refused(tmp_path: Path) -> None:
    """A second deploy finds the Subscription and namespace the first made, with our label."""
    ours = {"metadata": {"labels": {"app.kubernetes.io/part-of": "maas-platform"}}}
    done, calls = _run(tmp_path, "ocp", {**READY, "servicemeshoperator3": ours, "cert-manager": ours})
    assert done.returncode == 0, done.stderr
    assert "get subscriptions.operators.coreos.com servicemeshoperator3 -n openshift-operators" in calls
    assert "get namespace cert-manager -o json" in calls


def test_a_missing_config_map_counts_as_unset(tmp_path: Path) -> None:
    done, _ = _run(tmp_path, "ocp", {preflight.GATEWAY_CRD: READY[preflight.GATEWAY_CRD]})
    assert done.returncode == 1
    assert "user-workload monitoring is off" in done.stderr
    assert "namespace llm-observability is not in" in done.stderr


@pytest.mark.parametrize("stack", ["dev", "gpu"])
def test_plain_kubernetes_stacks_ask_the_cluster_nothing(tmp_path: Path, stack: str) -> None:
    done, calls = _run(tmp_path, stack, {})
    assert done.returncode == 0
    assert calls == ""


def test_a_short_retention_is_said_but_does_not_stop_the_deploy(tmp_path: Path) -> None:
    short = _config_map({"namespacesWithoutLabelEnforcement": ["llm-observability"]})
    done, _ = _run(tmp_path, "ocp", {**READY, preflight.USER_WORKLOAD[1]: short})
    assert done.returncode == 0, done.stderr
    assert "note: user-workload monitoring keeps usage for 24h" in done.stderr
    ready, _ = _run(tmp_path, "ocp", READY)
    assert "note:" not in ready.stderr


def test_a_cluster_that_cannot_be_asked_is_not_reported_as_unready(tmp_path: Path) -> None:
    (tmp_path / "cluster").mkdir()
    (tmp_path / "cluster" / "forbidden").write_text("")
    done, _ = _run(tmp_path, "ocp", READY)
    assert done.returncode == 1
    assert "cannot ask the cluster (context maas-ocp)" in done.stderr
    assert "Forbidden" in done.stderr
    assert "not ready" not in done.stderr
