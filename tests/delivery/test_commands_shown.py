"""Every command a user is shown (README, docs/, the stack files) goes through make or
scripts/pulumi.sh: a bare `pulumi` would use the reader's own login and backend, and a secret
set that way lands where the deploy cannot read it."""

from __future__ import annotations

import re
from pathlib import Path

from harness.program import PROJECT_DIR

# A command line: `pulumi ...` at the start of a line of a code block or of a comment.
COMMAND_LINE = re.compile(r"^\s*(?:\$\s+)?pulumi\s")
# In prose: a `pulumi <command>` that only a user types, or any one the reader is told to run.
TOLD = re.compile(
    r"`pulumi (?:config|stack|login|logout|new|import|refresh|state|cancel|plugin|install)\b[^`]*`"
    r"|\b(?:[Rr]un|with|[Tt]ype)\s+`pulumi [^`]*`"
)


def bare_commands(name: str, text: str) -> list[str]:
    """`name:line: text` of each bare pulumi command in a Markdown file or a stack file."""
    found = []
    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        if name.endswith(".md"):
            if line.lstrip().startswith("```"):
                in_code = not in_code
                continue
            bare = COMMAND_LINE.match(line) if in_code else TOLD.search(line)
        else:
            comment = line.split("#", 1)[1] if "#" in line else ""
            bare = COMMAND_LINE.match(comment) or TOLD.search(comment)
        if bare:
            found.append(f"{name}:{number}: {line.strip()}")
    return found


def _shown() -> list[Path]:
    return [
        PROJECT_DIR / "README.md",
        *sorted((PROJECT_DIR / "docs").glob("*.md")),
        *sorted(PROJECT_DIR.glob("Pulumi.*.yaml")),
    ]


def test_no_bare_pulumi_command_is_shown_to_a_user() -> None:
    assert len(_shown()) > 10, "README, every page of docs/ and every stack file"
    found = [
        hit
        for path in _shown()
        for hit in bare_commands(str(path.relative_to(PROJECT_DIR)), path.read_text())
    ]
    assert found == [], "use make or scripts/pulumi.sh:\n" + "\n".join(found)


def test_the_check_catches_each_form() -> None:
    readme = "\n".join(
        [
            "set it with `pulumi config set --secret maas:x y`.",
            "Edit the file and run `pulumi up`.",
            "`pulumi up` previews first.",  # what the deploy does, not a command to type
            "```sh",
            "pulumi up --stack gpu",
            "make deploy STACK=gpu   # pulumi up",
            "```",
        ]
    )
    assert [h.split(": ", 1)[0] for h in bare_commands("docs/access.md", readme)] == [
        "docs/access.md:1",
        "docs/access.md:2",
        "docs/access.md:5",
    ]
    stack = "# Set the context:\n#   pulumi config set --path 'maas:cluster.context' c -s gpu\nconfig: {}\n"
    assert bare_commands("Pulumi.gpu.yaml", stack) == [
        "Pulumi.gpu.yaml:2: #   pulumi config set --path 'maas:cluster.context' c -s gpu"
    ]
