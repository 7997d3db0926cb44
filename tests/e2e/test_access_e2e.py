"""Access and limits on a real cluster (CHECKLIST A1-A17, L1-L3, L5, L6, L10, L16)."""

from __future__ import annotations

import json

import pytest

from components.access import policies
from tests.e2e import scenarios
from tests.e2e.platform import Live


def test_a_valid_key_gets_an_answer_with_usage_from_every_model(platform: Live) -> None:
    scenarios.answers_with_usage(platform)


def test_requests_without_a_valid_key_get_401(platform: Live) -> None:
    scenarios.denied_without_a_valid_key(platform)


def test_every_model_of_a_catalog_of_38_is_protected_and_metered(platform: Live) -> None:
    """Issue 27, on dev-oidc's 40 names (39 of them served by one simulator: servedBy)."""
    scenarios.a_large_catalog_is_in_force(platform)


def test_a_key_in_a_secret_the_policy_does_not_select_gets_401(platform: Live) -> None:
    scenarios.unselected_secret_grants_nothing(platform)


def test_an_identity_of_an_unconfigured_tier_gets_403(platform: Live) -> None:
    scenarios.unconfigured_tier_is_forbidden(platform)


def test_keys_work_at_once_rotate_and_revoke_without_restarts(platform: Live) -> None:
    scenarios.keys_follow_their_secrets(platform)


@pytest.mark.parametrize("tier_index", [0, 1, 2])
def test_each_tier_gets_its_configured_request_limit_then_429(platform: Live, tier_index: int) -> None:
    if tier_index >= len(platform.tier_names):
        pytest.skip(f"the stack has {len(platform.tier_names)} tiers")
    scenarios.request_limit(platform, platform.tier_names[tier_index])


def test_a_limited_request_gets_an_openai_shaped_429_with_retry_after(platform: Live) -> None:
    scenarios.limited_request_gets_an_openai_shaped_429(platform)


def test_a_body_past_the_configured_limit_gets_an_openai_shaped_413(platform: Live) -> None:
    scenarios.an_oversized_body_gets_an_openai_shaped_413(platform)


def test_users_of_one_tier_are_counted_apart(platform: Live) -> None:
    scenarios.users_are_counted_apart(platform)


@pytest.mark.window
def test_the_window_resets_the_count(platform: Live) -> None:
    scenarios.window_resets(platform)


@pytest.mark.window
def test_a_longer_window_refuses_after_the_shorter_one_reset(platform: Live) -> None:
    scenarios.longer_window_outlasts_a_shorter_one(platform)


def test_a_models_own_quota_in_a_tier_holds_apart_from_the_tiers_limit(platform: Live) -> None:
    scenarios.a_models_own_quota_holds_apart(platform)


def test_a_money_budget_held_by_a_request_cap_stops_spending_across_models(platform: Live) -> None:
    scenarios.a_budget_stops_spending(platform)


@pytest.mark.parametrize("mode", list(scenarios.STREAMING))
def test_token_limits_count_usage_total_tokens(platform: Live, mode: str) -> None:
    scenarios.token_limit(platform, mode)


def test_a_stream_cut_by_its_client_takes_at_most_the_tiers_cap(platform: Live) -> None:
    scenarios.a_cut_stream_takes_at_most_the_tiers_cap(platform)


@pytest.mark.parametrize("tier_index", [1, 2])
def test_each_higher_tier_gets_its_configured_token_limit_then_429(platform: Live, tier_index: int) -> None:
    """L5, R2: the lowest tier's token limit is tested in every mode above; each other tier's
    too, so a tier whose token limit is not its own shows."""
    if tier_index >= len(platform.tier_names):
        pytest.skip(f"the stack has {len(platform.tier_names)} tiers")
    scenarios.token_limit(platform, "not streamed", platform.tier_names[tier_index])


@pytest.mark.parametrize("path", ["/v1/responses", "/metrics", "/tokenize", "/health"])
def test_only_metered_endpoints_are_published(platform: Live, path: str) -> None:
    """The simulator serves these (llm-d/llm-d-inference-sim@v0.10.2 pkg/communication/http.go)."""
    scenarios.only_metered_endpoints_are_published(platform, path)


def test_a_route_added_later_is_protected_by_the_gateway_policies(platform: Live) -> None:
    scenarios.late_route_is_protected(platform)


@pytest.mark.window
def test_keycloak_tokens_work_like_keys_with_the_tier_from_the_group(platform: Live) -> None:
    scenarios.oidc_tokens_work_like_keys(platform)


@pytest.mark.window
def test_an_expired_keycloak_token_gets_401(platform: Live) -> None:
    scenarios.expired_token_is_refused(platform)


def test_the_realm_holds_exactly_the_stack_files_users(platform: Live) -> None:
    scenarios.realm_follows_the_stack_file(platform)


@pytest.mark.disruptive
def test_counters_survive_a_limitador_restart_with_redis(platform: Live) -> None:
    scenarios.counters_survive_a_limitador_restart(platform)


@pytest.mark.disruptive
def test_counters_kept_in_memory_reset_on_a_limitador_restart_as_documented(platform: Live) -> None:
    scenarios.counters_reset_on_a_limitador_restart_in_memory(platform)


@pytest.mark.disruptive
def test_failure_modes_are_the_documented_ones(platform: Live) -> None:
    scenarios.failure_modes(platform)


def test_a_model_outside_the_callers_tier_gets_an_openai_shaped_403(platform: Live) -> None:
    scenarios.model_outside_the_tier_is_forbidden(platform)


def test_listing_models_is_neither_limited_nor_billed(platform: Live) -> None:
    scenarios.listing_models_is_free(platform)


# The shared host, api.<domain>: one OpenAI base URL for every model.


def test_the_shared_host_routes_by_the_body_to_every_model(platform: Live) -> None:
    scenarios.shared_host_serves_every_model(platform)


def test_the_shared_host_lists_each_callers_models_and_401_without_a_credential(platform: Live) -> None:
    scenarios.shared_host_lists_each_tiers_models(platform)


def test_the_shared_host_answers_unknown_missing_and_forbidden_models_in_openai_shape(platform: Live) -> None:
    scenarios.shared_host_refuses_what_it_cannot_route(platform)


def test_client_sent_routing_and_tier_headers_change_nothing(platform: Live) -> None:
    scenarios.client_routing_headers_change_nothing(platform)


def test_a_users_budget_for_a_model_spans_its_host_and_the_shared_host(platform: Live) -> None:
    scenarios.budgets_span_both_hosts(platform)


def test_the_readme_openai_sdk_example_works_against_the_shared_host(platform: Live) -> None:
    scenarios.openai_sdk_example(platform)


def test_no_other_kuadrant_policy_is_admitted_in_the_models_namespace(platform: Live) -> None:
    """The tier rules are pinned at admission (components/access/policies.py TierPolicies._pin):
    an AuthPolicy on a model's route is refused, ours passes an update; both as a server-side
    dry run, which admission judges and nothing keeps."""
    route = next(
        r
        for r in platform.get("httproute", "-n", platform.models_namespace)["items"]
        if r["spec"].get("hostnames")
    )
    rogue = {
        "apiVersion": "kuadrant.io/v1",
        "kind": "AuthPolicy",
        "metadata": {"name": "open-door", "namespace": platform.models_namespace},
        "spec": {
            "targetRef": {
                "group": "gateway.networking.k8s.io",
                "kind": "HTTPRoute",
                "name": route["metadata"]["name"],
            },
            "rules": {"authentication": {"anyone": {"anonymous": {}}}},
        },
    }
    refused = platform.kubectl("apply", "--dry-run=server", "-f", "-", stdin=json.dumps(rogue), check=False)
    assert refused.returncode != 0, refused.stdout
    assert "Only the platform's tier policies" in refused.stderr, refused.stderr
    ours = platform.get("authpolicy", policies.policy_name("AuthPolicy"), "-n", platform.models_namespace)
    updated = platform.kubectl("replace", "--dry-run=server", "-f", "-", stdin=json.dumps(ours), check=False)
    assert updated.returncode == 0, updated.stderr
