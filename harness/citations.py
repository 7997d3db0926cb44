"""The files that comments, docstrings and docs cite: this repo's own, and upstream ones.

An upstream citation reads `owner/repo@ref path` (docs/architecture.md, "Citations"); paths
later in the same comment that are not this repo's belong to the repo named last. A path
that starts with one of this repo's folders is this repo's, unless it follows a repo@ref;
so is a code file under one of its inner folders (`serving/gateway.py`).

    python -m harness.citations     # every upstream citation: repo, ref, path, where cited
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import subprocess
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
ROOTS = ("components", "tests", "scripts", "policies", "harness", "docs", "commands", ".github", ".ci")
_ROOTS = "|".join(re.escape(root) for root in ROOTS)
# A path in this repo, with an optional `::name` or `:name` it defines.
REPO_PATH = re.compile(rf"(?<![\w./@-])((?:{_ROOTS})/[\w./*<>-]*[\w*>])(?:::?([A-Za-z_]\w*(?:::\w+)*))?")
# owner/repo@ref, then the cited path when the next word is one.
HEAD = re.compile(r"(?<![\w./-])([\w.-]+/[\w.-]+)@([\w.+-]*\w)(?:\s+`?([\w.*<>-]*[/.][\w./*<>-]*\w)`?)?")
# A file in a language or format this repo does not hold, alone or under folders.
_SOURCE_ONLY = r"go|rs|proto|cc|h|c|java|ts|mk|tpl|inc\.md"
# A file under folders, with an extension this repo also uses.
_SOURCE_ANY = r"yaml|yml|md|json|sh|py|lua|txt|toml|cfg|conf"
UPSTREAM_PATH = re.compile(
    rf"(?<![\w./@:-])([\w.*<>-]+(?:/[\w.*<>-]+)*\.(?:{_SOURCE_ONLY})|[\w.*<>-]+(?:/[\w.*<>-]+)+\.(?:{_SOURCE_ANY}))\b"
)
# Paths that are neither this repo's nor upstream: the sibling checkout of shared references,
# and what the tools make (virtualenvs, schemas).
GENERATED = (".venv", ".tools/", ".schemas/", "policies/venv")
LOCAL = ("shared/", "../shared/", "~/", "/", *GENERATED)


@dataclass(frozen=True)
class Block:
    """Consecutive comment lines, a docstring, or a Markdown paragraph."""

    file: str
    lines: tuple[tuple[int, str], ...]


@dataclass(frozen=True)
class Citation:
    repo: str
    ref: str
    path: str
    file: str
    line: int


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT_DIR, capture_output=True, text=True, check=True
    ).stdout.split()
    return sorted(listed)


def scanned(files: list[str]) -> list[str]:
    """The files whose prose is read: code and config comments, README.md and docs/."""

    def wanted(name: str) -> bool:
        path = Path(name)
        return (
            path.suffix in {".py", ".sh", ".lua", ".yaml", ".yml"}
            or path.name == "Makefile"
            or name in {"README.md", ".ci/run"}
            or (name.startswith("docs/") and path.suffix == ".md")
        )

    return [name for name in files if wanted(name)]


def _python_blocks(name: str, text: str) -> Iterator[Block]:
    run: list[tuple[int, str]] = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            if run and token.start[0] != run[-1][0] + 1:
                yield Block(name, tuple(run))
                run = []
            run.append((token.start[0], token.string.lstrip("#")))
    if run:
        yield Block(name, tuple(run))
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                value = body[0].value.value
                if isinstance(value, str):
                    start = body[0].lineno
                    yield Block(name, tuple((start + i, line) for i, line in enumerate(value.splitlines())))


def _line_blocks(name: str, text: str, marker: str) -> Iterator[Block]:
    """Comments that start a line or follow a space: `#` in shell, YAML and Make, `--` in Lua."""
    run: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        match = re.search(rf"(?:^|\s){re.escape(marker)}(.*)", line)
        if match is None:
            if run:
                yield Block(name, tuple(run))
            run = []
            continue
        run.append((number, match.group(1)))
    if run:
        yield Block(name, tuple(run))


def _markdown_blocks(name: str, text: str) -> Iterator[Block]:
    run: list[tuple[int, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            run.append((number, line))
        elif run:
            yield Block(name, tuple(run))
            run = []
    if run:
        yield Block(name, tuple(run))


def blocks(name: str) -> Iterator[Block]:
    text = (PROJECT_DIR / name).read_text()
    if name.endswith(".py"):
        yield from _python_blocks(name, text)
    elif name.endswith(".md"):
        yield from _markdown_blocks(name, text)
    else:
        yield from _line_blocks(name, text, "--" if name.endswith(".lua") else "#")


def _is_generated(path: str) -> bool:
    return path.startswith(GENERATED)


def _is_local(path: str) -> bool:
    return path.startswith(LOCAL) or REPO_PATH.fullmatch(path) is not None


def _in_repo(path: str, tracked: set[str]) -> bool:
    """A file of this repo, or its tail (`lua/request_body.lua` in components/serving/)."""
    return path in tracked or any(name.endswith("/" + path) for name in tracked)


@dataclass(frozen=True)
class Reading:
    """What a block cites: upstream citations, this repo's paths, and upstream-looking paths
    that no repo@ref claims."""

    citations: list[Citation]
    repo_paths: list[tuple[int, str, str | None]]
    unclaimed: list[tuple[int, str]]


def _is_repo_tail(path: str, tracked: set[str]) -> bool:
    """`serving/gateway.py`: a code file under one of this repo's folders, named without its root."""
    folders = {part for name in tracked for part in Path(name).parts[1:-1]}
    return path.split("/")[0] in folders and path.endswith((".py", ".lua", ".sh"))


def read(block: Block, tracked: set[str]) -> Reading:
    citations: list[Citation] = []
    repo_paths: list[tuple[int, str, str | None]] = []
    unclaimed: list[tuple[int, str]] = []
    current: tuple[str, str] | None = None
    for number, line in block.lines:
        heads = list(HEAD.finditer(line))
        claimed: list[tuple[int, int]] = []
        for head in heads:
            current = (head.group(1), head.group(2))
            citations.append(Citation(*current, head.group(3) or "", block.file, number))
            claimed.append(head.span())
        for match in REPO_PATH.finditer(line):
            if not any(start <= match.start() < end for start, end in claimed) and not _is_generated(
                match.group(1)
            ):
                repo_paths.append((number, match.group(1), match.group(2)))
        for match in UPSTREAM_PATH.finditer(line):
            path = match.group(1)
            if any(start <= match.start() < end for start, end in claimed):
                continue
            if _is_repo_tail(path, tracked):
                repo_paths.append((number, path, None))
                continue
            if "<" in path or _is_local(path) or _in_repo(path, tracked):
                continue
            # the head before it on this line, or the last one in the block
            before = [head for head in heads if head.end() <= match.start()]
            owner = (before[-1].group(1), before[-1].group(2)) if before else current
            if owner is None:
                unclaimed.append((number, path))
            else:
                citations.append(Citation(*owner, path, block.file, number))
    return Reading(citations, repo_paths, unclaimed)


def readings() -> Iterator[Reading]:
    files = tracked_files()
    tracked = set(files)
    for name in scanned(files):
        for block in blocks(name):
            yield read(block, tracked)


def main() -> None:
    argparse.ArgumentParser(description=__doc__).parse_args()
    print("repo\tref\tpath\tcited at")
    for reading in readings():
        for c in reading.citations:
            print(f"{c.repo}\t{c.ref}\t{c.path}\t{c.file}:{c.line}")


if __name__ == "__main__":
    main()
