"""The converter behind `make schemas`, on a small CRD that exercises each of its rules."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from harness import crd_schemas
from harness.validation import SchemaCatalog

CRD = """
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.example.com}
spec:
  group: example.com
  names: {kind: Widget, plural: widgets}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        required: [spec]
        properties:
          apiVersion: {type: string}
          kind: {type: string}
          metadata: {type: object, properties: {name: {type: string}}}
          spec:
            type: object
            x-kubernetes-validations:
            - {rule: "self.size > 0", message: size must be positive}
            properties:
              size: {type: integer}
              port: {x-kubernetes-int-or-string: true}
              note: {type: string, nullable: true}
              labels: {type: object, additionalProperties: {type: string}}
              free:
                type: object
                x-kubernetes-preserve-unknown-fields: true
                properties: {a: {type: string}}
              choice:
                type: object
                properties: {x: {type: string}}
                oneOf:
                - {properties: {x: {type: string}}}
  - name: v0
    served: false
    storage: false
    schema: {openAPIV3Schema: {type: object}}
"""


def _convert() -> dict[str, dict[str, Any]]:
    (crd,) = crd_schemas.crds(yaml.safe_load_all(CRD))
    return dict(crd_schemas.convert(crd))


def test_only_served_versions_are_written_in_the_catalog_layout() -> None:
    assert list(_convert()) == ["example.com/widget_v1.json"]


def test_the_conversion_closes_objects_types_nulls_and_keeps_cel() -> None:
    schema = _convert()["example.com/widget_v1.json"]
    spec = schema["properties"]["spec"]
    assert schema["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert schema["required"] == ["spec", "apiVersion", "kind"]
    assert schema["properties"]["apiVersion"]["enum"] == ["example.com/v1"]
    assert schema["properties"]["kind"]["enum"] == ["Widget"]
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["additionalProperties"] is False
    assert spec["additionalProperties"] is False
    assert spec["properties"]["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert spec["properties"]["note"]["type"] == ["string", "null"]
    assert spec["properties"]["labels"]["additionalProperties"] == {"type": "string"}
    assert "additionalProperties" not in spec["properties"]["free"]
    assert "additionalProperties" not in spec["properties"]["choice"]["oneOf"][0]
    assert spec["x-kubernetes-validations"] == [{"rule": "self.size > 0", "message": "size must be positive"}]


def test_the_written_schemas_drive_the_checker(tmp_path: Path) -> None:
    written = crd_schemas.write([CRD], tmp_path)
    assert [p.relative_to(tmp_path).as_posix() for p in written] == ["example.com/widget_v1.json"]
    assert json.loads(written[0].read_text())["properties"]["kind"]["enum"] == ["Widget"]
    catalog = SchemaCatalog([tmp_path], "1.36")
    good = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}}
    assert catalog.problems(good) == []
    assert any(
        "Additional properties" in p for p in catalog.problems({**good, "spec": {"size": 1, "sise": 2}})
    )
    assert any("size must be positive" in p for p in catalog.problems({**good, "spec": {"size": 0}}))


def test_every_pinned_source_is_an_https_url_at_a_release() -> None:
    urls = crd_schemas.sources()
    assert len(urls) >= 15
    assert all(url.startswith("https://") for url in urls)
    assert all(re.search(r"/v?\d+\.\d+\.\d+/", url) for url in urls)
