"""Storage: the data volume of a StatefulSet of ours."""

from __future__ import annotations

import pulumi_kubernetes as k8s


def data_volume(size: str, storage_class: str | None) -> k8s.core.v1.PersistentVolumeClaimArgs:
    """The `data` volume claim of a StatefulSet of ours: one node's disk, of `size`, from
    `storage_class` (None: the cluster's default)."""
    return k8s.core.v1.PersistentVolumeClaimArgs(
        metadata=k8s.meta.v1.ObjectMetaArgs(name="data"),
        spec=k8s.core.v1.PersistentVolumeClaimSpecArgs(
            access_modes=["ReadWriteOnce"],
            storage_class_name=storage_class,
            resources=k8s.core.v1.VolumeResourceRequirementsArgs(requests={"storage": size}),
        ),
    )
