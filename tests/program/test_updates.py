"""What a config change costs on a running platform: no object the program declares goes away
for the seconds between a delete and a create when only its content changes."""

from __future__ import annotations

import re

from harness.program import Declared, Evaluation, provider_urn
from tests.support import k8s_diff
from tests.support.configs import evaluate_variant

# A name that ends in a digest of the content (components/flavour/helm.py env_config_map).
_VERSIONED = re.compile(r"-[0-9a-f]{10}$")
OPERATOR = "kuadrant-operator-controller-manager"


def _provider(stack: Evaluation, resource: Declared) -> dict[str, object]:
    """The settings of the provider that manages `resource` (none: the default provider's)."""
    found = [stack.by_urn(urn) for urn in provider_urn(resource)]
    return found[0].inputs if found and found[0] is not None else {}


def test_configmaps_and_secrets_change_in_place_or_under_a_new_name(stack: Evaluation) -> None:
    """A ConfigMap or Secret that the provider would replace on a data change is immutable and
    named by its content, so a change creates the new one before the old one goes."""
    deleted_first = [
        str(declared)
        for declared in stack.objects("ConfigMap") + stack.objects("Secret")
        if k8s_diff.replaced_on_data_change(declared.inputs, _provider(stack, declared))
        and not (
            declared.inputs.get("immutable") is True and re.search(r"-[0-9a-f]{10}$", declared.object_name)
        )
    ]
    assert deleted_first == []


def test_new_failure_modes_make_a_new_configmap_that_the_operator_rolls_onto() -> None:
    """Closed, the operator's patch names a content-named ConfigMap that a change replaces
    under a new name; open (the operator's defaults) declares neither, and deleting the patch
    hands envFrom back (pulumi-kubernetes ssa.Relinquish), so the operator restarts on its
    defaults (docs/upgrades.md)."""

    def operator_env(stack: Evaluation) -> str | None:
        patches = [r for r in stack.objects("Deployment") if r.object_name == OPERATOR]
        if not patches:
            return None
        (container,) = patches[0].inputs["spec"]["template"]["spec"]["containers"]
        return str(container["envFrom"][0]["configMapRef"]["name"])

    open_ = evaluate_variant("dev", {"maas:limitador": {"failureMode": "open"}})
    closed = evaluate_variant("dev", {"maas:limitador": {"failureMode": "closed"}})
    assert operator_env(open_) is None
    name = operator_env(closed)
    assert name is not None
    assert _VERSIONED.search(name)
    made = closed.one("ConfigMap", name)
    assert k8s_diff.replaced_on_data_change(made.inputs, _provider(closed, made))
    assert made.inputs["immutable"] is True
