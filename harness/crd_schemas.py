"""JSON Schemas of the custom resources this program declares, from the upstream CRDs it pins.

    python -m harness.crd_schemas --out .schemas        # then: export MAAS_SCHEMA_DIR=$PWD/.schemas

Downloads each CRD at the release `components/pins/versions.py` pins and writes one strict
Draft-04 schema per served version, `<group>/<kind>_<version>.json` (the datreeio
CRDs-catalog layout), converted the way the steering repository's schemas are:
apiVersion/kind enums and `required`; `additionalProperties: false` on the root and on
every object that lists properties and says nothing about extra ones (never inside
allOf/anyOf/oneOf/not, never on `metadata`); `nullable` as a null type; int-or-string as
integer-or-string; CEL rules (`x-kubernetes-validations`) kept for the checker.
"""

from __future__ import annotations

import argparse
import copy
import json
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

from components.pins import versions

_GITHUB = "https://raw.githubusercontent.com"
_BRANCHES = ("allOf", "anyOf", "oneOf", "not")


def sources() -> list[str]:
    """URLs of every CRD whose kinds the program declares, at the pinned releases."""
    kuadrant = f"{_GITHUB}/Kuadrant/kuadrant-operator/v{versions.KUADRANT_OPERATOR.version}/config/crd/bases"
    kserve = f"{_GITHUB}/kserve/kserve/{versions.KSERVE_VERSION}/config/crd/full"
    cert_manager = f"{_GITHUB}/cert-manager/cert-manager/{versions.CERT_MANAGER.version}/deploy/crds"
    monitoring = (
        f"{_GITHUB}/prometheus-operator/prometheus-operator/{versions.PROMETHEUS_OPERATOR_VERSION}"
        "/example/prometheus-operator-crd"
    )
    return [
        versions.GATEWAY_API_CRDS_URL,
        *(
            f"{kuadrant}/{name}.yaml"
            for name in (
                "kuadrant.io_kuadrants",
                "kuadrant.io_authpolicies",
                "kuadrant.io_ratelimitpolicies",
                "kuadrant.io_tokenratelimitpolicies",
                "extensions.kuadrant.io_telemetrypolicies",
            )
        ),
        f"{_GITHUB}/Kuadrant/limitador-operator/v{versions.LIMITADOR_OPERATOR_VERSION}"
        "/config/crd/bases/limitador.kuadrant.io_limitadors.yaml",
        f"{kserve}/serving.kserve.io_inferenceservices.yaml",
        f"{kserve}/serving.kserve.io_servingruntimes.yaml",
        *(
            f"{cert_manager}/cert-manager.io_{name}.yaml"
            for name in ("certificates", "issuers", "clusterissuers")
        ),
        *(
            f"{monitoring}/monitoring.coreos.com_{name}.yaml"
            for name in ("podmonitors", "servicemonitors", "prometheusrules")
        ),
        *versions.KEYCLOAK_CRDS_URLS,
        *versions.INFERENCE_CRDS_URLS,
    ]


def _close(node: Any, in_branch: bool = False) -> Any:
    """Applies the conversion rules below one schema node (not the root)."""
    if isinstance(node, list):
        return [_close(item, in_branch) for item in node]
    if not isinstance(node, dict):
        return node
    result = {}
    for key, value in node.items():
        if key in _BRANCHES:
            result[key] = _close(value, in_branch=True)
        elif key == "properties":
            result[key] = {name: _close(sub, in_branch) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            result[key] = _close(value, in_branch)
        else:
            result[key] = value
    if result.get("nullable") and isinstance(result.get("type"), str):
        result["type"] = [result["type"], "null"]
    if result.get("x-kubernetes-int-or-string") and "anyOf" not in result:
        result.pop("type", None)
        result["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    open_ended = (
        "additionalProperties" in result or result.get("x-kubernetes-preserve-unknown-fields") is True
    )
    if "properties" in result and not open_ended and not in_branch:
        result["additionalProperties"] = False
    return result


def convert(crd: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(relative path, schema) for each served version of a CRD."""
    spec = crd["spec"]
    group, kind = spec["group"], spec["names"]["kind"]
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        source = copy.deepcopy(version["schema"]["openAPIV3Schema"])
        properties = {name: _close(sub) for name, sub in source.get("properties", {}).items()}
        properties.setdefault("apiVersion", {"type": "string"})
        properties.setdefault("kind", {"type": "string"})
        properties["apiVersion"] = {**properties["apiVersion"], "enum": [f"{group}/{version['name']}"]}
        properties["kind"] = {**properties["kind"], "enum": [kind]}
        properties["metadata"] = {"type": "object"}
        schema = {key: value for key, value in source.items() if key not in ("properties", "required")}
        schema = {
            "$schema": "http://json-schema.org/draft-04/schema#",
            **schema,
            "type": "object",
            "required": [*source.get("required", []), "apiVersion", "kind"],
            "properties": properties,
            "additionalProperties": False,
        }
        yield f"{group}/{kind.lower()}_{version['name']}.json", schema


def crds(documents: Iterable[Any]) -> Iterator[dict[str, Any]]:
    for document in documents:
        if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
            yield document


def write(texts: Iterable[str], out: Path) -> list[Path]:
    written = []
    for text in texts:
        for crd in crds(yaml.safe_load_all(text)):
            for relative, schema in convert(crd):
                path = out / relative
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(schema, indent=2, sort_keys=False) + "\n")
                written.append(path)
    return written


def _download(url: str) -> str:
    with urllib.request.urlopen(url, timeout=60) as response:
        text: str = response.read().decode()
        return text


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(".schemas"))
    parser.add_argument("files", nargs="*", type=Path, help="convert these CRD files instead of downloading")
    args = parser.parse_args()
    texts = [f.read_text() for f in args.files] if args.files else [_download(url) for url in sources()]
    written = write(texts, args.out)
    print(f"wrote {len(written)} schemas to {args.out}")


if __name__ == "__main__":
    main()
