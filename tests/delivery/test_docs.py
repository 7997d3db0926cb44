"""README is what a newcomer reads first: short, the two commands on its first screen, one
click to every page of docs/; and no link of README or docs/ leads nowhere."""

from __future__ import annotations

import re
from pathlib import Path

from harness.program import PROJECT_DIR, evaluate
from tests.support.scripts import script_module

README = PROJECT_DIR / "README.md"
DOCS = PROJECT_DIR / "docs"
MAX_LINES = 200
FIRST_SCREEN = 40
TWO_COMMANDS = ("make deploy-dev", "make check")

_FENCE = re.compile(r"^\s*```")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_CODE_SPAN = re.compile(r"`[^`]*`")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, inline code removed."""
    lines = []
    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            in_code = not in_code
            continue
        if not in_code:
            lines.append((number, _CODE_SPAN.sub("", line)))
    return lines


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lowercase, punctuation dropped but for hyphens (and
    underscores, word characters to GitHub), each space a hyphen."""
    text = _CODE_SPAN.sub(lambda m: m.group(0).strip("`"), heading).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link's text only
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """Every heading's anchor, GitHub's way: a repeated one gets -1, -2, ..."""
    seen: dict[str, int] = {}
    found = set()
    for _, line in _prose_with_code_spans(text):
        heading = _HEADING.match(line)
        if not heading:
            continue
        base = slug(heading.group(2))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def _prose_with_code_spans(text: str) -> list[tuple[int, str]]:
    lines = []
    in_code = False
    for number, line in enumerate(text.splitlines(), 1):
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            lines.append((number, line))
    return lines


def links(text: str) -> list[tuple[int, str]]:
    """(line number, target) of each Markdown link outside code."""
    return [(number, m.group(1)) for number, line in _prose(text) for m in _LINK.finditer(line)]


def broken_links(path: Path, text: str | None = None) -> list[str]:
    """`file:line: target (why)` for each link of a Markdown file that leads nowhere: a
    relative file that does not exist, or a #fragment no heading of its target makes.
    External links are not fetched."""
    text = path.read_text() if text is None else text
    problems = []
    for number, target in links(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
            continue
        file_part, _, fragment = target.partition("#")
        where = f"{path.relative_to(PROJECT_DIR) if path.is_relative_to(PROJECT_DIR) else path}:{number}"
        if file_part:
            linked = (path.parent / file_part).resolve()
            if not linked.exists():
                problems.append(f"{where}: {target} (no such file)")
                continue
            headings = anchors(linked.read_text()) if linked.suffix == ".md" else set()
        else:
            headings = anchors(text)
        if fragment and fragment not in headings:
            problems.append(f"{where}: {target} (no heading #{fragment})")
    return problems


def first_screen_commands(text: str) -> set[str]:
    """The commands of the code blocks that start on the first screen."""
    commands = set()
    in_code = False
    for number, line in enumerate(text.splitlines()[:FIRST_SCREEN], 1):
        if _FENCE.match(line):
            in_code = not in_code
        elif in_code and number <= FIRST_SCREEN:
            commands.add(line.split("#", 1)[0].strip())
    return commands


def _pages() -> list[Path]:
    return [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_at_most_200_lines() -> None:
    lines = len(README.read_text().splitlines())
    assert lines <= MAX_LINES, f"README.md has {lines} lines; move the rest to docs/"


def test_readmes_first_screen_names_the_two_commands() -> None:
    missing = set(TWO_COMMANDS) - first_screen_commands(README.read_text())
    assert missing == set(), f"not in a code block of README's first {FIRST_SCREEN} lines: {missing}"


def test_readme_shows_the_try_it_block_devs_deploy_prints() -> None:
    """As scripts/try_it.py prints it after `make deploy-dev`, with a fetched kubectl."""
    shown = re.search(r'"Try it" block.*?```\n(.*?)```', README.read_text(), re.DOTALL)
    assert shown, "README shows no Try it block"
    printed = script_module("try_it").block("dev", ".tools/bin/kubectl", evaluate("dev").outputs)
    assert shown.group(1).splitlines() == printed


def test_every_page_of_docs_is_one_click_from_readme() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for _, t in links(README.read_text())}
    assert [p.name for p in sorted(DOCS.glob("*.md")) if p.resolve() not in linked] == []


def test_every_link_of_readme_and_docs_resolves() -> None:
    pages = _pages()
    assert len(pages) > 10
    problems = [problem for page in pages for problem in broken_links(page)]
    assert problems == [], "\n".join(problems)


def test_the_checks_fail_on_what_they_look_for(tmp_path: Path) -> None:
    assert slug("Tiers, keys and limits") == "tiers-keys-and-limits"
    assert slug("Keycloak (OIDC)") == "keycloak-oidc"
    assert slug("Layout, and how to add a layer") == "layout-and-how-to-add-a-layer"
    assert slug("What `make deploy-dev` does") == "what-make-deploy-dev-does"
    assert anchors("# A\n## B\n```\n# not a heading\n```\n## B\n") == {"a", "b", "b-1"}

    (tmp_path / "other.md").write_text("# Other\n\n## Its part\n")
    page = tmp_path / "page.md"
    text = "\n".join(
        [
            "# Page",
            "[ok](other.md) [ok](other.md#its-part) [ok](#page) [web](https://example.com/x)",
            "[gone](missing.md)",
            "[no anchor](other.md#nothing) [no anchor here](#nothing)",
            "`[in code](missing.md)`",
            "```",
            "[in a block](missing.md)",
            "```",
        ]
    )
    assert [p.split(": ", 1)[1] for p in broken_links(page, text)] == [
        "missing.md (no such file)",
        "other.md#nothing (no heading #nothing)",
        "#nothing (no heading #nothing)",
    ]

    late = "# x\n" + "\n" * FIRST_SCREEN + "```sh\nmake deploy-dev\nmake check\n```\n"
    assert first_screen_commands(late) == set()
    early = "# x\n```sh\nmake deploy-dev   # dev\n```\n```sh\nmake check\n```\n"
    assert first_screen_commands(early) >= set(TWO_COMMANDS)
