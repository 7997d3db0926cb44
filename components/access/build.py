"""The access group: who may call (API keys, the issuer's tokens) and how much (tier policies)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.access import tiers
from components.access.keys import ApiKeys, ApiKeysArgs
from components.access.policies import TierPolicies, TierPoliciesArgs, TierPriorities, TierPrioritiesArgs
from components.access.realm import Realm, RealmArgs
from components.access.self_service import KeyService, KeyServiceArgs, portal_urls
from components.config import StackConfig
from components.platform.build import Platform
from components.platform.kuadrant import limitador_url
from components.serving.build import Serving
from components.serving.model_list import limits_namespace


@dataclass(frozen=True)
class Access:
    api_keys: ApiKeys | None
    # The Keycloak realm of the tiers and users, when OIDC is on.
    realm: Realm | None
    policies: TierPolicies
    # The tiers' priorities on pooled models, when there are any.
    priorities: TierPriorities | None
    # Self-service keys (maas:keyService), on OIDC stacks.
    key_service: KeyService | None


def build(cfg: StackConfig, platform: Platform, serving: Serving) -> Access:
    api_keys = (
        ApiKeys(
            "api-keys",
            ApiKeysArgs(
                users=cfg.users,
                namespace=platform.cluster.namespace("kuadrant").output,
                after=[platform.kuadrant],
            ),
            platform.on_cluster,
        )
        if cfg.auth.api_keys
        else None
    )
    realm = (
        Realm(
            "keycloak",
            RealmArgs(
                oidc=cfg.auth.oidc,
                tiers=cfg.tiers,
                users=cfg.users,
                domain=cfg.domain,
                namespace=platform.cluster.namespace("keycloak").output,
                keycloak=platform.keycloak,
                flavour=platform.flavour,
                key_service=cfg.key_service_on,
                portal_urls=portal_urls(serving.gateway) if cfg.key_service_on else (),
                gateway=serving.gateway,
                route_namespace=platform.cluster.namespace("models"),
            ),
            platform.on_cluster,
        )
        if platform.keycloak
        else None
    )
    key_service = (
        KeyService(
            "key-service",
            KeyServiceArgs(
                config=cfg.key_service,
                tiers=cfg.tiers,
                oidc=cfg.auth.oidc,
                oidc_issuer=realm.issuer,
                oidc_keys=platform.oidc_keys_url,
                namespace=platform.cluster.namespace("models").output,
                keys_namespace=platform.cluster.namespace("kuadrant").output,
                gateway=serving.gateway,
                flavour=platform.flavour,
                client_secret=realm.key_service_secret,
                limitador_url=platform.cluster.namespace("kuadrant").output.apply(limitador_url),
                limits_namespace=platform.cluster.namespace("models").output.apply(limits_namespace),
                prometheus=platform.metrics.reading if platform.metrics else None,
                grants_namespace=platform.cluster.namespace("observability").output
                if platform.metrics and platform.metrics.reading and platform.metrics.reading.grants
                else None,
                after=[platform.kuadrant, realm, *serving.model_list.routes],
            ),
            platform.on_cluster,
        )
        if realm and realm.key_service_secret is not None and platform.oidc_keys_url
        else None
    )
    policies = TierPolicies(
        "tier-policies",
        TierPoliciesArgs(
            tiers=cfg.tiers,
            namespace=platform.cluster.namespace("models").output,
            api_keys=cfg.auth.api_keys,
            oidc_keys=platform.oidc_keys_url,
            models=cfg.models,
            caps=tiers.stack_budget_caps(cfg),
            after=[
                platform.kuadrant,
                serving.gateway,
                *(m.route for m in serving.models.values()),
                *serving.model_list.routes,
                *([platform.keycloak, realm] if platform.keycloak and realm else []),
                *(key_service.routes if key_service else ()),
            ],
        ),
        platform.on_cluster,
    )
    pooled = cfg.pooled_models
    priorities = (
        TierPriorities(
            "tier-priorities",
            TierPrioritiesArgs(
                tiers=cfg.tiers,
                pooled=pooled,
                namespace=platform.cluster.namespace("models").output,
                after=[serving.pickers[m.name].pool for m in pooled],
            ),
            platform.on_cluster,
        )
        if pooled
        else None
    )
    pulumi.export("tiers", cfg.tier_names)
    pulumi.export("users", {u.name: u.tier for u in cfg.users})
    if api_keys:
        pulumi.export("apiKeys", api_keys.keys)
    if realm:
        pulumi.export("oidcIssuer", realm.issuer)
        pulumi.export("keycloakPasswords", realm.passwords)
    return Access(
        api_keys=api_keys, realm=realm, policies=policies, priorities=priorities, key_service=key_service
    )
