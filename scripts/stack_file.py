"""Writes the per-user copy of a stack file that the scripts hand the Pulumi CLI with
`--config-file`, so that the tracked Pulumi.<stack>.yaml is never written.

    .venv/bin/python scripts/stack_file.py dev ~/.maas-platform/stacks

writes ~/.maas-platform/stacks/Pulumi.dev.yaml, and a copy of Pulumi.yaml beside it (the
project the CLI finds from that folder, where scripts/lib.sh create_stack runs).

The CLI saves a stack's secrets state (the passphrase manager's `encryptionsalt`) and the
values of `config set` into the stack's config file: the `--config-file` path when given,
else Pulumi.<stack>.yaml beside Pulumi.yaml (pulumi/pulumi@v3.259.0-14-g1b59498
pkg/cmd/pulumi/stack/io.go SaveProjectStack, sdk/go/common/workspace/paths.go
DetectProjectStackPath; pkg/secrets/passphrase/manager.go sets EncryptionSalt). The copy is
the tracked file's content, plus what only this user's state knows, kept from the previous
copy: the secrets state and the secret values set with `scripts/pulumi.sh config set
--secret`. A tracked file that already holds a salt (a deploy before this script) gives it
to a copy that has none, so that stack's secrets still decrypt.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import yaml

# The ProjectStack fields of the secrets state (pulumi/pulumi@v3.259.0-14-g1b59498
# sdk/go/common/workspace/project.go).
SECRETS_STATE = ("secretsprovider", "encryptedkey", "encryptionsalt")


def merged(tracked: dict[str, Any], copy: dict[str, Any]) -> dict[str, Any]:
    result = dict(tracked)
    config = dict(tracked.get("config") or {})
    for key, value in (copy.get("config") or {}).items():
        if key not in config and isinstance(value, dict) and set(value) == {"secure"}:
            config[key] = value
    if config:
        result["config"] = config
    for key in SECRETS_STATE:
        if copy.get(key):
            result[key] = copy[key]
    return result


def _load(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text()) if path.exists() else None
    return loaded if isinstance(loaded, dict) else {}


def _write(path: Path, text: str) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.replace(path)


def main(stack: str, folder: str) -> None:
    tracked = Path(f"Pulumi.{stack}.yaml")
    if not tracked.exists():
        sys.exit(
            f"scripts/stack_file.py: no {tracked} in {Path.cwd()}: is '{stack}' a stack of this project?"
        )
    target = Path(folder) / tracked.name
    target.parent.mkdir(parents=True, exist_ok=True)
    _write(target.parent / "Pulumi.yaml", Path("Pulumi.yaml").read_text())
    text = yaml.safe_dump(merged(_load(tracked), _load(target)), sort_keys=False)
    _write(target, f"# Written by scripts/stack_file.py from {tracked.resolve()}; edit that file.\n{text}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
