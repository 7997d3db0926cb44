"""Tier policies on the inference gateway: who may call, and how much."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.access import tiers
from components.access.tiers import BudgetCap
from components.config import ModelConfig, TierConfig
from components.names import GATEWAY_NAME, KEY_SERVICE
from components.serving.model_list import POLICY_ROUTE

# Kuadrant reports a policy Enforced once the gateway's data plane applies it.
WAIT_ENFORCED = {"pulumi.com/waitFor": "condition=Enforced"}
# The TelemetryPolicy that labels Limitador's counters (components/metering/observability.py).
TELEMETRY_POLICY = f"{GATEWAY_NAME}-telemetry"
# Policy kinds that decide who may call or what a request counts, by API group and resource:
# Kuadrant's, and the extensions that write such policies themselves (PlanPolicy limits,
# OIDCPolicy an AuthPolicy; Kuadrant/kuadrant-operator@v1.5.2 config/crd/bases).
PINNED_RESOURCES = (
    ("kuadrant.io", ("authpolicies", "ratelimitpolicies", "tokenratelimitpolicies")),
    ("extensions.kuadrant.io", ("telemetrypolicies", "planpolicies", "oidcpolicies")),
)


def policy_name(kind: str) -> str:
    return f"{GATEWAY_NAME}-{kind.lower()}"


def pinned_names() -> list[str]:
    """`<Kind>/<name>` of the only such policies the models' namespace may hold: ours."""
    kinds = ("AuthPolicy", "RateLimitPolicy", "TokenRateLimitPolicy")
    return [
        *(f"{kind}/{policy_name(kind)}" for kind in kinds),
        f"TelemetryPolicy/{TELEMETRY_POLICY}",
        # The key service's, on its own route (components/access/self_service.py): who calls it,
        # and how often.
        f"AuthPolicy/{KEY_SERVICE}",
        f"RateLimitPolicy/{KEY_SERVICE}",
    ]


def pinned_expression() -> str:
    """CEL of the admission policy (Kubernetes' ValidatingAdmissionPolicy): a create or update
    of a policy kind above passes only for one of ours."""
    allowed = ", ".join(f"'{n}'" for n in pinned_names())
    return f"(object.kind + '/' + object.metadata.name) in [{allowed}]"


@dataclass(frozen=True, kw_only=True)
class TierPoliciesArgs:
    tiers: Sequence[TierConfig]
    namespace: pulumi.Input[str]
    api_keys: bool
    # Where Authorino reads the realm's signing keys; None: no tokens, API keys only.
    oidc_keys: str | None
    # The catalog: models that restrict their tiers get a rule each, models with their own
    # quota in a tier a limit each.
    models: Sequence[ModelConfig] = ()
    # The money budgets a request limit holds exactly (tiers.budget_caps).
    caps: Sequence[BudgetCap] = ()
    # Kuadrant (its operator serves the policy CRDs), the gateway they target, and what
    # must exist before they can be enforced (the routes, the identity provider).
    after: Sequence[pulumi.Resource] = ()


class TierPolicies(pulumi.ComponentResource):
    """AuthPolicy, RateLimitPolicy and TokenRateLimitPolicy, from the tier table.

    Attached to the route of every host's metered paths (components/serving/model_list.py
    POLICY_ROUTE), they cover every request for a metered path on any host of the gateway,
    including hosts and routes added later. Counters are per user and model (tiers.MODEL): a
    user's limits apply to each model separately; a budget cap counts per user, across models.
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:access:TierPolicies"

    def __init__(self, name: str, args: TierPoliciesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        auth = self._policy(
            f"{name}-auth",
            "kuadrant.io/v1",
            "AuthPolicy",
            tiers.auth_spec(args.tiers, POLICY_ROUTE, args.api_keys, args.oidc_keys, args.models),
            args,
        )
        requests = self._policy(
            f"{name}-requests",
            "kuadrant.io/v1",
            "RateLimitPolicy",
            tiers.rate_limit_spec(args.tiers, POLICY_ROUTE, args.models, args.caps),
            args,
        )
        tokens = self._policy(
            f"{name}-tokens",
            "kuadrant.io/v1alpha1",
            "TokenRateLimitPolicy",
            tiers.token_limit_spec(args.tiers, POLICY_ROUTE, args.models),
            args,
        )
        pinned = self._pin(name, args)
        self.register_outputs({"auth": auth, "requests": requests, "tokens": tokens, "pinned": pinned})

    def _pin(
        self, name: str, args: TierPoliciesArgs
    ) -> k8s.admissionregistration.v1.ValidatingAdmissionPolicy:
        """No other Kuadrant policy in the models' namespace: one on a model's route would take
        that host's requests from the tier rules (the wasm-shim applies the nearest host's
        sets only), and neither `defaults` nor `overrides` on our route reaches another route
        (docs/architecture.md "Who may change the tier rules"). Refused at admission, so a
        grant to create policies there does not extend to replacing ours."""
        policy = k8s.admissionregistration.v1.ValidatingAdmissionPolicy(
            f"{name}-pinned",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{GATEWAY_NAME}-tier-policies-pinned"),
            spec=k8s.admissionregistration.v1.ValidatingAdmissionPolicySpecArgs(
                failure_policy="Fail",
                match_constraints=k8s.admissionregistration.v1.MatchResourcesArgs(
                    resource_rules=[
                        k8s.admissionregistration.v1.NamedRuleWithOperationsArgs(
                            api_groups=[group],
                            api_versions=["*"],
                            operations=["CREATE", "UPDATE"],
                            resources=list(resources),
                        )
                        for group, resources in PINNED_RESOURCES
                    ]
                ),
                validations=[
                    k8s.admissionregistration.v1.ValidationArgs(
                        expression=pinned_expression(),
                        message=(
                            "Only the platform's tier policies may exist in the models' namespace: "
                            "another would replace the tier rules for the routes it targets. Fix: "
                            "change the tier rules in the stack's config (maas:tiers, maas:models)."
                        ),
                    )
                ],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        k8s.admissionregistration.v1.ValidatingAdmissionPolicyBinding(
            f"{name}-pinned-binding",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=f"{GATEWAY_NAME}-tier-policies-pinned"),
            spec=k8s.admissionregistration.v1.ValidatingAdmissionPolicyBindingSpecArgs(
                policy_name=policy.metadata.name,
                validation_actions=["Deny"],
                match_resources=k8s.admissionregistration.v1.MatchResourcesArgs(
                    namespace_selector=k8s.meta.v1.LabelSelectorArgs(
                        match_labels={"kubernetes.io/metadata.name": args.namespace}
                    )
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        return policy

    def _policy(
        self, name: str, api_version: str, kind: str, spec: dict[str, Any], args: TierPoliciesArgs
    ) -> k8s.apiextensions.CustomResource:
        return k8s.apiextensions.CustomResource(
            name,
            api_version=api_version,
            kind=kind,
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=policy_name(kind), namespace=args.namespace, annotations=WAIT_ENFORCED
            ),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
        )


@dataclass(frozen=True, kw_only=True)
class TierPrioritiesArgs:
    tiers: Sequence[TierConfig]
    # The models an endpoint picker schedules (maas:models[].scheduling: pool).
    pooled: Sequence[ModelConfig]
    namespace: pulumi.Input[str]
    # The pools the objectives name (and the CRDs they need).
    after: Sequence[pulumi.Resource] = ()


class TierPriorities(pulumi.ComponentResource):
    """One InferenceObjective per pooled model and tier, in tier order: the priority the
    model's endpoint picker gives the tier's requests (components/access/tiers.py objectives).
    The AuthPolicy names each request's objective from the validated tier."""

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:access:TierPriorities"

    def __init__(self, name: str, args: TierPrioritiesArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        objectives = [
            k8s.apiextensions.CustomResource(
                f"{name}-{objective}",
                # llm-d-router's group, which its picker prefers (llm-d/llm-d-router@v0.10.0
                # pkg/epp/server/controller_config.go); the Inference Extension's x-k8s.io one left
                # in v1.6.0.
                api_version="llm-d.ai/v1alpha2",
                kind="InferenceObjective",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=objective, namespace=args.namespace),
                spec=spec,
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
            )
            for model in args.pooled
            for objective, spec in tiers.objectives(model.name, args.tiers).items()
        ]
        self.register_outputs({"objectives": objectives})
