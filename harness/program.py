"""Runs the real `__main__.py` under Pulumi's mocks and records everything it declares.

This is Pulumi's own unit-testing mode (`pulumi.runtime.set_mocks`): the program runs
unchanged, with a stack's config, and every resource registration reaches a mock
monitor instead of the engine. The monitor here also keeps what the stock one drops:
parents, dependencies and which inputs are secret.
"""

from __future__ import annotations

import json
import runpy
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from google.protobuf import json_format
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

from components import config
from components.config import StackConfig

PROJECT_DIR = Path(__file__).resolve().parent.parent
MAIN = PROJECT_DIR / "__main__.py"

# Signatures Pulumi's wire format uses for secrets and resource references.
_SIG = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_RESOURCE_SIG = "5cf8f73096256a8f31e491e813e4eb8e"
# What an unknown value is on the wire (pulumi/pulumi@v3.272.0 sdk/python/lib/pulumi/runtime/rpc.py
# UNKNOWN).
UNKNOWN = rpc.UNKNOWN

# Resource types that are Pulumi machinery rather than Kubernetes objects.
_NOT_OBJECTS = ("kubernetes:helm.sh/", "kubernetes:yaml/", "pulumi:providers:")


@dataclass(frozen=True)
class Declared:
    """One resource the program registered, as the engine would have received it."""

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any]
    secret_paths: frozenset[str]
    parent: str
    dependencies: tuple[str, ...]
    provider: str
    # What the engine (here: the mocks) answered, e.g. a generated password's result.
    outputs: dict[str, Any]
    # The URNs this resource was known by before (its `pulumi.Alias`es, resolved).
    aliases: tuple[str, ...] = ()
    # Resource options the engine acts on when a change comes: replace (first deleting) when
    # one of these input paths changes.
    replace_on_changes: tuple[str, ...] = ()
    delete_before_replace: bool = False

    def is_secret(self, path: str) -> bool:
        """Whether the input at `path` (e.g. "stringData.HF_TOKEN") reaches the engine as a secret."""
        return any(path == p or path.startswith((f"{p}.", f"{p}[")) for p in self.secret_paths)

    @property
    def is_k8s_object(self) -> bool:
        return self.custom and self.type.startswith("kubernetes:") and not self.type.startswith(_NOT_OBJECTS)

    @property
    def kind(self) -> str:
        return str(self.inputs.get("kind", ""))

    @property
    def object_name(self) -> str:
        return str(self.inputs.get("metadata", {}).get("name", ""))

    @property
    def namespace(self) -> str:
        return str(self.inputs.get("metadata", {}).get("namespace", ""))

    def __str__(self) -> str:
        if self.is_k8s_object:
            where = f"{self.namespace}/" if self.namespace else ""
            return f"{self.kind} {where}{self.object_name} ({self.name})"
        return f"{self.type} {self.name}"


@dataclass
class Evaluation:
    """What one run of the program declared, and what it exported or raised."""

    stack: str
    resources: list[Declared]
    outputs: dict[str, Any] = field(default_factory=dict)
    secret_outputs: frozenset[str] = frozenset()
    error: BaseException | None = None
    # URN of each component -> the names of the outputs it registered.
    registered: dict[str, frozenset[str]] = field(default_factory=dict)

    def by_urn(self, urn: str) -> Declared | None:
        """The resource with this URN; None for the stack itself, which is not recorded."""
        return next((r for r in self.resources if r.urn == urn), None)

    def of_type(self, type_: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type_]

    def objects(self, kind: str | None = None) -> list[Declared]:
        """The Kubernetes objects declared, optionally of one kind."""
        return [r for r in self.resources if r.is_k8s_object and (kind is None or r.kind == kind)]

    def one(self, kind: str, name: str, namespace: str | None = None) -> Declared:
        found = [
            r
            for r in self.objects(kind)
            if r.object_name == name and (namespace is None or r.namespace == namespace)
        ]
        if len(found) != 1:
            raise LookupError(f"{self.stack}: expected one {kind} '{name}', found {len(found)}")
        return found[0]

    def releases(self) -> list[Declared]:
        return self.of_type("kubernetes:helm.sh/v3:Release")

    def release(self, name: str) -> Declared:
        found = [r for r in self.releases() if r.inputs.get("name") == name]
        if len(found) != 1:
            raise LookupError(f"{self.stack}: expected one Helm release '{name}', found {len(found)}")
        return found[0]

    def ancestors(self, resource: Declared) -> Iterator[Declared]:
        parent = self.by_urn(resource.parent)
        while parent is not None:
            yield parent
            parent = self.by_urn(parent.parent)

    def waits_for(self, resource: Declared, other: Declared) -> bool:
        """True when `resource` is created only after `other`, through declared dependencies.

        Follows dependency edges (and a resource's provider) transitively; a dependency on a
        component counts as one on everything inside it (that is how the engine orders them).
        """
        targets = {other.urn} | {a.urn for a in self.ancestors(other)}
        seen: set[str] = set()
        stack = [*resource.dependencies, *provider_urn(resource)]
        while stack:
            urn = stack.pop()
            if urn in targets:
                return True
            if urn in seen:
                continue
            seen.add(urn)
            found = self.by_urn(urn)
            if found is not None:
                stack.extend([*found.dependencies, *provider_urn(found)])
            stack.extend(r.urn for r in self.resources if r.parent == urn)
        return False


def provider_urn(resource: Declared) -> list[str]:
    """The URN of the explicit provider a resource uses ("<urn>::<id>" on the wire)."""
    return [resource.provider.rsplit("::", 1)[0]] if resource.provider else []


class _Mocks(mocks.Mocks):
    """Answers like the engine would after a successful create: outputs echo inputs.

    In a preview (`preview=True`) a create has not happened: what the provider computes is
    unknown, and the SDK carries that into every input built from it (e.g. a Secret's
    `stringData` from a generated password). Computed in a create preview: a Helm release's
    `status` and `resourceNames` (pulumi/pulumi-kubernetes@v4.34.2 provider/pkg/provider/helm_release.go
    `checkpointRelease`, isPreview), a random resource's `result`.
    """

    def __init__(self, preview: bool = False) -> None:
        self.preview = preview

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        outputs = dict(args.inputs)
        if args.typ == "kubernetes:helm.sh/v3:Release":
            outputs["status"] = {
                "name": args.inputs.get("name", args.name),
                "namespace": args.inputs.get("namespace", ""),
                "status": "deployed",
                "version": args.inputs.get("version", ""),
            }
            if self.preview:
                outputs["status"] = outputs["resourceNames"] = UNKNOWN
        elif args.typ.startswith("random:index/random"):
            length = int(args.inputs.get("length", 32))
            outputs["result"] = UNKNOWN if self.preview else (f"mock-{args.name}-" * length)[:length]
        return ("" if self.preview else f"{args.name}-id"), outputs

    def call(self, args: mocks.MockCallArgs) -> tuple[dict[str, Any], None]:
        return {}, None


class _RecordingMonitor(mocks.MockMonitor):
    def __init__(self, mock: _Mocks):
        super().__init__(mock)
        self.preview = mock.preview
        self.declared: list[Declared] = []
        self.registered: dict[str, frozenset[str]] = {}

    def RegisterResourceOutputs(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        self.registered[request.urn] = frozenset(json_format.MessageToDict(request.outputs))
        return super().RegisterResourceOutputs(request)

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - gRPC method name
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            wire = json_format.MessageToDict(request.object)
            secrets: set[str] = set()
            inputs = _plain(wire, "", secrets)
            self.declared.append(
                Declared(
                    urn=response.urn,
                    type=request.type,
                    name=request.name,
                    custom=bool(request.custom),
                    inputs=inputs,
                    secret_paths=frozenset(secrets),
                    parent=request.parent,
                    dependencies=tuple(request.dependencies),
                    provider=request.provider,
                    outputs=self._outputs(response.urn, inputs),
                    aliases=tuple(_alias_urn(self, request, alias) for alias in request.aliases),
                    replace_on_changes=tuple(request.replaceOnChanges),
                    delete_before_replace=bool(request.deleteBeforeReplace),
                )
            )
        return response

    def _outputs(self, urn: str, inputs: dict[str, Any]) -> dict[str, Any]:
        """What the engine holds as the resource's outputs. In a preview, a Kubernetes object's
        are its inputs, unknowns kept (pulumi/pulumi-kubernetes@v4.34.2 provider/pkg/provider/provider.go
        `Create`: a preview whose
        inputs hold unknowns, of a kind not yet served, or of a patch returns the inputs as they
        came); the mocks' stand for the rest."""
        state = _plain(dict(self.resources[urn].state), "", set())
        return {**state, **inputs} if self.preview else state


def _alias_urn(monitor: mocks.MockMonitor, request: Any, alias: Any) -> str:
    """The URN an alias names. The SDK sends a spec when the monitor supports them
    (pulumi/pulumi@v3.272.0 sdk/python/lib/pulumi/runtime/resource.py `create_alias_spec`; an
    `Alias(parent=<resource>)` goes as that resource's URN, `parentUrn`). A spec keeps whatever it
    leaves unset: the resource's name, type, parent, stack and project (sdk/python/lib/pulumi/
    resource.py `Alias`), and names the URN a resource of that parent, type and name would have
    (`collapse_alias_to_urn` -> `create_urn`), as the engine resolves it
    (pkg/resource/deploy/step_generator.go `collapseAliasToUrn`). Here the monitor makes that URN
    as it made every other (sdk/python/lib/pulumi/runtime/mocks.py `make_urn`), so an alias names
    a URN of the snapshots. pulumi-kubernetes sets only `type` (its API-version aliases); this
    program `name`, or `parent` (components/access/realm.py, whose resources were Keycloak's
    children). URN: `urn:pulumi:<stack>::<project>::<parent types $ type>::<name>`."""
    if alias.urn:
        return str(alias.urn)
    spec = alias.spec
    if spec.stack or spec.project or spec.noParent:
        raise NotImplementedError(f"{request.name}: the harness resolves a name, type or parent, not {spec}")
    parent = spec.parentUrn or request.parent
    return monitor.make_urn(parent, spec.type or request.type, spec.name or request.name)


def _plain(value: Any, path: str, secrets: set[str]) -> Any:
    """Wire value -> plain Python, noting where secrets were."""
    if isinstance(value, dict):
        if value.get(_SIG) == _SECRET_SIG:
            secrets.add(path)
            return _plain(value.get("value"), path, secrets)
        if value.get(_SIG) == _RESOURCE_SIG:
            return value.get("urn", "")
        return {k: _plain(v, f"{path}.{k}" if path else k, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v, f"{path}[{i}]", secrets) for i, v in enumerate(value)]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def stack_names() -> list[str]:
    """Every stack the project defines, from its `Pulumi.<stack>.yaml` files."""
    return sorted(p.name[len("Pulumi.") : -len(".yaml")] for p in PROJECT_DIR.glob("Pulumi.*.yaml"))


def stack_config(stack: str) -> dict[str, Any]:
    """The config the CLI would hand the program: project config, then the stack's file."""
    project = yaml.safe_load((PROJECT_DIR / "Pulumi.yaml").read_text())
    merged = {key: spec["value"] for key, spec in (project.get("config") or {}).items() if "value" in spec}
    stack_file = yaml.safe_load((PROJECT_DIR / f"Pulumi.{stack}.yaml").read_text()) or {}
    merged.update(stack_file.get("config") or {})
    return merged


def typed_config(stack: str, raw: Mapping[str, Any] | None = None) -> StackConfig:
    """The stack's file (or `raw`, a variant of it) as the program reads it, defaults included."""
    return config.load(stack, _wire_config(stack_config(stack) if raw is None else raw))


def _wire_config(config: Mapping[str, Any]) -> dict[str, str]:
    """Structured values travel as JSON text, scalars as their text, as the CLI sends them."""
    wire = {}
    for key, value in config.items():
        if isinstance(value, dict | list):
            wire[key] = json.dumps(value)
        elif isinstance(value, bool):
            wire[key] = "true" if value else "false"
        else:
            wire[key] = str(value)
    return wire


def evaluate(
    stack: str,
    config: Mapping[str, Any] | None = None,
    secrets: Mapping[str, str] | None = None,
    preview: bool = False,
    main: Callable[[], None] | None = None,
) -> Evaluation:
    """Runs the program for `stack` with its file's config (or `config`) and records it.

    `secrets` are extra config values passed as Pulumi secrets, as `pulumi config set
    --secret` would. `preview`: as the first preview of a new stack sees it, with what
    only a create computes still unknown (`UNKNOWN` in inputs and outputs). `main`: another
    program in place of `__main__.py`, run the same way (the bench's floor, harness/bench.py).
    """
    config = stack_config(stack) if config is None else config
    wire = _wire_config(config) | dict(secrets or {})
    mock = _Mocks(preview)
    monitor = _RecordingMonitor(mock)
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mock, project="maas-platform", stack=stack, preview=preview, monitor=monitor)
    pulumi.runtime.set_all_config(wire, list(secrets or {}))
    error: BaseException | None = None

    def program() -> None:
        if main is not None:
            main()
        else:
            runpy.run_path(str(MAIN), run_name="__main__")

    try:
        _sync_await(run_pulumi_func(program))
    except Exception as exc:  # noqa: BLE001 - the caller asserts on the error
        error = exc
    root = settings.get_root_resource()
    outputs: dict[str, Any] = {}
    secret_outputs: set[str] = set()
    if error is None and isinstance(root, pulumi.runtime.stack.Stack):
        for key, value in root.outputs.items():
            out = pulumi.Output.from_input(value)
            outputs[key] = _sync_await(out.future())
            if _sync_await(out.is_secret()):
                secret_outputs.add(key)
    # The stack, and through its outputs the resources they came from, stays this context's
    # root until the next run sets another: that run (the bench's floor) would free it on its clock.
    settings.ROOT.set(None)
    return Evaluation(stack, monitor.declared, outputs, frozenset(secret_outputs), error, monitor.registered)
