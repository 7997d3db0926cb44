"""A recording stand-in for docker, kind, kubectl, pulumi, curl and python3, and for
apt-get, systemctl, sudo and id (scripts/install-test-tools.sh).

    standin.py TOOL ARGS...

Appends {"tool", "argv", "env"} as one JSON line to $STANDIN_LOG, then answers the way
the real tool does for what the scripts ask of it. Its world (which kind clusters exist,
whether docker answers, how many curls fail first) lives in files under $STANDIN_STATE.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import sys
import time
from pathlib import Path

STATE = Path(os.environ["STANDIN_STATE"])
PYTHON = os.environ["STANDIN_PYTHON"]
HERE = Path(__file__).resolve()
# The environment the deploy path depends on (backend, passphrase), recorded with each call.
WATCHED_ENV = ("PULUMI_BACKEND_URL", "PULUMI_CONFIG_PASSPHRASE_FILE", "PULUMI_SKIP_UPDATE_CHECK")

# Shaped like the dev stack's outputs; a test may replace them (state file "outputs").
OUTPUTS = {
    "kubeContext": "kind-maas",
    "gatewayService": "llm/inference-gateway-istio",
    "apiUrl": "http://api.maas.local:8000/v1",
    "portForward": "kubectl port-forward -n llm svc/inference-gateway-istio 8000:80",
    "models": {
        "simulator": {
            "url": "http://simulator.maas.local:8000/v1",
            "servedModelName": "simulator-model",
            "tiers": ["free", "premium", "enterprise"],
        },
        "simulator-large": {
            "url": "http://large.maas.local:8000/v1",
            "servedModelName": "simulator-large-model",
            "tiers": ["premium", "enterprise"],
        },
    },
    "users": {"freeuser1": "free", "premiumuser1": "premium"},
    "apiKeys": {"freeuser1": "key-of-freeuser1", "premiumuser1": "key-of-premiumuser1"},
}


def record(tool: str, argv: list[str]) -> None:
    entry = {"tool": tool, "argv": argv, "env": {k: os.environ.get(k) for k in WATCHED_ENV}}
    with open(os.environ["STANDIN_LOG"], "a") as log:
        log.write(json.dumps(entry) + "\n")


def option(argv: list[str], name: str) -> str | None:
    for index, arg in enumerate(argv):
        if arg == name and index + 1 < len(argv):
            return argv[index + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def clusters() -> list[str]:
    path = STATE / "kind-clusters"
    return path.read_text().split() if path.exists() else []


def version(tool: str) -> str:
    """What the real tool prints for its version: the pinned one, or an older one."""
    old = (STATE / "old-versions").exists()
    pins = {"kind": "v0.26.0" if old else "v0.33.0", "kubectl": "v1.32.1" if old else "v1.36.4"}
    pins["pulumi"] = "3.148.0" if old else "3.272.0"
    return {
        "kind": f"kind {pins['kind']} go1.25.1 linux/amd64",
        "kubectl": f"Client Version: {pins['kubectl']}\nKustomize Version: v5.7.1",
        "pulumi": f"v{pins['pulumi']}",
    }[tool]


def kind(argv: list[str]) -> int:
    if argv == ["version"]:
        print(version("kind"))
    elif argv[:2] == ["get", "clusters"]:
        print("\n".join(clusters()))
    elif argv[:2] == ["create", "cluster"]:
        (STATE / "kind-clusters").write_text("\n".join([*clusters(), option(argv, "--name") or "kind"]))
    elif argv[:2] == ["delete", "cluster"]:
        name = option(argv, "--name") or "kind"
        (STATE / "kind-clusters").write_text("\n".join(c for c in clusters() if c != name))
    return 0


# The commands that load a stack's config and save its secrets state when it has none.
CONFIG_COMMANDS = ("config", "up", "preview", "destroy", "refresh", "import", "watch", "logs")


def save_salt(argv: list[str]) -> None:
    """As the passphrase secrets manager does for a stack file without a salt: writes one
    into the --config-file, else into Pulumi.<stack>.yaml beside the Pulumi.yaml of the
    working directory (pulumi/pulumi@v3.259.0-14-g1b59498 pkg/cmd/pulumi/stack/io.go SaveProjectStack)."""
    if argv[:2] == ["stack", "select"] and "--create" in argv:
        stack = argv[2]
    elif argv[:1] and argv[0] in CONFIG_COMMANDS:
        stack = option(argv, "--stack") or option(argv, "-s") or ""
    else:
        return
    given = option(argv, "--config-file")
    if given is None and not Path("Pulumi.yaml").exists():
        print("error: no Pulumi.yaml project file found", file=sys.stderr)
        sys.exit(255)
    path = Path(given) if given is not None else Path(f"Pulumi.{stack}.yaml")
    text = path.read_text() if path.exists() else ""
    if "encryptionsalt:" not in text:
        path.write_text(text + "encryptionsalt: v1:standin-salt\n")


def pulumi(argv: list[str]) -> int:
    save_salt(argv)
    pack = option(argv, "--policy-pack")
    # pulumi-language-python RunPlugin starts <pack>/venv/bin/python and creates nothing.
    if pack is not None and not (Path(pack) / "venv" / "bin" / "python").exists():
        print(f"error: fork/exec {pack}/venv/bin/python: no such file or directory", file=sys.stderr)
        return 1
    if argv == ["version"]:
        print(version("pulumi"))
    elif argv[:2] == ["stack", "output"] and "--json" in argv:
        replaced = STATE / "outputs"
        outputs = json.loads(replaced.read_text()) if replaced.exists() else OUTPUTS
        # `stack output NAME`: that output alone
        words = [
            a
            for i, a in enumerate(argv[2:], 2)
            if not a.startswith("-") and argv[i - 1] not in ("--stack", "-s")
        ]
        print(json.dumps(outputs[words[0]] if words else outputs))
    elif argv[:2] == ["stack", "output"]:
        print("Current stack outputs (5):")
    return 0


def kubectl(argv: list[str]) -> int:
    if argv == ["version", "--client"]:
        print(version("kubectl"))
    if argv[2:4] == ["get", "secret"] and (STATE / "gateway-ca").exists():
        # cert-manager's Secret beside a self-signed certificate: ca.crt, base64 as the API gives it
        print(base64.b64encode((STATE / "gateway-ca").read_bytes()).decode(), end="")
    if "api-resources" in argv and (STATE / "others-objects").exists():
        # one kind per group: <group>.things
        group = next(a.split("=", 1)[1] for a in argv if a.startswith("--api-group="))
        print(f"things.{group}")
    if "get" in argv and "-l" not in argv and (STATE / "others-objects").exists():
        # objects not labelled as ours: another tenant's, or the cluster's own
        print(f"{argv[argv.index('get') + 1]}/theirs")
    if "get" in argv and (STATE / f"listed-{argv[argv.index('get') + 1]}").exists():
        # what `get <resource> -o name` lists, one per line
        print((STATE / f"listed-{argv[argv.index('get') + 1]}").read_text(), end="")
    if "get" in argv and argv[argv.index("get") + 1].startswith("envoyfilters."):
        # Kuadrant's wasm EnvoyFilter, once the operator has written it ("envoyfilter-late":
        # how many reads find none first); --ignore-not-found prints nothing without it
        late = STATE / "envoyfilter-late"
        left = int(late.read_text()) if late.exists() else 0
        if left:
            late.write_text(str(left - 1))
        elif (STATE / "envoyfilter.json").exists():
            print((STATE / "envoyfilter.json").read_text())
    elif "get" in argv and argv[argv.index("get") + 1].startswith("gateways."):
        # the Gateway, HTTPRoutes and Kuadrant policies, as one List
        objects = STATE / "cluster-objects.json"
        print(objects.read_text() if objects.exists() else '{"kind": "List", "items": []}')
    if "port-forward" in argv:
        if (STATE / "port-forward-dies").exists():
            print("error: lost connection to pod", file=sys.stderr)
            return 1
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        # kubernetes/client-go@v0.36.3 tools/portforward/portforward.go prints this once it listens
        if not (STATE / "port-forward-silent").exists():
            local, remote = argv[-1].split(":")
            print(f"Forwarding from 127.0.0.1:{local} -> {remote}", flush=True)
        time.sleep(60)
    return 0


def curl(argv: list[str]) -> int:
    failures = STATE / "curl-failures"
    left = int(failures.read_text()) if failures.exists() else 0
    if left:
        failures.write_text(str(left - 1))
        print("503", end="")
    else:
        print("200", end="")
    return 0


def docker(argv: list[str]) -> int:
    return 1 if (STATE / "docker-down").exists() else 0


def python3(argv: list[str]) -> int:
    """The real interpreter, except that virtualenvs get a recording python of their own."""
    if argv[:2] == ["-m", "venv"]:
        venv_python = Path(argv[2]) / "bin" / "python"
        venv_python.parent.mkdir(parents=True, exist_ok=True)
        write_standin(venv_python, "venv-python")
        return 0
    os.execv(PYTHON, [PYTHON, *argv])
    return 1


def venv_python(argv: list[str]) -> int:
    """The program's interpreter: pip installs nothing; the cluster preflight refuses when told."""
    if argv[:1] == ["scripts/stack_file.py"]:
        os.execv(PYTHON, [PYTHON, *argv])
    if argv[:2] == ["-m", "commands.preflight"] and (STATE / "preflight-refuses").exists():
        print("stack: the cluster (context x) is not ready for it:", file=sys.stderr)
        return 1
    return 0


# Debian's packages whose install starts and enables a systemd unit of the same name.
SERVICE_PACKAGES = ("prometheus", "nginx")


def apt_get(argv: list[str]) -> int:
    """Installs by starting and enabling the service of each package that has one, as dpkg's
    postinst does on a systemd host; a unit's state is a file unit-<name>-{active,enabled}."""
    if argv[:1] == ["install"]:
        for package in (a for a in argv[1:] if a in SERVICE_PACKAGES):
            (STATE / f"unit-{package}-active").touch()
            (STATE / f"unit-{package}-enabled").touch()
    return 0


def systemctl(argv: list[str]) -> int:
    verbs = {"is-active": "active", "is-enabled": "enabled"}
    units = [a for a in argv[1:] if not a.startswith("-")]
    if argv[:1] and argv[0] in verbs:
        return 0 if all((STATE / f"unit-{u}-{verbs[argv[0]]}").exists() for u in units) else 3
    undo = {"stop": "active", "disable": "enabled"}
    if argv[:1] and argv[0] in undo:
        for unit in units:
            (STATE / f"unit-{unit}-{undo[argv[0]]}").unlink(missing_ok=True)
    return 0


def sudo(argv: list[str]) -> int:
    os.execvp(argv[0], argv)
    return 1


def id_(argv: list[str]) -> int:
    uid = STATE / "uid"
    print(uid.read_text().strip() if uid.exists() else "1000")
    return 0


def write_standin(path: Path, tool: str) -> None:
    """An executable that runs this stand-in as `tool` (and tells it the path it was run as)."""
    path.write_text(f'#!/bin/sh\nexport STANDIN_AS="$0"\nexec "{PYTHON}" "{HERE}" {tool} "$@"\n')
    path.chmod(0o755)


TOOLS = {
    "docker": docker,
    "kind": kind,
    "kubectl": kubectl,
    "pulumi": pulumi,
    "curl": curl,
    "python3": python3,
    "venv-python": lambda argv: venv_python(argv),
    "apt-get": apt_get,
    "systemctl": systemctl,
    "sudo": sudo,
    "id": id_,
}

if __name__ == "__main__":
    tool, args = sys.argv[1], sys.argv[2:]
    if tool != "python3" or args[:2] == ["-m", "venv"]:
        record(tool if tool != "venv-python" else os.path.relpath(os.environ["STANDIN_AS"]), args)
    sys.exit(TOOLS[tool](args))
