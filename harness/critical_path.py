"""Time to the first authorized 200, estimated offline: `python -m harness.critical_path [STACK]`.

`make deploy-dev` times the first 200 from the start of the deploy (scripts/deploy.sh,
scripts/first-answer.sh): the kind cluster, the preview, then `pulumi up`, which ends when
its last resource is ready, then the first call. Pulumi creates a resource once every
resource it depends on is ready (harness/program.py records the edges), so `pulumi up`
lasts as long as the longest chain of the dependency graph, each resource weighed by how
long the engine waits for it. The weights below are ESTIMATES for GitHub's ubuntu-24.04
runner (4 vCPU, images pulled cold), not measurements: each says what the wait is made of
and which upstream file makes it a wait. docs/delivery.md and docs/architecture.md
"Time to the first authorized 200" give the reasoning; tests/program/test_critical_path.py holds the chain
to the resources the serving path needs.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from harness.program import Declared, Evaluation, evaluate, provider_urn

# Before `pulumi up` creates anything, and after it ends (seconds, estimates).
PRELUDE: dict[str, tuple[int, str]] = {
    "kind cluster": (
        45,
        "kind create cluster --wait 120s: node image already in the runner's Docker cache after "
        "the first pull, control plane Ready (kind v0.31 quick-start: 30-60 s)",
    ),
    "virtualenvs": (20, "pip install of requirements.txt and the pack's, from the pip cache"),
    "preview": (30, "pulumi up's preview with the policy pack (one evaluation, the analyzer)"),
}
EPILOGUE: dict[str, tuple[int, str]] = {
    "first answer": (3, "port-forward to the gateway Service, one curl (scripts/first-answer.sh)"),
}


@dataclass(frozen=True)
class Weight:
    seconds: int
    why: str


# What the engine waits for, per Pulumi name (dev's). A Helm release waits for its workloads
# (pulumi/pulumi-kubernetes@v4.34.2 provider/pkg/provider/helm_release.go: `wait` unless skipAwait) and runs
# its hooks; a custom resource with pulumi.com/waitFor waits for that condition; a Deployment for its rollout.
WEIGHTS: dict[str, Weight] = {
    "cert-manager-release": Weight(
        60,
        "3 Deployments pulled (controller, webhook, cainjector) then the startupapicheck "
        "post-install hook Job, which waits for the webhook (cert-manager v1.21.1 "
        "deploy/charts/cert-manager/templates/startupapicheck-job.yaml)",
    ),
    "istio-base": Weight(5, "CRDs and a webhook configuration only, no workload"),
    "istio-istiod": Weight(35, "istiod's pilot image (~80 MB) pulled and Ready"),
    "kserve-crd": Weight(5, "CRDs only"),
    "kserve-resources": Weight(
        45, "the KServe controller pulled; its webhook certificate issued by cert-manager"
    ),
    "monitoring-operator-crds": Weight(5, "CRDs only"),
    "monitoring-release": Weight(
        120,
        "Prometheus operator, Prometheus, Grafana and kube-state-metrics pulled and Ready, "
        "the admission-webhook patch Jobs first (kube-prometheus-stack templates/"
        "prometheus-operator/admission-webhooks/job-patch)",
    ),
    "kuadrant-operator": Weight(
        45,
        "four operators pulled and Ready: kuadrant, authorino-, limitador- and dns-operator "
        "(kuadrant-operator v1.5.2 charts/kuadrant-operator/templates/manifests.yaml)",
    ),
    "kuadrant-instance": Weight(
        45,
        "Ready once Authorino and Limitador run: the operator creates both CRs, their "
        "operators their Deployments, two images pulled (kuadrant-operator v1.5.2 "
        "internal/controller/kuadrant_status_updater.go)",
    ),
    "inference-gateway-gateway": Weight(
        25, "Programmed once istiod deployed the gateway's Envoy (proxyv2 image pulled)"
    ),
    "model-simulator-isvc": Weight(40, "the simulator image pulled, the predictor Ready"),
    "model-simulator-large-isvc": Weight(40, "the simulator image pulled, the predictor Ready"),
    "model-simulator-picker-deployment": Weight(30, "the endpoint picker image pulled, Ready"),
    "model-list-server": Weight(10, "a small image pulled, Ready"),
    "tier-policies-auth": Weight(15, "Enforced: the AuthConfig reconciled by Authorino"),
    "tier-policies-requests": Weight(15, "Enforced: limits written to Limitador, wasm config"),
    "tier-policies-tokens": Weight(15, "Enforced: limits written to Limitador, wasm config"),
}
# A patch of what an operator or chart already runs: a rollout the engine or what follows waits
# for. Where one stands after an install, a value at install time would have avoided it.
PATCH_WEIGHTS: dict[str, Weight] = {
    "kubernetes:apps/v1:DeploymentPatch": Weight(
        30,
        "a patch of a running Deployment's pod template: a rollout the engine awaits; for an "
        "operator, the new pod also waits for the old one's leader lease (controller-runtime "
        "leader election, 15 s lease) before it reconciles",
    ),
    "kubernetes:limitador.kuadrant.io/v1alpha1:LimitadorPatch": Weight(
        20,
        "a Limitador spec patched after Kuadrant created it: its telemetry is an argument of "
        "the Deployment (limitador-operator v0.18.0-dev01 pkg/limitador/deployment_options.go), "
        "so a rollout; "
        "a RateLimitPolicy is Enforced only once Limitador is Ready again (kuadrant-operator "
        "v1.5.2 internal/controller/ratelimit_policy_status_updater.go)",
    ),
}
# Any other object: created, nothing awaited beyond the API call.
CREATED = Weight(1, "an API call; nothing to wait for")


def weight(resource: Declared) -> Weight:
    if not resource.custom or resource.type.startswith("pulumi:providers:"):
        return Weight(0, "not a cluster object")
    return WEIGHTS.get(resource.name) or PATCH_WEIGHTS.get(resource.type, CREATED)


@dataclass(frozen=True)
class Estimate:
    stack: str
    # The longest chain, first to last, each with when it is ready (seconds into `pulumi up`).
    chain: tuple[tuple[Declared, int], ...]
    # When each resource is ready, by URN.
    ready: dict[str, int]

    @property
    def up_seconds(self) -> int:
        return self.chain[-1][1] if self.chain else 0

    @property
    def total_seconds(self) -> int:
        extra = sum(s for s, _ in PRELUDE.values()) + sum(s for s, _ in EPILOGUE.values())
        return self.up_seconds + extra


def estimate(stack: Evaluation) -> Estimate:
    """Each resource ready at the latest of its dependencies plus its own weight; the chain
    that ends last."""
    by_urn = {r.urn: r for r in stack.resources}
    ready: dict[str, int] = {}
    before: dict[str, str | None] = {}

    def finish(urn: str) -> int:
        if urn not in ready:
            resource = by_urn[urn]
            deps = [d for d in (*resource.dependencies, *provider_urn(resource)) if d in by_urn]
            last = max(deps, key=finish, default=None)
            before[urn] = last
            ready[urn] = (finish(last) if last else 0) + weight(resource).seconds
        return ready[urn]

    end = max(by_urn, key=finish)
    chain: list[tuple[Declared, int]] = []
    urn: str | None = end
    while urn is not None:
        if weight(by_urn[urn]).seconds:
            chain.append((by_urn[urn], ready[urn]))
        urn = before[urn]
    return Estimate(stack.stack, tuple(reversed(chain)), ready)


def report(found: Estimate) -> str:
    lines = [f"Stack {found.stack}: estimated time to the first authorized 200 (estimates, not measured)"]
    for label, (seconds, why) in PRELUDE.items():
        lines.append(f"  {'+' + str(seconds):>5} s  {label}: {why}")
    lines.append("  pulumi up, its longest chain:")
    for resource, at in found.chain:
        w = weight(resource)
        lines.append(f"  {'+' + str(w.seconds):>5} s  {resource.name} (ready at {at} s): {w.why}")
    for label, (seconds, why) in EPILOGUE.items():
        lines.append(f"  {'+' + str(seconds):>5} s  {label}: {why}")
    total = found.total_seconds
    lines.append(
        f"  = {total} s ({total / 60:.1f} min) from the start of the deploy; pulumi up {found.up_seconds} s"
    )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("stack", nargs="?", default="dev")
    args = parser.parse_args()
    result = evaluate(args.stack)
    if result.error is not None:
        raise SystemExit(f"{args.stack}: {result.error}")
    print(report(estimate(result)))


if __name__ == "__main__":
    main()
