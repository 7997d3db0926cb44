"""Who may change the tier rules: only the platform (docs/access.md "Tiers, keys and limits").

A Kuadrant policy on a model's route takes that host's requests from the tier rules, whether
ours are `defaults` or `overrides` (Kuadrant/kuadrant-operator@v1.5.2 internal/controller/
effective_auth_policies_reconciler.go merges policies along one topology path, gateway to
route rule, and a model's route is not on our route's path); the admission policy refuses any
such policy in the models' namespace but ours.
"""

from __future__ import annotations

import copy
from typing import Any

from components.access import policies as access_policies
from harness.program import Evaluation
from maas_policies import kuadrant_size
from tests.access.test_access import POLICY_KINDS
from tests.support import cel
from tests.support.policy_runner import added, violations

ROGUE: dict[str, Any] = {
    "apiVersion": "kuadrant.io/v1",
    "kind": "AuthPolicy",
    "metadata": {"name": "open-door"},
    "spec": {"rules": {"authentication": {"anyone": {"anonymous": {}}}}},
}


def _nearest(sets: list[dict[str, Any]], host: str) -> list[dict[str, Any]]:
    """The sets the wasm-shim chooses among for a request to `host`: the nearest host entry's,
    a wildcard included, and no other (Kuadrant/wasm-shim@v0.14.1 src/kuadrant/pipeline/factory.rs
    select_blueprint)."""
    labels = host.split(".")
    for name in [host, *("*." + ".".join(labels[i:]) for i in range(1, len(labels)))]:
        found = [s for s in sets if name in s["routeRuleConditions"]["hostnames"]]
        if found:
            return found
    return []


def _declared(stack: Evaluation) -> dict[str, Any]:
    objects = [r.inputs for r in stack.objects()]
    (gateway,) = [o for o in objects if o["kind"] == "Gateway"]
    routes = [o for o in objects if o["kind"] == "HTTPRoute"]
    found = {kind: [o for o in objects if o["kind"] == kind] for kind in POLICY_KINDS}
    return {"gateway": gateway, "routes": routes, "policies": found}


def _rogue_on(route: dict[str, Any]) -> dict[str, Any]:
    rogue = copy.deepcopy(ROGUE)
    rogue["metadata"]["namespace"] = route["metadata"]["namespace"]
    rogue["spec"]["targetRef"] = {
        "group": "gateway.networking.k8s.io",
        "kind": "HTTPRoute",
        "name": route["metadata"]["name"],
    }
    return rogue


def test_a_policy_on_a_models_route_takes_its_host_whether_ours_are_defaults_or_overrides(
    stack: Evaluation,
) -> None:
    """The misbehaviour the admission policy stops, modelled as the operator builds the
    gateway's sets and the wasm-shim picks one: the model's host gets the rogue set, with no
    limit; `overrides` on our route changes nothing."""
    declared = _declared(stack)
    model_route = next(r for r in declared["routes"] if r["spec"].get("hostnames"))
    host = model_route["spec"]["hostnames"][0]
    for block in ("defaults", "overrides"):
        policies = copy.deepcopy(declared["policies"])
        (ours,) = [
            p for p in policies["AuthPolicy"] if p["metadata"]["name"] == "inference-gateway-authpolicy"
        ]
        ours["spec"] = {"targetRef": ours["spec"]["targetRef"], block: {"rules": ours["spec"]["rules"]}}
        sets = _nearest(kuadrant_size.action_sets(declared["gateway"], declared["routes"], policies), host)
        assert any(a["service"] == "ratelimit-service" for s in sets for a in s["actions"]), block
        rogue = _rogue_on(model_route)
        policies["AuthPolicy"].append(rogue)
        sets = _nearest(kuadrant_size.action_sets(declared["gateway"], declared["routes"], policies), host)
        assert sets, block
        for action_set in sets:
            assert [a["service"] for a in action_set["actions"]] == ["auth-service"], block
            assert action_set["actions"][0]["sources"] == [
                f"authpolicy.kuadrant.io:{rogue['metadata']['namespace']}/open-door"
            ]


def _admits(stack: Evaluation, obj: dict[str, Any]) -> bool:
    """What the API server answers a create of `obj`: the bound admission policies whose
    namespace and resource rules match it, each validation's CEL on the object."""
    group, _, _ = obj["apiVersion"].rpartition("/")
    assert obj["kind"].endswith("Policy")
    resource = obj["kind"].lower().removesuffix("y") + "ies"
    for binding in stack.objects("ValidatingAdmissionPolicyBinding"):
        spec = binding.inputs["spec"]
        selector = spec["matchResources"]["namespaceSelector"]["matchLabels"]
        if selector != {"kubernetes.io/metadata.name": obj["metadata"]["namespace"]}:
            continue
        (policy,) = [
            p
            for p in stack.objects("ValidatingAdmissionPolicy")
            if p.inputs["metadata"]["name"] == spec["policyName"]
        ]
        rules = policy.inputs["spec"]["matchConstraints"]["resourceRules"]
        if not any(
            group in r["apiGroups"] and resource in r["resources"] and "CREATE" in r["operations"]
            for r in rules
        ):
            continue
        for validation in policy.inputs["spec"]["validations"]:
            if not cel.evaluate(validation["expression"], {"object": obj}):
                return False
    return True


def test_admission_refuses_any_other_policy_in_the_models_namespace(stack: Evaluation) -> None:
    declared = _declared(stack)
    model_route = next(r for r in declared["routes"] if r["spec"].get("hostnames"))
    assert not _admits(stack, _rogue_on(model_route))
    ours = [p for kind in POLICY_KINDS for p in declared["policies"][kind]]
    ours += [o.inputs for o in stack.objects("TelemetryPolicy")]
    assert ours
    for policy in ours:
        assert _admits(stack, policy), policy["metadata"]["name"]
        # another of the same kind beside it, and ours renamed
        renamed = copy.deepcopy(policy)
        renamed["metadata"]["name"] += "-2"
        assert not _admits(stack, renamed), renamed["metadata"]["name"]
    for kind, api in (
        ("PlanPolicy", "extensions.kuadrant.io/v1alpha1"),
        ("OIDCPolicy", "extensions.kuadrant.io/v1alpha1"),
    ):
        other = {
            "apiVersion": api,
            "kind": kind,
            "metadata": {"name": "x", "namespace": ours[0]["metadata"]["namespace"]},
        }
        assert not _admits(stack, other), kind


def test_the_pinned_names_are_the_declared_policies(stack_of: Any) -> None:
    """Every Kuadrant policy a stack with metering declares is one the admission policy lets
    through, so the platform's own updates pass."""
    stack = stack_of("gpu")
    declared = {
        f"{o.inputs['kind']}/{o.inputs['metadata']['name']}"
        for o in stack.objects()
        if o.inputs["apiVersion"].split("/")[0] in dict(access_policies.PINNED_RESOURCES)
        and o.inputs["kind"].endswith("Policy")
    }
    assert declared == set(access_policies.pinned_names())


def test_no_role_the_program_declares_may_write_policies_routes_or_the_gateway(stack: Evaluation) -> None:
    """The RBAC boundary: who may write these in the models' namespace may change the tier
    rules (update ours, or route traffic elsewhere); the program grants it to no one."""
    guarded = {g for g, _ in access_policies.PINNED_RESOURCES} | {
        "gateway.networking.k8s.io",
        "networking.istio.io",
    }
    writes = {"create", "update", "patch", "delete", "deletecollection", "*"}
    for kind in ("Role", "ClusterRole"):
        for role in stack.objects(kind):
            for rule in role.inputs.get("rules") or []:
                groups = set(rule.get("apiGroups") or [])
                if groups & (guarded | {"*"}):
                    assert not set(rule.get("verbs") or []) & writes, (role.inputs["metadata"]["name"], rule)


def test_the_pack_refuses_a_declared_policy_on_a_models_route(stack_of: Any) -> None:
    """Before admission, the pack: such a policy leaves the model's host uncovered by ours."""
    stack = stack_of("dev")
    declared = _declared(stack)
    model_route = next(r for r in declared["routes"] if r["spec"].get("hostnames"))
    rogue = _rogue_on(model_route)
    found = violations(stack, [*stack.resources, added(stack, "AuthPolicy", rogue)])
    refused = [v for v in found if v.policy == "routes-protected"]
    assert any(model_route["metadata"]["name"] in v.message and "Fix:" in v.message for v in refused), found
