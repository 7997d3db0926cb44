"""Supply rules: every image and chart names an exact version."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.policy_runner import assert_only, edited, replaced, violations


@pytest.mark.parametrize(
    ("image", "refused"),
    [
        ("ghcr.io/llm-d/llm-d-inference-sim:latest", True),
        ("ghcr.io/llm-d/llm-d-inference-sim", True),
        ("localhost:5000/llm-d-inference-sim", True),
        ("ghcr.io/llm-d/llm-d-inference-sim@sha256:" + "a" * 64, False),
        ("localhost:5000/llm-d-inference-sim:v1.2.3", False),
    ],
)
def test_unpinned_images_are_refused(stack_of: Any, image: str, refused: bool) -> None:
    stack = stack_of("dev")
    resources = edited(
        stack,
        "InferenceService",
        "simulator",
        lambda i: i["spec"]["predictor"]["containers"][0].update(image=image),
    )
    found = violations(stack, resources)
    if refused:
        assert_only(
            found,
            "images-pinned",
            f"image '{image}' is not pinned",
            "Fix: use a release tag or a @sha256 digest",
        )
    else:
        assert found == []


@pytest.mark.parametrize("version", ["^1.5", "", "latest", "1.5"])
def test_an_unpinned_chart_is_refused(stack_of: Any, version: str) -> None:
    stack = stack_of("dev")
    release = stack.release("kuadrant-operator")
    resources = replaced(stack.resources, release, {**release.inputs, "version": version})
    assert_only(
        violations(stack, resources),
        "charts-pinned",
        f"Helm release kuadrant-operator: chart version '{version}'",
    )
