"""A Helm release of a pinned chart: how the plain-Kubernetes flavour installs third-party charts.

`helm.v3.Release` rather than `helm.v4.Chart`: a Release previews without a reachable
cluster (pull-request previews and the offline tests rely on that) and runs chart hooks,
which cert-manager, KServe and the operators use. Its objects are invisible to the
policy pack, so the pack checks the release's pins and values instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.cluster.rollout import content_digest
from components.pins.versions import HelmChart


@dataclass(frozen=True, kw_only=True)
class OperatorEnv:
    """Settings an operator reads from its environment only, which its chart takes no value
    for: where the chart is installed, a ConfigMap of them and a server-side apply patch of the
    Deployment (Pulumi name `name`) owning only the container's `envFrom`, which names it; where
    OLM installs the operator, its Subscription's `config.env` (OLM puts it into the operator's
    containers and reverts other edits)."""

    name: str
    deployment: str
    container: str
    values: Mapping[str, str]


@dataclass(frozen=True, kw_only=True)
class Chart:
    """A pinned chart to install as Helm release `release_name`, under Pulumi name `name`.

    The two names are apart on purpose: the Pulumi name follows the component's
    `<component>-…` rule, while the release name is what the cluster knows; renaming it
    would uninstall the release and install a new one.
    """

    name: str
    release_name: str
    chart: HelmChart
    namespace: pulumi.Input[str]
    values: Mapping[str, Any] = field(default_factory=dict)
    after: Sequence[pulumi.Resource] = ()
    aliases: Sequence[pulumi.Alias] = ()
    timeout_seconds: int = 600
    operator_env: OperatorEnv | None = None


def release(install: Chart, parent: pulumi.Resource) -> k8s.helm.v3.Release:
    """Installs the chart, waiting until its workloads are ready."""
    chart = install.chart
    oci = chart.repository.startswith("oci://")
    return k8s.helm.v3.Release(
        install.name,
        name=install.release_name,
        chart=f"{chart.repository}/{chart.name}" if oci else chart.name,
        version=chart.version,
        repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
        namespace=install.namespace,
        values=dict(install.values),
        timeout=install.timeout_seconds,
        # A failed install or upgrade is rolled back instead of leaving half a release.
        atomic=True,
        cleanup_on_fail=True,
        opts=pulumi.ResourceOptions(
            parent=parent, depends_on=list(install.after), aliases=list(install.aliases)
        ),
    )


def install(chart: Chart, parent: pulumi.Resource) -> pulumi.Resource:
    """The release, and its operator's environment where the chart asks for one (OperatorEnv):
    what stands for the chart installed."""
    return _with_env(chart, release(chart, parent), parent)


def _with_env(install: Chart, release: pulumi.Resource, parent: pulumi.Resource) -> pulumi.Resource:
    env = install.operator_env
    if env is None:
        return release
    values = k8s.core.v1.ConfigMap(
        f"{env.name}-values",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=env_config_map(env), namespace=install.namespace),
        data=dict(env.values),
        immutable=True,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[release]),
    )
    # `envFrom`, which the chart leaves empty, not entries of its `env`, which would differ on
    # every run (docs/architecture.md, "Operator environment through envFrom").
    # tests/platform/test_base_layers.py::test_a_second_up_proposes_no_change_to_the_operator_env
    return k8s.apps.v1.DeploymentPatch(
        env.name,
        metadata=k8s.meta.v1.ObjectMetaPatchArgs(name=env.deployment, namespace=install.namespace),
        spec=k8s.apps.v1.DeploymentSpecPatchArgs(
            template=k8s.core.v1.PodTemplateSpecPatchArgs(
                spec=k8s.core.v1.PodSpecPatchArgs(
                    containers=[
                        k8s.core.v1.ContainerPatchArgs(
                            name=env.container,
                            env_from=[
                                k8s.core.v1.EnvFromSourcePatchArgs(
                                    config_map_ref=k8s.core.v1.ConfigMapEnvSourcePatchArgs(
                                        name=values.metadata.name
                                    )
                                )
                            ],
                        )
                    ]
                )
            )
        ),
        opts=pulumi.ResourceOptions(parent=parent, depends_on=[release]),
    )


def env_config_map(env: OperatorEnv) -> str:
    """The ConfigMap of the operator's settings, named by its content: a change makes a new one,
    which changes the Deployment's pod template (the operator restarts on it) and leaves the
    old in place until the new is in use, where an edit in place would restart nothing."""
    digest = content_digest(env.values)
    return f"{env.deployment}-env-{digest[:10]}"
