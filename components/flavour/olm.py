"""OLM: how the OpenShift flavour installs an operator, as a Subscription pinned by channel and
starting CSV, in an OperatorGroup of its own namespace.

The objects follow operator-framework/api@v0.45.0 crds/operators.coreos.com_subscriptions.yaml (and
operators.coreos.com_operatorgroups.yaml), the schemas the tests validate against.
"""

from __future__ import annotations

from collections.abc import Mapping

import pulumi
import pulumi_kubernetes as k8s

from components.flavour.helm import Chart
from components.names import PART_OF
from components.pins.versions import OlmPackage

# Where OpenShift's default CatalogSources live (redhat-operators, community-operators).
MARKETPLACE = "openshift-marketplace"
# The readiness signal: OLM sets the Subscription's status.installedCSV once the approved
# InstallPlan has created the CSV (operator-framework/operator-lifecycle-manager@v0.46.0 catalog/operator.go,
# resolver/step_resolver.go); the same plan creates the CRDs right after it (operator-framework
# api v0.45.0 installplan_types.go OrderSteps). A custom resource created in between is
# retried by the provider for about a minute while its kind is not served (pulumi-kubernetes
# provider/pkg/await/await.go Creation, IsNoMatchError), and then waits for its own
# condition, which only the running operator sets.
INSTALLED = {"pulumi.com/waitFor": "jsonpath={.status.installedCSV}"}


def subscribe(install: Chart, package: OlmPackage, approval: str, parent: pulumi.Resource) -> pulumi.Resource:
    """Subscribes to the package in place of the chart `install`.

    In the layer's namespace, with an OperatorGroup of its own (OLM allows one per namespace;
    every operator here has its namespace) in the package's install mode; or in the package's
    fixed namespace, whose OperatorGroup the cluster provides.
    """
    namespace: pulumi.Input[str] = package.namespace or install.namespace
    waits_for = list(install.after)
    if package.namespace is None:
        targets = {"targetNamespaces": [install.namespace]} if package.install_mode == "OwnNamespace" else {}
        waits_for.append(
            k8s.apiextensions.CustomResource(
                f"{install.name}-group",
                api_version="operators.coreos.com/v1",
                kind="OperatorGroup",
                metadata=k8s.meta.v1.ObjectMetaArgs(
                    name=package.package, namespace=namespace, labels=PART_OF
                ),
                spec=targets,
                opts=pulumi.ResourceOptions(parent=parent, depends_on=list(install.after)),
            )
        )
    spec: dict[str, object] = {
        "name": package.package,
        "channel": package.channel,
        "startingCSV": package.starting_csv,
        "source": package.source,
        "sourceNamespace": MARKETPLACE,
        "installPlanApproval": approval,
    }
    env = {**dict(package.env), **(install.operator_env.values if install.operator_env else {})}
    if env:
        spec["config"] = {"env": _env(env)}
    subscription = k8s.apiextensions.CustomResource(
        install.name,
        api_version="operators.coreos.com/v1alpha1",
        kind="Subscription",
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=package.package,
            namespace=namespace,
            labels=PART_OF,
            annotations={**INSTALLED, "pulumi.com/timeoutSeconds": str(install.timeout_seconds)},
        ),
        spec=spec,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=waits_for),
    )
    operand = package.operand
    if operand is None:
        return subscription
    # What comes after waits for the operands, not just the operator.
    return k8s.apiextensions.CustomResourcePatch(
        f"{install.name}-operand",
        api_version=operand.api_version,
        kind=operand.kind,
        metadata=k8s.meta.v1.ObjectMetaArgs(
            name=operand.name,
            annotations={
                "pulumi.com/waitFor": f"condition={operand.condition}",
                "pulumi.com/timeoutSeconds": str(install.timeout_seconds),
            },
        ),
        spec=dict(operand.spec),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[subscription]),
    )


def _env(values: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in values.items()]
