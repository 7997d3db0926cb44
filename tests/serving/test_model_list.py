"""The shared host's model list: the declared objects, and the real nginx serving the config.

nginx here is Debian's (1.22); the image runs 1.30.4. The directives used (`map`, `return`,
`if`, `default_type`) have not changed between them (nginx.org docs, "This directive
appeared in" notes all predate 1.0).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from components.config import ModelConfig, Rate, TierConfig
from components.names import TIER_HEADER
from components.serving import gateway, model_list
from harness.program import Evaluation, stack_config, typed_config
from tests.support.authorino import admitted_models
from tests.support.configs import evaluate_variant, simulator
from tests.support.labels import selects
from tests.support.ports import free_port


class Server:
    def __init__(self, port: int) -> None:
        self.port = port

    def get(self, path: str, tier: str | None = None, method: str = "GET") -> tuple[int, str, Any]:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        if tier is not None:
            request.add_header(TIER_HEADER, tier)
        try:
            with urllib.request.urlopen(request, timeout=5) as response:
                return response.status, response.headers["content-type"], json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.headers["content-type"], json.loads(error.read())


def _serve(
    nginx: str, tmp_path: Path, models: Sequence[ModelConfig], tiers: Sequence[TierConfig]
) -> Iterator[Server]:
    port = free_port()
    root = tmp_path / "files"
    root.mkdir()
    for name, text in model_list.server_files(models, tiers, port, str(tmp_path), str(root)).items():
        (root / name).write_text(text)
    # The container's command, with the files where the test put them. The pod runs nginx as
    # one unprivileged user; run as root, nginx would start its workers as `nobody`, who
    # cannot read the test's private directory, so they keep the master's user here.
    directives = "daemon off;" + (" user root;" if os.geteuid() == 0 else "")
    process = subprocess.Popen(
        [nginx, "-e", "stderr", "-p", str(tmp_path), "-c", str(root / "nginx.conf"), "-g", directives],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            if process.poll() is not None:
                pytest.fail(f"nginx refused the configuration: {process.stderr and process.stderr.read()}")
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield Server(port)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _tier(name: str) -> TierConfig:
    return TierConfig(name=name, requests=(Rate(limit=1, window="1m"),), tokens=(Rate(limit=1, window="1m"),))


def test_each_tier_lists_exactly_the_models_its_rules_admit(
    stack: Evaluation, nginx: str, tmp_path: Path
) -> None:
    """The real server, on the stack's catalog, against the stack's declared AuthPolicy."""
    config = typed_config(stack.stack)
    policy = stack.one("AuthPolicy", "inference-gateway-authpolicy")
    rules = policy.inputs["spec"]["rules"]["authorization"]
    for server in _serve(nginx, tmp_path, config.models, config.tiers):
        for tier in config.tier_names:
            status, content_type, listed = server.get("/v1/models", tier)
            assert (status, content_type) == (200, "application/json"), tier
            assert listed["object"] == "list"
            assert [m["id"] for m in listed["data"]] == admitted_models(rules, tier, list(config.models))
            assert all(m["object"] == "model" and isinstance(m["created"], int) for m in listed["data"])


def test_without_a_known_tier_nothing_is_listed(nginx: str, tmp_path: Path) -> None:
    models = [simulator("m")]
    for server in _serve(nginx, tmp_path, models, [_tier("free")]):
        # (nginx's map compares in lower case, nginx/nginx@release-1.30.4
        # src/http/modules/ngx_http_map_module.c; tiers are lower-case
        # DNS labels, so no two collide)
        for tier in (None, "", "gold", "free-", "fre"):
            status, _, body = server.get("/v1/models", tier)
            assert status == 403, tier
            assert set(body["error"]) == {"message", "type", "code"}
        status, _, body = server.get("/v1/chat/completions", "free")
        assert status == 404
        assert set(body["error"]) == {"message", "type", "code"}


def test_any_tier_name_is_a_plain_tier(nginx: str, tmp_path: Path) -> None:
    """Names of map parameters, names that start like a config escape (`\\t`, `\\r`, `\\n`),
    and the longest DNS label (63 characters)."""
    names = ["default", "hostnames", "include", "volatile", "team", "retail", "new", "t" * 63]
    models = [simulator(f"m{i}", tiers=[tier]) for i, tier in enumerate(names)]
    for server in _serve(nginx, tmp_path, models, [_tier(n) for n in names]):
        for i, tier in enumerate(names):
            assert [m["id"] for m in server.get("/v1/models", tier)[2]["data"]] == [f"m{i}"], tier
        assert server.get("/v1/models", "other")[0] == 403


def test_the_deployed_server_is_this_config_behind_the_shared_host(stack: Evaluation) -> None:
    config = typed_config(stack.stack)
    config_map = stack.one("ConfigMap", model_list.NAME)
    assert config_map.inputs["data"] == model_list.server_files(config.models, config.tiers)
    deployment = stack.one("Deployment", model_list.NAME)
    pod = deployment.inputs["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"][:5] == ["nginx", "-e", "stderr", "-c", f"{model_list.CONFIG_DIR}/nginx.conf"]
    assert {"name": "config", "mountPath": model_list.CONFIG_DIR, "readOnly": True} in container[
        "volumeMounts"
    ]
    route = stack.one("HTTPRoute", model_list.NAME)
    assert route.inputs["spec"]["hostnames"] == [f"{config.gateway.api_host}.{config.domain}"]
    (rule,) = route.inputs["spec"]["rules"]
    assert rule["matches"] == [{"path": {"type": "Exact", "value": "/v1/models"}, "method": "GET"}]
    service = stack.one("Service", model_list.NAME)
    assert rule["backendRefs"] == [
        {"name": model_list.NAME, "port": service.inputs["spec"]["ports"][0]["port"]}
    ]
    assert service.inputs["spec"]["ports"][0]["targetPort"] == model_list.PORT
    pod_labels = deployment.inputs["spec"]["template"]["metadata"]["labels"]
    assert selects({"matchLabels": service.inputs["spec"]["selector"]}, pod_labels)
    # Only the gateway's pods may open it.
    isolation = stack.one("NetworkPolicy", f"{model_list.NAME}-ingress")
    (ingress,) = isolation.inputs["spec"]["ingress"]
    assert ingress["from"] == [{"podSelector": {"matchLabels": gateway.POD_LABELS}}]


def test_a_large_catalog_is_served(nginx: str, tmp_path: Path) -> None:
    """Far past the 4 KiB an nginx configuration token may hold (nginx/nginx@release-1.30.4
    src/core/ngx_conf_file.c)."""
    models = [simulator(f"m{i}", servedModelName=f"org/model-{i:03d}" * 4) for i in range(150)]
    for server in _serve(nginx, tmp_path, models, [_tier("free")]):
        status, _, listed = server.get("/v1/models", "free")
        assert status == 200
        assert [m["id"] for m in listed["data"]] == [m.served_name for m in models]


def test_a_changed_catalog_rolls_the_servers_pods(stack_of: Any) -> None:
    """nginx reads its files at start: the pod template carries their digest."""

    def digest(stack: Evaluation) -> str:
        template = stack.one("Deployment", model_list.NAME).inputs["spec"]["template"]
        annotation: str = template["metadata"]["annotations"][model_list.FILES_ANNOTATION]
        return annotation

    base = stack_of("dev")
    data = base.one("ConfigMap", model_list.NAME).inputs["data"]
    assert digest(base) == hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    models = [*stack_config("dev")["maas:models"], {"name": "extra", "host": "extra", "runtime": "simulator"}]
    assert digest(evaluate_variant("dev", {"maas:models": models})) != digest(base)


def test_the_server_meets_pod_security_restricted(stack: Evaluation) -> None:
    """restricted (pod-security-admission v0.36.2 policy checks): non-root, no privilege
    escalation, every capability dropped, RuntimeDefault seccomp; and no API token."""
    pod = stack.one("Deployment", model_list.NAME).inputs["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    (container,) = pod["containers"]
    context = container["securityContext"]
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"] == {"drop": ["ALL"]}
    assert context["readOnlyRootFilesystem"] is True
