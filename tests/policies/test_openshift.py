"""OpenShift rules: subscriptions pinned, and no fixed user ids on OpenShift."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.policy_runner import assert_only, edited, violations


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda s: s["spec"].pop("startingCSV"), "startingCSV '' is not a CSV of an exact version"),
        (lambda s: s["spec"].update(startingCSV="rhcl-operator"), "startingCSV 'rhcl-operator' is not"),
        (lambda s: s["spec"].update(startingCSV="rhcl-operator.v1.4"), "startingCSV 'rhcl-operator.v1.4' is"),
        (lambda s: s["spec"].pop("channel"), "no channel"),
        (lambda s: s["spec"].pop("installPlanApproval"), "installPlanApproval is not set"),
    ],
    ids=["no-starting-csv", "csv-without-version", "csv-without-patch", "no-channel", "no-approval"],
)
def test_an_unpinned_subscription_is_refused(stack_of: Any, edit: Any, fragment: str) -> None:
    stack = stack_of("ocp")
    resources = edited(stack, "Subscription", "rhcl-operator", edit)
    assert_only(
        violations(stack, resources),
        "operators-pinned",
        "Subscription kuadrant-system/rhcl-operator",
        fragment,
    )


def test_the_stacks_subscriptions_are_pinned(stack_of: Any) -> None:
    stack = stack_of("ocp")
    specs = {s.object_name: s.inputs["spec"] for s in stack.objects("Subscription")}
    assert set(specs) == {"servicemeshoperator3", "openshift-cert-manager-operator", "rhcl-operator"}
    assert violations(stack, stack.resources) == []


@pytest.mark.parametrize(
    ("kind", "name", "edit", "fragment"),
    [
        (
            "Deployment",
            "model-list",
            lambda d: d["spec"]["template"]["spec"]["securityContext"].update(runAsUser=101),
            "pod runAsUser 101",
        ),
        (
            "Deployment",
            "model-list",
            lambda d: d["spec"]["template"]["spec"]["securityContext"].update(fsGroup=101),
            "pod fsGroup 101",
        ),
        (
            "Deployment",
            "model-list",
            lambda d: d["spec"]["template"]["spec"]["containers"][0]["securityContext"].update(runAsUser=7),
            "runAsUser 7",
        ),
        (
            "InferenceService",
            "simulator",
            lambda i: i["spec"]["predictor"]["securityContext"].update(runAsUser=1000960000),
            "predictor runAsUser 1000960000",
        ),
        (
            "ServingRuntime",
            "vllm-openai-cpu",
            lambda r: r["spec"]["containers"][0]["securityContext"].update(runAsUser=1000),
            "container kserve-container runAsUser 1000",
        ),
        (
            "InferenceService",
            "simulator",
            lambda i: i["spec"]["predictor"].update(
                initContainers=[
                    {
                        "name": "warm",
                        "image": "busybox:1.37.0",
                        "securityContext": {"runAsUser": 1000},
                        "resources": {
                            "requests": {"cpu": "10m", "memory": "8Mi"},
                            "limits": {"cpu": "10m", "memory": "8Mi"},
                        },
                    }
                ]
            ),
            "container warm runAsUser 1000",
        ),
    ],
    ids=[
        "pod-user",
        "pod-fsgroup",
        "container-user",
        "predictor-user",
        "runtime-user",
        "predictor-init-user",
    ],
)
def test_a_fixed_id_on_openshift_is_refused(
    stack_of: Any, kind: str, name: str, edit: Any, fragment: str
) -> None:
    stack = stack_of("ocp")
    found = violations(stack, edited(stack, kind, name, edit))
    assert_only(found, "no-fixed-ids-on-openshift", fragment, "Fix: leave them out")


def test_fixed_ids_stay_allowed_off_openshift(stack_of: Any) -> None:
    """On plain Kubernetes the images' own user ids are written down (flavour/kubernetes.py)."""
    stack = stack_of("dev")
    pod = stack.one("Deployment", "model-list").inputs["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"]
    assert violations(stack, stack.resources) == []
