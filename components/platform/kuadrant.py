"""Kuadrant: the operator, and the `Kuadrant` instance that runs Authorino and Limitador."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.config import LimitadorConfig
from components.pins import versions
from components.platform.flavour import Flavour
from components.platform.helm import Chart

# Custom resources count as created at once unless told what "ready" means.
WAIT_READY = {"pulumi.com/waitFor": "condition=Ready"}
LIMITADOR_REDIS_SECRET = "limitador-redis"
OPERATOR_RELEASE = "kuadrant-operator"


@dataclass(frozen=True, kw_only=True)
class KuadrantArgs:
    namespace: pulumi.Input[str]
    limitador: LimitadorConfig
    flavour: Flavour
    redis_url: str | None = None
    observability: bool = False
    # Everything whose CRDs the operator must see when it starts: Gateway API, Istio,
    # cert-manager and, with observability, the Prometheus-operator CRDs.
    after: Sequence[pulumi.Resource] = ()


class Kuadrant(pulumi.ComponentResource):
    """The operator looks for Gateway API, Istio, cert-manager and Prometheus-operator
    CRDs once, when it starts (kuadrant-operator v1.5.2, state_of_the_world.go), and
    ignores what appears later. So it waits for all of them here: no restart needed.
    """

    TYPE: ClassVar[str] = "maas:kuadrant:Kuadrant"

    def __init__(self, name: str, args: KuadrantArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        self._operator = args.flavour.install_chart(
            Chart(
                name=f"{name}-operator",
                release_name=OPERATOR_RELEASE,
                chart=versions.KUADRANT_OPERATOR,
                namespace=args.namespace,
                after=args.after,
            ),
            self,
        )
        self._instance = k8s.apiextensions.CustomResource(
            f"{name}-instance",
            api_version="kuadrant.io/v1beta1",
            kind="Kuadrant",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name="kuadrant", namespace=args.namespace, annotations=WAIT_READY
            ),
            spec={"observability": {"enable": args.observability}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self._operator]),
        )
        limitador = self._limitador(name, args)
        self.register_outputs(
            {"operator": self._operator, "instance": self._instance, "limitador": limitador}
        )

    def _limitador(self, name: str, args: KuadrantArgs) -> k8s.apiextensions.CustomResourcePatch:
        """Settings on the Limitador the instance creates (Kuadrant owns only its metric labels).

        `telemetry: exhaustive` adds `limit_name` to Limitador's `limited_calls`, which is
        how usage metering tells a request-limit 429 from a token-limit 429.
        """
        spec: dict[str, object] = {"telemetry": "exhaustive", "replicas": args.limitador.replicas}
        waits_for: list[pulumi.Resource] = [self._instance]
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
