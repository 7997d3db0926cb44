"""The deploy path, run: scripts/*.sh with recording stand-ins for docker, kind, kubectl,
pulumi, curl and python3's venv/pip on PATH (tests/delivery/scripts/standin.py).

Each test copies the scripts and what they read into a temporary project, runs them as a
user would (`make deploy-dev`, `scripts/deploy.sh gpu`, ...) and asserts on the commands,
their order and their flags. The stand-ins answer like the real tools where the scripts
depend on it; the Pulumi stand-in refuses a --policy-pack whose venv is missing, as
pulumi-language-python's RunPlugin does (it starts <pack>/venv/bin/python, creating nothing).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.access import self_service
from components.pins import versions
from harness.program import PROJECT_DIR, Evaluation, evaluate, stack_names, typed_config
from maas_policies import kuadrant_size
from tests.support import written
from tests.support.scripts import script_module
from tests.support.upstream import CRD_OWNERS

STANDIN = Path(__file__).parent / "scripts" / "standin.py"
# What the scripts read from the project; nothing else is copied. The stack files tell the
# scripts which stacks are on the local kind cluster (scripts/stack_context.py).
PROJECT_FILES = (
    "Makefile",
    "Pulumi.yaml",
    "requirements.txt",
    "components/__init__.py",
    "components/pins/__init__.py",
    "components/pins/versions.py",
    "policies/requirements.txt",
    "policies/maas_policies/kuadrant_size.py",
    *sorted(p.name for p in PROJECT_DIR.glob("Pulumi.*.yaml")),
    *sorted(str(p.relative_to(PROJECT_DIR)) for p in (PROJECT_DIR / "policies" / "config").glob("*.json")),
)
STANDIN_TOOLS = ("docker", "kind", "kubectl", "pulumi", "curl", "python3")
# The only system commands on the sandbox's PATH: a real kubectl or docker of the machine
# must never answer in place of a stand-in.
SYSTEM_COMMANDS = (
    "bash",
    "sh",
    "make",
    "grep",
    "mktemp",
    "date",
    "cat",
    "rm",
    "sleep",
    "mkdir",
    "dirname",
    "chmod",
    "touch",
    "id",
)


@dataclass
class Call:
    tool: str
    argv: list[str]
    env: dict[str, str | None]

    @property
    def line(self) -> str:
        return " ".join([self.tool, *self.argv])


@dataclass
class Sandbox:
    root: Path
    project: Path
    bin: Path
    state: Path
    home: Path
    log: Path
    summary: Path
    extra_env: dict[str, str] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {
            "PATH": f"{self.bin}:{self.root / 'system'}",
            "HOME": str(self.home),
            "STANDIN_STATE": str(self.state),
            "STANDIN_LOG": str(self.log),
            "STANDIN_PYTHON": sys.executable,
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "MAAS_FIRST_ANSWER_TIMEOUT": "20",
            **self.extra_env,
        }

    def run(self, *command: str, expect: int = 0) -> subprocess.CompletedProcess[str]:
        self.log.write_text("")
        done = subprocess.run(
            command,
            cwd=self.project,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == expect, f"{command}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def calls(self, version_queries: bool = False) -> list[Call]:
        """The recorded calls, by default without `<tool> version` queries."""
        calls = [Call(**json.loads(line)) for line in self.log.read_text().splitlines()]
        return [c for c in calls if version_queries or c.argv[:1] != ["version"]]

    def state_file(self, name: str, text: str = "") -> None:
        (self.state / name).write_text(text)


def _write_standin(path: Path, tool: str) -> None:
    path.write_text(f'#!/bin/sh\nexport STANDIN_AS="$0"\nexec "{sys.executable}" "{STANDIN}" {tool} "$@"\n')
    path.chmod(0o755)


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    if shutil.which("make") is None:
        pytest.skip("no make on this machine")
    project = tmp_path / "project"
    shutil.copytree(PROJECT_DIR / "scripts", project / "scripts")
    for name in PROJECT_FILES:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(PROJECT_DIR / name, project / name)
    box = Sandbox(
        tmp_path,
        project,
        tmp_path / "bin",
        tmp_path / "state",
        tmp_path / "home",
        tmp_path / "log",
        tmp_path / "summary",
    )
    for folder in (box.bin, box.state, box.home, tmp_path / "system"):
        folder.mkdir()
    for command in SYSTEM_COMMANDS:
        found = shutil.which(command)
        assert found, f"the scripts need {command}"
        (tmp_path / "system" / command).symlink_to(found)
    for tool in STANDIN_TOOLS:
        _write_standin(box.bin / tool, tool)
    return box


def _index(calls: list[Call], pattern: str) -> int:
    """Position of the first call whose command line matches `pattern` (a regex)."""
    for index, call in enumerate(calls):
        if re.search(pattern, call.line):
            return index
    raise AssertionError(f"no call matches {pattern!r}:\n" + "\n".join(c.line for c in calls))


def _pulumi(calls: list[Call], subcommand: str) -> Call:
    (found,) = [
        c for c in calls if c.tool == "pulumi" and c.argv[: len(subcommand.split())] == subcommand.split()
    ]
    return found


def _assert_the_kind_cluster_is_created(calls: list[Call]) -> None:
    """Docker answers, then the cluster "maas" is made at the pinned node image."""
    create = calls[_index(calls, r"^kind create cluster")]
    assert create.argv[create.argv.index("--name") + 1] == "maas"
    assert create.argv[create.argv.index("--image") + 1] == versions.KIND_NODE_IMAGE
    assert (
        _index(calls, r"^docker info") < _index(calls, r"^kind get clusters") < _index(calls, "^kind create")
    )


def test_deploy_dev_from_nothing(sandbox: Sandbox) -> None:
    done = sandbox.run("make", "deploy-dev")
    calls = sandbox.calls()
    # the cluster first, at the pinned node image
    _assert_the_kind_cluster_is_created(calls)
    # the policy pack's venv and requirements exist before the first command that loads it
    pack_deps = _index(calls, r"^policies/venv/bin/python -m pip install .*-r policies/requirements.txt")
    assert _index(calls, r"^python3 -m venv policies/venv") < pack_deps
    assert _index(calls, r"^\.venv/bin/python -m pip install .*-r requirements.txt") < _index(
        calls, "^pulumi "
    )
    assert pack_deps < _index(calls, r"--policy-pack")
    # the update previews (stack policies run before anything is applied) and refreshes
    up = _pulumi(calls, "up")
    assert "--skip-preview" not in up.argv
    assert {"--refresh", "--yes", "--stack", "dev"} <= set(up.argv)
    assert up.argv[up.argv.index("--policy-pack") + 1] == "policies"
    assert up.argv[up.argv.index("--policy-pack-config") + 1] == "policies/config/dev.json"
    assert _index(calls, r"^pulumi stack select dev --create") < _index(calls, r"^pulumi up")
    # every Pulumi command uses the local file backend and its passphrase file
    state = sandbox.home / ".maas-platform"
    for call in (c for c in calls if c.tool == "pulumi"):
        assert call.env["PULUMI_BACKEND_URL"] == f"file://{state}/state", call.line
        assert call.env["PULUMI_CONFIG_PASSPHRASE_FILE"] == f"{state}/passphrase", call.line
    assert (state / "passphrase").read_text().strip()
    assert oct((state / "passphrase").stat().st_mode & 0o777) == "0o600"
    # then the first authorized answer through the forwarded gateway, timed
    forward = calls[_index(calls, r"^kubectl .*port-forward")]
    assert forward.argv[:6] == [
        "--context",
        "kind-maas",
        "port-forward",
        "-n",
        "llm",
        "svc/inference-gateway-istio",
    ]
    port = forward.argv[6].split(":")[0]
    call = calls[_index(calls, r"^curl ")]
    assert f"simulator.maas.local:{port}:127.0.0.1" in call.argv
    assert "Authorization: APIKEY key-of-freeuser1" in call.argv
    assert call.argv[-1] == f"http://simulator.maas.local:{port}/v1/chat/completions"
    assert re.search(r"first authorized 200 from simulator-model after \d+ s", done.stdout)
    assert "first authorized 200" in sandbox.summary.read_text()


@pytest.mark.parametrize("stack", stack_names())
def test_the_try_it_block_fits_each_stacks_outputs(stack: str) -> None:
    """From the outputs a deploy of each stack gives: a forward only where apiUrl is reached
    through one, the CA where the gateway serves HTTPS, the request to apiUrl."""
    try_it = script_module("try_it")
    outputs = evaluate(stack).outputs
    block = try_it.block(stack, "kubectl", outputs)
    api = outputs["apiUrl"]
    assert block[-2].strip() == f"{api}/chat/completions"
    forwards = [line for line in block if " port-forward " in line]
    assert len(forwards) == (1 if ":8000/" in api else 0)
    for line in forwards:
        assert line.startswith(f"  kubectl --context {outputs['kubeContext']} port-forward ")
    https = api.startswith("https://") and outputs.get("gatewayTlsSecret")
    assert ("--cacert maas-ca.crt" in "\n".join(block)) == bool(https)
    assert ("STACK=" in "\n".join(block)) == (stack != "dev")


def test_deploy_dev_ends_with_what_to_type_next(sandbox: Sandbox) -> None:
    """A "Try it" block: the forward through the kubectl the scripts used, with the stack's
    context; the key through `make keys`, read without jq; a request to the shared host."""
    done = sandbox.run("make", "deploy-dev")
    block = done.stdout[done.stdout.index("Try it") :].splitlines()
    kubectl = sandbox.bin / "kubectl"
    forward = f"  {kubectl} --context kind-maas port-forward -n llm svc/inference-gateway-istio 8000:80 &"
    assert block[1] == forward
    assert block[2].startswith("  export MAAS_API_KEY=$(make -s keys | python3 -c ")
    request = " ".join(block[3:6])
    assert "--resolve api.maas.local:8000:127.0.0.1" in request
    assert '"model": "simulator-model"' in request
    assert request.endswith("http://api.maas.local:8000/v1/chat/completions")
    assert "jq" not in "\n".join(block)
    # the key line works as printed, on a PATH without jq
    key_line = block[2].strip().split("   #")[0]
    got = subprocess.run(
        ["bash", "-c", f'{key_line}; echo "$MAAS_API_KEY"'],
        cwd=sandbox.project,
        env=sandbox.env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert got.stdout.strip() == "key-of-freeuser1"


# --- Kuadrant's wasm config written (scripts/kuadrant_written.py) ---------------------


def _cluster_objects(stack: Evaluation) -> list[dict[str, Any]]:
    """What `kubectl get` lists of the stack's Gateway, routes and Kuadrant policies."""
    return written.declared(stack)


def _written(objects: list[dict[str, Any]], edit: Any = None) -> dict[str, Any]:
    """The operator's EnvoyFilter for those objects (as the estimator rebuilds it), its
    action sets passed through `edit` first: a config the operator did not (fully) write."""
    (gateway,) = [o for o in objects if o["kind"] == "Gateway"]
    routes = [o for o in objects if o["kind"] == "HTTPRoute"]
    policies = {kind: [o for o in objects if o["kind"] == kind] for kind in written.KINDS[2:]}
    sets = kuadrant_size.action_sets(gateway, routes, policies)
    return kuadrant_size.envoy_filter(gateway, kuadrant_size.wasm_config(edit(sets) if edit else sets))


@pytest.fixture
def dev_cluster(sandbox: Sandbox, stack_of: Any) -> list[dict[str, Any]]:
    """The stand-in kubectl lists dev's objects; the EnvoyFilter is the test's to write."""
    objects = _cluster_objects(stack_of("dev"))
    sandbox.state_file("cluster-objects.json", json.dumps({"kind": "List", "items": objects}))
    sandbox.extra_env["MAAS_KUADRANT_TIMEOUT"] = "3"
    return objects


def test_the_deploy_passes_once_kuadrant_wrote_every_action_set(
    sandbox: Sandbox, dev_cluster: list[dict[str, Any]]
) -> None:
    """The operator writes after the update: a filter that appears within the wait passes."""
    sandbox.state_file("envoyfilter.json", json.dumps(_written(dev_cluster)))
    sandbox.state_file("envoyfilter-late", "1")
    done = sandbox.run("make", "deploy-dev")
    assert "holds every action set stack dev calls for" in done.stdout
    calls = sandbox.calls()
    read = calls[_index(calls, r"^kubectl .*get envoyfilters\.networking\.istio\.io")]
    assert read.argv[:2] == ["--context", "kind-maas"]
    assert read.argv[read.argv.index("-n") + 1 :][:2] == ["llm", "kuadrant-inference-gateway"]
    assert _index(calls, r"^pulumi up") < _index(calls, r"get envoyfilters") < _index(calls, r"^curl ")


def _drop_one(sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sets[1:]


def _older(sets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What the operator kept from before the last tier: every set, without that tier's limits."""
    return [
        {
            **s,
            "actions": [
                {
                    **a,
                    "conditionalData": [
                        b for b in a.get("conditionalData") or [] if "enterprise" not in json.dumps(b)
                    ],
                }
                for a in s["actions"]
            ],
        }
        for s in sets
    ]


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (_drop_one, ": no action set"),
        (_older, ": an older action set, without limit.enterprise"),
        (None, "no EnvoyFilter at all, where 4 action sets are due"),
    ],
    ids=["a set missing", "kept from before a tier", "none written"],
)
def test_a_deploy_whose_kuadrant_config_was_not_written_fails_naming_cause_and_fix(
    sandbox: Sandbox, dev_cluster: list[dict[str, Any]], edit: Any, said: str
) -> None:
    if edit is not None:
        sandbox.state_file("envoyfilter.json", json.dumps(_written(dev_cluster, edit)))
    done = sandbox.run("make", "deploy-dev", expect=2)
    assert "stack dev is not in force: after 3 s Kuadrant's wasm configuration" in done.stderr
    assert "EnvoyFilter llm/kuadrant-inference-gateway: " in done.stderr
    assert said in done.stderr
    assert "only logs a failed write" in done.stderr
    assert "Fix: " in done.stderr
    assert not [c for c in sandbox.calls() if c.tool == "curl"], "no first answer after a failed check"


def test_the_check_finds_every_stacks_declared_sets_in_a_complete_config(stack: Evaluation) -> None:
    """On every stack (HTTPS listeners, several listeners): the operator's filter, rebuilt,
    passes; each set taken out is named, with its listener and path."""
    objects = written.declared(stack)
    check = written.check()
    for gateway in (o for o in objects if o["kind"] == "Gateway"):
        due = check.expected(objects, gateway)
        # a set per metered path, and per path of the key service's API where it runs
        key_sets = len(self_service.API_PATHS) if typed_config(stack.stack).key_service_on else 0
        assert len(due) == (4 + key_sets) * len(gateway["spec"]["listeners"])
        assert check.problems(objects, gateway, _written(objects)) == []
        for index, (where, _) in enumerate(due):
            lacking = _written(objects, lambda sets, i=index: sets[:i] + sets[i + 1 :])
            assert check.problems(objects, gateway, lacking) == [f"{where}: no action set"]


def test_a_second_deploy_converges_without_redoing_the_setup(sandbox: Sandbox) -> None:
    sandbox.run("make", "deploy-dev")
    passphrase = (sandbox.home / ".maas-platform" / "passphrase").read_text()
    sandbox.run("make", "deploy-dev")
    calls = sandbox.calls()
    assert not [c for c in calls if c.line.startswith("kind create")]
    assert not [c for c in calls if "venv" in c.argv or "pip" in c.argv], "virtualenvs are made once"
    assert "--refresh" in _pulumi(calls, "up").argv
    assert (sandbox.home / ".maas-platform" / "passphrase").read_text() == passphrase


def test_a_cluster_recreated_under_surviving_state_is_refreshed(sandbox: Sandbox) -> None:
    """pulumi-kubernetes diffs inputs only: without a refresh nothing would be recreated."""
    sandbox.run("make", "deploy-dev")
    sandbox.state_file("kind-clusters", "")  # `kind delete cluster`, state left behind
    sandbox.run("make", "deploy-dev")
    calls = sandbox.calls()
    assert _index(calls, r"^kind create cluster") < _index(calls, r"^pulumi up .*--refresh")


def test_changed_requirements_reinstall_the_pack(sandbox: Sandbox) -> None:
    sandbox.run("make", "deploy-dev")
    with (sandbox.project / "policies" / "requirements.txt").open("a") as requirements:
        requirements.write("# a new pin\n")
    sandbox.run("make", "deploy-dev")
    calls = sandbox.calls()
    assert _index(calls, r"^policies/venv/bin/python -m pip install") < _index(calls, "--policy-pack")


def test_python_envs_makes_the_venvs_pulumi_yaml_and_pulumipolicy_yaml_name(sandbox: Sandbox) -> None:
    """What the preview workflow runs before pulumi/actions (which installs nothing)."""
    sandbox.run("make", "python-envs")
    calls = sandbox.calls()
    for manifest, requirements in (
        (PROJECT_DIR / "Pulumi.yaml", "requirements.txt"),
        (PROJECT_DIR / "policies" / "PulumiPolicy.yaml", "policies/requirements.txt"),
    ):
        folder = manifest.parent.relative_to(PROJECT_DIR)
        venv = str(folder / yaml.safe_load(manifest.read_text())["runtime"]["options"]["virtualenv"])
        assert _index(calls, rf"^python3 -m venv {re.escape(venv)}$") < _index(
            calls, rf"^{re.escape(venv)}/bin/python -m pip install .*-r {re.escape(requirements)}"
        )


def test_without_the_pack_venv_the_cli_fails_as_upstream_does(sandbox: Sandbox) -> None:
    """Control for the stand-in: a --policy-pack without its venv fails (RunPlugin)."""
    done = sandbox.run("pulumi", "preview", "--policy-pack", "policies", expect=1)
    assert "venv/bin/python: no such file or directory" in done.stderr


def test_deploy_gpu_needs_no_docker_or_kind(sandbox: Sandbox) -> None:
    (sandbox.bin / "docker").unlink()
    (sandbox.bin / "kind").unlink()
    sandbox.run("make", "deploy", "STACK=gpu")
    calls = sandbox.calls()
    assert not [c for c in calls if c.tool in ("docker", "kind")]
    up = _pulumi(calls, "up")
    assert up.argv[up.argv.index("--stack") + 1] == "gpu"
    assert up.argv[up.argv.index("--policy-pack-config") + 1] == "policies/config/gpu.json"


def test_deploy_dev_oidc_from_nothing_creates_the_kind_cluster(sandbox: Sandbox) -> None:
    """dev-oidc deploys to kind-maas like dev: the deploy makes the cluster for it too."""
    sandbox.run("make", "deploy", "STACK=dev-oidc")
    calls = sandbox.calls()
    _assert_the_kind_cluster_is_created(calls)
    assert _index(calls, "^kind create") < _index(calls, r"^pulumi stack select dev-oidc --create")
    up = _pulumi(calls, "up")
    assert {"--refresh", "--yes"} <= set(up.argv)
    assert up.argv[up.argv.index("--stack") + 1] == "dev-oidc"
    assert up.argv[up.argv.index("--policy-pack") + 1] == "policies"
    assert up.argv[up.argv.index("--policy-pack-config") + 1] == "policies/config/dev-oidc.json"
    assert _index(calls, r"^pulumi stack select dev-oidc --create") < _index(calls, r"^pulumi up")


def _context_of(project: Path, stack: str) -> str:
    done = subprocess.run(
        [sys.executable, "scripts/stack_context.py", stack],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize("stack", stack_names())
def test_the_scripts_read_the_context_the_program_reads(stack: str) -> None:
    """Which stacks get a kind cluster is decided from the stack file before any virtualenv
    (scripts/stack_context.py, standard library only); it must agree with the program."""
    assert _context_of(PROJECT_DIR, stack) == typed_config(stack).cluster.context


@pytest.mark.parametrize(
    ("text", "context"),
    [
        ("config:\n  maas:cluster:\n    context: kind-maas\n", "kind-maas"),
        ("config:\n  maas:cluster:\n    kubeconfig: /k\n    context: 'kind-maas'  # here\n", "kind-maas"),
        ('config:\n  maas:cluster: {kubeconfig: /k, context: "maas-gpu"}\n', "maas-gpu"),
        ("config:\n  maas:cluster:\n    kubeconfig: /k\n  maas:domain: x\n  context: no\n", ""),
        ("config:\n  maas:domain: example.com\n", ""),
    ],
)
def test_the_context_reader_reads_both_yaml_forms(tmp_path: Path, text: str, context: str) -> None:
    assert yaml.safe_load(text)["config"].get("maas:cluster", {}).get("context", "") == context
    (tmp_path / "Pulumi.probe.yaml").write_text(text)
    (tmp_path / "scripts").mkdir()
    shutil.copy2(PROJECT_DIR / "scripts" / "stack_context.py", tmp_path / "scripts")
    assert _context_of(tmp_path, "probe") == context
    assert _context_of(tmp_path, "absent") == ""


def test_deploy_stops_at_once_when_docker_does_not_answer(sandbox: Sandbox) -> None:
    sandbox.state_file("docker-down")
    done = sandbox.run("make", "deploy-dev", expect=2)
    assert "daemon does not answer" in done.stderr
    assert [c.tool for c in sandbox.calls()] == ["docker"]


def test_deploy_stops_at_once_without_docker(sandbox: Sandbox) -> None:
    (sandbox.bin / "docker").unlink()
    done = sandbox.run("make", "deploy-dev", expect=2)
    assert "missing docker" in done.stderr
    assert "https://docs.docker.com/engine/install/" in done.stderr
    assert sandbox.calls() == []


def test_deploy_stops_at_once_without_curl(sandbox: Sandbox) -> None:
    """The first authorized call needs curl: say so before the cluster, not after the deploy."""
    (sandbox.bin / "curl").unlink()
    done = sandbox.run("make", "deploy-dev", expect=2)
    assert "missing curl" in done.stderr
    assert sandbox.calls() == []


def test_the_first_answer_is_retried_until_200(sandbox: Sandbox) -> None:
    sandbox.state_file("curl-failures", "2")
    sandbox.run("scripts/first-answer.sh", "dev", "0")
    assert len([c for c in sandbox.calls() if c.tool == "curl"]) == 3


def test_the_first_answer_uses_a_key_of_a_tier_the_model_admits(sandbox: Sandbox) -> None:
    """gpu's first model is for paying tiers: a free user's key would get 403 forever."""
    outputs = {
        "kubeContext": "maas-gpu",
        "gatewayService": "llm/inference-gateway-istio",
        "models": {
            "qwen3": {
                "url": "http://qwen3.maas.local:8000/v1",
                "servedModelName": "qwen3",
                "tiers": ["premium"],
            },
        },
        "users": {"freeuser1": "free", "premiumuser1": "premium"},
        "apiKeys": {"freeuser1": "key-of-freeuser1", "premiumuser1": "key-of-premiumuser1"},
    }
    sandbox.state_file("outputs", json.dumps(outputs))
    sandbox.run("scripts/first-answer.sh", "gpu", "0")
    (call,) = [c for c in sandbox.calls() if c.tool == "curl"]
    assert "Authorization: APIKEY key-of-premiumuser1" in call.argv
    assert call.argv[-1].startswith("http://qwen3.maas.local:")


def test_the_first_answer_speaks_https_to_an_https_only_gateway_trusting_its_certificate(
    sandbox: Sandbox,
) -> None:
    """gpu serves HTTPS only: the forward goes to 443, and curl trusts the self-signed issuer
    cert-manager stored beside the certificate (ca.crt), nothing else."""
    outputs = {
        "kubeContext": "maas-gpu",
        "gatewayService": "llm/inference-gateway-istio",
        "gatewayTlsSecret": "llm/inference-gateway-tls",
        "models": {
            "sim": {"url": "https://sim.maas.local:8000/v1", "servedModelName": "sim", "tiers": ["free"]}
        },
        "users": {"freeuser1": "free"},
        "apiKeys": {"freeuser1": "key-of-freeuser1"},
    }
    sandbox.state_file("outputs", json.dumps(outputs))
    sandbox.state_file("gateway-ca", "-----BEGIN CERTIFICATE-----")
    sandbox.run("scripts/first-answer.sh", "gpu", "0")
    calls = sandbox.calls()
    (read,) = [c for c in calls if c.tool == "kubectl" and "secret" in c.argv]
    assert (
        read.argv[-5:] == ["secret", "-n", "llm", "inference-gateway-tls", "-o"]
        or "inference-gateway-tls" in read.argv
    )
    (forward,) = [c for c in calls if c.tool == "kubectl" and "port-forward" in c.argv]
    assert forward.argv[-1].endswith(":443")
    (call,) = [c for c in calls if c.tool == "curl"]
    assert call.argv[-1].startswith("https://sim.maas.local:")
    assert call.argv[call.argv.index("--cacert") + 1]


def test_the_first_answer_reports_a_dead_port_forward(sandbox: Sandbox) -> None:
    sandbox.state_file("curl-failures", "100")
    sandbox.state_file("port-forward-dies")
    done = sandbox.run("scripts/first-answer.sh", "dev", "0", expect=1)
    assert "port-forward to llm/inference-gateway-istio stopped" in done.stderr
    assert "lost connection to pod" in done.stderr


def test_the_first_answer_waits_for_the_port_forward_to_listen(sandbox: Sandbox) -> None:
    sandbox.state_file("port-forward-silent")
    sandbox.extra_env["MAAS_FIRST_ANSWER_TIMEOUT"] = "3"
    done = sandbox.run("scripts/first-answer.sh", "dev", "0", expect=1)
    assert "port-forward to llm/inference-gateway-istio did not listen within 3s" in done.stderr
    assert not [c for c in sandbox.calls() if c.tool == "curl"]


def _stack_files(sandbox: Sandbox) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sandbox.project.glob("Pulumi*.yaml")}


def test_a_deploy_never_writes_the_tracked_stack_file(sandbox: Sandbox) -> None:
    """The CLI saves a new stack's salt into its config file (the stand-in does as
    pulumi/pulumi@v3.259.0-14-g1b59498 pkg/cmd/pulumi/stack/io.go SaveProjectStack does): every command that
    loads the stack's
    config gets the per-user copy, which keeps its salt and secrets across deploys."""
    tracked = _stack_files(sandbox)
    sandbox.run("make", "deploy-dev")
    assert _stack_files(sandbox) == tracked
    copy = sandbox.home / ".maas-platform" / "stacks" / "Pulumi.dev.yaml"
    calls = sandbox.calls()
    config_commands = [c for c in calls if c.tool == "pulumi" and c.argv[0] in ("up", "preview", "destroy")]
    assert config_commands
    for call in config_commands:
        assert call.argv[call.argv.index("--config-file") + 1] == str(copy), call.line
    saved = yaml.safe_load(copy.read_text())
    assert saved["encryptionsalt"] == "v1:standin-salt"
    assert saved["config"] == yaml.safe_load((sandbox.project / "Pulumi.dev.yaml").read_text())["config"]
    # the next deploy: the tracked file changed (a pull), a secret was set into the copy
    saved["encryptionsalt"] = "v1:first-salt"
    saved["config"]["maas:huggingFaceToken"] = {"secure": "v1:token"}
    copy.write_text(yaml.safe_dump(saved))
    tracked_dev = sandbox.project / "Pulumi.dev.yaml"
    tracked_dev.write_text(tracked_dev.read_text().replace("name: freeuser2,", "name: freeuser9,"))
    tracked = _stack_files(sandbox)
    sandbox.run("make", "deploy-dev")
    assert _stack_files(sandbox) == tracked
    again = yaml.safe_load(copy.read_text())
    assert again["encryptionsalt"] == "v1:first-salt"
    assert again["config"]["maas:huggingFaceToken"] == {"secure": "v1:token"}
    assert {"name": "freeuser9", "tier": "free"} in again["config"]["maas:users"]


def test_the_preview_workflow_takes_the_salt_from_the_copy() -> None:
    """preview.yml hands the base's salt to the head's stack file: it is in the copy now."""
    workflow = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / "preview.yml").read_text())
    (step,) = [
        s for s in workflow["jobs"]["preview"]["steps"] if s.get("name") == "Head uses the base's stack state"
    ]
    assert '"$MAAS_STATE_DIR/stacks/Pulumi.dev.yaml"' in step["run"]


def test_a_salt_already_in_the_tracked_file_moves_to_the_copy(sandbox: Sandbox) -> None:
    """A deploy from before the copy left its salt in Pulumi.dev.yaml: the stack keeps it."""
    tracked_dev = sandbox.project / "Pulumi.dev.yaml"
    tracked_dev.write_text(tracked_dev.read_text() + "encryptionsalt: v1:old-salt\n")
    sandbox.run("make", "deploy-dev")
    copy = sandbox.home / ".maas-platform" / "stacks" / "Pulumi.dev.yaml"
    assert yaml.safe_load(copy.read_text())["encryptionsalt"] == "v1:old-salt"


def test_the_wrapper_gives_config_commands_the_copy_and_asks_for_the_stack(sandbox: Sandbox) -> None:
    tracked = _stack_files(sandbox)
    sandbox.run(
        "scripts/pulumi.sh", "config", "set", "--secret", "maas:huggingFaceToken", "t", "--stack", "gpu"
    )
    (call,) = [c for c in sandbox.calls() if c.tool == "pulumi"]
    copy = sandbox.home / ".maas-platform" / "stacks" / "Pulumi.gpu.yaml"
    assert call.argv[:2] == ["config", f"--config-file={copy}"]
    assert _stack_files(sandbox) == tracked
    refused = sandbox.run("scripts/pulumi.sh", "up", expect=2)
    assert "--stack STACK" in refused.stderr
    assert not [c for c in sandbox.calls() if c.tool == "pulumi"]
    # a plain value would be gone at the next command: it belongs in the tracked file
    plain = sandbox.run("scripts/pulumi.sh", "config", "set", "maas:domain", "x", "--stack", "gpu", expect=2)
    assert "put other values in Pulumi.gpu.yaml" in plain.stderr
    assert not [c for c in sandbox.calls() if c.tool == "pulumi"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (["outputs"], ["stack", "output", "--stack", "dev"]),
        (["keys"], ["stack", "output", "--stack", "dev", "apiKeys", "--show-secrets", "--json"]),
        (
            ["preview", "STACK=gpu"],
            [
                "preview",
                "--config-file={copy of gpu}",
                "--stack",
                "gpu",
                "--diff",
                "--policy-pack",
                "policies",
                "--policy-pack-config",
                "policies/config/gpu.json",
            ],
        ),
        (
            ["destroy-dev"],
            ["destroy", "--stack", "dev", "--config-file", "{copy of dev}", "--yes", "--non-interactive"],
        ),
    ],
)
def test_readme_follow_up_commands_use_the_local_backend(
    sandbox: Sandbox, target: list[str], expected: list[str]
) -> None:
    sandbox.run("make", *target)
    (call,) = [c for c in sandbox.calls() if c.tool == "pulumi"]
    copies = sandbox.home / ".maas-platform" / "stacks"
    assert call.argv == [re.sub(r"\{copy of (.+)\}", rf"{copies}/Pulumi.\1.yaml", a) for a in expected]
    assert call.env["PULUMI_BACKEND_URL"] == f"file://{sandbox.home}/.maas-platform/state"
    assert call.env["PULUMI_CONFIG_PASSPHRASE_FILE"] == f"{sandbox.home}/.maas-platform/passphrase"


def test_the_wrapper_passes_any_pulumi_command_through(sandbox: Sandbox) -> None:
    sandbox.run("scripts/pulumi.sh", "stack", "output", "-s", "dev", "models", "--json")
    (call,) = [c for c in sandbox.calls() if c.tool == "pulumi"]
    assert call.argv == ["stack", "output", "-s", "dev", "models", "--json"]
    assert call.env["PULUMI_BACKEND_URL"] == f"file://{sandbox.home}/.maas-platform/state"


@pytest.mark.parametrize("stack", ["dev", "dev-oidc"])
def test_destroy_can_delete_the_kind_cluster_too(sandbox: Sandbox, stack: str) -> None:
    sandbox.state_file("kind-clusters", "maas")
    sandbox.run("scripts/destroy.sh", stack, "--delete-cluster")
    calls = sandbox.calls()
    assert _index(calls, rf"^pulumi destroy --stack {stack} ") < _index(
        calls, r"^kind delete cluster --name maas"
    )


def test_destroy_never_deletes_the_kind_cluster_for_a_stack_elsewhere(sandbox: Sandbox) -> None:
    """gpu is not on the local kind cluster: --delete-cluster is refused before any destroy."""
    sandbox.state_file("kind-clusters", "maas")
    done = sandbox.run("scripts/destroy.sh", "gpu", "--delete-cluster", expect=1)
    assert "stack gpu deploys to context 'maas-gpu'" in done.stderr
    assert sandbox.calls() == []


def test_converged_previews_the_deploy_with_expect_no_changes(sandbox: Sandbox) -> None:
    """`make converged`: deploy.sh's preview (--refresh, the pack) failing on any change."""
    sandbox.run("make", "converged", "STACK=dev-oidc")
    (call,) = [c for c in sandbox.calls() if c.tool == "pulumi"]
    assert call.argv == [
        "preview",
        f"--config-file={sandbox.home}/.maas-platform/stacks/Pulumi.dev-oidc.yaml",
        "--stack",
        "dev-oidc",
        "--refresh",
        "--expect-no-changes",
        "--diff",
        "--non-interactive",
        "--policy-pack",
        "policies",
        "--policy-pack-config",
        "policies/config/dev-oidc.json",
    ]
    assert call.env["PULUMI_BACKEND_URL"] == f"file://{sandbox.home}/.maas-platform/state"


# --- pinned tools fetched when missing -------------------------------------------------


@pytest.fixture
def mirror(sandbox: Sandbox) -> Iterator[dict[str, bytes]]:
    """A local mirror (MAAS_TOOLS_MIRROR) serving the pinned tools' files at their
    upstream paths, with checksum files as each publisher writes them; the "binaries"
    are the stand-ins, so the deploy goes on with the fetched tools."""
    tools = script_module("tools")
    system, arch = tools._platform()
    files: dict[str, bytes] = {}

    def standin_bytes(tool: str) -> bytes:
        path = sandbox.root / f"served-{tool}"
        _write_standin(path, tool)
        return path.read_bytes()

    for tool in ("kind", "kubectl", "pulumi"):
        download = tools.download(tool, system, arch)
        payload = standin_bytes(tool)
        if tool == "pulumi":
            buffer = io.BytesIO()
            with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
                for member in ("pulumi", "pulumi-language-python"):
                    info = tarfile.TarInfo(f"pulumi/{member}")
                    info.size, info.mode = len(payload), 0o755
                    archive.addfile(info, io.BytesIO(payload))
            payload = buffer.getvalue()
        digest = hashlib.sha256(payload).hexdigest()
        listed = f"{digest}  {download.listed_as}\n" if download.listed_as else digest
        if tool == "pulumi":  # one file for every platform's archive
            listed = f"{'0' * 64}  pulumi-v0-other.tar.gz\n{listed}"
        # keyed "<host>/<path>", as the mirror lays them out
        files[download.url.split("//", 1)[1]] = payload
        files[download.checksums_url.split("//", 1)[1]] = listed.encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = files.get(self.path.removeprefix("/m/"))
            self.send_response(200 if body is not None else 404)
            self.end_headers()
            self.wfile.write(body or b"")

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sandbox.extra_env["MAAS_TOOLS_MIRROR"] = f"http://127.0.0.1:{server.server_address[1]}/m"
    try:
        yield files
    finally:
        server.shutdown()


def test_missing_tools_are_fetched_verified_and_used(sandbox: Sandbox, mirror: dict[str, bytes]) -> None:
    for tool in ("kind", "kubectl", "pulumi"):
        (sandbox.bin / tool).unlink()
    done = sandbox.run("make", "deploy-dev")
    tools_bin = sandbox.project / ".tools" / "bin"
    for tool in ("kind", "kubectl", "pulumi", "pulumi-language-python"):
        assert os.access(tools_bin / tool, os.X_OK), tool
    assert done.stdout.count("(sha256 verified)") == 3
    calls = sandbox.calls()
    assert _index(calls, r"^kind create cluster") < _index(calls, r"^pulumi up")
    assert "(sha256 verified)" not in sandbox.run("make", "deploy-dev").stdout, "fetched once"


def test_tools_of_other_versions_are_replaced_by_the_pinned_ones(
    sandbox: Sandbox, mirror: dict[str, bytes]
) -> None:
    """GitHub's runner images carry their own kind, kubectl and pulumi, older than ours."""
    sandbox.state_file("old-versions")
    done = sandbox.run("make", "deploy-dev")
    assert done.stdout.count("(sha256 verified)") == 3
    queried = [c.line for c in sandbox.calls(version_queries=True) if c.argv[:1] == ["version"]]
    assert {"kind version", "kubectl version --client", "pulumi version"} <= set(queried)
    assert (sandbox.project / ".tools" / f".kind-{versions.KIND_VERSION}").exists()
    assert _index(sandbox.calls(), r"^kind create cluster") < _index(sandbox.calls(), r"^pulumi up")


def test_tools_at_the_pinned_version_are_used_from_path(sandbox: Sandbox) -> None:
    done = sandbox.run("make", "deploy-dev")
    assert "Fetching" not in done.stdout
    assert not (sandbox.project / ".tools" / "bin").exists()


def test_a_checksum_mismatch_installs_nothing_and_stops(sandbox: Sandbox, mirror: dict[str, bytes]) -> None:
    (sandbox.bin / "kind").unlink()
    (kind_binary,) = [path for path in mirror if "/kind-" in path and not path.endswith(".sha256sum")]
    mirror[kind_binary] = b"tampered"
    done = sandbox.run("make", "deploy-dev", expect=2)
    assert "checksum mismatch" in done.stderr
    assert not (sandbox.project / ".tools" / "bin" / "kind").exists()
    assert not [c for c in sandbox.calls() if c.tool in ("kind", "pulumi")]


# --- teardown check -------------------------------------------------------------------

# Groups whose objects the operators create from ours: AuthConfigs and the Authorino
# instance (kuadrant-operator), EnvoyFilters/WasmPlugins Kuadrant programs Istio with,
# Istio's own policy and telemetry kinds.
OPERATOR_GROUPS = {
    "authorino.kuadrant.io",
    "operator.authorino.kuadrant.io",
    "networking.istio.io",
    "security.istio.io",
    "telemetry.istio.io",
    "extensions.istio.io",
}


def test_the_teardown_check_looks_at_every_group_of_ours(sandbox: Sandbox) -> None:
    sandbox.run("scripts/check-teardown.sh", "kind-maas")
    queried = {
        arg.split("=", 1)[1]
        for c in sandbox.calls()
        if c.tool == "kubectl"
        for arg in c.argv
        if arg.startswith("--api-group=")
    }
    missing = (set(CRD_OWNERS) | OPERATOR_GROUPS) - queried
    assert not missing, f"check-teardown.sh never looks at {sorted(missing)}"


# --- bash 3.2 (macOS's /bin/bash) -------------------------------------------------------
# No bash 3.2 can be installed here (Debian ships bash 5), so the scripts are held to the
# 3.2 language by reading them; the scanner is itself tested on each construct.
BASH4_ONLY = {
    r"\b(declare|local|typeset)\s+-\w*[AnNgI]": "declare/local -A, -n or -g (bash 4.0-4.3)",
    r"\b(mapfile|readarray|coproc)\b": "mapfile, readarray, coproc (bash 4.0)",
    r"\$\{\w+(\[[^]]*\])?(,,?|\^\^?)\}": "case modification ${x,,} ${x^^} (bash 4.0)",
    r"\$\{[^}]*@[QEPAaUuLK]\}": "parameter transformation ${x@Q} (bash 4.4)",
    r"\|&": "|& (bash 4.0)",
    r"&>>": "&>> (bash 4.0)",
    r";;&|;&\s*$": "case fall-through ;& ;;& (bash 4.0)",
    r"\$\{\w+\[-\d+\]\}": "negative array index (bash 4.3)",
    r"\bwait\s+-n\b": "wait -n (bash 4.3)",
    r"\$\{?EPOCH(SECONDS|REALTIME)": "$EPOCHSECONDS (bash 5.0)",
    r"\bshopt\s+-s\s+(globstar|lastpipe|autocd)": "shopt globstar/lastpipe/autocd (bash 4)",
    r"^\s*\w+\+?=\(": "arrays: an empty one is unbound under set -u before bash 4.4",
    r"\$\{\w+\[[@*]\]\}": "array expansion: unbound under set -u when empty, before bash 4.4",
}


def _bash4_constructs(text: str) -> list[str]:
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith("#"):
            continue
        found += [
            f"line {number}: {what}" for pattern, what in BASH4_ONLY.items() if re.search(pattern, line)
        ]
    return found


@pytest.mark.parametrize(
    "snippet",
    [
        "declare -A how=([a]=b)",
        "local -n ref=$1",
        "mapfile -t lines <file",
        'echo "${name,,}"',
        'echo "${name^^}"',
        'echo "${name@Q}"',
        "make |& tee log",
        "echo hi &>> log",
        "  a) echo ;;&",
        'echo "${items[-1]}"',
        "wait -n",
        "echo $EPOCHSECONDS",
        "shopt -s globstar",
        "missing=()",
        'for x in "${missing[@]}"; do :; done',
    ],
)
def test_the_bash_32_scanner_catches(snippet: str) -> None:
    assert _bash4_constructs(snippet), snippet


@pytest.mark.parametrize(
    "snippet",
    ['for tool in "$@"; do :; done', 'echo "${1:-}" "${#x}"', "command -v x >/dev/null 2>&1", "x=$((1 + 2))"],
)
def test_the_bash_32_scanner_passes(snippet: str) -> None:
    assert _bash4_constructs(snippet) == [], snippet


@pytest.mark.parametrize("script", sorted((PROJECT_DIR / "scripts").glob("*.sh")), ids=lambda p: p.name)
def test_scripts_keep_to_bash_32(script: Path) -> None:
    assert _bash4_constructs(script.read_text()) == []


def test_the_teardown_check_judges_shared_groups_only_by_our_label(sandbox: Sandbox) -> None:
    """OpenShift's own Routes and subscriptions (and, on a shared cluster, its monitors and
    gateways) are not ours to find: those count only when labelled part-of=maas-platform."""
    sandbox.state_file("others-objects")
    done = sandbox.run("scripts/check-teardown.sh", "kind-maas", expect=1)
    left = {
        line.split("(", 1)[1].rstrip("):") for line in done.stderr.splitlines() if line.startswith("left")
    }
    assert "things.monitoring.coreos.com" in left
    assert not left & {
        "things.route.openshift.io",
        "things.operators.coreos.com",
        "things.sailoperator.io",
        "things.operator.openshift.io",
    }
    assert "usage:" in sandbox.run("scripts/check-teardown.sh", "ocp", "sharde", expect=2).stderr
    shared = sandbox.run("scripts/check-teardown.sh", "ocp", "shared")
    assert "teardown clean" in shared.stdout
    gets = [c.argv for c in sandbox.calls() if c.tool == "kubectl" and "get" in c.argv]
    assert gets
    assert all(argv[argv.index("-l") + 1] == "app.kubernetes.io/part-of=maas-platform" for argv in gets)


def test_deploy_checks_what_the_stack_takes_from_the_cluster_before_anything_is_applied(
    sandbox: Sandbox,
) -> None:
    (sandbox.bin / "docker").unlink()
    sandbox.run("make", "deploy", "STACK=ocp")
    calls = sandbox.calls()
    preflight = _index(calls, r"^\.venv/bin/python -m commands\.preflight ocp$")
    assert preflight < _index(calls, r"^pulumi stack select ocp --create")
    assert _pulumi(calls, "up").argv[_pulumi(calls, "up").argv.index("--policy-pack-config") + 1] == (
        "policies/config/ocp.json"
    )
    sandbox.state_file("preflight-refuses")
    refused = sandbox.run("make", "deploy", "STACK=ocp", expect=2)
    assert "not ready for it" in refused.stderr
    assert not [c for c in sandbox.calls() if c.tool == "pulumi" and c.argv[:1] in (["up"], ["stack"])]


def test_the_cluster_state_holds_the_node_events_and_every_log_of_our_namespaces(sandbox: Sandbox) -> None:
    """What e2e.yml keeps when the suite fails: the node's description, every event, and
    the logs (the previous container's too) of every pod in each namespace of ours."""
    sandbox.state_file("listed-namespaces", "namespace/kuadrant-system\nnamespace/llm\n")
    sandbox.state_file("listed-pods", "pod/one\n")
    out = sandbox.root / "state-out"
    sandbox.run("scripts/cluster-state.sh", "kind-maas", str(out))
    lines = [c.line for c in sandbox.calls() if c.tool == "kubectl"]
    assert all(line.startswith("kubectl --context kind-maas ") for line in lines), lines
    assert any(" describe nodes" in line for line in lines)
    assert any(" get events --all-namespaces" in line for line in lines)
    assert any(" get namespaces -l app.kubernetes.io/part-of=maas-platform -o name" in line for line in lines)
    for namespace in ("kuadrant-system", "llm"):
        logs = [line for line in lines if f" logs -n {namespace} one --all-containers" in line]
        assert len(logs) == 2, lines
        assert any("--previous" in line for line in logs)
    assert {p.name for p in out.iterdir()} >= {"nodes.txt", "events.txt", "pods.txt", "logs-llm-one.txt"}
