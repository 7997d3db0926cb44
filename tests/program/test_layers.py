"""The import graph reads like the layer table: no cycles, and no layer imports one above it.

Ranks, lowest first: pins and the fixed names, config, the cluster's shared ground (access,
network, security, storage), the flavours and their install mechanisms, the third-party
platform layers, serving, access, metering, then the usage command and `__main__.py`. A
module may import its own group and any group below.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from harness.program import PROJECT_DIR

RANKS = {
    "components.pins": 0,
    "components.names": 0,
    "components.config": 1,
    "components.cluster": 2,
    "components.flavour": 3,
    "components.platform": 4,
    "components.serving": 5,
    "components.access": 6,
    "components.metering": 7,
    "commands": 8,
    "__main__": 9,
}
# Compilers turn config into plain data (policy specs, rules, dashboards): no resources.
PURE = (
    "components.pins",
    "components.names",
    "components.config",
    "components.access.tiers",
    "components.metering.chargeback",
    "components.metering.dashboards",
)
RESOURCE_SDKS = ("pulumi_kubernetes", "pulumi_random")
# The platform's layers install third-party software: a tier or a user among them would put
# identity in a second place beside components/access/ (issue 28). What names one: the
# config's types, the stack config's fields, and the access group.
NO_IDENTITY = ("components.platform", "components.cluster", "components.flavour")
IDENTITY_TYPES = {"TierConfig", "UserConfig"}
IDENTITY_FIELDS = {"tiers", "users", "tier_names"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PROJECT_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources() -> dict[str, Path]:
    files = [
        *PROJECT_DIR.glob("components/**/*.py"),
        *PROJECT_DIR.glob("commands/**/*.py"),
        PROJECT_DIR / "__main__.py",
    ]
    return {_module_name(path): path for path in files}


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            # `from components.access import tiers` imports the module components.access.tiers
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def _graph() -> dict[str, set[str]]:
    sources = _sources()
    return {name: {i for i in _imports(path) if i in sources and i != name} for name, path in sources.items()}


def _rank(module: str) -> int:
    group = max((g for g in RANKS if module == g or module.startswith(f"{g}.")), key=len)
    return RANKS[group]


def test_every_module_belongs_to_a_ranked_group() -> None:
    unranked = [
        m for m in _sources() if m != "components" and not any(m == g or m.startswith(f"{g}.") for g in RANKS)
    ]
    assert not unranked, f"give these a group in the layer table: {unranked}"


def test_no_layer_imports_a_higher_one() -> None:
    upward = sorted(
        f"{module} (rank {_rank(module)}) imports {target} (rank {_rank(target)})"
        for module, targets in _graph().items()
        if module != "components"
        for target in targets
        if target != "components" and _rank(target) > _rank(module)
    )
    assert not upward, "\n".join(upward)


def test_there_is_no_import_cycle() -> None:
    graph = _graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        if module in path:
            raise AssertionError("import cycle: " + " -> ".join([*path[path.index(module) :], module]))
        if module in done:
            return
        for target in sorted(graph.get(module, ())):
            visit(target, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])


def test_the_compilers_declare_no_resources() -> None:
    sources = _sources()
    impure = sorted(
        f"{module} imports {imported}"
        for module, path in sources.items()
        if module.startswith(PURE)
        for imported in _imports(path)
        if imported.startswith(RESOURCE_SDKS)
    )
    assert not impure, impure


def _identity(path: Path) -> Iterator[str]:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in IDENTITY_TYPES:
            yield f"line {node.lineno}: {node.id}"
        elif isinstance(node, ast.Attribute) and node.attr in IDENTITY_TYPES | IDENTITY_FIELDS:
            yield f"line {node.lineno}: .{node.attr}"
        elif isinstance(node, ast.alias) and node.name in IDENTITY_TYPES:
            yield f"imports {node.name}"
    yield from (f"imports {i}" for i in _imports(path) if i.startswith("components.access"))


def test_the_platform_knows_no_tier_and_no_user() -> None:
    """No import, annotation or parameter of a tier or user type, no `cfg.tiers`/`cfg.users`."""
    found = sorted(
        f"{module}: {what}"
        for module, path in _sources().items()
        if module.startswith(NO_IDENTITY)
        for what in _identity(path)
    )
    assert not found, "tiers and users belong to components/access/:\n" + "\n".join(found)
