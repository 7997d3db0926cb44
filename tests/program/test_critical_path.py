"""Time to the first authorized 200 on dev: the longest chain of `pulumi up` (harness/critical_path.py,
estimated weights) holds only waits the serving path needs, and the estimate stays under the
five minutes README promises for GitHub's runner."""

from __future__ import annotations

from collections.abc import Callable

from harness import critical_path
from harness.program import Evaluation
from tests.support.configs import evaluate_variant

# What the first authorized 200 needs, and why each is a real dependency. Anything else on the
# longest chain (an operator restarted for settings a value at install would give, a redeploy,
# a whole monitoring release, Grafana, dashboards) is a wait the first answer should not have.
SERVING = {
    "cert-manager-release": "its webhook answers the Kuadrant operator's and KServe's certificates",
    "istio-base": "Gateway API and Istio CRDs",
    "istio-istiod": "programs the gateway",
    "kuadrant-operator": "Authorino's and Limitador's operators; the wasm config",
    "kuadrant-instance": "Authorino and Limitador running",
    # A patch, kept: Kuadrant's CRD takes no Limitador settings (Kuadrant/kuadrant-operator@v1.5.2
    # api/v1beta1/kuadrant_types.go KuadrantSpec), and the ways to give them before it creates Limitador
    # fail a deployed stack's upgrade or its teardown (docs/architecture.md).
    "kuadrant-limitador": "Limitador's settings (telemetry for metering, replicas, storage)",
    "tier-policies-auth": "keys checked",
    "tier-policies-requests": "request limits enforced",
    "tier-policies-tokens": "token limits enforced",
    "inference-gateway-gateway": "the gateway",
    "model-simulator-isvc": "the model answering",
    "model-simulator-picker-deployment": "the pool's picker",
}


def _off_the_serving_path(found: critical_path.Estimate) -> list[str]:
    """Members the first 200 does not need."""
    return [
        str(resource)
        for resource, _ in found.chain
        if resource.name not in SERVING and resource.kind != "Namespace"
    ]


def test_devs_longest_chain_holds_only_what_the_serving_path_needs(
    stack_of: Callable[[str], Evaluation],
) -> None:
    """dev's failure modes are kuadrant-operator v1.5.2's defaults: no patch restarts the
    operator between its install and the Kuadrant instance."""
    assert _off_the_serving_path(critical_path.estimate(stack_of("dev"))) == []


def test_the_chain_sees_an_operator_restart() -> None:
    """Not blind: where the failure modes differ from the defaults (Limitador closed), the
    operator's patch and its restart are on the chain, and lengthen it."""
    closed = critical_path.estimate(evaluate_variant("dev", {"maas:limitador": {"failureMode": "closed"}}))
    assert "kuadrant-failure-modes" in [r.name for r, _ in closed.chain]
    assert _off_the_serving_path(closed)


def test_devs_estimate_is_under_five_minutes(stack_of: Callable[[str], Evaluation]) -> None:
    found = critical_path.estimate(stack_of("dev"))
    assert found.total_seconds < 300, critical_path.report(found)


def test_the_monitoring_release_is_off_the_chain_but_timed(stack_of: Callable[[str], Evaluation]) -> None:
    """The whole monitoring release ends before the serving path does: the first answer, which
    comes after `pulumi up` ends, does not wait for it (only its CRDs are on the path)."""
    dev = stack_of("dev")
    found = critical_path.estimate(dev)
    (monitoring,) = [r for r in dev.releases() if r.name == "monitoring-release"]
    assert found.ready[monitoring.urn] < found.up_seconds
