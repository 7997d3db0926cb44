"""API keys: one generated key per user, kept where Authorino reads it and as a secret output."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components.access import tiers
from components.config import UserConfig

KEY_LENGTH = 48


@dataclass(frozen=True, kw_only=True)
class ApiKeysArgs:
    users: Sequence[UserConfig]
    # Authorino's (the Kuadrant instance's) namespace: with `allNamespaces: false` the
    # AuthPolicy reads key Secrets from there and nowhere else.
    namespace: pulumi.Input[str]
    # Kuadrant, whose Authorino watches these Secrets; they are deleted before it goes.
    after: Sequence[pulumi.Resource] = ()


class ApiKeys(pulumi.ComponentResource):
    """A key per user: random, kept in state as a secret, never written in a file.

    Removing a user deletes its Secret, which Authorino sees at once (it watches Secrets
    with its `managed-by` label): the key stops working with no restart. Raising a
    user's `keyVersion` replaces the key.
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:identity:ApiKeys"
    keys: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: ApiKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        keys: dict[str, pulumi.Output[str]] = {}
        for user in args.users:
            key = random.RandomPassword(
                f"{name}-{user.name}",
                length=KEY_LENGTH,
                special=False,
                keepers={"version": str(user.key_version)},
                opts=pulumi.ResourceOptions(parent=self),
            )
            k8s.core.v1.Secret(
                f"{name}-{user.name}-secret",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=f"apikey-{user.name}",
                    namespace=args.namespace,
                    # The tier as a label: the AuthPolicy has one rule per tier (tiers.api_key_rules).
                    labels={
                        **tiers.AUTHORINO_WATCH,
                        tiers.API_KEY_LABEL: "true",
                        tiers.TIER_LABEL: user.tier,
                    },
                    annotations={tiers.USER_ANNOTATION: user.name},
                ),
                string_data={tiers.API_KEY_DATA: key.result},
                type="Opaque",
                opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.after)),
            )
            keys[user.name] = key.result
        self.keys = pulumi.Output.secret(pulumi.Output.all(**keys) if keys else {})
        self.register_outputs({"keys": self.keys})
