"""The vLLM ServingRuntimes vLLM models run on, and what both runtimes' containers share: the
port they serve on and their security contexts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import pulumi
import pulumi_kubernetes as k8s

from components.config import ModelConfig
from components.pins import versions

# Both runtimes serve the OpenAI API and /metrics on this container port.
MODEL_PORT = 8080
VLLM_RUNTIME = "vllm-openai"
VLLM_CPU_RUNTIME = "vllm-openai-cpu"
HF_TOKEN_SECRET = "hugging-face-token"
MODEL_SERVICE_ACCOUNT = "model-storage"
# With it vLLM ends every stream with usage, whatever the client's stream_options say
# (read at a vLLM commit newer than the pin: docs/unverified.md).
FORCE_USAGE_FLAG = "--enable-force-include-usage"

# Pod Security: the simulator (a distroless non-root image) meets "restricted"; vLLM's
# upstream image runs as root, so its pods stop at "baseline" plus these hardenings.
HARDENED_CONTAINER = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
HARDENED_POD = {"seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {**HARDENED_CONTAINER, "runAsNonRoot": True}
RESTRICTED_POD = {**HARDENED_POD, "runAsNonRoot": True}


@dataclass(frozen=True, kw_only=True)
class RuntimeArgs:
    namespace: pulumi.Input[str]
    hugging_face_token: str | None
    # Which runtimes the catalog needs: vLLM's CUDA image for GPU models, its CPU build
    # for `cpuServing` models.
    gpu: bool = True
    cpu: bool = False
    # A writable directory for vLLM's home and caches (the flavour's); None: the image's.
    home: str | None = None
    # KServe, whose CRDs define ServingRuntime.
    after: Sequence[pulumi.Resource] = ()


class VllmServingRuntime(pulumi.ComponentResource):
    """The vLLM ServingRuntimes the namespace's vLLM models use: CUDA and/or CPU build.

    Usage is forced into streamed responses (`--enable-force-include-usage`) so the token
    limits and metering count streaming clients too. A Hugging Face token, when
    configured, reaches KServe's storage initializer through the service account.
    """

    # URN history, in every URN under this component: it does not follow the folders.
    TYPE: ClassVar[str] = "maas:models:VllmServingRuntime"
    service_account: str | None
    # vLLM's writable home (RuntimeArgs.home); None: the image user's.
    home: str | None

    def __init__(self, name: str, args: RuntimeArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(self.TYPE, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.service_account = None
        self.home = args.home
        if args.hugging_face_token is not None:
            token = k8s.core.v1.Secret(
                f"{name}-hf-token",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=HF_TOKEN_SECRET, namespace=args.namespace),
                string_data={"HF_TOKEN": pulumi.Output.secret(args.hugging_face_token)},
                opts=child,
            )
            k8s.core.v1.ServiceAccount(
                f"{name}-storage-sa",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=MODEL_SERVICE_ACCOUNT, namespace=args.namespace),
                secrets=[k8s.core.v1.ObjectReferenceArgs(name=HF_TOKEN_SECRET)],
                opts=pulumi.ResourceOptions(parent=self, depends_on=[token]),
            )
            self.service_account = MODEL_SERVICE_ACCOUNT
        # The CUDA runtime was named like its component, outside the `<component>-…` rule;
        # the alias keeps the live ServingRuntime.
        wanted = [
            (pulumi_name, runtime, image, aliases)
            for needed, pulumi_name, runtime, image, aliases in (
                (args.gpu, f"{name}-cuda", VLLM_RUNTIME, versions.VLLM_IMAGE, [pulumi.Alias(name=name)]),
                (args.cpu, f"{name}-cpu", VLLM_CPU_RUNTIME, versions.VLLM_CPU_IMAGE, []),
            )
            if needed
        ]
        for runtime in wanted:
            _serving_runtime(*runtime, args, self)
        self.register_outputs(
            {
                "runtimes": [runtime for _, runtime, _, _ in wanted],
                "serviceAccount": self.service_account,
                "home": self.home,
            }
        )


def runtime_name(model: ModelConfig) -> str:
    return VLLM_CPU_RUNTIME if model.cpu_serving else VLLM_RUNTIME


def _serving_runtime(
    name: str,
    runtime: str,
    image: str,
    aliases: list[pulumi.Alias],
    args: RuntimeArgs,
    parent: pulumi.Resource,
) -> k8s.apiextensions.CustomResource:
    probe = {
        "httpGet": {"path": "/v1/models", "port": MODEL_PORT},
        "periodSeconds": 10,
        "timeoutSeconds": 5,
    }
    return k8s.apiextensions.CustomResource(
        name,
        api_version="serving.kserve.io/v1alpha1",
        kind="ServingRuntime",
        metadata=k8s.meta.v1.ObjectMetaArgs(name=runtime, namespace=args.namespace),
        spec={
            # Only models that name this runtime use it (runtime_name); never auto-selected,
            # so a CPU model cannot land on the CUDA image or the reverse.
            "supportedModelFormats": [{"name": "vLLM", "version": "1", "autoSelect": False}],
            "containers": [
                {
                    "name": "kserve-container",
                    "image": image,
                    # The images' own entrypoint (vllm docker/Dockerfile and Dockerfile.cpu,
                    # target vllm-openai: ENTRYPOINT ["vllm", "serve"]); the CUDA image has
                    # python3 but no `python`. The model is the positional argument
                    # (vllm-project/vllm@v0.31.0 vllm/entrypoints/cli/serve.py: `vllm serve
                    # [model_tag] [options]`).
                    "command": ["vllm", "serve"],
                    "args": [
                        "/mnt/models",
                        f"--port={MODEL_PORT}",
                        FORCE_USAGE_FLAG,
                    ],
                    "env": [
                        {"name": "VLLM_WORKER_MULTIPROC_METHOD", "value": "spawn"},
                        *[{"name": k, "value": v} for k, v in _cache_env(args.home).items()],
                    ],
                    "ports": [{"name": "http", "containerPort": MODEL_PORT, "protocol": "TCP"}],
                    "readinessProbe": probe,
                    "livenessProbe": {**probe, "failureThreshold": 6},
                    # Loading weights can take minutes: 30 min before liveness counts.
                    "startupProbe": {**probe, "periodSeconds": 30, "failureThreshold": 60},
                    "securityContext": RESTRICTED_CONTAINER if args.home else HARDENED_CONTAINER,
                    "volumeMounts": [
                        {"name": "devshm", "mountPath": "/dev/shm"},
                        *([{"name": "home", "mountPath": args.home}] if args.home else []),
                    ],
                }
            ],
            "volumes": [
                {"name": "devshm", "emptyDir": {"medium": "Memory", "sizeLimit": "2Gi"}},
                *([{"name": "home", "emptyDir": {}}] if args.home else []),
            ],
        },
        opts=pulumi.ResourceOptions(parent=parent, depends_on=list(args.after), aliases=aliases),
    )


def _cache_env(home: str | None) -> dict[str, str]:
    """Where vLLM and the libraries it loads keep their caches, all under `home`: its own
    (vllm-project/vllm@v0.31.0 vllm/envs.py VLLM_CACHE_ROOT, default under XDG_CACHE_HOME),
    Hugging Face's, Triton's and FlashInfer's, as the maas-billing seed's OpenShift model sets
    them (redhat-et/maas-billing@main deployment/model_serving/qwen3-0.6b-vllm-raw-openshift.yaml);
    and a user name, since the id the cluster assigns has no passwd entry and torch's inductor
    asks for one when neither USER nor its cache directory is set (pytorch/pytorch@main
    torch/_inductor/runtime/cache_dir_utils.py; KServe sets both for vllm-openai-cpu,
    kserve/kserve@v0.20.0 test/e2e/llmisvc/fixtures.py)."""
    if home is None:
        return {}
    return {
        "HOME": home,
        "USER": "vllm",
        "XDG_CACHE_HOME": f"{home}/.cache",
        "VLLM_CACHE_ROOT": f"{home}/vllm_cache",
        "HF_HOME": f"{home}/hf_home",
        "TRITON_CACHE_DIR": f"{home}/triton_cache",
        "FLASHINFER_WORKSPACE_DIR": f"{home}/flashinfer_cache",
        "TORCHINDUCTOR_CACHE_DIR": f"{home}/torchinductor_cache",
    }
