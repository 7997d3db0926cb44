"""Scheduling: GPU pods only on GPU nodes, other pods off them; every container sized."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, ReportViolation, ResourceValidationArgs, ResourceValidationPolicy

from maas_policies import objects, relaxation


def _gpu_pinned(args: ResourceValidationArgs, report: ReportViolation) -> None:
    kind = objects.kind(args.resource_type, args.props)
    subject = objects.name(args.props)
    for where, spec, containers in objects.pod_specs(kind, args.props):
        if where == "runtime" or not objects.gpu_resources(containers):
            continue
        selects, tolerates = objects.targets_gpu_nodes(spec)
        if relaxation.exempt(args.get_config(), subject, report, "gpu-workloads-pinned"):
            continue
        if not selects:
            report(
                objects.refusal(
                    f"{kind} {subject}",
                    "requests GPUs but selects no GPU node, so it may wait on a CPU node",
                    'a nodeSelector (e.g. nvidia.com/gpu.present: "true") or node affinity',
                ),
                None,
            )
        if not tolerates:
            report(
                objects.refusal(
                    f"{kind} {subject}",
                    "requests GPUs but does not tolerate the GPU nodes' taint",
                    "tolerate nvidia.com/gpu (Exists, NoSchedule)",
                ),
                None,
            )


def _cpu_off_gpu(args: ResourceValidationArgs, report: ReportViolation) -> None:
    kind = objects.kind(args.resource_type, args.props)
    subject = objects.name(args.props)
    for where, spec, containers in objects.pod_specs(kind, args.props):
        if where == "runtime" or objects.gpu_resources(containers):
            continue
        selects, tolerates = objects.targets_gpu_nodes(spec)
        if (selects or tolerates) and not relaxation.exempt(
            args.get_config(), subject, report, "cpu-workloads-off-gpu-nodes"
        ):
            how = "selects" if selects else "tolerates"
            report(
                objects.refusal(
                    f"{kind} {subject}",
                    f"requests no GPU but {how} GPU nodes, where it would take room from GPU workloads",
                    "remove the GPU nodeSelector and tolerations",
                ),
                None,
            )


def _sized(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if objects.is_patch(args.resource_type):
        return  # its containers are sized where they are declared (a chart's, out of sight)
    kind = objects.kind(args.resource_type, args.props)
    subject = objects.name(args.props)
    for where, _, containers in objects.pod_specs(kind, args.props):
        if where == "runtime":
            continue  # a ServingRuntime's containers take their resources from each InferenceService
        for container in containers:
            resources = container.get("resources") or {}
            missing = [
                f"{section}.{resource}"
                for section in ("requests", "limits")
                for resource in ("cpu", "memory")
                if resource not in (resources.get(section) or {})
            ]
            label = container.get("name") or "model"
            if missing and not relaxation.exempt(args.get_config(), subject, report, "container-resources"):
                where = f"{kind} {subject}, container {label}"
                report(objects.refusal(where, f"no {', '.join(missing)}", "set requests and limits"), None)


GPU_WORKLOADS_PINNED = ResourceValidationPolicy(
    name="gpu-workloads-pinned",
    description="A pod that requests GPUs selects GPU nodes and tolerates their taint.",
    validate=_gpu_pinned,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)

CPU_WORKLOADS_OFF_GPU_NODES = ResourceValidationPolicy(
    name="cpu-workloads-off-gpu-nodes",
    description="A pod that requests no GPU neither selects nor tolerates GPU nodes.",
    validate=_cpu_off_gpu,
    enforcement_level=EnforcementLevel.ADVISORY,
    config_schema=relaxation.SCHEMA,
)

CONTAINER_RESOURCES = ResourceValidationPolicy(
    name="container-resources",
    description=(
        "Every container this program declares has CPU and memory requests and limits "
        "(containers inside third-party charts are not visible to the pack)."
    ),
    validate=_sized,
    enforcement_level=EnforcementLevel.MANDATORY,
    config_schema=relaxation.SCHEMA,
)


def _replicas_bounded(args: ResourceValidationArgs, report: ReportViolation) -> None:
    """A model KServe scales (kserve/kserve@v0.20.0 reconcilers/keda: maxReplicaCount is raised to
    minReplicas when below it, so a wrong pair silently never scales) keeps at least one
    replica and can grow."""
    if objects.kind(args.resource_type, args.props) != "InferenceService":
        return
    predictor = (args.props.get("spec") or {}).get("predictor") or {}
    if not predictor.get("autoScaling"):
        return
    low, high = int(predictor.get("minReplicas", 1)), int(predictor.get("maxReplicas", 0))
    if high < max(low, 1) or low < 1:
        report(
            objects.refusal(
                f"InferenceService {objects.name(args.props)}",
                f"it scales between minReplicas {low} and maxReplicas {high}: it would never scale "
                "(or scale to nothing)",
                "maas:models[].autoscaling with 1 <= minReplicas <= maxReplicas",
            ),
            None,
        )


REPLICAS_BOUNDED = ResourceValidationPolicy(
    name="replicas-bounded",
    description="A model that scales on its queue keeps at least one replica and maxReplicas >= minReplicas.",
    validate=_replicas_bounded,
    enforcement_level=EnforcementLevel.MANDATORY,
)
