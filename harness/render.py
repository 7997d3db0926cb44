"""Writes what a stack would create, as YAML, with secrets redacted: `python -m harness.render`.

    python -m harness.render --stack dev --out build/dev

Runs the real program under the same mocks as the tests. One file per Kubernetes object
(`<namespace>/<kind>-<name>.yaml`, `_cluster/` for cluster-scoped ones), per Helm release
(`_helm/<release>.yaml`: chart, version, repository, values) and per manifest bundle
(`_bundles/<name>.yaml`), plus the stack outputs. Two renders diff cleanly (`diff -ru`),
which is how pull requests show what they change without a cluster.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml

from harness.program import Declared, Evaluation, evaluate

REDACTED = "[secret]"


def _redact(value: Any, path: str, secret_paths: frozenset[str]) -> Any:
    if path in secret_paths:
        return {key: REDACTED for key in value} if isinstance(value, dict) else REDACTED
    if isinstance(value, dict):
        return {k: _redact(v, f"{path}.{k}" if path else k, secret_paths) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, f"{path}[{i}]", secret_paths) for i, v in enumerate(value)]
    return value


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (dashboards, scripts) as literal blocks, so they diff line by line."""


def _string(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _string)


def _dump(path: Path, content: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.dump(content, Dumper=_Dumper, sort_keys=True, default_flow_style=False))


def _file_for(resource: Declared) -> Path | None:
    if resource.is_k8s_object:
        suffix = "-patch" if resource.type.endswith("Patch") else ""
        folder = resource.namespace or "_cluster"
        return Path(folder) / f"{resource.kind.lower()}-{resource.object_name}{suffix}.yaml"
    if resource.type == "kubernetes:helm.sh/v3:Release":
        return Path("_helm") / f"{resource.inputs.get('name', resource.name)}.yaml"
    if resource.type.startswith("kubernetes:yaml/"):
        return Path("_bundles") / f"{resource.name}.yaml"
    return None


def render(result: Evaluation, out: Path) -> list[Path]:
    """Writes the stack's objects under `out` (emptied first); returns the files written."""
    if out.exists():
        shutil.rmtree(out)
    written = []
    for resource in sorted(result.resources, key=lambda r: r.urn):
        relative = _file_for(resource)
        if relative is None:
            continue
        content = _redact(resource.inputs, "", resource.secret_paths)
        content.pop("compat", None)  # set by the SDK on every release; says nothing
        _dump(out / relative, content)
        written.append(out / relative)
    outputs = {k: REDACTED if k in result.secret_outputs else v for k, v in sorted(result.outputs.items())}
    _dump(out / "_outputs.yaml", outputs)
    written.append(out / "_outputs.yaml")
    return written


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--stack", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    result = evaluate(args.stack)
    if result.error is not None:
        print(f"render failed: {result.error}", file=sys.stderr)
        return 1
    written = render(result, args.out)
    print(f"{args.stack}: {len(written)} files in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
