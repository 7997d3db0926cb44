"""Cluster access: the explicit Kubernetes provider, and the platform's namespaces."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.network import DEFAULT_DENY
from components.cluster.security import pod_security
from components.config import ClusterConfig
from components.names import PART_OF


@dataclass(frozen=True)
class Namespace:
    """A namespace of ours as one value: `name` where plain text is wanted (a command, a query,
    a chart value), `output` for what is declared in it, which then waits for the namespace."""

    name: str
    output: pulumi.Output[str]


@dataclass(frozen=True, kw_only=True)
class ClusterArgs:
    cluster: ClusterConfig
    # role (e.g. "models") -> namespace name, for every namespace this stack uses
    namespaces: Mapping[str, str]


class ClusterAccess(pulumi.ComponentResource):
    """Owns the provider every other layer uses, and the namespaces they deploy into.

    Namespaces are created here, before any layer, so that `pulumi destroy` removes
    them last: every namespaced resource depends on its namespace's name output.
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:cluster:ClusterAccess"
    provider: k8s.Provider

    def __init__(self, name: str, args: ClusterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        self._name = name
        self._cluster = args.cluster
        self.provider = self._new_provider(f"{name}-provider")
        self._namespaces = {
            role: Namespace(
                namespace,
                k8s.core.v1.Namespace(
                    f"{name}-ns-{role}",
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        name=namespace,
                        labels={**PART_OF, **pod_security(role)},
                    ),
                    opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
                ).metadata.name,
            )
            for role, namespace in args.namespaces.items()
        }
        # An empty pod selector isolates every pod of the namespace for ingress, and a policy
        # without rules admits nothing itself (kubernetes/api@v0.36.4 networking/v1/types.go).
        deny = {
            role: k8s.networking.v1.NetworkPolicy(
                f"{name}-deny-{role}",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=DEFAULT_DENY, namespace=self.namespace(role).output),
                spec=k8s.networking.v1.NetworkPolicySpecArgs(
                    pod_selector=k8s.meta.v1.LabelSelectorArgs(), policy_types=["Ingress"]
                ),
                opts=pulumi.ResourceOptions(parent=self, provider=self.provider),
            )
            for role in args.namespaces
        }
        self.register_outputs(
            {
                "provider": self.provider,
                "namespaces": {r: n.output for r, n in self._namespaces.items()},
                "defaultDeny": deny,
            }
        )

    def namespace(self, role: str) -> Namespace:
        """The namespace of `role`, whose output makes its users depend on it."""
        return self._namespaces[role]

    def provider_in(self, role: str) -> k8s.Provider:
        """A provider like the main one whose default namespace is the role's namespace.

        For upstream manifests that leave namespaces out. It takes the namespace's name as
        an input, so everything it creates comes after the namespace and goes before it.
        """
        return self._new_provider(f"{self._name}-provider-{role}", self.namespace(role).output)

    def _new_provider(self, name: str, namespace: pulumi.Input[str] | None = None) -> k8s.Provider:
        kubeconfig = self._cluster.kubeconfig
        return k8s.Provider(
            name,
            context=self._cluster.context,
            kubeconfig=os.path.expanduser(kubeconfig) if kubeconfig else None,
            namespace=namespace,
            enable_server_side_apply=True,
            # A ConfigMap or Secret whose data changes is updated in place, not deleted and made
            # again under the same name, which leaves seconds with no object
            # (pulumi/pulumi-kubernetes@v4.34.2 provider/pkg/provider/diff.go forceNewProperties, provider.go
            # Diff deleteBeforeReplace). Readers that load one at start and whose content follows the
            # stack file roll on a digest of it (docs/upgrades.md).
            enable_config_map_mutable=True,
            enable_secret_mutable=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
