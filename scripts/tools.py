"""Fetches the pinned kind, kubectl and Pulumi CLI into a project-local folder.

Each download is checked against the checksum its publisher lists next to it; a mismatch
stops before anything is installed. `scripts/lib.sh` calls this for a tool that PATH lacks at
its pinned version, so a machine with only Docker and Python 3.11 can run `make deploy-dev`.

    python3 scripts/tools.py --dir .tools kind kubectl pulumi

`MAAS_TOOLS_MIRROR=https://mirror.example/tools` fetches every file from
`<mirror>/<host>/<path>` instead (an internal mirror; the tests serve one on 127.0.0.1).
Standard library only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import platform
import stat
import sys
import tarfile
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from components.pins import versions


@dataclass(frozen=True)
class Download:
    url: str
    checksums_url: str
    # The name the checksum file lists the download under ("" : the file holds one hash).
    listed_as: str


def _platform() -> tuple[str, str]:
    system = platform.system().lower()
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine)
    if system not in ("linux", "darwin") or arch is None:
        raise SystemExit(f"tools: no pinned download for {system}/{machine}; install the tool by hand")
    return system, arch


def download(tool: str, system: str, arch: str) -> Download:
    """Where each publisher puts the pinned release and its checksum (sources in versions.py)."""
    if tool == "kind":
        asset = f"kind-{system}-{arch}"
        base = f"{versions.KIND_DOWNLOAD}/{versions.KIND_VERSION}/{asset}"
        return Download(base, f"{base}.sha256sum", asset)
    if tool == "kubectl":
        base = f"{versions.KUBECTL_DOWNLOAD}/{versions.KUBECTL_VERSION}/bin/{system}/{arch}/kubectl"
        return Download(base, f"{base}.sha256", "")
    if tool == "pulumi":
        pulumi_arch = {"amd64": "x64", "arm64": "arm64"}[arch]
        asset = f"pulumi-v{versions.PULUMI_VERSION}-{system}-{pulumi_arch}.tar.gz"
        release = f"{versions.PULUMI_DOWNLOAD}/v{versions.PULUMI_VERSION}"
        return Download(
            f"{release}/{asset}", f"{release}/pulumi-{versions.PULUMI_VERSION}-checksums.txt", asset
        )
    raise SystemExit(f"tools: cannot fetch '{tool}' (known: kind, kubectl, pulumi)")


def pinned_version(tool: str) -> str:
    return {
        "kind": versions.KIND_VERSION,
        "kubectl": versions.KUBECTL_VERSION,
        "pulumi": versions.PULUMI_VERSION,
    }[tool]


def _mirrored(url: str) -> str:
    mirror = os.environ.get("MAAS_TOOLS_MIRROR", "").rstrip("/")
    if not mirror:
        return url
    parts = urllib.parse.urlsplit(url)
    return f"{mirror}/{parts.netloc}{parts.path}"


def _get(url: str) -> bytes:
    where = _mirrored(url)
    try:
        with urllib.request.urlopen(where, timeout=120) as answer:
            data: bytes = answer.read()
            return data
    except OSError as error:
        raise SystemExit(f"tools: cannot download {where}: {error}") from error


def expected_sha256(checksums: str, listed_as: str) -> str:
    """The hash for `listed_as` in a checksum file ("<hash>" or lines of "<hash>  <name>")."""
    for line in checksums.splitlines():
        fields = line.split()
        if listed_as == "" and len(fields) == 1:
            return fields[0].lower()
        # sha256sum marks binary mode with "*"; names may carry a leading "./".
        if listed_as and len(fields) == 2 and fields[1].lstrip("*").rsplit("/", 1)[-1] == listed_as:
            return fields[0].lower()
    raise SystemExit(f"tools: the published checksums do not list {listed_as or 'the download'}")


def _install(tool: str, payload: bytes, bin_dir: Path) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    if tool != "pulumi":
        _write_executable(bin_dir / tool, payload)
        return
    # The tarball holds pulumi/pulumi and its language and resource plugins, which the CLI
    # looks for beside itself: they all go into bin/.
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as archive:
        for member in archive.getmembers():
            if not member.isfile():
                continue
            extracted = archive.extractfile(member)
            assert extracted is not None
            _write_executable(bin_dir / Path(member.name).name, extracted.read())


def _write_executable(path: Path, data: bytes) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.chmod(partial.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    partial.replace(path)


def ensure(tool: str, tools_dir: Path) -> Path:
    """Fetches `tool` at its pinned version unless that version is already in `tools_dir`."""
    bin_dir = tools_dir / "bin"
    stamp = tools_dir / f".{tool}-{pinned_version(tool)}"
    if stamp.is_file() and (bin_dir / tool).is_file():
        return bin_dir / tool
    wanted = download(tool, *_platform())
    payload = _get(wanted.url)
    expected = expected_sha256(_get(wanted.checksums_url).decode(), wanted.listed_as)
    actual = hashlib.sha256(payload).hexdigest()
    if actual != expected:
        raise SystemExit(
            f"tools: checksum mismatch for {wanted.url}: published {expected}, downloaded {actual}; "
            "nothing was installed"
        )
    _install(tool, payload, bin_dir)
    for old in tools_dir.glob(f".{tool}-*"):
        old.unlink()
    stamp.touch()
    print(f"tools: {tool} {pinned_version(tool)} -> {bin_dir / tool} (sha256 verified)")
    return bin_dir / tool


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, required=True, help="the tools folder; binaries go to DIR/bin")
    parser.add_argument("tools", nargs="+", choices=("kind", "kubectl", "pulumi"))
    options = parser.parse_args()
    for tool in options.tools:
        ensure(tool, options.dir)


if __name__ == "__main__":
    main()
