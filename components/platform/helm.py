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

from components.pins.versions import HelmChart


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
