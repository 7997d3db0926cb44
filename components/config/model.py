"""Every key of the stack's configuration and its default, in one typed model.

Every key lives under the `maas:` namespace of a `Pulumi.<stack>.yaml`. Defaults live
here and nowhere else; stack files hold only what differs between stacks. The loader
(`loader.py`) reads and validates it before any resource is declared.
"""

from __future__ import annotations

import itertools
import json
import typing
import urllib.parse

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from components.config.types import (
    Currency,
    DnsLabel,
    DnsName,
    PositiveInt,
    PrometheusDuration,
    Quantities,
    Quantity,
    Section,
    ServedName,
    Window,
    no_repeats,
    prometheus_seconds,
    window_seconds,
)
from components.names import KEYCLOAK_NAMESPACE, OPENSHIFT_CERT_MANAGER_NAMESPACE

# The Pulumi config namespace every key lives under (`maas:<key>`), not a Kubernetes namespace.
NAMESPACE = "maas"
# Keys whose values are credentials: accepted only as Pulumi secrets (`config set --secret`).
SECRET_KEYS = ("huggingFaceToken", "limitadorRedisUrl")
# 63 - len("keda-hpa-") - len("-predictor")
_SCALED_NAME_MAX = 44
# 63 - len("-epp"): a pooled model's endpoint picker Service is <name>-epp.
_POOLED_NAME_MAX = 59
# The Keycloak group whose members administer every key (components/access/tiers.py ADMIN_GROUP),
# and the one of the stack file's users (components/access/realm.py): no tier may take either name.
KEY_ADMIN_GROUP = "maas-admins"
STACK_USERS_GROUP = "maas-stack-users"
# Where KServe's storage initializer can fetch model weights from.
_MODEL_SOURCES = ("hf://", "s3://", "gs://", "pvc://", "oci://", "https://")


Footprint = typing.Literal["standard", "small"]


class ClusterConfig(Section):
    context: str = Field(min_length=1, description="kubeconfig context to deploy to")
    kubeconfig: str | None = Field(
        default=None,
        description="path to a kubeconfig file; default: $KUBECONFIG or ~/.kube/config",
    )
    # What the platform's own pods request (components/platform/footprint.py): `small` for
    # one 4-CPU node, as kind on a GitHub runner.
    footprint: Footprint = "standard"


class Namespaces(Section):
    models: DnsLabel = "llm"
    observability: DnsLabel = "llm-observability"
    kuadrant: DnsLabel = "kuadrant-system"
    istio: DnsLabel = "istio-system"
    cert_manager: DnsLabel = "cert-manager"
    kserve: DnsLabel = "kserve"
    # KEDA, installed when a model scales on its queue.
    keda: DnsLabel = "keda"

    @model_validator(mode="after")
    def _distinct(self) -> Namespaces:
        seen: dict[str, str] = {}
        for role, name in self.model_dump(by_alias=True).items():
            if name in seen:
                raise ValueError(
                    f"'{role}' and '{seen[name]}' both use namespace '{name}': "
                    "give each layer its own namespace"
                )
            seen[name] = role
        return self


class HttpsConfig(Section):
    enabled: bool = False
    # A ClusterIssuer to sign the gateway's certificate; unset: a self-signed Issuer (trials
    # only: clients must be given its certificate).
    issuer: DnsName | None = None
    # HTTPS only: no plain-HTTP listener, so keys and tokens never cross a network in clear.
    only: bool = False

    @model_validator(mode="after")
    def _only_with_https(self) -> HttpsConfig:
        if self.only and not self.enabled:
            raise ValueError("only: true needs enabled: true, or the gateway would have no listener")
        return self


class GatewayConfig(Section):
    # ClusterIP: reached through `kubectl port-forward`, nothing exposed by default.
    service_type: typing.Literal["ClusterIP", "LoadBalancer", "NodePort"] = "ClusterIP"
    https: HttpsConfig = HttpsConfig()
    # The one OpenAI base URL for every model, <apiHost>.<domain>/v1: the body's `model`
    # picks the model, and GET /v1/models lists the caller's models.
    api_host: DnsLabel = "api"
    # The largest request body the gateway takes (413 above it, in OpenAI's shape): its Lua
    # filter buffers each body to route and meter it, so this is also what one request may
    # hold in the gateway's memory before authentication. 16 MiB holds a long-context prompt
    # (1M tokens of text is about 4 MB) or several base64 images; Envoy's own default is 1 MiB.
    max_request_bytes: int = Field(default=16 * 1024 * 1024, ge=64 * 1024, le=256 * 1024 * 1024)


class Toleration(Section):
    key: str
    operator: typing.Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: typing.Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class GpuConfig(Section):
    count: int = Field(default=1, ge=1)
    resource_name: str = "nvidia.com/gpu"
    node_selector: dict[str, str] = Field(default_factory=lambda: {"nvidia.com/gpu.present": "true"})
    tolerations: tuple[Toleration, ...] = (Toleration(key="nvidia.com/gpu", effect="NoSchedule"),)

    @model_validator(mode="after")
    def _pins_gpu_nodes(self) -> GpuConfig:
        if not self.node_selector:
            raise ValueError("nodeSelector must not be empty: without it a GPU pod may wait on a CPU node")
        if not self.tolerations:
            raise ValueError("tolerations must not be empty: GPU nodes are tainted, the pod must tolerate it")
        return self


class ComputeResources(Section):
    requests: Quantities = Field(default_factory=dict)
    limits: Quantities = Field(default_factory=dict)


# Documented defaults per runtime, used when a model sets no `resources`.
RUNTIME_RESOURCES = {
    "simulator": ComputeResources(
        requests={"cpu": "100m", "memory": "128Mi"}, limits={"cpu": "500m", "memory": "256Mi"}
    ),
    "vllm": ComputeResources(requests={"cpu": "2", "memory": "8Gi"}, limits={"cpu": "4", "memory": "16Gi"}),
}


class AutoscalingConfig(Section):
    """Replicas between the bounds, following the model server's queue: KServe's KEDA class
    scales on `vllm:num_requests_waiting` (which the simulator exports too), read from the
    stack's Prometheus. Scale to zero is not offered: the first request would wait for a pod."""

    min_replicas: PositiveInt = 1
    max_replicas: PositiveInt
    # Waiting requests per replica above which another replica is added.
    queue_depth: PositiveInt = 2

    @model_validator(mode="after")
    def _bounded(self) -> AutoscalingConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas {self.max_replicas} is below minReplicas {self.min_replicas}: raise maxReplicas"
            )
        return self


class SaturationConfig(Section):
    """When a pool counts as saturated, so that flow control holds requests back and serves
    higher tiers first: llm-d-router's utilization detector (llm-d/llm-d-router@v0.10.0
    saturationdetector/utilization/config.go; these are its defaults). A replica's load is the larger of its
    queue over `queueDepth` and its KV cache use over `kvCacheUtilization`; the pool's is the
    replicas' mean, and at 1 it is saturated."""

    queue_depth: PositiveInt = 5
    kv_cache_utilization: float = Field(default=0.8, gt=0, le=1)


class SchedulerConfig(Section):
    """llm-d's endpoint picker, one per model with `scheduling: pool`."""

    saturation: SaturationConfig = SaturationConfig()
    # Pickers per pooled model, each serving what the gateway sends it (docs/models.md "Scheduling
    # and tier priority": what a request gets while one is gone).
    replicas: PositiveInt = 2
    # How long a request may wait in the picker's queue before it is refused with 429
    # (flow control's defaultRequestTTL; llm-d-router's default is 60s). The only bound on that
    # wait, the same for every tier: v0.10.0 has no per-band or per-request TTL
    # (llm-d/llm-d-router@v0.10.0 pkg/epp/flowcontrol/controller/config.go DefaultRequestTTL), and nothing at
    # the gateway times a request while the picker holds it (docs/models.md "Scheduling and tier priority").
    queue_timeout: Window = "60s"
    resources: ComputeResources = ComputeResources(
        requests={"cpu": "100m", "memory": "256Mi"}, limits={"cpu": "1", "memory": "1Gi"}
    )

    @field_validator("queue_timeout")
    @classmethod
    def _bounds_the_wait(cls, value: str) -> str:
        # 0 switches the TTL off: a request would wait until its client gives up
        # (llm-d/llm-d-router@v0.10.0 apix/config/v1alpha1/endpointpickerconfig_types.go DefaultRequestTTL).
        if window_seconds(value) <= 0:
            raise ValueError(
                f"'{value}' must be above 0: it is the only bound on how long a request waits in the "
                "picker's queue (0 switches it off); e.g. 60s"
            )
        return value


def limitador_window(value: str) -> str:
    """A window Limitador can hold. Kuadrant hands Limitador whole seconds, truncated
    (Kuadrant/kuadrant-operator@v1.5.2 api/v1/ratelimitpolicy_types.go Duration.Seconds:
    int(duration.Seconds())), and a counter of 0 seconds expires as it is made, so it never
    limits (Kuadrant/limitador@v2.4.0 limitador/src/storage/atomic_expiring_value.rs value_at)."""
    seconds = window_seconds(value)
    if seconds < 1 or seconds != int(seconds):
        raise ValueError(
            f"'{value}' is not a whole number of seconds, and Limitador counts in whole seconds "
            f"(it would hold {int(seconds)}s): use a window of at least 1s in whole seconds, e.g. 1s, 90s"
        )
    return value


class Rate(Section):
    limit: PositiveInt
    window: Window

    @field_validator("window")
    @classmethod
    def _whole_seconds(cls, value: str) -> str:
        return limitador_window(value)


def _one_or_more(value: object) -> object:
    """A limit's rates: one `{limit, window}` (the form every stack had), or a list of them."""
    if isinstance(value, dict):
        return (value,)
    # A list read from the stack file: strict validation after this one takes tuples only.
    return tuple(value) if isinstance(value, list) else value


def _some_rates(rates: tuple[Rate, ...]) -> tuple[Rate, ...]:
    if not rates:
        raise ValueError("a limit needs at least one {limit, window}; an empty list would limit nothing")
    return rates


# One or more windows of one limit, all enforced at once: Kuadrant makes each rate a Limitador
# limit of its own with the limit's name, conditions and counters
# (Kuadrant/kuadrant-operator@v1.5.2 internal/controller/limitador_limits_reconciler.go
# processPolicyRules), and Limitador admits a request only if every counter that applies has
# room, updating none otherwise (Kuadrant/limitador@v2.4.0 limitador/src/storage/in_memory.rs
# check_and_update).
Rates = typing.Annotated[tuple[Rate, ...], BeforeValidator(_one_or_more), AfterValidator(_some_rates)]


def rates_problems(key: str, rates: typing.Sequence[Rate]) -> list[str]:
    """Rates of one limit that Limitador would not keep apart, or that could never bind."""
    problems = []
    seen: dict[float, int] = {}
    for index, rate in enumerate(rates):
        seconds = window_seconds(rate.window)
        if seconds in seen:
            # Limitador tells limits apart by namespace, seconds, conditions and variables, not
            # by their maximum (Kuadrant/limitador@v2.4.0 limitador/src/limit.rs PartialEq, Hash):
            # two rates of one window are one limit, and one of them is dropped.
            problems.append(
                f"{key}[{index}].window: '{rate.window}' is the window of {key}[{seen[seconds]}] too "
                f"({int(seconds)}s); Limitador keeps one limit per window: keep one of them"
            )
        else:
            seen[seconds] = index
    ordered = sorted(range(len(rates)), key=lambda i: window_seconds(rates[i].window))
    for shorter, longer in itertools.pairwise(ordered):
        same = window_seconds(rates[longer].window) == window_seconds(rates[shorter].window)
        if rates[longer].limit < rates[shorter].limit and not same:
            problems.append(
                f"{key}[{longer}].limit: {rates[longer].limit} per {rates[longer].window} is less than "
                f"{key}[{shorter}]'s {rates[shorter].limit} per {rates[shorter].window}, so the shorter "
                f"window could never bind: raise it to at least {rates[shorter].limit}, or lower "
                f"{key}[{shorter}].limit"
            )
    return problems


class ModelLimits(Section):
    """A model's own quota in one tier, in place of the tier's limits for that model: its
    requests, its tokens or both (what it leaves out follows the tier's)."""

    requests: Rates | None = None
    tokens: Rates | None = None

    @model_validator(mode="after")
    def _some_limit(self) -> ModelLimits:
        if self.requests is None and self.tokens is None:
            raise ValueError("set requests, tokens or both, or remove the tier's entry")
        return self


# What only a model with a server of its own sets (ModelConfig.served_by).
_SERVER_KEYS = ("replicas", "autoscaling", "scheduling", "resources", "args", "request_timeout")


class ModelConfig(Section):
    name: DnsLabel
    # The model answers on <host>.<domain>.
    host: DnsLabel
    runtime: typing.Literal["simulator", "vllm"]
    # Weights for vLLM, e.g. hf://Qwen/Qwen3-0.6B; the simulator has none.
    source: str | None = None
    # The `model` clients send; default: the model's name.
    served_model_name: ServedName | None = None
    replicas: PositiveInt = 1
    # Unset: `replicas`, fixed. Set: replicas follow the queue (then leave `replicas` out).
    autoscaling: AutoscalingConfig | None = None
    # How the gateway picks a replica: "service" (round robin through KServe's Service) or
    # "pool" (an InferencePool whose llm-d endpoint picker picks by load and prefix cache,
    # and under saturation serves higher tiers first).
    scheduling: typing.Literal["service", "pool"] = "service"
    resources: ComputeResources | None = None
    args: tuple[str, ...] = ()
    gpu: GpuConfig | None = None
    # vLLM on CPU is slow; it has to be asked for, it never happens by omission.
    cpu_serving: bool = False
    request_timeout: Window = "300s"
    # The tiers that may use the model (e.g. a large model for paying tiers only);
    # unset: every tier. Others get 403 with an OpenAI-shaped error.
    tiers: tuple[DnsLabel, ...] | None = None
    # Another simulator of the catalog that answers this model too (it serves every served
    # name given to it: llm-d/llm-d-inference-sim@v0.10.2 pkg/common/parser.go --served-model-name
    # takes several, pkg/llm-d-inference-sim/helpers.go isValidModel accepts each). The model
    # keeps its own name, host, route, tiers, limits and metering; it runs no pod of its own,
    # so a catalog of many names fits a small cluster. Unset: the model has its own server.
    served_by: DnsLabel | None = None
    # tier -> the model's own request and/or token limits for that tier's users, in place of
    # the tier's (e.g. an expensive model gets a smaller share); counted per user, apart
    # from the user's other models as every limit is (docs/limits.md).
    limits: dict[str, ModelLimits] = Field(default_factory=dict)

    @field_validator("tiers")
    @classmethod
    def _some_tiers(cls, tiers: tuple[str, ...] | None) -> tuple[str, ...] | None:
        if tiers is not None:
            if not tiers:
                raise ValueError("an empty list would admit nobody: list tiers, or remove the key for all")
            no_repeats(list(tiers), "tiers", "tier")
        return tiers

    @model_validator(mode="after")
    def _one_way_to_size(self) -> ModelConfig:
        if self.autoscaling is not None and self.replicas != 1:
            raise ValueError("set autoscaling.minReplicas and maxReplicas, or replicas, not both")
        # KEDA names the HPA keda-hpa-<name>-predictor and refuses one past 63 characters
        # (kedacore/keda@v2.20.2 apis/keda/v1alpha1/scaledobject_webhook.go verifyName).
        if self.autoscaling is not None and len(self.name) > _SCALED_NAME_MAX:
            raise ValueError(
                f"a model that scales on its queue has a name of at most {_SCALED_NAME_MAX} "
                f"characters (KEDA's HPA name): shorten '{self.name}'"
            )
        if self.scheduling == "pool" and len(self.name) > _POOLED_NAME_MAX:
            raise ValueError(
                f"a pooled model has a name of at most {_POOLED_NAME_MAX} characters (its endpoint "
                f"picker's Service is <name>-epp): shorten '{self.name}'"
            )
        return self

    @model_validator(mode="after")
    def _served_by_fits(self) -> ModelConfig:
        if self.served_by is None:
            return self
        if self.runtime != "simulator":
            raise ValueError(
                "servedBy names a simulator that answers this model too: runtime must be simulator"
            )
        own = [key for key in _SERVER_KEYS if key in self.model_fields_set]
        if own:
            keys = ", ".join(ModelConfig.model_fields[key].alias or key for key in own)
            raise ValueError(f"a model served by '{self.served_by}' runs no server of its own: remove {keys}")
        return self

    @model_validator(mode="after")
    def _runtime_fits(self) -> ModelConfig:
        if self.runtime == "simulator":
            if self.gpu is not None:
                raise ValueError("a simulator needs no GPU: remove its gpu block")
            if self.source is not None:
                raise ValueError("a simulator serves no weights: remove its source")
            if self.cpu_serving:
                raise ValueError("cpuServing applies to vllm models only")
        else:
            if self.source is None:
                raise ValueError("a vllm model needs a source, e.g. source: hf://Qwen/Qwen3-0.6B")
            if not self.source.startswith(_MODEL_SOURCES):
                raise ValueError(f"source '{self.source}' must start with one of {', '.join(_MODEL_SOURCES)}")
            if self.gpu is None and not self.cpu_serving:
                raise ValueError("a vllm model needs a gpu block (e.g. gpu: {count: 1}), or cpuServing: true")
            if self.gpu is not None and self.cpu_serving:
                raise ValueError("set either a gpu block or cpuServing: true, not both")
        return self

    @property
    def served_name(self) -> str:
        return self.served_model_name or self.name

    def own_rates(self, tier: str, kind: typing.Literal["requests", "tokens"]) -> tuple[Rate, ...] | None:
        """The model's own `kind` limit in `tier`, None where it follows the tier's."""
        entry = self.limits.get(tier)
        return getattr(entry, kind) if entry is not None else None

    def admits(self, tier: str) -> bool:
        """Whether callers of `tier` may use the model: the one table the access rules and
        each tier's model list are both compiled from."""
        return self.tiers is None or tier in self.tiers

    @property
    def compute(self) -> ComputeResources:
        return self.resources or RUNTIME_RESOURCES[self.runtime]


# What one request may ask a model to generate when a tier does not say: tokens
# (max_tokens, max_completion_tokens) and choices (n).
DEFAULT_MAX_TOKENS = 4096
DEFAULT_MAX_CHOICES = 1


class TierKeys(Section):
    """What a tier's users may mint from the key service (components/access/self_service.py):
    live keys at once, and how long one lives at most (a request for longer is refused, none
    gets this). A user whose tier shrinks `maxKeys` keeps their keys but mints no more."""

    max_keys: int = Field(default=5, ge=1, le=100)
    # Every key expires: a production stack (policies/maas_policies/keys.py) refuses a tier
    # the service would mint keys for without a lifetime.
    max_lifetime_days: int = Field(default=90, ge=1, le=3650)


class TierConfig(Section):
    """A tier: how many requests and how many tokens (usage.total_tokens) a user may spend,
    and what one request may ask for (enforced at the gateway after authentication: a larger
    max_tokens, max_completion_tokens or n is refused, a missing max_tokens is filled in).
    The token limit is checked before a request and charged after it, and a stream cut
    before its end is not charged at all, so these caps bound what one request can take
    beyond the budget (docs/metering.md)."""

    name: DnsLabel
    requests: Rates
    tokens: Rates
    description: str = ""
    max_tokens: PositiveInt = DEFAULT_MAX_TOKENS
    max_choices: PositiveInt = DEFAULT_MAX_CHOICES
    keys: TierKeys = TierKeys()

    @property
    def shortest_requests(self) -> Rate:
        """The request rate of the shortest window: the one a burst meets first."""
        return min(self.requests, key=lambda rate: window_seconds(rate.window))

    @property
    def shortest_tokens(self) -> Rate:
        return min(self.tokens, key=lambda rate: window_seconds(rate.window))


def _tier(name: str, requests: int, tokens: int, max_tokens: int, description: str) -> TierConfig:
    return TierConfig(
        name=name,
        requests=(Rate(limit=requests, window="2m"),),
        tokens=(Rate(limit=tokens, window="1m"),),
        description=description,
        maxTokens=max_tokens,
    )


# The default tier table, lowest tier first; a stack's `maas:tiers` replaces it whole.
DEFAULT_TIERS = (
    _tier("free", 5, 10_000, 1024, "Try it out"),
    _tier("premium", 20, 50_000, DEFAULT_MAX_TOKENS, "Teams building on the platform"),
    _tier("enterprise", 100, 200_000, 8192, "Production workloads"),
)


class UserConfig(Section):
    name: DnsLabel
    tier: DnsLabel
    # Raise it to rotate the user's API key on the next `pulumi up`.
    key_version: PositiveInt = 1


class OidcConfig(Section):
    """Keycloak as a second way in: a user's Bearer token, the tier from the user's group."""

    enabled: bool = False
    realm: DnsLabel = "maas"
    # A public client: users get tokens with the password grant (no client secret to hand out).
    client_id: DnsLabel = "maas-cli"
    # Where browsers reach the realm (its login pages, and the issuer its tokens carry):
    # scheme, host and port, no path. Default: the shared host as users reach the gateway
    # (https://api.<domain>:8000 through kind's port-forward), which routes the realm there;
    # set it when users reach the gateway another way, e.g. https://api.example.com behind a
    # load balancer. Authorino and the key service reach Keycloak in-cluster either way.
    hostname: str | None = None
    database_storage: Quantity = "5Gi"
    storage_class: str | None = None

    @field_validator("hostname")
    @classmethod
    def _an_origin(cls, value: str | None) -> str | None:
        if value is None:
            return value
        url = urllib.parse.urlsplit(value.removesuffix("/"))
        if url.scheme not in ("http", "https") or not url.hostname or url.path or url.query or url.fragment:
            raise ValueError(
                f"'{value}' must be an http(s) origin, scheme, host and port with no path, "
                "as browsers reach the gateway, e.g. https://api.example.com"
            )
        return value.removesuffix("/")


class AuthConfig(Section):
    api_keys: bool = True
    oidc: OidcConfig = OidcConfig()

    @model_validator(mode="after")
    def _some_way_in(self) -> AuthConfig:
        if not self.api_keys and not self.oidc.enabled:
            raise ValueError("enable apiKeys, oidc.enabled or both: with neither nobody can call a model")
        return self


class KeyServiceConfig(Section):
    """The self-service key service (components/access/self_service.py, docs/access.md "Self-service
    keys"): users mint, list and revoke their own API keys after logging in with Keycloak.
    Unset `enabled`: on exactly when OIDC is (it knows users by their token)."""

    enabled: bool | None = None
    # It serves requests: two, so one may go (a rollout, a node drain) while keys are minted.
    replicas: int = Field(default=2, ge=1, le=10)
    # How often expired keys are revoked: an expired key is refused at most this (plus the
    # watch latency of Authorino) after it expires.
    sweep_interval: Window = "30s"
    # How often each tier group's members are read from Keycloak: a user moved to another
    # group gets that tier on their keys at most this (plus the watch latency) later.
    tier_sync_interval: Window = "60s"
    # How long a revoked key's record (its tombstone, the audit trail) is kept.
    audit_retention_days: int = Field(default=90, ge=1, le=3650)
    # Per user, enforced by Kuadrant on the service's route (self_service.py rate_limit_spec):
    # each mint writes a Secret every Authorino replica watches and holds, so churn (mint,
    # revoke, mint) is bounded apart from the live-key cap; every call of its API, mints too.
    # Mints above the default cap (5): a user fills it in one window and meets the cap's 403.
    mints: Rates = (Rate(limit=10, window="1m"),)
    calls: Rates = (Rate(limit=120, window="1m"),)
    # An idle standard-library server: small requests, so two fit a kind node beside the rest.
    resources: ComputeResources = ComputeResources(
        requests={"cpu": "10m", "memory": "48Mi"}, limits={"cpu": "500m", "memory": "256Mi"}
    )

    @field_validator("sweep_interval", "tier_sync_interval")
    @classmethod
    def _bounded_interval(cls, value: str) -> str:
        if not 1 <= window_seconds(value) <= 3600:
            raise ValueError(
                f"'{value}' must be between 1s and 1h: it bounds how late an expired key or a group "
                "change takes effect; e.g. 30s"
            )
        return value


class LimitadorConfig(Section):
    replicas: PositiveInt = 1
    # memory: counters live in the pod (lost on restart); redis: shared by every replica and
    # kept across restarts, in a Redis this program deploys, or at maas:limitadorRedisUrl.
    storage: typing.Literal["memory", "redis"] = "memory"
    # The deployed Redis's volume (with storage: redis and no maas:limitadorRedisUrl).
    redis_storage: Quantity = "1Gi"
    redis_storage_class: str | None = None
    # What a request gets while Limitador cannot answer: open, it passes unlimited and unmetered
    # (Kuadrant's default, for availability); closed, it fails (500). Authorino always fails
    # closed.
    failure_mode: typing.Literal["open", "closed"] = "open"

    @model_validator(mode="after")
    def _shared_counters(self) -> LimitadorConfig:
        if self.replicas > 1 and self.storage != "redis":
            raise ValueError(
                f"{self.replicas} replicas with in-memory counters would split every limit between "
                "pods: set storage: redis, or replicas: 1"
            )
        return self


class ObservabilityConfig(Section):
    """Prometheus (operator), Grafana and Alertmanager from kube-prometheus-stack; on
    OpenShift, the cluster's user-workload monitoring instead (only `enabled` applies)."""

    enabled: bool = True
    retention: PrometheusDuration = "1d"
    # A persistent volume of this size for Prometheus; unset: an emptyDir (kind, dev).
    storage: Quantity | None = None
    storage_class: str | None = None
    prometheus_resources: ComputeResources = ComputeResources(
        requests={"cpu": "200m", "memory": "512Mi"}, limits={"cpu": "1", "memory": "2Gi"}
    )


class OpenShiftConfig(Section):
    """How the OpenShift flavour installs operators: OLM subscriptions, each pinned by channel
    and starting CSV (components/pins/versions.py OLM_*). Read only with maas:flavour openshift."""

    # Automatic: OLM installs the starting CSV, then follows the channel's updates. Manual: OLM
    # waits until someone approves each InstallPlan, the first one too (`oc patch installplan
    # <name> -n <namespace> --type merge -p '{"spec":{"approved":true}}'`), and `pulumi up`
    # waits with it; the platform then stays at the starting CSV until you approve more.
    approval: typing.Literal["Automatic", "Manual"] = "Automatic"
    # Kuadrant from the community operator's catalog, or Red Hat Connectivity Link from
    # redhat-operators (a subscription).
    kuadrant: typing.Literal["community", "rhcl"] = "community"


class Price(Section):
    per_request: float = Field(default=0.0, ge=0)
    per_thousand_tokens: float = Field(default=0.0, ge=0)


class Budget(Section):
    """At most `amount` of the price table's currency per `window` (docs/metering.md
    "Budgets"): alerted on, and stopped by a request cap where the tier's prices make one
    exact (components/access/tiers.py budget_caps)."""

    amount: float = Field(gt=0)
    # A window a limit could have too: an exact budget is a cap Limitador holds.
    window: Window
    # Optional; when given it must be the price table's (maas:prices.currency).
    currency: Currency | None = None

    @field_validator("window")
    @classmethod
    def _whole_seconds(cls, value: str) -> str:
        return limitador_window(value)


# The fractions of a budget spent at which an alert fires (each alert while spend is between
# its fraction and the next).
DEFAULT_BUDGET_ALERTS = (0.5, 0.8, 1.0)


class BudgetsConfig(Section):
    # tier -> what each of its users may spend (as the tier's limits are per user)
    tiers: dict[str, tuple[Budget, ...]] = Field(default_factory=dict)
    # user -> the user's own budgets, in place of its tier's
    users: dict[str, tuple[Budget, ...]] = Field(default_factory=dict)
    alert_at: tuple[float, ...] = DEFAULT_BUDGET_ALERTS

    @field_validator("alert_at")
    @classmethod
    def _fractions(cls, fractions: tuple[float, ...]) -> tuple[float, ...]:
        if not fractions:
            raise ValueError("list at least one fraction, e.g. [0.5, 0.8, 1.0], or remove the key")
        for index, fraction in enumerate(fractions):
            if fraction <= 0:
                raise ValueError(
                    f"entry {index} ({fraction:g}) must be above 0, e.g. 0.5 for half the budget"
                )
        no_repeats([str(f) for f in fractions], "alertAt", "fraction")
        return tuple(sorted(fractions))

    def entries(self) -> list[tuple[str, str, Budget]]:
        """(kind, name, budget) of every budget: ("tier", tier, …) and ("user", user, …)."""
        return [
            *((("tier", name, b) for name, budgets in self.tiers.items() for b in budgets)),
            *((("user", name, b) for name, budgets in self.users.items() for b in budgets)),
        ]


class PricesConfig(Section):
    """What usage costs, per tier, optionally per model and tier. Unpriced usage costs 0."""

    currency: Currency = "USD"
    tiers: dict[str, Price] = Field(default_factory=dict)
    # model name -> tier -> price, overriding the tier's price for that model
    models: dict[str, dict[str, Price]] = Field(default_factory=dict)
    budgets: BudgetsConfig = BudgetsConfig()

    def price(self, tier: str, model: str) -> Price:
        return self.models.get(model, {}).get(tier) or self.tiers.get(tier) or Price()

    def paying(self, tiers: typing.Sequence[str]) -> list[str]:
        """The tiers, in table order, whose usage has a price somewhere."""
        prices = [
            *self.tiers.items(),
            *(entry for by_tier in self.models.values() for entry in by_tier.items()),
        ]
        priced = {tier for tier, price in prices if price.per_request > 0 or price.per_thousand_tokens > 0}
        return [tier for tier in tiers if tier in priced]


def _default_models() -> tuple[ModelConfig, ...]:
    """The default catalog: the OpenAI-compatible simulator, which needs no GPU."""
    simulator = {
        "name": "simulator",
        "host": "simulator",
        "runtime": "simulator",
        "servedModelName": "simulator-model",
    }
    return (ModelConfig.model_validate_json(json.dumps(simulator)),)


class StackConfig(Section):
    cluster: ClusterConfig
    # How the platform is installed and exposed (components/flavour/): Helm
    # charts and Services on any conformant cluster; or OpenShift (docs/openshift.md): operators from OLM,
    # Routes on the apps domain (maas:domain), no fixed user ids, user-workload monitoring.
    flavour: typing.Literal["kubernetes", "openshift"] = "kubernetes"
    openshift: OpenShiftConfig = OpenShiftConfig()
    domain: DnsName = "maas.local"
    namespaces: Namespaces = Namespaces()
    gateway: GatewayConfig = GatewayConfig()
    models: tuple[ModelConfig, ...] = Field(default_factory=_default_models)
    # Read by KServe's storage initializer for gated Hugging Face models; set it with
    # `scripts/pulumi.sh config set --secret maas:huggingFaceToken ... --stack gpu`.
    hugging_face_token: str | None = None
    tiers: tuple[TierConfig, ...] = DEFAULT_TIERS
    users: tuple[UserConfig, ...] = ()
    auth: AuthConfig = AuthConfig()
    limitador: LimitadorConfig = LimitadorConfig()
    # redis://[user:password@]host:port of a Redis of your own, for limitador.storage: redis
    # (else the program deploys one); a secret.
    limitador_redis_url: str | None = None
    observability: ObservabilityConfig = ObservabilityConfig()
    prices: PricesConfig = PricesConfig()
    # The endpoint picker of pooled models (maas:models[].scheduling: pool).
    scheduler: SchedulerConfig = SchedulerConfig()
    key_service: KeyServiceConfig = KeyServiceConfig()

    @field_validator("tiers")
    @classmethod
    def _tiers_distinct(cls, tiers: tuple[TierConfig, ...]) -> tuple[TierConfig, ...]:
        if not tiers:
            raise ValueError(
                "the tier table is empty: list at least one tier, or remove the key for the default"
            )
        no_repeats([t.name for t in tiers], "tiers", "tier name")
        return tiers

    @field_validator("users")
    @classmethod
    def _users_distinct(cls, users: tuple[UserConfig, ...]) -> tuple[UserConfig, ...]:
        no_repeats([u.name for u in users], "users", "user name")
        return users

    def cross_problems(self) -> list[str]:
        """Problems that span sections; each names the key to fix."""
        problems = []
        tiers = [t.name for t in self.tiers]
        if not self.users and not self.auth.oidc.enabled:
            problems.append(
                f"{NAMESPACE}:users: no users and maas:auth.oidc.enabled is false, so nobody could "
                "get a key or a token to call a model; list at least one user ({name: alice, "
                "tier: free}) or enable OIDC"
            )
        for index, user in enumerate(self.users):
            if user.tier not in tiers:
                problems.append(
                    f"{NAMESPACE}:users[{index}] (name: {user.name}).tier: '{user.tier}' is not a tier "
                    f"of maas:tiers ({', '.join(tiers)})"
                )
        if self.auth.oidc.enabled:
            # Keycloak's default user profile: usernames of 3 to 255 characters
            # (keycloak-default-user-profile.json); the user sync could not create a shorter one.
            problems.extend(
                f"{NAMESPACE}:users[{index}].name: '{user.name}' is shorter than the 3 characters "
                "Keycloak requires of a username; give the user a longer name"
                for index, user in enumerate(self.users)
                if len(user.name) < 3
            )
        for index, entry in enumerate(self.models):
            problems.extend(
                f"{NAMESPACE}:models[{index}].tiers[{position}]: '{tier}' is not a tier of maas:tiers "
                f"({', '.join(tiers)})"
                for position, tier in enumerate(entry.tiers or ())
                if tier not in tiers
            )
        problems.extend(
            f"{NAMESPACE}:models[{index}].host: '{entry.host}' is maas:gateway.apiHost, the shared "
            "host of every model; give the model another host"
            for index, entry in enumerate(self.models)
            if entry.host == self.gateway.api_host
        )
        if not self.observability.enabled:
            problems.extend(
                f"{NAMESPACE}:models[{index}].autoscaling: the queue it follows is read from the "
                "stack's Prometheus; enable maas:observability or remove autoscaling"
                for index, entry in enumerate(self.models)
                if entry.autoscaling is not None
            )
        problems.extend(self._key_service_problems())
        problems.extend(self._served_by_problems())
        problems.extend(self._flavour_problems())
        for index, table in enumerate(self.tiers):
            for kind in ("requests", "tokens"):
                key = f"{NAMESPACE}:tiers[{index}] (name: {table.name}).{kind}"
                problems.extend(rates_problems(key, getattr(table, kind)))
        problems.extend(self._model_limits_problems())
        redis = self.limitador.storage == "redis"
        if not redis and self.limitador_redis_url is not None:
            problems.append(f"{NAMESPACE}:limitadorRedisUrl: set, but limitador.storage is not redis")
        models = [m.name for m in self.models]
        for tier in self.prices.tiers:
            if tier not in tiers:
                problems.append(
                    f"{NAMESPACE}:prices.tiers.{tier}: no such tier in maas:tiers ({', '.join(tiers)})"
                )
        problems.extend(self._budget_problems())
        for model, by_tier in self.prices.models.items():
            if model not in models:
                problems.append(
                    f"{NAMESPACE}:prices.models.{model}: no such model in maas:models ({', '.join(models)})"
                )
            problems.extend(
                f"{NAMESPACE}:prices.models.{model}.{tier}: no such tier in maas:tiers ({', '.join(tiers)})"
                for tier in by_tier
                if tier not in tiers
            )
        return problems

    def _model_limits_problems(self) -> list[str]:
        """A model's own limits name a tier of the table that may use the model."""
        tiers = self.tier_names
        problems = []
        for index, entry in enumerate(self.models):
            for tier, own in entry.limits.items():
                key = f"{NAMESPACE}:models[{index}] (name: {entry.name}).limits.{tier}"
                if tier not in tiers:
                    problems.append(f"{key}: '{tier}' is not a tier of maas:tiers ({', '.join(tiers)})")
                elif not entry.admits(tier):
                    problems.append(
                        f"{key}: the model's tiers leave '{tier}' out, so the quota would limit nobody: "
                        f"add '{tier}' to maas:models[{index}].tiers or remove the quota"
                    )
                for kind in ("requests", "tokens"):
                    rates = getattr(own, kind)
                    problems.extend(rates_problems(f"{key}.{kind}", rates or ()))
        return problems

    def _budget_problems(self) -> list[str]:
        """A budget names a tier or user of the stack, is in the price table's currency, is
        for usage with a price, and its window is one the stack's Prometheus keeps."""
        budgets = self.prices.budgets
        problems = []
        users = {u.name: u.tier for u in self.users}
        paying = set(self.prices.paying(self.tier_names))
        retention = prometheus_seconds(self.observability.retention)
        for kind, entries, known in (
            ("tiers", budgets.tiers, self.tier_names),
            ("users", budgets.users, users),
        ):
            for name, listed in entries.items():
                key = f"{NAMESPACE}:prices.budgets.{kind}.{name}"
                if name not in known:
                    where = "maas:tiers" if kind == "tiers" else "maas:users"
                    problems.append(f"{key}: '{name}' is not in {where}; remove the budget or add it there")
                    continue
                tier = name if kind == "tiers" else users[name]
                if tier not in paying:
                    problems.append(
                        f"{key}: tier '{tier}' has no price in maas:prices, so nothing is ever spent "
                        "against the budget: price its usage or remove the budget"
                    )
                seen: dict[float, int] = {}
                for index, budget in enumerate(listed):
                    at = f"{key}[{index}]"
                    if budget.currency is not None and budget.currency != self.prices.currency:
                        problems.append(
                            f"{at}.currency: {budget.currency}, but the price table is in "
                            f"{self.prices.currency} (maas:prices.currency): state the budget in "
                            f"{self.prices.currency} or remove its currency"
                        )
                    seconds = window_seconds(budget.window)
                    if seconds in seen:
                        problems.append(
                            f"{at}.window: '{budget.window}' is the window of {key}[{seen[seconds]}] too"
                        )
                    seen.setdefault(seconds, index)
                    if not self.observability.enabled:
                        problems.append(
                            f"{at}: budgets are summed by the stack's Prometheus; enable maas:observability "
                            "or remove the budget"
                        )
                    elif seconds > retention and self.flavour == "kubernetes":
                        # On OpenShift, user-workload monitoring keeps its own retention.
                        kept = self.observability.retention
                        problems.append(
                            f"{at}.window: '{budget.window}' is longer than the {kept} Prometheus keeps "
                            "(maas:observability.retention), so its spend could not be summed: raise "
                            "the retention or shorten the window"
                        )
        return problems

    def _key_service_problems(self) -> list[str]:
        """The key service knows users by their Keycloak token and hands out API keys."""
        reserved = {STACK_USERS_GROUP: "the realm's group of stack-file users"}
        if self.key_service_on:
            reserved[KEY_ADMIN_GROUP] = "the realm's group of key administrators"
        problems = [
            f"{NAMESPACE}:tiers[{index}].name: '{tier.name}' is {reserved[tier.name]}; "
            "give the tier another name"
            for index, tier in enumerate(self.tiers)
            if self.auth.oidc.enabled and tier.name in reserved
        ]
        for limit in ("mints", "calls"):
            problems.extend(
                rates_problems(f"{NAMESPACE}:keyService.{limit}", getattr(self.key_service, limit))
            )
        if self.key_service.enabled is not True:
            return problems
        key = f"{NAMESPACE}:keyService.enabled"
        if not self.auth.oidc.enabled:
            problems.append(
                f"{key}: the key service knows users by their Keycloak token, and maas:auth.oidc.enabled "
                "is false; enable OIDC, or remove the key"
            )
        if not self.auth.api_keys:
            problems.append(
                f"{key}: the keys it mints would be refused, maas:auth.apiKeys is false; set apiKeys: "
                "true, or remove the key"
            )
        return problems

    @property
    def key_service_on(self) -> bool:
        """Whether the key service runs: as configured, else exactly when OIDC is on."""
        if self.key_service.enabled is None:
            return self.auth.oidc.enabled and self.auth.api_keys
        return self.key_service.enabled

    def _served_by_problems(self) -> list[str]:
        """A model served by another names a simulator of the catalog with a server of its own,
        reached through KServe's Service (a pool's picker and objectives are its own model's)."""
        by_name = {m.name: m for m in self.models}
        problems = []
        for index, entry in enumerate(self.models):
            server = by_name.get(entry.served_by) if entry.served_by else None
            if entry.served_by is None:
                continue
            key = f"{NAMESPACE}:models[{index}].servedBy"
            if server is None or server is entry:
                problems.append(f"{key}: '{entry.served_by}' is not another model of maas:models")
            elif (
                server.served_by is not None
                or server.runtime != "simulator"
                or server.scheduling != "service"
            ):
                problems.append(
                    f"{key}: '{entry.served_by}' must be a simulator with a server of its own, "
                    "scheduled by service (no servedBy, no pool)"
                )
        return problems

    def served_names(self, model: ModelConfig) -> tuple[str, ...]:
        """The names `model`'s server answers: its own first (the simulator reports it in
        every answer: llm-d/llm-d-inference-sim@v0.10.2 pkg/llm-d-inference-sim/context.go
        getDisplayedModelName), then those of
        the models it serves too, in catalog order."""
        return (model.served_name, *(m.served_name for m in self.models if m.served_by == model.name))

    def _flavour_problems(self) -> list[str]:
        """Keys one flavour reads and the other cannot honour."""
        if self.flavour != "openshift":
            set_here = "openshift" in self.model_fields_set
            return (
                [f"{NAMESPACE}:openshift: read only with maas:flavour openshift; remove it"]
                if set_here
                else []
            )
        problems = [
            f"{NAMESPACE}:models[{index}].autoscaling: not on OpenShift yet (KEDA would need a token "
            "for the cluster's Thanos querier); remove autoscaling, or give the model fixed replicas"
            for index, entry in enumerate(self.models)
            if entry.autoscaling is not None
        ]
        # The operator runs cert-manager in this namespace whatever its own is
        # (openshift/cert-manager-operator@cert-manager-1.18
        # pkg/operator/operatorclient/interfaces.go TargetNamespace).
        if self.namespaces.cert_manager != OPENSHIFT_CERT_MANAGER_NAMESPACE:
            problems.append(
                f"{NAMESPACE}:namespaces.certManager: the cert-manager Operator for Red Hat OpenShift "
                f"runs cert-manager in '{OPENSHIFT_CERT_MANAGER_NAMESPACE}'; remove the key"
            )
        if self.gateway.service_type != "ClusterIP":
            problems.append(
                f"{NAMESPACE}:gateway.serviceType: OpenShift exposes the gateway through Routes on the "
                "apps domain; remove the key (ClusterIP)"
            )
        kept = {"retention", "storage", "storage_class", "prometheus_resources"}
        problems.extend(
            f"{NAMESPACE}:observability.{ObservabilityConfig.model_fields[key].alias or key}: "
            "user-workload monitoring keeps its own Prometheus; set it in the ConfigMap "
            "user-workload-monitoring-config (namespace openshift-user-workload-monitoring) and "
            "remove the key"
            for key in sorted(kept & self.observability.model_fields_set)
        )
        return problems

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.tiers]

    @property
    def user_tiers(self) -> dict[str, str]:
        """user -> the tier the stack file puts the user in."""
        return {u.name: u.tier for u in self.users}

    @property
    def pooled_models(self) -> list[ModelConfig]:
        """The models an endpoint picker schedules, in catalog order."""
        return [m for m in self.models if m.scheduling == "pool"]

    @field_validator("models")
    @classmethod
    def _models_distinct(cls, models: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
        if not models:
            raise ValueError(
                "the catalog is empty: list at least one model, or remove the key for the default"
            )
        no_repeats([m.name for m in models], "models", "name")
        no_repeats([m.host for m in models], "models", "host")
        # The shared host routes by the body's `model`: two models must not answer to one.
        no_repeats([m.served_name for m in models], "models", "servedModelName")
        return models

    def namespaces_in_use(self) -> dict[str, str]:
        """Role -> namespace, for the namespaces this stack's layers deploy into."""
        roles = ["models", "istio", "cert_manager", "kserve", "kuadrant"]
        if self.observability.enabled:
            roles.append("observability")
        if any(m.autoscaling is not None for m in self.models):
            roles.append("keda")
        in_use = {role.replace("_", "-"): getattr(self.namespaces, role) for role in roles}
        if self.auth.oidc.enabled:
            in_use["keycloak"] = KEYCLOAK_NAMESPACE
        return in_use
