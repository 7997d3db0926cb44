"""The flavour seam: how the cluster kind installs and exposes things is one strategy object.

A later flavour (OpenShift) replaces the strategy; no layer branches on which one it got.
"""

from __future__ import annotations

import ast
import dataclasses

import pulumi
import pytest

from components.config import GatewayConfig
from components.flavour import choice
from components.flavour.helm import Chart
from components.flavour.protocol import Client, Flavour
from harness.program import PROJECT_DIR, evaluate, stack_names


@dataclasses.dataclass(frozen=True)
class Marked:
    """The stack's own flavour, leaving a mark on everything it decides."""

    inner: Flavour
    name: str = "marked"

    def install_chart(self, install: Chart, parent: pulumi.Resource) -> pulumi.Resource:
        marked = dataclasses.replace(install, values={**install.values, "markedBy": "flavour"})
        return self.inner.install_chart(marked, parent)

    def gateway_annotations(self, gateway: GatewayConfig) -> dict[str, str]:
        return {"marked-by": "flavour"}

    def reach(self, namespace: str, service: str, port: int, local_port: int) -> str:
        return f"marked {namespace}/{service}"

    def client(self, host: str, scheme: str, local_port: int) -> Client:
        # An http(s) URL: the realm's issuer is one too, and the page refuses any other.
        return Client(f"https://marked.{host}", "--marked ")

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


@pytest.mark.parametrize("stack", stack_names())
def test_every_install_and_exposure_goes_through_the_chosen_flavour(
    stack: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, make in list(choice.FLAVOURS.items()):
        monkeypatch.setitem(choice.FLAVOURS, key, lambda config, make=make: Marked(make(config)))
    result = evaluate(stack)
    assert result.error is None, result.error
    releases = result.releases()
    assert releases
    assert [r.name for r in releases if r.inputs["values"].get("markedBy") != "flavour"] == []
    gateway = result.one("Gateway", "inference-gateway")
    assert gateway.inputs["metadata"]["annotations"]["marked-by"] == "flavour"
    forwards = [v for k, v in result.outputs.items() if k.lower().endswith("portforward")]
    assert forwards
    assert [v for v in forwards if not v.startswith("marked ")] == []
    models = result.outputs["models"]
    assert [m["url"] for m in models.values() if not m["url"].startswith("https://marked.")] == []
    assert [m["curl"] for m in models.values() if "--marked " not in m["curl"]] == []
    assert result.outputs["apiUrl"].startswith("https://marked.")
    if "oidcIssuer" in result.outputs:
        # Browsers reach the realm the way they reach the gateway.
        assert result.outputs["oidcIssuer"].startswith("https://marked.")


def test_no_layer_asks_which_flavour_it_was_given() -> None:
    """Branching on the flavour's name inside a layer is what the strategy is there to avoid."""
    asking = []
    layers = ("platform", "serving", "access", "metering")
    for path in [p for layer in layers for p in (PROJECT_DIR / "components" / layer).glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Attribute)
                and node.attr == "name"
                and "flavour" in ast.unparse(node.value)
            ):
                asking.append(f"{path.relative_to(PROJECT_DIR)}:{node.lineno}")
            if isinstance(node, ast.Constant) and node.value in ("kubernetes", "openshift"):
                asking.append(f"{path.relative_to(PROJECT_DIR)}:{node.lineno} {node.value!r}")
    assert not asking, asking


def test_the_flavour_is_chosen_from_the_stack_config() -> None:
    from harness.program import typed_config

    chosen = {stack: choice.choose(typed_config(stack)).name for stack in stack_names()}
    assert chosen == {**dict.fromkeys(stack_names(), "kubernetes"), "ocp": "openshift"}
