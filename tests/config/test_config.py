"""A bad stack config stops before any resource is declared, saying what and where."""

from __future__ import annotations

from typing import Any

import pytest

from components.config import ConfigError
from tests.support.configs import REMOVE, assert_refused, evaluate_variant

BAD_INPUTS: dict[str, tuple[dict[str, Any], str]] = {
    "unknown key": (
        {"maas:domian": "maas.local"},
        "maas:domian: unknown key; did you mean 'domain'?",
    ),
    "unknown nested key": (
        {"maas:cluster": {"context": "kind-maas", "kubconfig": "/tmp/k"}},
        "maas:cluster.kubconfig: unknown key; did you mean 'kubeconfig'?",
    ),
    "wrong type": (
        {"maas:cluster": {"context": 5}},
        "maas:cluster.context: Input should be a valid string (got 5)",
    ),
    "missing required value": (
        {"maas:cluster": REMOVE},
        "maas:cluster: required but not set",
    ),
    "invalid name": (
        {"maas:namespaces": {"models": "LLM_models"}},
        "maas:namespaces.models: 'LLM_models' is not a DNS-1123 label",
    ),
    "invalid domain": (
        {"maas:domain": "maas_local"},
        "maas:domain: 'maas_local' is not a DNS name",
    ),
    "duplicate entry": (
        {"maas:namespaces": {"models": "kserve"}},
        "both use namespace 'kserve'",
    ),
    "key in the project's namespace": (
        {"maas-platform:domain": "maas.local"},
        "maas-platform:domain: this program reads the 'maas' namespace; rename the key to maas:domain",
    ),
    "flavour that does not exist": (
        {"maas:flavour": "rancher"},
        "maas:flavour: Input should be 'kubernetes' or 'openshift' (got \"rancher\")",
    ),
    "OpenShift settings on plain Kubernetes": (
        {"maas:openshift": {"approval": "Manual"}},
        "maas:openshift: read only with maas:flavour openshift; remove it",
    ),
    "a Prometheus setting user-workload monitoring keeps": (
        {"maas:flavour": "openshift", "maas:observability": {"retention": "30d"}},
        "maas:observability.retention: user-workload monitoring keeps its own Prometheus",
    ),
    "a gateway Service type where Routes expose it": (
        {"maas:flavour": "openshift", "maas:gateway": {"serviceType": "LoadBalancer"}},
        "maas:gateway.serviceType: OpenShift exposes the gateway through Routes",
    ),
    "cert-manager elsewhere than the OpenShift operator puts it": (
        {"maas:flavour": "openshift", "maas:namespaces": {"certManager": "certs"}},
        "maas:namespaces.certManager: the cert-manager Operator for Red Hat OpenShift runs cert-manager in "
        "'cert-manager'",
    ),
    "autoscaling on OpenShift": (
        {
            "maas:flavour": "openshift",
            "maas:models": [
                {"name": "sim", "host": "sim", "runtime": "simulator", "autoscaling": {"maxReplicas": 3}}
            ],
        },
        "maas:models[0].autoscaling: not on OpenShift yet",
    ),
    "an unknown Kuadrant source": (
        {"maas:flavour": "openshift", "maas:openshift": {"kuadrant": "upstream"}},
        "maas:openshift.kuadrant: Input should be 'community' or 'rhcl'",
    ),
    "failure mode that does not exist": (
        {"maas:limitador": {"failureMode": "ajar"}},
        "maas:limitador.failureMode: Input should be 'open' or 'closed'",
    ),
    "model on the shared host": (
        {"maas:gateway": {"apiHost": "simulator"}},
        "].host: 'simulator' is maas:gateway.apiHost, the shared host of every model; give the model",
    ),
    "shared host not a DNS label": (
        {"maas:gateway": {"apiHost": "API"}},
        "maas:gateway.apiHost: 'API' is not a DNS-1123 label",
    ),
    "two models answering to one name": (
        {
            "maas:models": [
                {"name": "a", "host": "a", "runtime": "simulator", "servedModelName": "same"},
                {"name": "b", "host": "b", "runtime": "simulator", "servedModelName": "same"},
            ]
        },
        "maas:models: models[0] and models[1] have the same servedModelName 'same'",
    ),
    "served by a model not in the catalog": (
        {"maas:models": [{"name": "a", "host": "a", "runtime": "simulator", "servedBy": "b"}]},
        "maas:models[0].servedBy: 'b' is not another model of maas:models",
    ),
    "served by a pooled model": (
        {
            "maas:models": [
                {"name": "a", "host": "a", "runtime": "simulator", "scheduling": "pool"},
                {"name": "b", "host": "b", "runtime": "simulator", "servedBy": "a"},
            ]
        },
        "maas:models[1].servedBy: 'a' must be a simulator with a server of its own, scheduled by service",
    ),
    "served by another, with a server's settings": (
        {
            "maas:models": [
                {"name": "a", "host": "a", "runtime": "simulator"},
                {"name": "b", "host": "b", "runtime": "simulator", "servedBy": "a", "replicas": 2},
            ]
        },
        "a model served by 'a' runs no server of its own: remove replicas",
    ),
    "default provider allowed": (
        {"pulumi:disable-default-providers": REMOVE},
        "pulumi:disable-default-providers: must list 'kubernetes'",
    ),
}


@pytest.mark.parametrize("case", BAD_INPUTS, ids=list(BAD_INPUTS))
@pytest.mark.parametrize("stack_name", ["dev", "gpu"])
def test_bad_input_stops_with_its_message_and_declares_nothing(stack_name: str, case: str) -> None:
    changes, expected = BAD_INPUTS[case]
    message = assert_refused(stack_name, changes, expected)
    assert f"stack '{stack_name}'" in message
    assert f"Pulumi.{stack_name}.yaml" in message


def test_every_problem_gets_its_own_line() -> None:
    changes: dict[str, Any] = {
        "maas:domian": "x",
        "maas:cluster": {"context": 5},
        "maas:namespaces": {"models": "Bad"},
    }
    result = evaluate_variant("dev", changes)
    assert isinstance(result.error, ConfigError)
    assert len(result.error.problems) == 3
    assert "has 3 configuration problems" in str(result.error)


def test_a_number_where_a_name_belongs_is_refused_with_a_hint() -> None:
    """Strict types: nothing is coerced, and the message says how to write a string."""
    result = evaluate_variant("dev", {"maas:namespaces": {"models": 5}})
    assert isinstance(result.error, ConfigError)
    assert "quote values" in str(result.error)


def test_an_unknown_key_in_a_list_entry_names_the_entry_and_the_closest_key() -> None:
    """In a file of 2,000 users a position alone is hard to find: the entry's name is given too."""
    users: list[dict[str, Any]] = [{"name": f"user{i}", "tier": "free"} for i in range(1413)]
    users[1412] = {"name": "alice", "teir": "free"}
    message = assert_refused("dev", {"maas:users": users}, "maas:users[1412] (name: alice).teir: unknown key")
    assert "maas:users[1412] (name: alice).teir: unknown key; did you mean 'tier'?" in message
    assert "accepted keys here: name, tier, keyVersion" in message


def test_an_unknown_key_in_a_model_entry_gets_a_did_you_mean() -> None:
    models = [{"name": "m", "host": "m", "runtime": "simulator", "servedModelName": "m", "replcas": 2}]
    expected = "maas:models[0] (name: m).replcas: unknown key; did you mean 'replicas'?"
    assert_refused("dev", {"maas:models": models}, expected)


@pytest.mark.parametrize("users", [[], REMOVE])
def test_no_users_without_oidc_is_refused_with_the_reason_and_the_fix(users: Any) -> None:
    expected = "maas:users: no users and maas:auth.oidc.enabled is false"
    message = assert_refused("dev", {"maas:users": users}, expected)
    assert "nobody could get a key or a token to call a model" in message
    assert "list at least one user" in message


def test_no_users_with_oidc_is_accepted() -> None:
    result = evaluate_variant("dev", {"maas:users": [], "maas:auth": {"oidc": {"enabled": True}}})
    assert result.error is None, result.error


def test_an_empty_users_line_says_so() -> None:
    """`maas:users:` with nothing under it (YAML null) is named as such, not 'valid array (got "None")'."""
    message = assert_refused("dev", {"maas:users": None}, "maas:users: the key is there but holds nothing")
    assert "valid array" not in message
