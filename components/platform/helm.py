"""A Helm release of a pinned chart: the one way this program installs third-party charts.

`helm.v3.Release` rather than `helm.v4.Chart`: a Release previews without a reachable
cluster (pull-request previews and the offline tests rely on that) and runs chart hooks,
which cert-manager, KServe and the operators use. Its objects are invisible to the
policy pack, so the pack checks the release's pins and values instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from components.pins.versions import HelmChart


def release(
    name: str,
    chart: HelmChart,
    namespace: pulumi.Input[str],
    parent: pulumi.Resource,
    values: Mapping[str, Any] | None = None,
    depends_on: Sequence[pulumi.Resource] = (),
    timeout_seconds: int = 600,
) -> k8s.helm.v3.Release:
    """Installs `chart` as release `name`, waiting until its workloads are ready."""
    oci = chart.repository.startswith("oci://")
    return k8s.helm.v3.Release(
        name,
        name=name,
        chart=f"{chart.repository}/{chart.name}" if oci else chart.name,
        version=chart.version,
        repository_opts=None if oci else k8s.helm.v3.RepositoryOptsArgs(repo=chart.repository),
        namespace=namespace,
        values=dict(values or {}),
        timeout=timeout_seconds,
        # A failed install or upgrade is rolled back instead of leaving half a release.
        atomic=True,
        cleanup_on_fail=True,
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(depends_on)),
    )
