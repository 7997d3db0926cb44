"""docs/guarantees.md, "Guarantees and their tests", maps every CHECKLIST.md guarantee to real tests.

The table has one row per ID of ../shared/CHECKLIST.md, in its order; each cell cites
tests as `path::function` (a top-level function of that file, offline tests outside
tests/e2e/, cluster tests inside it) or a step of .github/workflows/e2e.yml as
`.github/workflows/e2e.yml` step `name`, or says why no test can or does cover it.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from typing import Any

import pytest
import yaml

from harness.program import PROJECT_DIR
from tests.support.prerequisites import SHARED, skip_without_shared

CHECKLIST = SHARED / "CHECKLIST.md"
DOC = PROJECT_DIR / "docs" / "guarantees.md"
SECTION = "# Guarantees and their tests"
WORKFLOW = ".github/workflows/e2e.yml"
OFFLINE, CLUSTER = "offline", "cluster"

_ID = r"[A-Z]\d+"
_ROW = re.compile(rf"^\|\s*({_ID})\s*\|(.*)\|\s*$", re.MULTILINE)
_STEP = re.compile(rf"`{re.escape(WORKFLOW)}` step `([^`]+)`")
_TEST = re.compile(r"(tests/[\w/]+\.py)::(\w+)")


def checklist_ids(text: str) -> list[str]:
    """The IDs of the checklist's tables, in order: each row's first cell."""
    return re.findall(rf"^\|\s*({_ID})\s*\|", text, re.MULTILINE)


def guarantee_rows(text: str) -> list[tuple[str, str, str]]:
    """(id, offline cell, cluster cell) of each row of the page's table, in order: the rows
    between its title and the next heading."""
    found = re.search(rf"^{re.escape(SECTION)}\n", text, re.MULTILINE)
    assert found, f"{DOC.name} has no heading {SECTION!r}"
    section = re.split(r"^#{1,2} ", text[found.end() :], maxsplit=1, flags=re.MULTILINE)[0]
    rows = []
    for found in _ROW.finditer(section):
        cells = found.group(2).split("|")
        assert len(cells) == 2, f"row {found.group(1)}: {len(cells)} cells after the id, expected 2"
        rows.append((found.group(1), cells[0].strip(), cells[1].strip()))
    assert rows, f"{DOC.name}: no table rows under {SECTION!r}"
    return rows


def citations(cell: str) -> tuple[list[tuple[str, str]], list[str]]:
    """The tests (path, function) and workflow steps a cell cites. Any other quoted text
    is a citation that failed to parse, so it fails here rather than cite nothing."""
    steps = _STEP.findall(cell)
    rest = _STEP.sub("", cell)
    tests = []
    for quoted in re.findall(r"`([^`]*)`", rest):
        found = _TEST.fullmatch(quoted)
        assert found, f"`{quoted}` is neither path::test_function nor `{WORKFLOW}` step `name`"
        tests.append((found.group(1), found.group(2)))
    return tests, steps


@cache
def _functions(path: str) -> frozenset[str]:
    tree = ast.parse((PROJECT_DIR / path).read_text())
    return frozenset(
        node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    )


def _step_names() -> set[str]:
    workflow: dict[str, Any] = yaml.safe_load((PROJECT_DIR / WORKFLOW).read_text())
    return {str(step["name"]) for job in workflow["jobs"].values() for step in job["steps"] if "name" in step}


def _rows() -> list[tuple[str, str, str]]:
    return guarantee_rows(DOC.read_text())


def _cells() -> list[tuple[str, str, str]]:
    """(id, column, cell) of every cell of the table."""
    return [(i, column, cell) for i, off, on in _rows() for column, cell in ((OFFLINE, off), (CLUSTER, on))]


def test_the_table_has_every_checklist_id_in_its_order() -> None:
    if not CHECKLIST.is_file():
        # It lives outside this repository (../shared, like the CRD schemas), and GitHub's
        # ci.yml checks out this repository alone: skip there too, saying so.
        skip_without_shared(f"no {CHECKLIST}")
    expected = checklist_ids(CHECKLIST.read_text())
    assert expected, f"{CHECKLIST}: no IDs found in its tables"
    assert [row[0] for row in _rows()] == expected


def test_ids_are_unique() -> None:
    ids = [row[0] for row in _rows()]
    assert sorted({i for i in ids if ids.count(i) > 1}) == []


def test_every_cell_cites_a_test_or_says_why_none() -> None:
    empty = [f"{i} ({column})" for i, column, cell in _cells() if not re.sub(r"<br>|\s", "", cell)]
    assert empty == []


@pytest.mark.parametrize("column", [OFFLINE, CLUSTER])
def test_every_cited_test_exists_in_its_column(column: str) -> None:
    problems = []
    for i, _, cell in (c for c in _cells() if c[1] == column):
        for path, name in citations(cell)[0]:
            e2e = path.startswith("tests/e2e/")
            if e2e != (column == CLUSTER):
                problems.append(f"{i}: {path} is in the wrong column ({column})")
            if not (PROJECT_DIR / path).is_file():
                problems.append(f"{i}: no file {path}")
            elif not name.startswith("test_") or name not in _functions(path):
                problems.append(f"{i}: {path} defines no test function {name}")
    assert problems == []


def test_every_cited_workflow_step_exists() -> None:
    names = _step_names()
    problems = []
    for i, column, cell in _cells():
        for step in citations(cell)[1]:
            if column != CLUSTER:
                problems.append(f"{i}: the workflow step {step!r} runs on a cluster, not offline")
            if step not in names:
                problems.append(f"{i}: {WORKFLOW} has no step named {step!r}")
    assert problems == []


def test_the_parsers_read_what_they_are_given() -> None:
    """The checks above are only as good as these parsers: a small checklist and table."""
    checklist = "| id | x |\n|---|---|\n| A1 | a |\n| A10 | b |\n\n| L2 | c |\n"
    assert checklist_ids(checklist) == ["A1", "A10", "L2"]
    readme = (
        f"{SECTION}\n\n| id | offline | cluster |\n|---|---|---|\n"
        "| A1 | `tests/a/test_b.py::test_c`<br>`tests/d.py::test_e` (why) | "
        f"`{WORKFLOW}` step `Deploy ${{{{ matrix.stack }}}}` |\n"
        "| A2 | not built yet: issue 13 | not built yet: issue 13 |\n\n## Unverified\n| Z9 | x | y |\n"
    )
    rows = guarantee_rows(readme)
    assert [r[0] for r in rows] == ["A1", "A2"]
    assert citations(rows[0][1]) == ([("tests/a/test_b.py", "test_c"), ("tests/d.py", "test_e")], [])
    assert citations(rows[0][2]) == ([], ["Deploy ${{ matrix.stack }}"])
    assert citations(rows[1][1]) == ([], [])
    with pytest.raises(AssertionError, match="neither"):
        citations("`tests/a/test_b.py:test_c`")
