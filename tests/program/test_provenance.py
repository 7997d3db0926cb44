"""Prose as provenance: the paths that comments, docstrings and docs cite are checked.

A path in this repo exists (and defines the name cited after `::` or `:`); an upstream file
is cited as `owner/repo@ref path` (harness/citations.py), so `make citations` lists it.
"""

from __future__ import annotations

import ast
import fnmatch
import re
from functools import cache

import pytest

from harness import citations
from harness.citations import Block, read

FILES = citations.tracked_files()
TRACKED = set(FILES)
# Upstream files cited before the form was fixed; each goes when its comment names its
# repo@ref. A new one fails, and so does an entry whose citation has been rewritten.
PENDING = citations.PROJECT_DIR / "tests" / "program" / "citations_pending.txt"


def _matches(path: str) -> list[str]:
    pattern = re.sub(r"<[^>]*>", "*", path)
    return [
        name
        for name in FILES
        if fnmatch.fnmatch(name, pattern)
        or fnmatch.fnmatch(name, "*/" + pattern)
        or name.startswith(pattern + "/")
    ]


@cache
def _defined(name: str) -> frozenset[str]:
    """The names a file defines: a Python file's functions, classes and assignments; any
    other file's words."""
    text = (citations.PROJECT_DIR / name).read_text()
    if not name.endswith(".py"):
        return frozenset(re.findall(r"\w+", text))
    names: set[str] = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(t.id for t in targets if isinstance(t, ast.Name))
    return frozenset(names)


def _problems(block: Block) -> list[str]:
    problems = []
    for line, path, name in read(block, TRACKED).repo_paths:
        found = _matches(path)
        where = f"{block.file}:{line}"
        if not found:
            problems.append(f"{where}: {path} does not exist")
        elif name is not None and not name.isdigit():
            last = name.split("::")[-1]
            if not any(last in _defined(f) for f in found if (citations.PROJECT_DIR / f).is_file()):
                problems.append(f"{where}: {path} does not define {last}")
    return problems


def test_cited_repo_paths_exist() -> None:
    problems = [p for name in citations.scanned(FILES) for b in citations.blocks(name) for p in _problems(b)]
    assert not problems, "\n".join(problems)


def _unclaimed() -> set[str]:
    return {
        f"{name}\t{path}"
        for name in citations.scanned(FILES)
        if not name.endswith(".md")
        for block in citations.blocks(name)
        for _, path in read(block, TRACKED).unclaimed
    }


def test_upstream_citations_name_repo_and_ref() -> None:
    pending = set(PENDING.read_text().splitlines())
    unclaimed = _unclaimed()
    assert not unclaimed - pending, "cite as owner/repo@ref path:\n" + "\n".join(sorted(unclaimed - pending))
    assert not pending - unclaimed, f"now cited in form, drop from {PENDING.name}:\n" + "\n".join(
        sorted(pending - unclaimed)
    )


def test_an_old_form_citation_names_a_known_repo_without_ref() -> None:
    """A known upstream repo named before a path, without @ref, is not the form."""
    block = Block("x.py", ((1, " (kuadrant-operator v1.5.2 internal/kuadrant/kuadrant.go)"),))
    assert read(block, TRACKED).unclaimed == [(1, "internal/kuadrant/kuadrant.go")]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (" see components/serving/nowhere.py", "components/serving/nowhere.py does not exist"),
        (" tests/program/test_layers.py::test_nothing_here", "does not define test_nothing_here"),
        (" (serving/nowhere.py)", "serving/nowhere.py does not exist"),
    ],
)
def test_a_bad_repo_path_fails(text: str, problem: str) -> None:
    assert any(problem in p for p in _problems(Block("x.py", ((1, text),))))


def test_an_upstream_path_is_not_a_repo_path() -> None:
    block = Block("x.py", ((1, " (kubernetes-sigs/kind@v0.33.0 docs/nothing/here.md, pkg/x.go)"),))
    reading = read(block, TRACKED)
    assert reading.repo_paths == []
    assert [c.path for c in reading.citations] == ["docs/nothing/here.md", "pkg/x.go"]
