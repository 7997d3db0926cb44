"""A pooled model's scheduling: its InferencePool and the llm-d endpoint picker (EPP) behind it.

The gateway asks the picker which replica serves each request (an ext_proc call,
istio/istio@1.30.3 pilot/pkg/networking/core/route/route.go); the picker chooses by queue, KV cache and
prefix cache, and with flow control on holds requests while the pool is saturated,
dispatching the highest priority band first (llm-d/llm-d-router@v0.10.0 pkg/epp/flowcontrol).
A request's priority is its InferenceObjective's, which Authorino names from the caller's
tier (components/access/tiers.py).

The picker is declared here rather than installed from llm-d-router's chart
(config/charts/llm-d-router-gateway, v0.10.0), whose objects this mirrors: that chart gives
the pod no securityContext (so no Pod Security "restricted") and no value to add one, and
it would declare the pool and objectives out of the schema checks' and the pack's sight.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import pulumi
import pulumi_kubernetes as k8s
import yaml

from components.cluster import network
from components.cluster.access import Namespace
from components.cluster.security import restricted_container
from components.config import ModelConfig, SchedulerConfig
from components.flavour.protocol import Flavour
from components.names import PART_OF
from components.pins import upstream, versions

POOL_GROUP = "inference.networking.k8s.io"
POOL_API_VERSION = f"{POOL_GROUP}/v1"
PICKER_LABEL = "maas-platform/endpoint-picker"
CONFIG_FILE = "config.yaml"
CONFIG_DIR = "/config"
# The image's user (llm-d-router v0.10.0 Dockerfile.epp: distroless static:nonroot,
# USER 65532:65532).
PICKER_UID = 65532
GRPC, HEALTH, METRICS = "grpc", "grpc-health", "metrics"
PORTS = upstream.ENDPOINT_PICKER_PORTS
# On the pod template: the digest of the picker's configuration, read once at start.
CONFIG_ANNOTATION = "maas-platform/endpoint-picker-config"
UTILIZATION_DETECTOR = "utilization-detector"
# Which flow of a priority band (a flow: one fairness id, the user) dispatches next: in
# turn, skipping empty ones (llm-d/llm-d-router@v0.10.0 pkg/epp/framework/plugins/flowcontrol/
# fairness/roundrobin/roundrobin.go), so one user's burst does not hold the others of its
# tier behind it as the default, global-strict-fairness-policy (oldest request of any flow
# first; fairness/globalstrict/global_strict.go, registry/config.go), would.
FAIRNESS_POLICY = "round-robin-fairness-policy"
# The scorers and their weights llm-d-router uses by default
# (llm-d/llm-d-router@v0.10.0 pkg/epp/config/loader/defaults.go loadDefaultConfig; the chart's
# default-plugins.yaml).
_SCORERS = {"queue-scorer": 2, "kv-cache-utilization-scorer": 2, "prefix-cache-scorer": 3}
_TOKEN_REASON = (
    "the picker watches its InferencePool, the objectives and the model pods through the API, "
    "with a Role that only gets, lists and watches in its namespace"
)


# The picker labels its per-request counters and histograms, and its flow-control queues,
# with the fairness id, the user (llm-d/llm-d-router@v0.10.0 pkg/epp/metrics/llm_d_router_metrics.go,
# metrics.go), up to 1000 ids per process (cardinality.go maxFairnessLabelValues): users
# times priorities times buckets series. Our monitor keeps none of them but the queue size, which the
# scaled model's query and the picker-queue rule sum (model_deployment.py, chargeback.py): the picker
# deletes a flow's queue series when it collects the idle flow (registry/registry.go gcFlows,
# metrics.go DeleteFlowControlFlowSeries), so those count the users queued in the last
# minutes, not every user. Relabeling cannot sum series, so it drops rather than strips the
# label (two series left with one label set would be a duplicate sample, not a sum).
FAIRNESS_LABEL = "fairness_id"
_KEPT = "__tmp_maas_fairness_kept"


def metric_relabelings() -> list[dict[str, Any]]:
    """The picker monitor's metricRelabelings: every series with a fairness id dropped, except
    the flow-control queue size (upstream.FLOW_CONTROL_QUEUE_SIZE); a scratch label marks that
    one and goes again (Prometheus relabeling has no negative match)."""
    return [
        {
            "sourceLabels": ["__name__"],
            "regex": upstream.FLOW_CONTROL_QUEUE_SIZE,
            "targetLabel": _KEPT,
            "replacement": "true",
            "action": "replace",
        },
        # A fairness id and no mark; the values join with ";" (the default separator).
        {"sourceLabels": [FAIRNESS_LABEL, _KEPT], "regex": ".+;", "action": "drop"},
        {"regex": _KEPT, "action": "labeldrop"},
    ]


def picker_name(model: ModelConfig) -> str:
    """The picker's Deployment, Service, ServiceAccount, Role and ConfigMap."""
    return f"{model.name}-epp"


def picker_labels(model: ModelConfig) -> dict[str, str]:
    return {**PART_OF, PICKER_LABEL: model.name}


def picker_config(scheduler: SchedulerConfig) -> dict[str, Any]:
    """The EndpointPickerConfig (llm-d/llm-d-router@v0.10.0 apix/config/v1alpha1/
    endpointpickerconfig_types.go): the default scorers and metrics source, flow control on
    (feature gate `flowControl`, cmd/epp/runner), the utilization detector deciding
    saturation with the stack's thresholds (saturationdetector/utilization/config.go), and
    every priority band sharing its turns among its flows (FAIRNESS_POLICY)."""
    saturation = scheduler.saturation
    return {
        "apiVersion": "llm-d.ai/v1alpha1",
        "kind": "EndpointPickerConfig",
        "featureGates": ["flowControl"],
        "plugins": [
            *({"type": scorer} for scorer in _SCORERS),
            # Model servers' /metrics on the pool's target port (the chart's default-plugins.yaml).
            {"type": "metrics-data-source", "parameters": {"scheme": "http", "path": "/metrics"}},
            {"type": "core-metrics-extractor"},
            {
                "type": UTILIZATION_DETECTOR,
                "parameters": {
                    "queueDepthThreshold": saturation.queue_depth,
                    "kvCacheUtilThreshold": saturation.kv_cache_utilization,
                },
            },
            # Registered by type (llm-d/llm-d-router@v0.10.0 cmd/epp/runner/runner.go); the name
            # defaults to the type.
            {"type": FAIRNESS_POLICY},
        ],
        "schedulingProfiles": [
            {
                "name": "default",
                "plugins": [{"pluginRef": scorer, "weight": weight} for scorer, weight in _SCORERS.items()],
            }
        ],
        # Priority bands come from the InferenceObjectives (one per tier; llm-d/llm-d-router@v0.10.0
        # registry/registry.go); a request waits in its band at most the queue timeout, then
        # gets 429, or 503 if the pool has no endpoint (requestcontrol/admission.go,
        # pkg/common/error/error.go).
        "flowControl": {
            "defaultRequestTTL": scheduler.queue_timeout,
            "saturationDetector": {"pluginRef": UTILIZATION_DETECTOR},
            # The template of every band: band 0 is a copy of it and the tiers' bands are made
            # from it when their objectives appear (llm-d/llm-d-router@v0.10.0 registry/config.go
            # NewConfig, registry/registry.go provisionPriorityBandLocked;
            # config/loader/flowcontrol.go
            # resolves the ref among the plugins above). Its priority is overwritten per band.
            "defaultPriorityBand": {"fairnessPolicyRef": FAIRNESS_POLICY},
        },
    }


@dataclass(frozen=True, kw_only=True)
class EndpointPickerArgs:
    model: ModelConfig
    scheduler: SchedulerConfig
    namespace: Namespace
    flavour: Flavour
    # The model's pods, as KServe labels them, and the port they serve (and export metrics) on.
    model_pods: dict[str, str]
    model_port: int
    # Who calls the picker (the gateway's pods) and who scrapes it (Prometheus, if any).
    callers: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs]
    scrapers: Sequence[k8s.networking.v1.NetworkPolicyPeerArgs] = ()
    # The InferencePool and InferenceObjective CRDs, and Istio.
    after: Sequence[pulumi.Resource] = ()


class EndpointPicker(pulumi.ComponentResource):
    """The model's InferencePool (its pods, its port, its picker) and the picker: a Deployment
    reading the pool, the objectives and the pods with a read-only Role, its Service, the
    DestinationRule that lets the gateway speak TLS to it, and its doors."""

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:models:EndpointPicker"
    # The InferencePool, named like the model: what the model's route sends requests to.
    pool: pulumi.Resource
    pool_name: str

    def __init__(self, name: str, args: EndpointPickerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        model = args.model
        picker = picker_name(model)
        labels = picker_labels(model)
        metadata = k8s.meta.v1.ObjectMetaArgs(name=picker, namespace=args.namespace.output, labels=labels)
        after = pulumi.ResourceOptions(parent=self, depends_on=list(args.after))
        self.pool_name = model.name
        self.pool = k8s.apiextensions.CustomResource(
            f"{name}-pool",
            api_version=POOL_API_VERSION,
            kind="InferencePool",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=self.pool_name, namespace=args.namespace.output, labels=PART_OF
            ),
            spec={
                "selector": {"matchLabels": args.model_pods},
                "targetPorts": [{"number": args.model_port}],
                # FailClose (the API's default, spelled out): without its picker no request
                # bypasses the priorities (kubernetes-sigs/gateway-api-inference-extension@v1.6.0
                # api/v1/inferencepool_types.go EndpointPickerFailureMode).
                "endpointPickerRef": {
                    "name": picker,
                    "port": {"number": PORTS[GRPC]},
                    "failureMode": "FailClose",
                },
            },
            opts=after,
        )
        account = k8s.core.v1.ServiceAccount(f"{name}-account", metadata=metadata, opts=after)
        role = k8s.rbac.v1.Role(
            f"{name}-role",
            metadata=metadata,
            # What the chart grants (llm-d/llm-d-router@v0.10.0 config/charts/llm-d-router-gateway/
            # templates/rbac.yaml, routerlib _rbac.yaml) for the groups we install: reading, in
            # this namespace only.
            rules=[
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[""], resources=["pods"], verbs=["get", "watch", "list"]
                ),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=[POOL_GROUP], resources=["inferencepools"], verbs=["get", "watch", "list"]
                ),
                k8s.rbac.v1.PolicyRuleArgs(
                    api_groups=["llm-d.ai"],
                    resources=["inferenceobjectives", "inferencemodelrewrites"],
                    verbs=["get", "watch", "list"],
                ),
            ],
            opts=after,
        )
        binding = k8s.rbac.v1.RoleBinding(
            f"{name}-binding",
            metadata=metadata,
            role_ref=k8s.rbac.v1.RoleRefArgs(api_group="rbac.authorization.k8s.io", kind="Role", name=picker),
            subjects=[
                k8s.rbac.v1.SubjectArgs(kind="ServiceAccount", name=picker, namespace=args.namespace.name)
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role, account]),
        )
        text = yaml.safe_dump(picker_config(args.scheduler), sort_keys=False)
        config = k8s.core.v1.ConfigMap(
            f"{name}-config", metadata=metadata, data={CONFIG_FILE: text}, opts=after
        )
        deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata=k8s.meta.v1.ObjectMetaArgs(
                name=picker,
                namespace=args.namespace.output,
                labels=labels,
                annotations={"checkov.io/skip1": f"CKV_K8S_38={_TOKEN_REASON}"},
            ),
            spec=k8s.apps.v1.DeploymentSpecArgs(
                # Active-active (the chart's mode with ha-enable-leader-election off,
                # llm-d/llm-d-router@v0.10.0 config/charts/README.md): all ready, so losing one
                # leaves the others serving every call, refusals' included. Why not leader
                # election: docs/architecture.md.
                replicas=args.scheduler.replicas,
                # A new picker is ready before an old one goes: none is missing on an update.
                strategy=k8s.apps.v1.DeploymentStrategyArgs(
                    type="RollingUpdate",
                    rolling_update=k8s.apps.v1.RollingUpdateDeploymentArgs(max_unavailable=0, max_surge=1),
                ),
                selector=k8s.meta.v1.LabelSelectorArgs(match_labels=labels),
                template=k8s.core.v1.PodTemplateSpecArgs(
                    metadata=k8s.meta.v1.ObjectMetaArgs(
                        labels=labels, annotations={CONFIG_ANNOTATION: _digest(text)}
                    ),
                    spec=_pod(picker, args),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.pool, binding, config]),
        )
        service = k8s.core.v1.Service(
            f"{name}-service",
            metadata=metadata,
            spec=k8s.core.v1.ServiceSpecArgs(
                selector=labels,
                ports=[
                    # h2c: Istio treats the port as HTTP/2, which gRPC needs (istio/istio@1.30.3
                    # pkg/config/kube/conversion.go; the chart's _service.yaml).
                    k8s.core.v1.ServicePortArgs(
                        name="grpc-ext-proc",
                        port=PORTS[GRPC],
                        target_port=GRPC,
                        app_protocol="kubernetes.io/h2c",
                    ),
                    k8s.core.v1.ServicePortArgs(
                        name="http-metrics", port=PORTS[METRICS], target_port=METRICS
                    ),
                ],
            ),
            opts=after,
        )
        # The picker serves TLS with a certificate it makes itself at start
        # (llm-d/llm-d-router@v0.10.0 pkg/epp/server/runserver.go); Istio sets up no TLS to it (nothing in
        # istio/istio@1.30.3 pilot/pkg/networking does), so the gateway is told to, as the chart's istio.yaml
        # does. Its door admits only the gateway's pods.
        tls = k8s.apiextensions.CustomResource(
            f"{name}-tls",
            api_version="networking.istio.io/v1",
            kind="DestinationRule",
            metadata=metadata,
            spec={
                "host": f"{picker}.{args.namespace.name}.svc.cluster.local",
                "trafficPolicy": {"tls": {"mode": "SIMPLE", "insecureSkipVerify": True}},
            },
            opts=after,
        )
        workload = upstream.Workload(
            labels=labels, ports=dict(PORTS), source="components/serving/endpoint_picker.py (ours)"
        )
        wanted = [network.Door(picker, workload, (GRPC,), list(args.callers))]
        if args.scrapers:
            wanted.append(network.Door(f"{picker}-metrics", workload, (METRICS,), list(args.scrapers)))
        doors = network.doors(name, args.namespace.output, wanted, self)
        self.register_outputs(
            {
                "pool": self.pool,
                "poolName": self.pool_name,
                "serviceAccount": account,
                "role": role,
                "roleBinding": binding,
                "config": config,
                "deployment": deployment,
                "service": service,
                "destinationRule": tls,
                "networkPolicies": doors,
            }
        )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _pod(picker: str, args: EndpointPickerArgs) -> k8s.core.v1.PodSpecArgs:
    """The picker as the chart runs it (_deployment.yaml: args, env, gRPC probes), under Pod
    Security "restricted" with a read-only root; it keeps its token, to read the pool."""
    health = k8s.core.v1.GRPCActionArgs(port=PORTS[HEALTH], service=upstream.ENDPOINT_PICKER_HEALTH_SERVICE)
    resources = args.scheduler.resources
    return k8s.core.v1.PodSpecArgs(
        service_account_name=picker,
        security_context=args.flavour.pod_security(PICKER_UID),
        # The chart's grace: in-flight streams drain (--drain-timeout 30s by default).
        termination_grace_period_seconds=130,
        containers=[
            k8s.core.v1.ContainerArgs(
                name="epp",
                image=versions.ENDPOINT_PICKER_IMAGE,
                # A tag, not yet a digest (docs/unverified.md): pull what it names now.
                image_pull_policy="Always",
                # Flags: llm-d/llm-d-router@v0.10.0 pkg/epp/server/options.go AddFlags; --zap-encoder from
                # controller-runtime, bound in pkg/common/observability/logging/options.go.
                args=[
                    f"--pool-name={args.model.name}",
                    f"--pool-namespace={args.namespace.name}",
                    f"--pool-group={POOL_GROUP}",
                    f"--config-file={CONFIG_DIR}/{CONFIG_FILE}",
                    f"--grpc-port={PORTS[GRPC]}",
                    f"--grpc-health-port={PORTS[HEALTH]}",
                    f"--metrics-port={PORTS[METRICS]}",
                    "--zap-encoder=json",
                    "--tracing=false",
                    # Prometheus scrapes without a token; only it reaches the port (its door).
                    "--metrics-endpoint-auth=false",
                    "--enable-pprof=false",
                ],
                env=[
                    k8s.core.v1.EnvVarArgs(
                        name="NAMESPACE",
                        value_from=k8s.core.v1.EnvVarSourceArgs(
                            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="metadata.namespace")
                        ),
                    ),
                    k8s.core.v1.EnvVarArgs(
                        name="POD_NAME",
                        value_from=k8s.core.v1.EnvVarSourceArgs(
                            field_ref=k8s.core.v1.ObjectFieldSelectorArgs(field_path="metadata.name")
                        ),
                    ),
                ],
                ports=[
                    k8s.core.v1.ContainerPortArgs(name=port, container_port=number, protocol="TCP")
                    for port, number in PORTS.items()
                ],
                liveness_probe=k8s.core.v1.ProbeArgs(grpc=health, initial_delay_seconds=5, period_seconds=10),
                readiness_probe=k8s.core.v1.ProbeArgs(grpc=health, period_seconds=2),
                resources=k8s.core.v1.ResourceRequirementsArgs(
                    requests=dict(resources.requests), limits=dict(resources.limits)
                ),
                security_context=restricted_container(),
                volume_mounts=[
                    k8s.core.v1.VolumeMountArgs(name="config", mount_path=CONFIG_DIR, read_only=True),
                    k8s.core.v1.VolumeMountArgs(name="scratch", mount_path="/tmp"),
                ],
            )
        ],
        volumes=[
            k8s.core.v1.VolumeArgs(
                name="config", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=picker)
            ),
            k8s.core.v1.VolumeArgs(
                name="scratch", empty_dir=k8s.core.v1.EmptyDirVolumeSourceArgs(size_limit="64Mi")
            ),
        ],
    )
