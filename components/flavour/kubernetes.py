"""The plain-Kubernetes flavour: any conformant cluster."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.config import GatewayConfig
from components.flavour import helm
from components.flavour.helm import Chart
from components.flavour.protocol import Client, Exposure, Metrics
from components.pins import versions


@dataclass(frozen=True)
class Kubernetes:
    """Any conformant cluster, kind included: Helm charts, the Service type from config,
    `kubectl port-forward`, and the fixed user ids the images document."""

    name: str = "kubernetes"

    def install_chart(self, install: Chart, parent: pulumi.Resource) -> pulumi.Resource:
        return helm.install(install, parent)

    def gateway_annotations(self, gateway: GatewayConfig) -> dict[str, str]:
        # Istio reads the Service type of a Gateway's deployment from this annotation
        # (istio/istio@1.30.3 pilot/pkg/config/kube/gatewaycommon/deploymentcontroller.go,
        # annotation.NetworkingServiceType).
        return {"networking.istio.io/service-type": gateway.service_type}

    def reach(self, namespace: str, service: str, port: int, local_port: int) -> str:
        return f"kubectl port-forward -n {namespace} svc/{service} {local_port}:{port}"

    def client(self, host: str, scheme: str, local_port: int) -> Client:
        # Through the port-forward: curl resolves the host to it, no /etc/hosts edit.
        return Client(f"{scheme}://{host}:{local_port}", f"--resolve {host}:{local_port}:127.0.0.1 ")

    def pod_security(self, uid: int) -> k8s.core.v1.PodSecurityContextArgs:
        # The image's user, fixed: volumes are made writable for it through fsGroup.
        return k8s.core.v1.PodSecurityContextArgs(
            run_as_non_root=True,
            run_as_user=uid,
            run_as_group=uid,
            fs_group=uid,
            seccomp_profile=k8s.core.v1.SeccompProfileArgs(type="RuntimeDefault"),
        )

    def gateway_api_bundle(self) -> str | None:
        return versions.GATEWAY_API_CRDS_URL

    def metrics(self, bundled: Callable[[], Metrics], rules_namespace: str) -> Metrics:
        return bundled()

    def expose(self, name: str, exposure: Exposure, parent: pulumi.Resource) -> list[pulumi.Resource]:
        # The Service alone: its type comes from gateway_annotations, or a port-forward.
        return []

    def model_server_home(self) -> str | None:
        # vLLM's image runs as root and writes its caches under /root (gpu stack's exemption).
        return None
