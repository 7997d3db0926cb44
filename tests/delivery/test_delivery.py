"""Delivery: workflows and scripts lint clean, and agree with the pins and the README."""

from __future__ import annotations

import itertools
import re
import shlex
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from components.pins import versions
from harness.program import PROJECT_DIR, typed_config
from tests.support.configs import kind_stacks
from tests.support.prerequisites import tool

WORKFLOWS = sorted((PROJECT_DIR / ".github" / "workflows").glob("*.yml"))
SCRIPTS = [*sorted((PROJECT_DIR / "scripts").glob("*.sh")), PROJECT_DIR / ".ci" / "run"]
# Scripts that run in a container image (bash 5 there), not on a user's machine.
IN_IMAGE_SCRIPTS = sorted((PROJECT_DIR / "components").rglob("*.sh"))


def _tool(name: str) -> str:
    return tool(name, "`make check` installs it (requirements-dev.txt, scripts/install-test-tools.sh)")


def _workflow(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((PROJECT_DIR / ".github" / "workflows" / name).read_text())
    return loaded


def _steps(workflow: dict[str, Any], job: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = workflow["jobs"][job]["steps"]
    return steps


def _readme_block(after: str) -> str:
    """The first code block after a sentence of the README."""
    text = (PROJECT_DIR / "README.md").read_text()
    found = re.search(re.escape(after) + r".*?```sh\n(.*?)```", text, re.DOTALL)
    assert found, f"README has no command after {after!r}"
    return found.group(1).strip()


def test_workflows_pass_actionlint() -> None:
    assert len(WORKFLOWS) >= 3
    done = subprocess.run(
        [_tool("actionlint"), *map(str, WORKFLOWS)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_scripts_pass_shellcheck() -> None:
    done = subprocess.run(
        [_tool("shellcheck"), "-x", *map(str, [*SCRIPTS, *IN_IMAGE_SCRIPTS])],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_ci_runs_the_readme_test_command() -> None:
    command = _readme_block("Run the tests")
    assert command == "make check"
    assert command in (PROJECT_DIR / ".ci" / "run").read_text().splitlines()
    assert any(step.get("run") == "bash .ci/run" for step in _steps(_workflow("ci.yml"), "check"))


def test_the_readme_deploy_command_is_what_the_e2e_job_runs() -> None:
    """One instance of the e2e matrix deploys `dev` with the README's command, as typed."""
    command = _readme_block("Deploy the `dev` stack")
    assert command == "make deploy-dev"
    (instance,) = [i for i in _e2e_instances() if i.deployed == "dev"]
    assert instance.steps[instance.deploy].step["run"] == command


def test_workflows_use_the_pinned_tools() -> None:
    """The deploy script fetches the pinned kind, kubectl and Pulumi CLI (scripts/tools.py);
    the preview action installs the same CLI. The CLI matches the SDK in requirements.txt."""
    sdk = dict(
        line.split("==")
        for line in (PROJECT_DIR / "requirements.txt").read_text().splitlines()
        if "==" in line
    )
    assert sdk["pulumi"] == versions.PULUMI_VERSION
    (action,) = [
        s for s in _steps(_workflow("preview.yml"), "preview") if "pulumi/actions@" in s.get("uses", "")
    ]
    assert action["with"]["pulumi-version"] == versions.PULUMI_VERSION
    for name, job in (("e2e.yml", "kind"), ("preview.yml", "preview")):
        for step in _steps(_workflow(name), job):
            assert "get.pulumi.com" not in step.get("run", ""), "the CLI comes from scripts/tools.py"
            assert not str(step.get("uses", "")).startswith("helm/kind-action"), "deploy.sh makes the cluster"


def _checkouts(steps: list[dict[str, Any]]) -> dict[str, str]:
    """Checkout path -> which side of the pull request it holds."""
    found = {}
    for step in steps:
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            options = step.get("with") or {}
            found[options.get("path", ".")] = "base" if "base.sha" in str(options.get("ref", "")) else "head"
    return found


def test_pull_requests_get_a_pulumi_preview_diff_with_the_policy_pack() -> None:
    workflow = _workflow("preview.yml")
    keys: dict[Any, Any] = workflow
    triggers = keys["on"] if "on" in keys else keys[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"pull_request"}
    steps = _steps(workflow, "preview")
    (preview,) = [s for s in steps if str(s.get("uses", "")).startswith("pulumi/actions@")]
    options = preview["with"]
    assert options["command"] == "preview"
    assert options["comment-on-pr"] is True
    assert options["diff"] is True
    assert options["cloud-url"].startswith("file://")
    names = [s.get("name") for s in steps]
    assert names.index("Deploy the base branch") < names.index("Preview the pull request")
    assert any("harness.render" in s.get("run", "") for s in _steps(workflow, "manifests"))


def test_the_preview_action_finds_the_pack_and_its_venv_where_the_cli_looks() -> None:
    """pulumi/actions@v7 src/main.ts: `resolve(GITHUB_WORKSPACE, work-dir)` is the CLI's cwd,
    and policyPacks / policyPackConfigs are passed unchanged, so they resolve against
    work-dir. The CLI then starts <pack>/venv/bin/python, which nothing but a step before
    it creates (the action installs no dependencies)."""
    steps = _steps(_workflow("preview.yml"), "preview")
    (index,) = [i for i, s in enumerate(steps) if str(s.get("uses", "")).startswith("pulumi/actions@")]
    options = steps[index]["with"]
    work_dir = options["work-dir"]
    assert _checkouts(steps)[work_dir] == "head", "the preview runs the pull request's code"
    # This checkout stands for the workspace's `head`: resolve as the CLI would.
    pack = (PROJECT_DIR / options["policyPacks"]).resolve()
    assert (pack / "PulumiPolicy.yaml").is_file(), f"{work_dir}/{options['policyPacks']} is not a pack"
    assert (PROJECT_DIR / options["policyPackConfigs"]).is_file()
    prepared = [s.get("run", "") for s in steps[:index]]
    assert any(f"make -C {work_dir} python-envs" in run for run in prepared), (
        "no step creates the pack's venv"
    )


# --- the e2e workflow, read the way GitHub Actions runs it -----------------------------
# Each instance of the `kind` job's matrix is expanded, its `${{ matrix.<key> }}` references
# replaced, and each `run:` turned into the commands it starts (a `make` target into the
# commands `make -n` prints), so the tests below assert on what each runner would run.

E2E_JOB = "kind"
_MATRIX_REFERENCE = re.compile(r"\$\{\{\s*matrix\.([A-Za-z_][\w-]*)\s*\}\}")


def _matrix_combinations(matrix: dict[str, Any]) -> list[dict[str, Any]]:
    """The job instances a `strategy.matrix` makes, as GitHub documents it (github/docs@main
    data/reusables/actions/jobs/using-matrix-strategy.md, matrix-exclude.md,
    matrix-include.md): every combination of the variables, first variable slowest; minus
    those an `exclude` object matches in part; then each `include` object is added to every
    original combination whose original values it does not overwrite (values added by an
    earlier include may be overwritten), and when it fits none it is a combination of its own.
    With no variables, each include object is one instance."""
    variables = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    for key, values in variables.items():
        assert isinstance(values, list), f"matrix.{key} = {values!r}: only literal lists are expanded here"
    originals = (
        [dict(zip(variables, values, strict=True)) for values in itertools.product(*variables.values())]
        if variables
        else []
    )
    originals = [
        combination
        for combination in originals
        if not any(
            all(combination.get(k) == v for k, v in out.items()) for out in matrix.get("exclude") or []
        )
    ]
    combinations = [dict(c) for c in originals]
    extra: list[dict[str, Any]] = []
    for added in matrix.get("include") or []:
        fits = [i for i, c in enumerate(originals) if all(c[k] == v for k, v in added.items() if k in c)]
        for i in fits:
            combinations[i].update(added)
        if not fits:
            extra.append(dict(added))
    return combinations + extra


def _with_matrix(value: Any, combination: dict[str, Any]) -> Any:
    """`value` with every `${{ matrix.<key> }}` replaced by that instance's value. Any other
    use of the matrix context (a condition, an index expression) cannot be evaluated here,
    so it fails the test instead of being read wrongly."""
    if isinstance(value, dict):
        for key, item in value.items():
            condition = key == "if" and isinstance(item, str) and re.search(r"\bmatrix\b", item)
            assert not condition, f"cannot evaluate the condition {item!r} for {combination}"
        return {k: _with_matrix(v, combination) for k, v in value.items()}
    if isinstance(value, list):
        return [_with_matrix(v, combination) for v in value]
    if not isinstance(value, str):
        return value

    def replace(found: re.Match[str]) -> str:
        key = found.group(1)
        assert key in combination, f"matrix.{key} is not defined for the instance {combination}"
        item = combination[key]
        return ("true" if item else "false") if isinstance(item, bool) else str(item)

    replaced = _MATRIX_REFERENCE.sub(replace, value)
    unevaluated = re.search(r"\$\{\{[^}]*\bmatrix\b", replaced)
    assert not unevaluated, f"cannot evaluate {value!r} for {combination}"
    return replaced


def _condition(step: dict[str, Any]) -> str:
    """A step's `if`, without `${{ }}`; a step without one runs on success()."""
    condition = str(step.get("if", "success()")).strip()
    found = re.fullmatch(r"\$\{\{(.*)\}\}", condition, re.DOTALL)
    return (found.group(1) if found else condition).strip()


@cache
def _make_dry_run(arguments: tuple[str, ...]) -> tuple[str, ...]:
    """The command lines GNU make prints for a target with -n, without running them."""
    done = subprocess.run(
        [_tool("make"), "-n", "--no-print-directory", "-C", str(PROJECT_DIR), *arguments],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return tuple(done.stdout.replace("\\\n", " ").splitlines())


def _commands(run: str) -> list[list[str]]:
    """The commands a `run:` script starts, each as its argv without leading VAR=value
    assignments; `make <target> [VAR=value]` becomes the commands of that target."""
    commands = []
    for line in run.replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        argv = shlex.split(line)
        while argv and re.fullmatch(r"[A-Za-z_]\w*=.*", argv[0]):
            argv.pop(0)
        if argv[:1] == ["make"]:
            commands += [shlex.split(made) for made in _make_dry_run(tuple(argv[1:])) if made.strip()]
        elif argv:
            commands.append(argv)
    return commands


@dataclass(frozen=True)
class _Step:
    step: dict[str, Any]
    commands: list[list[str]]
    env: dict[str, Any]

    def runs(self, script: str) -> list[str] | None:
        """The argv of the first command that starts `script`, if any."""
        return next((c for c in self.commands if c[:1] == [script]), None)


@dataclass(frozen=True)
class _Instance:
    matrix: dict[str, Any]
    steps: list[_Step]

    def index(self, script: str, *, first_argument: str | None = None) -> int:
        found = [
            i
            for i, s in enumerate(self.steps)
            if (argv := s.runs(script)) is not None
            and (first_argument is None or argv[1:2] == [first_argument])
        ]
        assert len(found) == 1, f"{self.matrix}: expected one step running {script} {first_argument or ''}"
        return found[0]

    @property
    def deploy(self) -> int:
        return self.index("scripts/deploy.sh")

    @property
    def deployed(self) -> str:
        argv = self.steps[self.deploy].runs("scripts/deploy.sh")
        assert argv is not None
        return argv[1]

    @property
    def suite(self) -> int:
        return self.index("scripts/e2e.sh")

    @property
    def suite_stack(self) -> str:
        """MAAS_E2E_STACK as the step sees it (the most specific env wins: github/docs@main
        content/actions/using-workflows/workflow-syntax-for-github-actions.md, `env`), else
        the default scripts/e2e.sh gives it."""
        default = re.search(r"MAAS_E2E_STACK:-([^}]+)\}", (PROJECT_DIR / "scripts" / "e2e.sh").read_text())
        assert default, "scripts/e2e.sh no longer defaults MAAS_E2E_STACK"
        return str(self.steps[self.suite].env.get("MAAS_E2E_STACK") or default.group(1))

    def no_changes_previews(self) -> list[int]:
        return [
            i
            for i, s in enumerate(self.steps)
            if (argv := s.runs("scripts/pulumi.sh")) is not None
            and argv[1:2] == ["preview"]
            and "--expect-no-changes" in argv
        ]


def _e2e_instances() -> list[_Instance]:
    workflow = _workflow("e2e.yml")
    job = workflow["jobs"][E2E_JOB]
    assert "if" not in job, "a condition on the job could skip an instance"
    matrix = (job.get("strategy") or {}).get("matrix")
    instances = []
    for combination in _matrix_combinations(matrix) if matrix else [{}]:
        expanded = _with_matrix({k: v for k, v in job.items() if k != "strategy"}, combination)
        env = {**(workflow.get("env") or {}), **(expanded.get("env") or {})}
        steps = [
            _Step(step, _commands(str(step.get("run", ""))), {**env, **(step.get("env") or {})})
            for step in expanded["steps"]
        ]
        instances.append(_Instance(combination, steps))
    return instances


def _deploy_pulumi_up_flags(stack: str) -> dict[str, str | None]:
    """The --refresh and policy pack flags of scripts/deploy.sh's `pulumi up`, for `stack`."""
    text = (PROJECT_DIR / "scripts" / "deploy.sh").read_text().replace("\\\n", " ")
    (line,) = [line for line in text.splitlines() if line.strip().startswith("pulumi up ")]
    argv = [arg.replace("$stack", stack) for arg in shlex.split(line)]
    flags: dict[str, str | None] = {"--refresh": None} if "--refresh" in argv else {}
    for flag in ("--policy-pack", "--policy-pack-config"):
        flags[flag] = argv[argv.index(flag) + 1]
    assert flags.get("--policy-pack-config") == f"policies/config/{stack}.json"
    return flags


def test_the_matrix_expansion_is_githubs_documented_one() -> None:
    """The examples of github/docs@main data/reusables/actions/jobs/matrix-include.md,
    matrix-exclude.md and matrix-add-with-include.md, with the results they list."""
    assert _matrix_combinations(
        {
            "fruit": ["apple", "pear"],
            "animal": ["cat", "dog"],
            "include": [
                {"color": "green"},
                {"color": "pink", "animal": "cat"},
                {"fruit": "apple", "shape": "circle"},
                {"fruit": "banana"},
                {"fruit": "banana", "animal": "cat"},
            ],
        }
    ) == [
        {"fruit": "apple", "animal": "cat", "color": "pink", "shape": "circle"},
        {"fruit": "apple", "animal": "dog", "color": "green", "shape": "circle"},
        {"fruit": "pear", "animal": "cat", "color": "pink"},
        {"fruit": "pear", "animal": "dog", "color": "green"},
        {"fruit": "banana"},
        {"fruit": "banana", "animal": "cat"},
    ]
    excluded = _matrix_combinations(
        {
            "os": ["macos-latest", "windows-latest"],
            "version": [12, 14, 16],
            "environment": ["staging", "production"],
            "exclude": [
                {"os": "macos-latest", "version": 12, "environment": "production"},
                {"os": "windows-latest", "version": 16},
            ],
        }
    )
    assert len(excluded) == 9
    added = _matrix_combinations(
        {
            "os": ["macos-latest", "windows-latest", "ubuntu-latest"],
            "version": [12, 14, 16],
            "include": [{"os": "windows-latest", "version": 17}],
        }
    )
    assert len(added) == 10
    assert added[-1] == {"os": "windows-latest", "version": 17}
    only = [{"site": "production", "datacenter": "site-a"}, {"site": "staging", "datacenter": "site-b"}]
    assert _matrix_combinations({"include": only}) == only
    for unreadable in ({"if": "matrix.stack == 'dev'"}, {"run": "echo ${{ matrix['stack'] }}"}):
        with pytest.raises(AssertionError, match="cannot evaluate"):
            _with_matrix(unreadable, {"stack": "dev"})


def test_an_e2e_instance_runs_the_suite_on_a_stack_with_oidc() -> None:
    """CI deploys a stack with Keycloak and runs the whole suite against it, so the suite's
    OIDC tests run rather than skip; and every instance tests the stack it deployed."""
    instances = _e2e_instances()
    with_oidc = [i for i in instances if typed_config(i.deployed).auth.oidc.enabled]
    assert with_oidc, f"no instance deploys a stack with auth.oidc.enabled: {[i.deployed for i in instances]}"
    for instance in instances:
        assert instance.suite_stack == instance.deployed, instance.matrix
        assert instance.deploy < instance.suite, instance.matrix
        for index in (instance.deploy, instance.suite):
            assert _condition(instance.steps[index].step) == "success()", instance.matrix
    assert len({i.deployed for i in instances}) == len(instances), "two instances deploy the same stack"


def test_the_e2e_matrix_deploys_every_kind_stack() -> None:
    """The offline suite runs the scenarios on each kind stack's config (tests/suite/
    test_scenarios.py) because CI runs the suite on each of them: the two lists agree."""
    assert sorted(i.deployed for i in _e2e_instances()) == kind_stacks()


def test_every_e2e_instance_proves_a_second_up_changes_nothing_before_the_suite() -> None:
    """R11: after the deploy and before the suite, the preview of deploy.sh's `pulumi up`
    (same stack, --refresh and policy pack flags) with --expect-no-changes, through
    scripts/pulumi.sh (the local backend), gating the suite."""
    for instance in _e2e_instances():
        previews = instance.no_changes_previews()
        assert previews, f"{instance.matrix}: no `pulumi preview --expect-no-changes`"
        assert any(instance.deploy < i < instance.suite for i in previews), instance.matrix
        for index in previews:
            step = instance.steps[index]
            assert _condition(step.step) == "success()", instance.matrix
            assert not step.step.get("continue-on-error"), instance.matrix
            argv = step.runs("scripts/pulumi.sh")
            assert argv is not None
            assert argv[argv.index("--stack") + 1] == instance.deployed, instance.matrix
            for flag, value in _deploy_pulumi_up_flags(instance.deployed).items():
                assert flag in argv, f"{instance.matrix}: the preview lacks deploy.sh's {flag}"
                if value is not None:
                    assert argv[argv.index(flag) + 1] == value, instance.matrix


def test_every_e2e_instance_destroys_its_stack_and_checks_the_teardown_always() -> None:
    for instance in _e2e_instances():
        destroy = instance.index("scripts/destroy.sh", first_argument=instance.deployed)
        teardown = instance.index("scripts/check-teardown.sh")
        assert instance.suite < destroy < teardown == len(instance.steps) - 1, instance.matrix
        for index in (destroy, teardown):
            assert _condition(instance.steps[index].step) == "always()", instance.matrix
        argv = instance.steps[teardown].runs("scripts/check-teardown.sh")
        assert argv is not None
        assert argv[1:] == [typed_config(instance.deployed).cluster.context], instance.matrix


def _step_using(instance: _Instance, action: str) -> list[int]:
    return [i for i, s in enumerate(instance.steps) if str(s.step.get("uses", "")).split("@")[0] == action]


def test_every_e2e_instance_keeps_the_cluster_state_when_it_fails() -> None:
    """After a failed suite and before the destroy: scripts/cluster-state.sh writes the
    node, events, pods, objects and our pods' logs into a directory, and that directory is
    uploaded as an artifact, both only on failure."""
    for instance in _e2e_instances():
        state = instance.index("scripts/cluster-state.sh")
        (upload,) = _step_using(instance, "actions/upload-artifact")
        destroy = instance.index("scripts/destroy.sh", first_argument=instance.deployed)
        assert instance.suite < state < upload < destroy, instance.matrix
        for index in (state, upload):
            assert _condition(instance.steps[index].step) == "failure()", instance.matrix
        argv = instance.steps[state].runs("scripts/cluster-state.sh")
        assert argv is not None
        assert argv[1] == typed_config(instance.deployed).cluster.context, instance.matrix
        written = argv[2].replace("$RUNNER_TEMP", "${{ runner.temp }}")
        assert instance.steps[upload].step["with"]["path"] == written, instance.matrix
        assert instance.deployed in instance.steps[upload].step["with"]["name"], "one artifact per stack"


def test_every_e2e_instance_caches_pip_the_fetched_tools_and_pulumis_plugins() -> None:
    """setup-python's pip cache keyed on every requirements file the Makefile installs; the
    tools deploy.sh fetches (scripts/lib.sh MAAS_TOOLS_DIR, default .tools, its bin/) and
    Pulumi's plugin directory (~/.pulumi/plugins, where `pulumi up` installs them), keyed on
    the pins."""
    lib = (PROJECT_DIR / "scripts" / "lib.sh").read_text()
    assert "MAAS_TOOLS_DIR=${MAAS_TOOLS_DIR:-$PWD/.tools}" in lib
    installed = set(re.findall(r"-r (\S+requirements\S*\.txt)", (PROJECT_DIR / "Makefile").read_text()))
    for instance in _e2e_instances():
        (python,) = _step_using(instance, "actions/setup-python")
        settings = instance.steps[python].step["with"]
        assert settings.get("cache") == "pip", instance.matrix
        patterns = str(settings["cache-dependency-path"]).split()
        for required in installed | {"requirements.txt", "policies/requirements.txt"}:
            assert any(_github_glob(p).fullmatch(required) for p in patterns), required
        (cache,) = _step_using(instance, "actions/cache")
        cached = instance.steps[cache].step["with"]
        assert {".tools/bin", "~/.pulumi/plugins"} <= set(str(cached["path"]).split()), instance.matrix
        assert "components/pins/versions.py" in cached["key"], instance.matrix
        assert cache < instance.deploy, instance.matrix
        assert python < instance.deploy, instance.matrix


def _github_glob(pattern: str) -> re.Pattern[str]:
    """A workflow path filter as GitHub matches it (github/docs@main
    content/actions/reference/workflows-and-actions/workflow-syntax.md, filter pattern cheat sheet): `*` any
    characters but `/`, `**` any characters, `?` one character."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + ".", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out)


def _imported_files(start: list[Path]) -> set[str]:
    """The project's own files `start` imports, transitively (relative to the project)."""
    import ast

    seen: set[str] = set()
    todo = list(start)
    while todo:
        path = todo.pop()
        relative = str(path.relative_to(PROJECT_DIR))
        if relative in seen:
            continue
        seen.add(relative)
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            if isinstance(node, ast.ImportFrom) and node.module:
                names += [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                base = PROJECT_DIR / name.replace(".", "/")
                for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                    if candidate.is_file():
                        todo.append(candidate)
    return seen


def test_a_pull_request_that_changes_what_the_e2e_job_runs_gets_a_cluster_verdict() -> None:
    """The pull_request path filter matches every file the job's deploy and suite run: the
    program and what it imports, the stack files, the pack, the scripts, the suite and what
    it imports (tests/e2e imports the harness and the usage export, for instance), the
    Makefile and the requirements; and it runs on no other event condition."""
    workflow = _workflow("e2e.yml")
    # YAML 1.1 reads the key `on` as true (PyYAML); GitHub reads it as `on`.
    triggers = next(value for key, value in workflow.items() if key in ("on", True))
    paths = triggers["pull_request"]["paths"]
    assert "paths-ignore" not in triggers["pull_request"]
    matchers = [_github_glob(p) for p in paths]
    run = _imported_files(
        [PROJECT_DIR / "__main__.py", *sorted((PROJECT_DIR / "tests" / "e2e").glob("*.py"))]
    )
    run |= {str(p.relative_to(PROJECT_DIR)) for p in (PROJECT_DIR / "scripts").iterdir() if p.is_file()}
    run |= {p.name for p in PROJECT_DIR.glob("Pulumi.*.yaml")} | {"Makefile", "requirements.txt"}
    run |= {str(p.relative_to(PROJECT_DIR)) for p in (PROJECT_DIR / "policies").rglob("*.py")}
    run.add(".github/workflows/e2e.yml")
    unmatched = sorted(f for f in run if not any(m.fullmatch(f) for m in matchers))
    assert not unmatched, f"a pull request changing these gets no cluster verdict: {unmatched}"
