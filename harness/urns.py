"""Every resource URN each stack declares, as the snapshot in tests/urns/<stack>.txt.

A URN is how Pulumi matches a declared resource to the live one in a user's state: one
that changes or disappears means a replacement on the next `pulumi up`. The snapshot
makes every such change visible in review; a deliberate rename carries `pulumi.Alias`.

    python -m harness.urns --write      # after an intended change: rewrite the snapshots
"""

from __future__ import annotations

import argparse

from harness.program import PROJECT_DIR, evaluate, stack_names

SNAPSHOTS = PROJECT_DIR / "tests" / "urns"


def urns(stack: str) -> list[str]:
    """The stack's URNs, and those of its snapshot that an alias still reaches: a rename's old
    URN stays recorded, so the test keeps checking that the alias names it."""
    result = evaluate(stack)
    if result.error is not None:
        raise SystemExit(f"stack {stack} does not evaluate: {result.error}")
    snapshot = SNAPSHOTS / f"{stack}.txt"
    recorded = set(snapshot.read_text().split()) if snapshot.is_file() else set()
    aliased = {alias for r in result.resources for alias in r.aliases} & recorded
    return sorted({r.urn for r in result.resources} | aliased)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="rewrite tests/urns/<stack>.txt")
    options = parser.parse_args()
    for stack in stack_names():
        lines = "\n".join(urns(stack)) + "\n"
        if options.write:
            SNAPSHOTS.mkdir(exist_ok=True)
            (SNAPSHOTS / f"{stack}.txt").write_text(lines)
        else:
            print(lines, end="")


if __name__ == "__main__":
    main()
