"""The stack's configuration: one typed model, validated before any resource exists.

Every key lives under the `maas:` namespace of a `Pulumi.<stack>.yaml`. Defaults live
here and nowhere else; stack files hold only what differs between stacks.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Mapping
from typing import Annotated, Any

import pulumi
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

NAMESPACE = "maas"
# Keys whose values are credentials: accepted only as Pulumi secrets (`config set --secret`).
SECRET_KEYS = ("huggingFaceToken", "limitadorRedisUrl")
# The Gateway every model route attaches to; KServe is told its "<namespace>/<name>".
GATEWAY_NAME = "inference-gateway"
# Not configurable: the Keycloak operator's manifest binds its ClusterRole to a service
# account in namespace "keycloak".
KEYCLOAK_NAMESPACE = "keycloak"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Kuadrant's rate window syntax (RateLimitPolicy and TokenRateLimitPolicy CRDs); Gateway
# API durations (HTTPRoute timeouts) use the same one.
_WINDOW = re.compile(r"^([0-9]{1,5}(h|m|s|ms)){1,4}$")
# Kubernetes resource quantities: 100m, 1.5, 8Gi, 1e3.
_QUANTITY = re.compile(r"^[+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[KMGTPE]i|[numkMGTPE])?$")
# Where KServe's storage initializer can fetch model weights from.
_MODEL_SOURCES = ("hf://", "s3://", "gs://", "pvc://", "oci://", "https://")
_SERVED_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$")
# Prometheus durations (retention): 12h, 15d, 1w.
_PROMETHEUS_DURATION = re.compile(r"^[0-9]+(ms|s|m|h|d|w|y)$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")


class ConfigError(pulumi.RunError):
    """A stack config that cannot be deployed; Pulumi prints the message without a trace."""

    def __init__(self, stack: str, problems: list[str]):
        self.stack = stack
        self.problems = problems
        lines = "\n".join(f"  - {p}" for p in problems)
        plural = "s" if len(problems) > 1 else ""
        super().__init__(
            f"stack '{stack}' has {len(problems)} configuration problem{plural} "
            f"(Pulumi.{stack}.yaml):\n{lines}"
        )


def _no_repeats(values: list[str], key: str, what: str) -> None:
    seen: dict[str, int] = {}
    for index, value in enumerate(values):
        if value in seen:
            raise ValueError(f"{key}[{seen[value]}] and {key}[{index}] have the same {what} '{value}'")
        seen[value] = index


def _dns_label(value: str) -> str:
    if len(value) > 63 or not _DNS_LABEL.match(value):
        raise ValueError(
            f"'{value}' is not a DNS-1123 label: use at most 63 lowercase letters, digits "
            "and '-', starting and ending with a letter or digit"
        )
    return value


def _dns_subdomain(value: str) -> str:
    if len(value) > 253 or not _DNS_SUBDOMAIN.match(value):
        raise ValueError(
            f"'{value}' is not a DNS name: use lowercase labels of letters, digits and '-' "
            "joined by '.', e.g. maas.local"
        )
    return value


def _window(value: str) -> str:
    if not _WINDOW.match(value):
        hint = ""
        days = re.fullmatch(r"([0-9]+)d", value)
        if days:
            hint = f" ('d' is not a unit: write {int(days.group(1)) * 24}h)"
        raise ValueError(
            f"'{value}' is not a Kuadrant window{hint}: use numbers with the units h, m, s "
            "or ms, e.g. 2m, 24h, 1h30m"
        )
    return value


def _quantity(amount: str) -> str:
    if not _QUANTITY.match(amount):
        raise ValueError(f"'{amount}' is not a Kubernetes quantity (e.g. 500m, 2, 8Gi)")
    return amount


def _quantities(value: dict[str, str]) -> dict[str, str]:
    for resource, amount in value.items():
        try:
            _quantity(amount)
        except ValueError as exc:
            raise ValueError(f"{resource}: {exc}") from None
        if "gpu" in resource:
            raise ValueError(
                f"{resource}: GPUs are requested with the model's gpu block, which also pins the node"
            )
    return value


def _served_name(value: str) -> str:
    if not _SERVED_NAME.match(value):
        raise ValueError(f"'{value}' is not a model id: use letters, digits and . _ / - (at most 128)")
    return value


def _prometheus_duration(value: str) -> str:
    if not _PROMETHEUS_DURATION.match(value):
        raise ValueError(f"'{value}' is not a Prometheus duration: a number and one of ms, s, m, h, d, w, y")
    return value


def _currency(value: str) -> str:
    if not _CURRENCY.match(value):
        raise ValueError(f"'{value}' is not an ISO 4217 currency code, e.g. USD, EUR")
    return value


DnsLabel = Annotated[str, AfterValidator(_dns_label)]
DnsName = Annotated[str, AfterValidator(_dns_subdomain)]
Window = Annotated[str, AfterValidator(_window)]
PositiveInt = Annotated[int, Field(ge=1)]
Quantity = Annotated[str, AfterValidator(_quantity)]
Quantities = Annotated[dict[str, str], AfterValidator(_quantities)]
ServedName = Annotated[str, AfterValidator(_served_name)]


class _Section(BaseModel):
    """Strict, closed, camelCase keys: a typo or a quoted number is an error, not a default."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        alias_generator=to_camel,
        populate_by_name=False,
    )


class ClusterConfig(_Section):
    context: str = Field(min_length=1, description="kubeconfig context to deploy to")
    kubeconfig: str | None = Field(
        default=None,
        description="path to a kubeconfig file; default: $KUBECONFIG or ~/.kube/config",
    )


class Namespaces(_Section):
    models: DnsLabel = "llm"
    observability: DnsLabel = "llm-observability"
    kuadrant: DnsLabel = "kuadrant-system"
    istio: DnsLabel = "istio-system"
    cert_manager: DnsLabel = "cert-manager"
    kserve: DnsLabel = "kserve"

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


class HttpsConfig(_Section):
    enabled: bool = False
    # A ClusterIssuer to sign the gateway's certificate; unset: a self-signed Issuer (dev).
    issuer: DnsName | None = None


class GatewayConfig(_Section):
    # ClusterIP: reached through `kubectl port-forward`, nothing exposed by default.
    service_type: typing.Literal["ClusterIP", "LoadBalancer", "NodePort"] = "ClusterIP"
    https: HttpsConfig = HttpsConfig()


class Toleration(_Section):
    key: str
    operator: typing.Literal["Exists", "Equal"] = "Exists"
    value: str | None = None
    effect: typing.Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class GpuConfig(_Section):
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


class ComputeResources(_Section):
    requests: Quantities = Field(default_factory=dict)
    limits: Quantities = Field(default_factory=dict)


# Documented defaults per runtime, used when a model sets no `resources`.
RUNTIME_RESOURCES = {
    "simulator": ComputeResources(
        requests={"cpu": "100m", "memory": "128Mi"}, limits={"cpu": "500m", "memory": "256Mi"}
    ),
    "vllm": ComputeResources(requests={"cpu": "2", "memory": "8Gi"}, limits={"cpu": "4", "memory": "16Gi"}),
}


class ModelConfig(_Section):
    name: DnsLabel
    # The model answers on <host>.<domain>.
    host: DnsLabel
    runtime: typing.Literal["simulator", "vllm"]
    # Weights for vLLM, e.g. hf://Qwen/Qwen3-0.6B; the simulator has none.
    source: str | None = None
    # The `model` clients send; default: the model's name.
    served_model_name: ServedName | None = None
    replicas: PositiveInt = 1
    resources: ComputeResources | None = None
    args: tuple[str, ...] = ()
    gpu: GpuConfig | None = None
    # vLLM on CPU is slow; it has to be asked for, it never happens by omission.
    cpu_serving: bool = False
    request_timeout: Window = "300s"

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

    @property
    def compute(self) -> ComputeResources:
        return self.resources or RUNTIME_RESOURCES[self.runtime]


class Rate(_Section):
    limit: PositiveInt
    window: Window


class TierConfig(_Section):
    """A tier: how many requests and how many tokens (usage.total_tokens) a user may spend."""

    name: DnsLabel
    requests: Rate
    tokens: Rate
    description: str = ""


def _tier(name: str, requests: int, tokens: int, description: str) -> TierConfig:
    return TierConfig(
        name=name,
        requests=Rate(limit=requests, window="2m"),
        tokens=Rate(limit=tokens, window="1m"),
        description=description,
    )


# The default tier table, lowest tier first; a stack's `maas:tiers` replaces it whole.
DEFAULT_TIERS = (
    _tier("free", 5, 10_000, "Try it out"),
    _tier("premium", 20, 50_000, "Teams building on the platform"),
    _tier("enterprise", 100, 200_000, "Production workloads"),
)


class UserConfig(_Section):
    name: DnsLabel
    tier: DnsLabel
    # Raise it to rotate the user's API key on the next `pulumi up`.
    key_version: PositiveInt = 1


class OidcConfig(_Section):
    """Keycloak as a second way in: a user's Bearer token, the tier from the user's group."""

    enabled: bool = False
    realm: DnsLabel = "maas"
    # A public client: users get tokens with the password grant (no client secret to hand out).
    client_id: DnsLabel = "maas-cli"
    # The URL Keycloak puts in tokens as issuer; Authorino must reach it. Default: the
    # in-cluster Service, so tokens fetched through a port-forward validate too.
    hostname: str | None = None
    database_storage: Quantity = "5Gi"
    storage_class: str | None = None


class AuthConfig(_Section):
    api_keys: bool = True
    oidc: OidcConfig = OidcConfig()

    @model_validator(mode="after")
    def _some_way_in(self) -> AuthConfig:
        if not self.api_keys and not self.oidc.enabled:
            raise ValueError("enable apiKeys, oidc.enabled or both: with neither nobody can call a model")
        return self


class LimitadorConfig(_Section):
    replicas: PositiveInt = 1
    # memory: counters live in the pod (lost on restart); redis: shared, needs maas:limitadorRedisUrl.
    storage: typing.Literal["memory", "redis"] = "memory"

    @model_validator(mode="after")
    def _shared_counters(self) -> LimitadorConfig:
        if self.replicas > 1 and self.storage != "redis":
            raise ValueError(
                f"{self.replicas} replicas with in-memory counters would split every limit between "
                "pods: set storage: redis (and maas:limitadorRedisUrl), or replicas: 1"
            )
        return self


class ObservabilityConfig(_Section):
    """Prometheus (operator), Grafana and Alertmanager from kube-prometheus-stack."""

    enabled: bool = True
    retention: Annotated[str, AfterValidator(_prometheus_duration)] = "1d"
    # A persistent volume of this size for Prometheus; unset: an emptyDir (kind, dev).
    storage: Quantity | None = None
    storage_class: str | None = None
    prometheus_resources: ComputeResources = ComputeResources(
        requests={"cpu": "200m", "memory": "512Mi"}, limits={"cpu": "1", "memory": "2Gi"}
    )


class Price(_Section):
    per_request: float = Field(default=0.0, ge=0)
    per_thousand_tokens: float = Field(default=0.0, ge=0)


class PricesConfig(_Section):
    """What usage costs, per tier, optionally per model and tier. Unpriced usage costs 0."""

    currency: Annotated[str, AfterValidator(_currency)] = "USD"
    tiers: dict[str, Price] = Field(default_factory=dict)
    # model name -> tier -> price, overriding the tier's price for that model
    models: dict[str, dict[str, Price]] = Field(default_factory=dict)

    def price(self, tier: str, model: str) -> Price:
        return self.models.get(model, {}).get(tier) or self.tiers.get(tier) or Price()


def _default_models() -> tuple[ModelConfig, ...]:
    """The default catalog: the OpenAI-compatible simulator, which needs no GPU."""
    simulator = {
        "name": "simulator",
        "host": "simulator",
        "runtime": "simulator",
        "servedModelName": "simulator-model",
    }
    return (ModelConfig.model_validate_json(json.dumps(simulator)),)


class StackConfig(_Section):
    cluster: ClusterConfig
    domain: DnsName = "maas.local"
    namespaces: Namespaces = Namespaces()
    gateway: GatewayConfig = GatewayConfig()
    models: tuple[ModelConfig, ...] = Field(default_factory=_default_models)
    # Read by KServe's storage initializer for gated Hugging Face models; set it with
    # `pulumi config set --secret maas:huggingFaceToken ...`.
    hugging_face_token: str | None = None
    tiers: tuple[TierConfig, ...] = DEFAULT_TIERS
    users: tuple[UserConfig, ...] = ()
    auth: AuthConfig = AuthConfig()
    limitador: LimitadorConfig = LimitadorConfig()
    # redis://[user:password@]host:port, for limitador.storage: redis; a secret.
    limitador_redis_url: str | None = None
    observability: ObservabilityConfig = ObservabilityConfig()
    prices: PricesConfig = PricesConfig()

    @field_validator("tiers")
    @classmethod
    def _tiers_distinct(cls, tiers: tuple[TierConfig, ...]) -> tuple[TierConfig, ...]:
        if not tiers:
            raise ValueError(
                "the tier table is empty: list at least one tier, or remove the key for the default"
            )
        _no_repeats([t.name for t in tiers], "tiers", "tier name")
        return tiers

    @field_validator("users")
    @classmethod
    def _users_distinct(cls, users: tuple[UserConfig, ...]) -> tuple[UserConfig, ...]:
        _no_repeats([u.name for u in users], "users", "user name")
        return users

    def cross_problems(self) -> list[str]:
        """Problems that span sections; each names the key to fix."""
        problems = []
        tiers = [t.name for t in self.tiers]
        for index, user in enumerate(self.users):
            if user.tier not in tiers:
                problems.append(
                    f"{NAMESPACE}:users[{index}].tier: '{user.tier}' is not a tier of maas:tiers "
                    f"({', '.join(tiers)})"
                )
        redis = self.limitador.storage == "redis"
        if redis and self.limitador_redis_url is None:
            problems.append(
                f"{NAMESPACE}:limitadorRedisUrl: required by limitador.storage: redis; set it with "
                f"`pulumi config set --secret {NAMESPACE}:limitadorRedisUrl redis://host:6379`"
            )
        if not redis and self.limitador_redis_url is not None:
            problems.append(f"{NAMESPACE}:limitadorRedisUrl: set, but limitador.storage is not redis")
        models = [m.name for m in self.models]
        for tier in self.prices.tiers:
            if tier not in tiers:
                problems.append(
                    f"{NAMESPACE}:prices.tiers.{tier}: no such tier in maas:tiers ({', '.join(tiers)})"
                )
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

    @property
    def tier_names(self) -> list[str]:
        return [t.name for t in self.tiers]

    @field_validator("models")
    @classmethod
    def _models_distinct(cls, models: tuple[ModelConfig, ...]) -> tuple[ModelConfig, ...]:
        if not models:
            raise ValueError(
                "the catalog is empty: list at least one model, or remove the key for the default"
            )
        _no_repeats([m.name for m in models], "models", "name")
        _no_repeats([m.host for m in models], "models", "host")
        return models

    def namespaces_in_use(self) -> dict[str, str]:
        """Role -> namespace, for the namespaces this stack's layers deploy into."""
        roles = ["models", "istio", "cert_manager", "kserve", "kuadrant"]
        if self.observability.enabled:
            roles.append("observability")
        in_use = {role.replace("_", "-"): getattr(self.namespaces, role) for role in roles}
        if self.auth.oidc.enabled:
            in_use["keycloak"] = KEYCLOAK_NAMESPACE
        return in_use


def load(stack: str | None = None, raw: Mapping[str, Any] | None = None) -> StackConfig:
    """Reads and validates the `maas:` config of the running stack, or raises ConfigError.

    Reads at call time (not import time): tests evaluate several stacks in one process.
    """
    stack = stack or pulumi.get_stack()
    raw = dict(pulumi.runtime.config.CONFIG.get()) if raw is None else dict(raw)
    problems: list[str] = []
    if not _default_provider_disabled(raw.get(_DISABLE_DEFAULTS)):
        problems.append(
            f"{_DISABLE_DEFAULTS}: must list 'kubernetes' (Pulumi.yaml sets it) so that no "
            "resource can fall back to the ambient kubeconfig"
        )
    for name in SECRET_KEYS:
        key = f"{NAMESPACE}:{name}"
        if key in raw and not pulumi.runtime.config.is_config_secret(key):
            problems.append(
                f"{key}: a credential must not be stored in plain text; set it with "
                f"`pulumi config set --secret {key} <value>`"
            )
    values: dict[str, Any] = {}
    prefix = f"{NAMESPACE}:"
    project_prefix = f"{pulumi.get_project()}:"
    for key, text in sorted(raw.items()):
        if key.startswith(project_prefix):
            short = key[len(project_prefix) :]
            problems.append(
                f"{key}: this program reads the '{NAMESPACE}' namespace; rename the key to {prefix}{short}"
            )
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        field = _field_by_alias(StackConfig, name)
        if field is not None and not _is_plain_string(field.annotation) and isinstance(text, str):
            try:
                values[name] = json.loads(text)
            except json.JSONDecodeError:
                values[name] = text
        else:
            values[name] = text
    try:
        # JSON mode: the values are what the stack file's YAML holds (lists, not tuples).
        config = StackConfig.model_validate_json(json.dumps(values))
    except ValidationError as exc:
        problems.extend(_describe(error) for error in exc.errors())
    else:
        problems.extend(config.cross_problems())
    if problems:
        raise ConfigError(stack, problems)
    return config


_DISABLE_DEFAULTS = "pulumi:disable-default-providers"


def _default_provider_disabled(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return False
    return isinstance(value, list) and bool({"kubernetes", "*"} & set(value))


def _describe(error: Mapping[str, Any]) -> str:
    loc = tuple(error["loc"])
    path = _render_path(loc)
    kind = error["type"]
    if kind == "missing":
        return f"{path}: required but not set; add it to the stack file"
    if kind == "extra_forbidden":
        accepted = _accepted_keys(loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), accepted, n=1)
        guess = f"; did you mean '{close[0]}'?" if close else ""
        where = f"; accepted keys here: {', '.join(accepted)}" if accepted else ""
        return f"{path}: unknown key{guess}{where}"
    got = error.get("input")
    shown = "" if isinstance(got, dict | list) else f" (got {json.dumps(got, default=str)})"
    message = str(error["msg"]).removeprefix("Value error, ")
    hints = {
        "string_type": '; quote values such as "true" or "1" that must stay strings',
        "bool_type": "; write true or false without quotes",
        "int_type": "; write a whole number without quotes",
    }
    return f"{path}: {message}{shown}{hints.get(kind, '')}"


def _render_path(loc: tuple[Any, ...]) -> str:
    if not loc:
        return f"{NAMESPACE}:<root>"
    text = f"{NAMESPACE}:{loc[0]}"
    for part in loc[1:]:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _field_by_alias(model: type[BaseModel], alias: str) -> Any:
    for name, field in model.model_fields.items():
        if (field.alias or name) == alias:
            return field
    return None


def _is_plain_string(annotation: Any) -> bool:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation is str


def _model_at(loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The config model class found by following a validation error's location."""
    current: Any = StackConfig
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            args = typing.get_args(current)
            current = args[-1] if args else None
            continue
        field = _field_by_alias(current, part)
        if field is None:
            return None
        current = field.annotation
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            members = [a for a in typing.get_args(annotation) if a is not type(None)]
            annotation = members[0] if len(members) == 1 else annotation
            if len(members) != 1:
                return annotation
        else:
            return annotation


def _accepted_keys(loc: tuple[Any, ...]) -> list[str]:
    model = _model_at(loc)
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]
