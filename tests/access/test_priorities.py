"""Tier priority on pooled models: one InferenceObjective per tier, in tier order, and the
objective each request carries is the one of its caller's validated tier, for API keys and
Keycloak tokens alike.

The objective is evaluated as Authorino would (cel-python), from the identity as each way in
normalises it (the AuthPolicy's `overrides`), and looked up among the objectives the stack
declares, as llm-d-router's picker looks it up (llm-d/llm-d-router@v0.10.0): by name
(pkg/epp/datastore), only those of its own pool
(pkg/epp/controller/inferenceobjective_reconciler.go), priority 0 when none
(pkg/epp/requestcontrol/director.go).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from components.access import tiers
from components.names import MODEL_HEADER
from components.pins import upstream
from harness.program import Evaluation, evaluate, stack_config, typed_config
from tests.support import cel
from tests.support.configs import evaluate_variant


def _objectives(stack: Evaluation) -> dict[str, dict[str, Any]]:
    return {o.object_name: o.inputs["spec"] for o in stack.objects("InferenceObjective")}


def _success_headers(stack: Evaluation) -> dict[str, Any]:
    policy = stack.one("AuthPolicy", "inference-gateway-authpolicy")
    headers: dict[str, Any] = policy.inputs["spec"]["rules"]["response"]["success"]["headers"]
    return headers


def _priority(
    stack: Evaluation,
    tier: str,
    served: str | None,
    client: dict[str, str] | None = None,
    path: str = "/v1/chat/completions",
) -> int | None:
    """The priority the picker of the model `served` gives a caller of `tier` (None: Authorino
    sets no objective: the request is not one a picker schedules)."""
    header = _success_headers(stack)[upstream.OBJECTIVE_HEADER]
    request = {
        "auth": {"identity": {"userid": "someone", "tier": tier}},
        "request": {
            "url_path": path,
            "headers": {**(client or {}), **({MODEL_HEADER: served} if served else {})},
        },
    }
    if not all(cel.evaluate(w["predicate"], request) for w in header["when"]):
        return None
    name = str(cel.evaluate(header["plain"]["expression"], request))
    cfg = typed_config(stack.stack)
    model = next(m for m in cfg.models if m.served_name == served)
    objective = _objectives(stack).get(name)
    assert objective is not None, f"{name}: no such objective"
    assert objective["poolRef"] == {
        "group": "inference.networking.k8s.io",
        "kind": "InferencePool",
        "name": model.name,
    }
    return int(objective["priority"])


def test_one_objective_per_pooled_model_and_tier_in_tier_order(stack: Evaluation) -> None:
    cfg = typed_config(stack.stack)
    pooled = [m for m in cfg.models if m.scheduling == "pool"]
    objectives = _objectives(stack)
    assert len(objectives) == len(pooled) * len(cfg.tiers)
    for model in pooled:
        order = [objectives[f"{model.name}.{t.name}"]["priority"] for t in cfg.tiers]
        assert order == sorted(set(order)), f"{model.name}: priorities {order} do not rise with the tiers"


def test_adding_a_tier_adds_its_objective_above_the_others() -> None:
    base = typed_config("dev")
    table = [t.model_dump(by_alias=True) for t in base.tiers]
    platinum = {
        "name": "platinum",
        "requests": {"limit": 500, "window": "2m"},
        "tokens": {"limit": 10**6, "window": "1m"},
    }
    result = evaluate_variant("dev", {"maas:tiers": [*table, platinum]})
    assert result.error is None, result.error
    objectives = _objectives(result)
    assert objectives["simulator.platinum"]["priority"] > max(
        objectives[f"simulator.{t.name}"]["priority"] for t in base.tiers
    )


@pytest.mark.parametrize("way_in", ["api-keys", "keycloak"])
def test_the_priority_comes_from_the_validated_tier_for_api_keys_and_oidc(stack_of: Any, way_in: str) -> None:
    """gpu takes both: the apiKey rule that selected a key Secret (by its tier label) and a
    token's groups give the tier (the AuthPolicy's overrides), and the tier alone gives the
    priority on the pooled Qwen3."""
    stack = stack_of("gpu")
    policy = stack.one("AuthPolicy", "inference-gateway-authpolicy")
    methods = policy.inputs["spec"]["rules"]["authentication"]
    served = next(m.served_name for m in typed_config("gpu").models if m.scheduling == "pool")
    ranks = []
    for tier in ("premium", "enterprise"):
        if way_in == "keycloak":
            override = methods[way_in]["overrides"]["tier"]["expression"]
            identity = {"preferred_username": "u", "groups": ["free", tier]}
            validated = str(cel.evaluate(override, {"auth": {"identity": identity}}))
        else:
            validated = methods[tiers.api_key_rule_name(tier)]["overrides"]["tier"]["value"]
        assert validated == tier
        ranks.append(_priority(stack, validated, served))
    premium, enterprise = ranks
    assert premium is not None
    assert enterprise is not None
    assert premium < enterprise


def test_a_client_header_cannot_choose_the_objective(stack_of: Any) -> None:
    """Whatever priority header a client sends (the gateway removes them first anyway,
    tests/serving/test_request_body.py), the objective is its tier's."""
    stack = stack_of("dev")
    forged = {name: "simulator.enterprise" for name in upstream.ENDPOINT_PICKER_HEADERS}
    assert _priority(stack, "free", "simulator-model", forged) == _priority(stack, "free", "simulator-model")
    assert _priority(stack, "free", "simulator-model") == 0
    # The fairness flow is the authenticated user, whatever the client says.
    fairness = _success_headers(stack)[upstream.FAIRNESS_HEADER]["plain"]["expression"]
    assert cel.evaluate(fairness, {"auth": {"identity": {"userid": "bob", "tier": "free"}}}) == "bob"


def test_only_inference_requests_for_pooled_models_carry_an_objective(stack_of: Any) -> None:
    """Not a request for an unpooled model, nor a model list: the shared host's (no model
    header) or a pooled model's own (its host sets the header; the route keeps that path on
    the Service, tests/serving/test_models.py)."""
    stack = stack_of("dev")
    assert _priority(stack, "premium", "simulator-large-model") is None
    assert _priority(stack, "premium", None, path="/v1/models") is None
    assert _priority(stack, "premium", "simulator-model", path="/v1/models") is None
    for path in ("/v1/chat/completions", "/v1/completions", "/v1/embeddings"):
        assert _priority(stack, "premium", "simulator-model", path=path) == 1


def test_stacks_without_pooled_models_set_no_scheduling_header(stack_of: Any) -> None:
    stack = stack_of("dev-oidc")
    assert set(_success_headers(stack)) == {"x-maas-tier"}
    assert stack.objects("InferenceObjective") == []


def test_objective_names_never_collide_across_models_and_tiers() -> None:
    """Model `a` with tier `b-free` and model `a-b` with tier `free` would share `a-b-free`."""
    base = typed_config("dev")
    table = [t.model_dump(by_alias=True) for t in base.tiers[:1]]
    b_free = {**table[0], "name": "b-free"}
    models = [
        {"name": name, "host": name, "runtime": "simulator", "scheduling": "pool"} for name in ("a", "a-b")
    ]
    users = [{"name": "alice", "tier": "b-free"}]
    variant = {"maas:tiers": [*table, b_free], "maas:models": models, "maas:users": users, "maas:prices": {}}
    result = evaluate("dev", {**stack_config("dev"), **variant})
    assert result.error is None, result.error
    names = [o.object_name for o in result.objects("InferenceObjective")]
    assert len(names) == len(set(names)) == 4


def test_the_docs_name_objectives_as_the_code_does() -> None:
    """docs/models.md "Scheduling and tier priority" shows the objective header's value; it is
    objective_name's."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "models.md").read_text()
    (shown,) = re.findall(rf"`{upstream.OBJECTIVE_HEADER}: ([^`]+)`", text)
    assert shown == tiers.objective_name("<model>", "<tier>")
