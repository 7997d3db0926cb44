"""Flavours: how one kind of cluster installs and exposes the platform, as a strategy.

A flavour is chosen once, from `maas:flavour`, by the platform's builder and handed to
every layer whose installation or exposure depends on the kind of cluster. The layers
call it and never test which flavour they were given, so a new flavour (OpenShift:
operators from OLM, Routes, no fixed user ids) is one class here, not a branch in each
layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import pulumi
import pulumi_kubernetes as k8s

from components.config import GatewayConfig, StackConfig
from components.platform import helm
from components.platform.helm import Chart


class Flavour(Protocol):
    @property
    def name(self) -> str: ...

    def install_chart(self, install: Chart, parent: pulumi.Resource) -> pulumi.Resource:
        """Installs a third-party component from its pinned chart."""
        ...

    def gateway_annotations(self, gateway: GatewayConfig) -> dict[str, str]:
        """Annotations on the inference Gateway that decide how its Service is exposed."""
        ...

    def reach(self, namespace: str, service: str, port: int, local_port: int) -> str:
        """The command a user runs to reach a Service of the platform from their machine."""
        ...

    def pod_security(self, uid: int) -> k8s.core.v1.PodSecurityContextArgs:
        """The pod security context of our own workloads whose image runs as user `uid`."""
        ...


@dataclass(frozen=True)
class Kubernetes:
    """Any conformant cluster, kind included: Helm charts, the Service type from config,
    `kubectl port-forward`, and the fixed user ids the images document."""

    name: str = "kubernetes"

    def install_chart(self, install: Chart, parent: pulumi.Resource) -> pulumi.Resource:
        return helm.release(install, parent)

    def gateway_annotations(self, gateway: GatewayConfig) -> dict[str, str]:
        # Istio reads the Service type of a Gateway's deployment from this annotation
        # (istio pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go,
        # annotation.NetworkingServiceType).
        return {"networking.istio.io/service-type": gateway.service_type}

    def reach(self, namespace: str, service: str, port: int, local_port: int) -> str:
        return f"kubectl port-forward -n {namespace} svc/{service} {local_port}:{port}"

    def pod_security(self, uid: int) -> k8s.core.v1.PodSecurityContextArgs:
        # The image's user, fixed: volumes are made writable for it through fsGroup.
        return k8s.core.v1.PodSecurityContextArgs(
            run_as_non_root=True,
            run_as_user=uid,
            run_as_group=uid,
            fs_group=uid,
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        )


def restricted_container() -> k8s.core.v1.SecurityContextArgs:
    """The container security context of our own workloads, on every flavour: Pod Security
    "restricted" (pod-security-admission v0.36.2 policy checks: no privilege escalation,
    every capability dropped, non-root, RuntimeDefault seccomp) and a read-only root."""
    return k8s.core.v1.SecurityContextArgs(
        allow_privilege_escalation=False,
        read_only_root_filesystem=True,
        run_as_non_root=True,
        capabilities=k8s.core.v1.CapabilitiesArgs(drop=["ALL"]),
        seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
    )


FLAVOURS: dict[str, Flavour] = {"kubernetes": Kubernetes()}


def choose(config: StackConfig) -> Flavour:
    return FLAVOURS[config.flavour]
