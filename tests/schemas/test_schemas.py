"""Every Kubernetes object a stack declares is one an API server would accept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.program import Evaluation
from harness.validation import SchemaCatalog
from tests.support.prerequisites import skip_without_shared


def _manifest_cases(catalog: SchemaCatalog) -> Path:
    """The steering repository's cases with known verdicts, which only its checkouts have."""
    cases = catalog.directories[0].parent / "manifest-cases"
    if not cases.is_dir():
        skip_without_shared(f"no manifest-cases directory beside {catalog.directories[0]}")
    return cases


def test_the_checker_accepts_the_known_good_manifests(catalog: SchemaCatalog) -> None:
    files = sorted(_manifest_cases(catalog).glob("*-ok.yaml"))
    assert files
    for path in files:
        for document in yaml.safe_load_all(path.read_text()):
            assert catalog.problems(document) == [], f"{path.name}: {document['kind']}"


def test_the_checker_refuses_every_known_bad_manifest(catalog: SchemaCatalog) -> None:
    """Misspelled fields, old rate shapes, `1d` windows, CEL rules, list-map keys, names."""
    files = sorted(p for p in _manifest_cases(catalog).glob("*.yaml") if not p.name.endswith("-ok.yaml"))
    assert len(files) >= 5
    for path in files:
        for document in yaml.safe_load_all(path.read_text()):
            assert catalog.problems(document), f"{path.name}: {document['kind']} passed"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "sim.ulator"}, "spec": {}},
            "is not a valid Service name",
        ),
        (
            {
                "apiVersion": "kuadrant.io/v1",
                "kind": "RateLimitPolicy",
                "metadata": {"name": "x"},
                "spec": {},
            },
            "'targetRef' is a required property",
        ),
        (
            {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "x"}},
            "no schema for Widget example.com/v1",
        ),
    ],
)
def test_the_checker_names_the_problem(
    catalog: SchemaCatalog, document: dict[str, object], expected: str
) -> None:
    assert any(expected in problem for problem in catalog.problems(document))


def test_every_declared_object_passes_the_strict_schemas(stack: Evaluation, catalog: SchemaCatalog) -> None:
    objects = stack.objects()
    assert objects
    # Patches (CustomResourcePatch, DeploymentPatch) name only the fields they own.
    failures = {str(o): catalog.problems(o.inputs, partial=o.type.endswith("Patch")) for o in objects}
    assert {k: v for k, v in failures.items() if v} == {}


def test_a_patch_may_omit_required_fields_but_nothing_else(catalog: SchemaCatalog) -> None:
    patch: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x", "namespace": "y"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "env": [{"name": "A", "value": "1"}]}]}}},
    }
    assert catalog.problems(patch) != []
    assert catalog.problems(patch, partial=True) == []
    patch["spec"]["template"]["spec"]["containers"][0]["envv"] = []
    assert catalog.problems(patch, partial=True) != []
