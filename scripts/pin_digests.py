"""Pins the images components/pins/versions.py names by the digest their tag has now.

    python3 scripts/pin_digests.py [VERSIONS.py]

Every one-line `<NAME>_IMAGE = "<ref>:<tag>"` (or an f-string that builds one, or one
already `@sha256:` pinned) is resolved in its registry with the runner's docker
(`docker buildx imagetools inspect <ref> --format '{{json .Manifest}}'`: the descriptor of
what the tag points at, an image index for a multi-platform image, whose `digest` a
Kubernetes node pulls by; docs.docker.com reference/cli/docker/buildx/imagetools/inspect)
and written back as `<ref>:<tag>@sha256:<digest>`, the tag kept for readers (S8). A tag
already pinned is resolved again, so a moved tag or a bumped version gets its new digest.
An image its registry does not answer for is left as it is and named on stderr; the exit
status is 1 only when nothing could be resolved at all. The scheduled workflow
(.github/workflows/pin-digests.yml) runs this and opens a pull request with the change.
Standard library only: it runs before any install.
"""

from __future__ import annotations

import json
import re
import runpy
import subprocess
import sys
from pathlib import Path

VERSIONS = Path(__file__).resolve().parent.parent / "components" / "pins" / "versions.py"
LINE_LENGTH = 110  # ruff's (pyproject.toml)
# `NAME = "ref"`, `NAME = "ref@sha256:…"`, or either in parentheses, the digest on a line
# of its own where the whole does not fit on one (as this script writes them).
IMAGE = re.compile(
    r'^(?P<name>[A-Z0-9_]+_IMAGE) = (?P<open>\(\n    )?(?P<quote>f?")(?P<ref>[^"@\n]+)'
    r'(?:(?:"\n    ")?(?P<digest>@sha256:[0-9a-f]{64}))?"(?(open)\n\))$',
    re.MULTILINE,
)
DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def resolve(ref: str) -> str | None:
    """The digest `ref`'s tag points at in its registry, or None when it does not answer."""
    done = subprocess.run(
        ["docker", "buildx", "imagetools", "inspect", ref, "--format", "{{json .Manifest}}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        print(f"{ref}: not resolved, left as it is: {done.stderr.strip()[-500:]}", file=sys.stderr)
        return None
    digest = json.loads(done.stdout).get("digest", "")
    if not DIGEST.fullmatch(digest):
        print(f"{ref}: the registry answered no sha256 digest ({digest!r}), left as it is", file=sys.stderr)
        return None
    return str(digest)


def pinned(name: str, quote: str, ref: str, digest: str) -> str:
    """The assignment with its digest, laid out as ruff format leaves it: on one line where
    it fits, else the string alone in parentheses, else the digest on a line of its own."""
    line = f'{name} = {quote}{ref}@{digest}"'
    if len(line) <= LINE_LENGTH:
        return line
    if len(f'    {quote}{ref}@{digest}"') <= LINE_LENGTH:
        return f'{name} = (\n    {quote}{ref}@{digest}"\n)'
    return f'{name} = (\n    {quote}{ref}"\n    "@{digest}"\n)'


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else VERSIONS
    values = runpy.run_path(str(path))
    text = path.read_text()
    found = resolved = 0

    def pin(image: re.Match[str]) -> str:
        nonlocal found, resolved
        found += 1
        # The value the program uses (an f-string's too), without any digest it has.
        ref = str(values[image["name"]]).split("@", 1)[0]
        digest = resolve(ref)
        if digest is None:
            return image[0]
        resolved += 1
        written = pinned(image["name"], image["quote"], image["ref"], digest)
        if written != image[0]:
            print(f"{image['name']}: {ref}@{digest}")
        return written

    path.write_text(IMAGE.sub(pin, text))
    return 1 if found and not resolved else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
