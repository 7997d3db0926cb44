"""Kuadrant: the operator, and the `Kuadrant` instance that runs Authorino and Limitador."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from components.config import LimitadorConfig
from components.pins import versions
from components.platform import helm
from components.platform.cert_manager import CertManager
from components.platform.gateway_api import GatewayApiCrds
from components.platform.istio import Istio

# Custom resources count as created at once unless told what "ready" means.
WAIT_READY = {"pulumi.com/waitFor": "condition=Ready"}
LIMITADOR_REDIS_SECRET = "limitador-redis"


@dataclass(frozen=True)
class KuadrantArgs:
    namespace: pulumi.Input[str]
    gateway_api: GatewayApiCrds
    istio: Istio
    cert_manager: CertManager
    limitador: LimitadorConfig
    redis_url: str | None = None
    # Releases whose CRDs the operator must see when it starts (the Prometheus-operator CRDs).
    also_before: Sequence[pulumi.Resource] = field(default_factory=tuple)
    observability: bool = False


class Kuadrant(pulumi.ComponentResource):
    """The operator looks for Gateway API, Istio, cert-manager and Prometheus-operator
    CRDs once, when it starts (kuadrant-operator v1.5.2, state_of_the_world.go), and
    ignores what appears later. So it waits for all of them here: no restart needed.
    """

    instance: k8s.apiextensions.CustomResource

    def __init__(self, name: str, args: KuadrantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("maas:kuadrant:Kuadrant", name, None, opts)
        self.operator = helm.release(
            f"{name}-operator",
            versions.KUADRANT_OPERATOR,
            args.namespace,
            parent=self,
            depends_on=[args.gateway_api, args.istio, args.cert_manager, *args.also_before],
        )
        self.instance = k8s.apiextensions.CustomResource(
            f"{name}-instance",
            api_version="kuadrant.io/v1beta1",
            kind="Kuadrant",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="kuadrant", namespace=args.namespace, annotations=WAIT_READY
            ),
            spec={"observability": {"enable": args.observability}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.operator]),
        )
        self.limitador = self._limitador(name, args)
        self.register_outputs({})

    def _limitador(self, name: str, args: KuadrantArgs) -> k8s.apiextensions.CustomResourcePatch:
        """Settings on the Limitador the instance creates (Kuadrant owns only its metric labels).

        `telemetry: exhaustive` adds `limit_name` to Limitador's `limited_calls`, which is
        how usage metering tells a request-limit 429 from a token-limit 429.
        """
        spec: dict[str, object] = {"telemetry": "exhaustive", "replicas": args.limitador.replicas}
        waits_for: list[pulumi.Resource] = [self.instance]
        if args.limitador.storage == "redis":
            redis = k8s.core.v1.Secret(
                f"{name}-limitador-redis",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=LIMITADOR_REDIS_SECRET, namespace=args.namespace),
                string_data={"URL": pulumi.Output.secret(args.redis_url or "")},
                opts=pulumi.ResourceOptions(parent=self),
            )
            spec["storage"] = {"redis": {"configSecretRef": {"name": LIMITADOR_REDIS_SECRET}}}
            waits_for.append(redis)
        return k8s.apiextensions.CustomResourcePatch(
            f"{name}-limitador",
            api_version="limitador.kuadrant.io/v1alpha1",
            kind="Limitador",
            metadata=k8s.meta.v1.ObjectMetaArgs(name="limitador", namespace=args.namespace),
            spec=spec,
            opts=pulumi.ResourceOptions(parent=self, depends_on=waits_for),
        )
