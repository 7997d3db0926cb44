"""One component contract, checked on every `maas:*` component (issue "Layout for growth").

- `Name(name, Args, opts)`, with Args a frozen dataclass built by keyword;
- every public attribute is declared on the class and registered as an output;
- an argument used only for ordering is called `after`;
- every child is named `<component>-…` and is parented to its component.

The source rules are read from the classes and their code; the naming and parenting
rules from what the real program declares for every stack (harness/program.py).
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import textwrap
from types import ModuleType

import pulumi
import pytest

import components
from harness.program import Evaluation


def _modules() -> list[ModuleType]:
    return [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(components.__path__, "components.")
        if not info.ispkg
    ]


COMPONENTS = sorted(
    {
        cls
        for module in _modules()
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, pulumi.ComponentResource) and cls.__module__ == module.__name__
    },
    key=lambda cls: cls.__name__,
)
BY_TYPE = {cls.TYPE: cls for cls in COMPONENTS}  # type: ignore[attr-defined]
_ids = [cls.__name__ for cls in COMPONENTS]


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def _class_tree(cls: type) -> ast.ClassDef:
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    found = tree.body[0]
    assert isinstance(found, ast.ClassDef)
    return found


def _public_annotations(cls: type) -> set[str]:
    names = inspect.get_annotations(cls)
    return {name for name in names if not name.startswith("_") and name != "TYPE"}


def _args_class(cls: type) -> type:
    """The class named by `__init__`'s `args` annotation (a string, under postponed annotations)."""
    annotation = inspect.signature(vars(cls)["__init__"]).parameters["args"].annotation
    found = getattr(inspect.getmodule(cls), annotation) if isinstance(annotation, str) else annotation
    assert isinstance(found, type), f"{cls.__name__}: args annotated {annotation!r}"
    return found


def test_the_components_are_found() -> None:
    assert len(COMPONENTS) >= 14, [c.__name__ for c in COMPONENTS]


@pytest.mark.parametrize("cls", COMPONENTS, ids=_ids)
def test_a_component_is_name_args_opts_with_a_maas_type(cls: type) -> None:
    assert getattr(cls, "TYPE", "").startswith("maas:"), f"{cls.__name__}: no TYPE ClassVar 'maas:…'"
    parameters = list(inspect.signature(vars(cls)["__init__"]).parameters)
    assert parameters == ["self", "name", "args", "opts"], f"{cls.__name__}{parameters}"


@pytest.mark.parametrize("cls", COMPONENTS, ids=_ids)
def test_its_args_are_frozen_and_built_by_keyword(cls: type) -> None:
    args = _args_class(cls)
    assert dataclasses.is_dataclass(args), f"{args.__name__} is not a dataclass"
    assert args.__dataclass_params__.frozen, f"{args.__name__}: not frozen"  # type: ignore[attr-defined]
    positional = [f.name for f in dataclasses.fields(args) if not f.kw_only]
    assert not positional, f"{args.__name__}: {positional} can be given by position; use kw_only=True"


@pytest.mark.parametrize("cls", COMPONENTS, ids=_ids)
def test_every_public_attribute_is_declared_and_registered_as_an_output(cls: type) -> None:
    tree = _class_tree(cls)
    assigned = {
        target.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign | ast.AnnAssign)
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute)
        and isinstance(target.value, ast.Name)
        and target.value.id == "self"
        and not target.attr.startswith("_")
    }
    declared = _public_annotations(cls)
    assert assigned <= declared, (
        f"{cls.__name__}: public attributes without a class annotation: {assigned - declared}"
    )
    calls = [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "register_outputs"
    ]
    assert len(calls) == 1, f"{cls.__name__}: register_outputs called {len(calls)} times"
    outputs = calls[0].args[0]
    assert isinstance(outputs, ast.Dict), f"{cls.__name__}: register_outputs takes a dict literal"
    registered = {str(key.value) for key in outputs.keys if isinstance(key, ast.Constant)}
    missing = {_camel(name) for name in declared} - registered
    assert not missing, f"{cls.__name__}: public outputs not registered: {sorted(missing)}"


@pytest.mark.parametrize("cls", COMPONENTS, ids=_ids)
def test_an_argument_used_only_for_ordering_is_called_after(cls: type) -> None:
    """`args.x` that appears only in `depends_on=`/`after=` lists orders, and nothing else."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(inspect.getmodule(cls))))  # type: ignore[arg-type]
    ordering: dict[str, list[bool]] = {}
    parents: dict[ast.AST, ast.AST] = {}
    for node in ast.walk(tree):
        for child in ast.iter_child_nodes(node):
            parents[child] = node
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "args":
            up: ast.AST | None = node
            only_orders = False
            while up is not None:
                if isinstance(up, ast.keyword) and up.arg in {"depends_on", "after"}:
                    only_orders = True
                    break
                up = parents.get(up)
            ordering.setdefault(node.attr, []).append(only_orders)
    fields = {f.name for f in dataclasses.fields(_args_class(cls))}
    only_for_order = sorted(f for f in fields - {"after"} if ordering.get(f) and all(ordering[f]))
    assert not only_for_order, (
        f"{cls.__name__}: {only_for_order} only order resources: fold them into `after`"
    )


def _maas(stack: Evaluation) -> dict[str, object]:
    return {r.urn: r for r in stack.resources if r.type.startswith("maas:")}


def test_every_maas_type_declared_is_a_known_component(stack: Evaluation) -> None:
    unknown = {r.type for r in stack.resources if r.type.startswith("maas:")} - set(BY_TYPE)
    assert not unknown, f"{stack.stack}: {unknown}"


def test_components_sit_at_the_root_and_everything_else_inside_one(stack: Evaluation) -> None:
    components_ = _maas(stack)
    for resource in stack.resources:
        if resource.urn in components_:
            assert stack.by_urn(resource.parent) is None, f"{resource.urn}: a component nested in another"
        else:
            assert resource.parent in components_, f"{resource.urn}: not inside a maas:* component"


def test_every_child_is_named_after_its_component(stack: Evaluation) -> None:
    wrong = [
        f"{r.name} (in {parent.name})"
        for r in stack.resources
        if (parent := stack.by_urn(r.parent)) is not None and not r.name.startswith(f"{parent.name}-")
    ]
    assert not wrong, f"{stack.stack}: children not named '<component>-…': {wrong}"


def test_every_component_registers_its_outputs(stack: Evaluation) -> None:
    silent = [urn for urn in _maas(stack) if urn not in stack.registered]
    assert not silent, silent
