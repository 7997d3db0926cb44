"""Each end-to-end scenario passes on a platform that behaves and fails on one that does
what the scenario is there to catch (the fake gateway of tests/suite/fake.py).

A scenario that passed on a misbehaving fake could not fail on a cluster either: this
is where such tests become visible. Each runs on the config of every kind stack (the
stacks e2e.yml deploys), skipping where the scenario says the stack lacks what it needs,
as it would on the cluster; one that no kind stack runs fails, as CI would prove it nowhere.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable

import pytest

from components.config import AutoscalingConfig, Rate, StackConfig
from components.config.types import window_seconds
from components.serving import gateway as gw
from harness.program import typed_config
from tests.e2e import scenarios
from tests.e2e.platform import Platform
from tests.suite.fake import FakePlatform, Faults, fake_platform
from tests.support.configs import kind_stacks

# The fake keeps each stack's tiers, with windows short enough to wait for offline: a
# limit's shortest window becomes WINDOW_S, each longer one three times the one before.
WINDOW_S = 2
KIND_STACKS = kind_stacks()


def _short(rates: tuple[Rate, ...]) -> tuple[Rate, ...]:
    ordered = sorted(rates, key=lambda rate: window_seconds(rate.window))
    return tuple(Rate(limit=r.limit, window=f"{WINDOW_S * 3**i}s") for i, r in enumerate(ordered))


def _config(stack: str = "dev") -> StackConfig:
    config = typed_config(stack)
    tiers = tuple(
        tier.model_copy(update={"requests": _short(tier.requests), "tokens": _short(tier.tokens)})
        for tier in config.tiers
    )
    models = tuple(
        m.model_copy(
            update={
                "limits": {
                    tier: own.model_copy(
                        update={
                            kind: _short(getattr(own, kind))
                            for kind in ("requests", "tokens")
                            if getattr(own, kind)
                        }
                    )
                    for tier, own in m.limits.items()
                }
            }
        )
        for m in config.models
    )
    keys = config.key_service
    key_service = keys.model_copy(update={"mints": _short(keys.mints), "calls": _short(keys.calls)})
    return config.model_copy(update={"tiers": tiers, "models": models, "key_service": key_service})


Scenario = Callable[[Platform], None]
NAMESPACE = typed_config("dev").namespaces.models
SCENARIOS: dict[str, Scenario] = {
    "A4 answers with usage": scenarios.answers_with_usage,
    "A1 A2 A8 denied without a valid key": scenarios.denied_without_a_valid_key,
    "A3 unselected Secret": scenarios.unselected_secret_grants_nothing,
    "A18 OpenAI-shaped 401": scenarios.denied_without_a_valid_key,
    "A18 OpenAI-shaped 429": scenarios.limited_request_gets_an_openai_shaped_429,
    "A18 OpenAI-shaped 413": scenarios.an_oversized_body_gets_an_openai_shaped_413,
    "the configured body limit applies": scenarios.an_oversized_body_gets_an_openai_shaped_413,
    "A11 unconfigured tier": scenarios.unconfigured_tier_is_forbidden,
    "A5 A6 A7 keys follow Secrets": scenarios.keys_follow_their_secrets,
    "A5 no restart on key changes": scenarios.keys_follow_their_secrets,
    "A13 late route": scenarios.late_route_is_protected,
    "A13 late route never protected": scenarios.late_route_is_protected,
    "a catalog of 38 models in force": scenarios.a_large_catalog_is_in_force,
    "A10 OIDC tokens": scenarios.oidc_tokens_work_like_keys,
    "A10 expired token": scenarios.expired_token_is_refused,
    "A14 model outside the tier": scenarios.model_outside_the_tier_is_forbidden,
    "listing models is free": scenarios.listing_models_is_free,
    "shared host serves every model": scenarios.shared_host_serves_every_model,
    "A15 model list per tier": scenarios.shared_host_lists_each_tiers_models,
    "A16 unroutable requests": scenarios.shared_host_refuses_what_it_cannot_route,
    "A17 client routing headers": scenarios.client_routing_headers_change_nothing,
    "A17 client tier header": scenarios.client_routing_headers_change_nothing,
    "A15 model list needs a credential": scenarios.shared_host_lists_each_tiers_models,
    "one budget on both hosts": scenarios.budgets_span_both_hosts,
    "README's OpenAI SDK example": scenarios.openai_sdk_example,
    "L9 metering on the shared host": functools.partial(scenarios.metering_matches_traffic, shared=True),
    **{
        f"L1 request limit {t}": functools.partial(scenarios.request_limit, tier_name=t)
        for t in ("free", "premium")
    },
    "L3 users apart": scenarios.users_are_counted_apart,
    "L2 window": scenarios.window_resets,
    "L20 several windows": scenarios.longer_window_outlasts_a_shorter_one,
    "L21 a model's own quota": scenarios.a_models_own_quota_holds_apart,
    "L23 a budget's cap stops spending": scenarios.a_budget_stops_spending,
    "L23 a budget's cap spans models": scenarios.a_budget_stops_spending,
    **{
        f"L5 L6 L16 tokens, {m}": functools.partial(scenarios.token_limit, mode=m)
        for m in scenarios.STREAMING
    },
    "L10 counters survive a restart": scenarios.counters_survive_a_limitador_restart,
    "R5 in-memory counters reset on a restart": scenarios.counters_reset_on_a_limitador_restart_in_memory,
    **{
        f"L5 R2 token limit {t}": functools.partial(scenarios.token_limit, mode="not streamed", tier_name=t)
        for t in ("premium", "enterprise")
    },
    "L9 metering": scenarios.metering_matches_traffic,
    "a cut stream takes at most the tier's cap": scenarios.a_cut_stream_takes_at_most_the_tiers_cap,
    "a cut stream, max_tokens filled in": scenarios.a_cut_stream_takes_at_most_the_tiers_cap,
    "L15 Kuadrant ready": scenarios.kuadrant_reports_ready,
    "published paths": lambda p: scenarios.only_metered_endpoints_are_published(p, "/v1/responses"),
    "S5 isolation": lambda p: scenarios.models_only_through_the_gateway(p, NAMESPACE, gw.SERVICE_NAME),
    "S6 exposure": lambda p: scenarios.only_the_gateway_is_exposed(p, gw.SERVICE_NAME),
    "S11 zero trust": lambda p: scenarios.strangers_reach_only_the_front_door(p, NAMESPACE, gw.SERVICE_NAME),
    "S11 zero trust, the doors": lambda p: scenarios.strangers_reach_only_the_front_door(
        p, NAMESPACE, gw.SERVICE_NAME
    ),
    "S7 Pod Security": scenarios.pods_meet_their_pod_security_level,
    "S7 namespaces enforce Pod Security": scenarios.pods_meet_their_pod_security_level,
    "R6 failure modes": scenarios.failure_modes,
    "Keycloak day 2": scenarios.realm_follows_the_stack_file,
    "autoscaling on the queue": functools.partial(
        scenarios.model_scales_on_its_queue, burst_s=2.0, callers=4
    ),
    "autoscaling back down": functools.partial(scenarios.model_scales_on_its_queue, burst_s=2.0, callers=4),
    "R6 failure modes, Limitador closed": scenarios.failure_modes,
    "R12 a picker gone": scenarios.refusals_keep_their_status_while_a_picker_is_gone,
    "tier priority when saturated": scenarios.higher_tiers_are_served_first_when_saturated,
    "tier priority, client objective": scenarios.higher_tiers_are_served_first_when_saturated,
    # The fake's pool drains faster than kind's: a smaller burst, a shorter head start.
    "fairness within a tier when saturated": functools.partial(
        scenarios.one_users_burst_does_not_hold_back_another, burst=40, head_start_s=0.1
    ),
    # On the real key service behind the fake (tests/suite/fake_keys.py), where a stack runs one.
    "key service: a revoked key is refused": scenarios.a_revoked_key_is_refused,
    "key service: another user's key": scenarios.another_users_key_is_neither_listed_nor_revoked,
    "key service: usage agrees with the counters": scenarios.usage_agrees_with_the_counters,
    "key service: a key follows its user's tier": scenarios.a_key_follows_its_users_tier,
    "key service: minting is rate limited": scenarios.minting_is_rate_limited,
}

# scenario -> (the misbehaviour it targets, what its failure says)
MISBEHAVING: dict[str, tuple[Faults, str]] = {
    "A1 A2 A8 denied without a valid key": (Faults(leak_denied=True), "a denied request reached the model"),
    "A18 OpenAI-shaped 401": (Faults(plain_401=True), "no credentials"),
    "A18 OpenAI-shaped 429": (Faults(plain_429=True), "not OpenAI's error shape"),
    "A18 OpenAI-shaped 413": (Faults(plain_413=True), "not OpenAI's error shape"),
    "the configured body limit applies": (Faults(body_limit_unset=True), "refused as too large"),
    "A3 unselected Secret": (Faults(ignore_selector=True), "a Secret without our label granted access"),
    "A11 unconfigured tier": (Faults(tier_check=False), "403 for an unknown tier"),
    "A5 A6 A7 keys follow Secrets": (Faults(old_key_lingers=True), "the old value to stop"),
    "A13 late route": (Faults(no_policy_guard=True), "the late route answered without a key"),
    "a catalog of 38 models in force": (
        Faults(unwritten_after=37, no_policy_guard=True),
        "catalog-37 without a key: 200",
    ),
    "A14 model outside the tier": (Faults(model_tiers_ignored=True), "free on simulator-large: 200"),
    "listing models is free": (Faults(listing_billed=True), "listing models was limited"),
    "shared host serves every model": (Faults(body_ignored=True), "answered by another model"),
    "A15 model list per tier": (Faults(list_ignores_tier=True), "free's list"),
    "A16 unroutable requests": (Faults(unrouted_status=502), "unknown model: 502"),
    "A17 client routing headers": (Faults(routing_header_trusted=True), "a client header picked the model"),
    "A17 client tier header": (Faults(tier_header_trusted=True), "a client header changed the list"),
    "A15 model list needs a credential": (Faults(list_open=True), "answered without a credential"),
    "one budget on both hosts": (Faults(hosts_counted_apart=True), "the hosts keep separate budgets"),
    "README's OpenAI SDK example": (Faults(list_ignores_tier=True), "README's example listed"),
    "L9 metering on the shared host": (Faults(shared_host_unmetered=True), "requests metered"),
    "L1 request limit free": (Faults(deployed_limits={"free": 6}), r"free \(limit 5\)"),
    "L3 users apart": (Faults(users_share_counters=True), "limited by the first"),
    "L2 window": (Faults(window_never_resets=True), "a new window"),
    "L20 several windows": (Faults(only_shortest_window=True), r"after the 2s window reset: \[200, 200, 200"),
    "L21 a model's own quota": (Faults(model_quotas_ignored=True), r"its own 3 per 2s: \[200, 200, 200\]"),
    "L23 a budget's cap stops spending": (
        Faults(budget_caps_ignored=True),
        r"cap of 5 requests .*\[200, 200, 200, 200, 200, 200\]; requests admitted after the cap",
    ),
    "L23 a budget's cap spans models": (
        Faults(budget_caps_per_model=True),
        r"cap of 5 requests .*\[200, 200, 200, 200, 200, 200\]; requests admitted after the cap",
    ),
    "L5 L6 L16 tokens, not streamed": (Faults(token_limit_late=5000), "no 429 after|admitted after"),
    "L5 L6 L16 tokens, streamed without stream_options": (
        Faults(stream_usage_unrequested=False),
        "a streamed response without usage",
    ),
    "L10 counters survive a restart": (Faults(counters_reset_on_restart=True), r"\[200, 200, 200, 200"),
    "A10 expired token": (Faults(expired_tokens_accepted=True), "an expired token got 200"),
    "R5 in-memory counters reset on a restart": (
        Faults(memory_counters_survive=True),
        "in-memory counters survived a Limitador restart",
    ),
    "L5 R2 token limit enterprise": (Faults(token_limit_late=20_000), "no 429 after|admitted after"),
    "A5 no restart on key changes": (
        Faults(authorino_restarts_on_key_change=True),
        "Authorino restarted on key changes",
    ),
    "L9 metering": (Faults(metering_drops_warmup=True), "requests metered"),
    "a cut stream takes at most the tier's cap": (
        Faults(tier_caps_ignored=True),
        "max_tokens over the tier's cap: 200",
    ),
    "a cut stream, max_tokens filled in": (
        Faults(max_tokens_unfilled=True),
        "a stream cut by its client generated 32768 tokens, charged none",
    ),
    "published paths": (Faults(leak_denied=True), "a denied request reached the model"),
    "S5 isolation": (Faults(probe={("outside", "model"): 6}), "curl exit 6, expected 28"),
    "S6 exposure": (Faults(exposed={"simulator-predictor": "NodePort"}), "NodePort"),
    "S11 zero trust": (
        Faults(probe={("outside", "limitador"): 0}),
        "Limitador's HTTP API from outside: curl exit 0",
    ),
    "S11 zero trust, the doors": (
        Faults(probe={("gateway-peer", "authorino"): 28}),
        "control: Authorino from a gateway pod: curl exit 28",
    ),
    "S7 Pod Security": (Faults(pod_security={"simulator-predictor-0": "runAsNonRoot != true"}), "restricted"),
    "S7 namespaces enforce Pod Security": (Faults(namespace_labels={"kserve": {}}), "kserve"),
    "R6 failure modes": (Faults(auth_down_status=200), "Authorino down: 200"),
    "Keycloak day 2": (Faults(realm_extra={"free": {"removeduser"}}), "realm group maas-stack-users"),
    "autoscaling on the queue": (Faults(scaling_ignored=True), "a scale-up"),
    "autoscaling back down": (Faults(stays_scaled=True), "waiting for a scale-down"),
    "R6 failure modes, Limitador closed": (
        Faults(limits_failure_inverted=True),
        r"Limitador down: 200 \(configured: fail closed\)",
    ),
    "R12 a picker gone": (Faults(picker_replicas=1), r"one endpoint picker gone.*\(500, 500\)"),
    "tier priority when saturated": (Faults(priority_ignored=True), "median seconds to an answer per tier"),
    "tier priority, client objective": (
        Faults(client_priority_trusted=True),
        "median seconds to an answer per tier",
    ),
    "fairness within a tier when saturated": (
        Faults(fairness="global-strict-fairness-policy"),
        "the second user's one request",
    ),
    "key service: a revoked key is refused": (
        Faults(revocation_ignored=True),
        "timed out .* waiting for the revoked key refused",
    ),
    "key service: another user's key": (
        Faults(identity_headers_trusted=True),
        "another user's key listed to freeuser1 with a forged x-maas-user",
    ),
    "key service: usage agrees with the counters": (
        Faults(usage_counters_stale=True),
        "usage disagrees with the counters",
    ),
    "key service: a key follows its user's tier": (
        Faults(key_tier_cached=True),
        "waiting for the key to act as enterprise",
    ),
    "key service: minting is rate limited": (Faults(mints_unlimited=True), "minting was never limited"),
}


def _config_for(name: str, stack: str = "dev") -> StackConfig:
    """The fake's config for a scenario: the stack's, with Limitador failing closed and a
    model following its queue, or the queue timeout set, where the scenario's name asks."""
    config = _config(stack)
    if "Limitador closed" in name:
        limitador = config.limitador.model_copy(update={"failure_mode": "closed"})
        config = config.model_copy(update={"limitador": limitador})
    if "autoscaling" in name:
        scaling = AutoscalingConfig.model_validate({"minReplicas": 1, "maxReplicas": 2})
        models = tuple(
            m.model_copy(update={"autoscaling": scaling}) if m.tiers is None else m for m in config.models
        )
        config = config.model_copy(update={"models": models})
    if "priority" in name:
        # The burst drains in 1.6 s (64 requests, 4 at a time, 0.1 s each); a queue timeout of
        # 1.3 s (2.6 s scaled like the service time) sheds about 12: behaving, all of the
        # lower tier's; misbehaving, the tiers' shares are alike and neither loses half,
        # so no median of "never answered" passes a misbehaving platform by chance.
        scheduler = config.scheduler.model_copy(update={"queue_timeout": "2600ms"})
        config = config.model_copy(update={"scheduler": scheduler})
    return config


def _service_s(name: str) -> float:
    """How long the fake's pooled model takes per request: long enough to saturate its pool
    in the priority and fairness scenarios, no time elsewhere."""
    return 0.1 if "priority" in name or "fairness" in name else 0.0


def _on(
    stack: str, name: str, faults: Faults | None = None
) -> contextlib.AbstractContextManager[FakePlatform]:
    return fake_platform(
        _config_for(name, stack), faults, _service_s(name), stack, key_service=name.startswith("key service")
    )


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_every_scenario_passes_on_every_kind_stack_that_behaves(name: str) -> None:
    ran = []
    for stack in KIND_STACKS:
        with _on(stack, name) as p:
            try:
                with p.leak_oracle():
                    SCENARIOS[name](p)
            except pytest.skip.Exception:
                continue
            except AssertionError as error:
                raise AssertionError(f"on {stack}'s config: {error}") from error
        ran.append(stack)
    assert ran, f"every kind stack skips {name!r}: CI proves it on none ({KIND_STACKS})"


@pytest.mark.parametrize("name", list(MISBEHAVING))
def test_each_scenario_fails_on_the_misbehaviour_it_targets(name: str) -> None:
    """On the first kind stack the scenario runs on."""
    faults, message = MISBEHAVING[name]
    for stack in KIND_STACKS:
        with _on(stack, name, faults) as p:
            try:
                with pytest.raises(AssertionError, match=message), p.leak_oracle():
                    SCENARIOS[name](p)
            except pytest.skip.Exception:
                continue
            return
    pytest.fail(f"every kind stack skips {name!r}")


def test_the_leak_oracle_catches_a_denied_request_that_reached_a_model() -> None:
    with (
        fake_platform(_config(), Faults(leak_denied=True)) as p,
        pytest.raises(AssertionError, match="answered 1 requests, the gateway admitted 0"),
        p.leak_oracle(),
    ):
        p.chat(p.models[0], {})


def test_the_leak_oracle_counts_every_replica() -> None:
    """Admitted requests spread over two replicas are all counted (a Service shows one)."""
    with fake_platform(_config(), Faults(replicas=2)) as p, p.leak_oracle():
        scenarios.request_limit(p, "free")
        assert all(count > 0 for count in p.answered(p.models[0].name).values())


def test_every_misbehaviour_targets_a_known_scenario() -> None:
    assert set(MISBEHAVING) <= set(SCENARIOS)
