"""The access-diff workflow, read as GitHub and actions/github-script read it: when it runs,
with which token rights, what it diffs, and its comment script run by node against a recording
stand-in of the GitHub API, push after push."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

import yaml

from commands import access_diff
from harness.program import PROJECT_DIR, stack_config, stack_names, typed_config
from tests.delivery.test_delivery import _github_glob, _imported_files
from tests.support.prerequisites import tool

WORKFLOW = PROJECT_DIR / ".github" / "workflows" / "access-diff.yml"
# actions/github-script v8.0.0, by the commit its tag names (git rev-list -n1 v8.0.0).
GITHUB_SCRIPT = "actions/github-script@ed597411d8f924073f98dfc5c65a23a2325f34cd"
OWNER, REPO, NUMBER = "acme", "maas-platform", 7

# Runs a github-script `script` as the action does: the body of an async function whose
# parameters are, in order, the keys of the object actions/github-script@v8.0.0 src/main.ts
# passes to callAsyncFunction (src/async-function.ts: new AsyncFunction(...Object.keys(args),
# source)). `github` records every call and keeps the pull request's comments in a JSON file
# across runs; `context` holds what actions/toolkit@main packages/github/src/context.ts derives
# from GITHUB_REPOSITORY and the pull_request payload (repo, and issue.number =
# payload.pull_request.number).
_RUNNER = r"""
const fs = require('fs');
const [scriptFile, stateFile] = process.argv.slice(2);
const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
const record = (method, params) => state.calls.push({ method, params });
const github = {
  rest: { issues: {
    listComments: async (params) => { record('listComments', params);
      return { data: state.comments.filter((c) => c.issue_number === params.issue_number) }; },
    createComment: async (params) => { record('createComment', params);
      const comment = { id: state.nextId++, issue_number: params.issue_number, body: params.body,
                        user: { login: 'github-actions[bot]', type: 'Bot' } };
      state.comments.push(comment); return { data: comment }; },
    updateComment: async (params) => { record('updateComment', params);
      const comment = state.comments.find((c) => c.id === params.comment_id);
      if (!comment) throw new Error(`no comment ${params.comment_id}`);
      comment.body = params.body; return { data: comment }; },
  } },
  // @octokit/plugin-paginate-rest: every page's items, concatenated (one page here).
  paginate: async (method, params) => (await method(params)).data,
};
const [owner, repo] = process.env.GITHUB_REPOSITORY.split('/');
const context = { repo: { owner, repo }, issue: { owner, repo, number: state.pullRequest } };
const refuse = new Proxy({}, { get: (_, name) => { throw new Error(`the script used ${String(name)}`); } });
const AsyncFunction = Object.getPrototypeOf(async () => null).constructor;
const source = fs.readFileSync(scriptFile, 'utf8');
const names = ['require', '__original_require__', 'github', 'octokit', 'context', 'core',
               'exec', 'glob', 'io'];
new AsyncFunction(...names, source)(require, require, github, github, context, refuse, refuse, refuse, refuse)
  .then(() => fs.writeFileSync(stateFile, JSON.stringify(state)))
  .catch((error) => { console.error(error); process.exit(1); });
"""


def _workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return loaded


def _steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = _workflow()["jobs"]["diff"]["steps"]
    return steps


def _comment_step() -> dict[str, Any]:
    (step,) = [s for s in _steps() if str(s.get("uses", "")).startswith("actions/github-script@")]
    return step


def _on() -> dict[str, Any]:
    # PyYAML reads the bare key `on` as YAML 1.1's true.
    loaded: dict[Any, Any] = yaml.safe_load(WORKFLOW.read_text())
    on: dict[str, Any] = loaded[True]
    return on


def test_it_runs_on_pull_requests_that_change_what_the_diff_reads() -> None:
    """The path filter matches every stack file, the project file, and every file of this
    project the command and the loader it runs in each tree import; nothing else triggers it."""
    on = _on()
    assert set(on) == {"pull_request"}, "pull_request_target would hand the head's code a write token"
    matchers = [_github_glob(p) for p in on["pull_request"]["paths"]]
    read = _imported_files(
        [PROJECT_DIR / "commands" / "access_diff.py", PROJECT_DIR / "harness" / "program.py"]
    )
    read |= {f"Pulumi.{stack}.yaml" for stack in stack_names()} | {
        "Pulumi.yaml",
        ".github/workflows/access-diff.yml",
    }
    assert "components/config/model.py" in read
    unmatched = sorted(f for f in read if not any(m.fullmatch(f) for m in matchers))
    assert not unmatched, f"a pull request changing these gets no access diff: {unmatched}"
    for path in ["README.md", "components/serving/gateway.py", "tests/access/test_access.py"]:
        assert not any(m.fullmatch(path) for m in matchers), path


def test_it_may_write_pull_request_comments_and_nothing_else() -> None:
    assert _workflow()["permissions"] == {"contents": "read", "pull-requests": "write"}


def test_it_diffs_every_stack_of_the_head_against_the_base_checkout() -> None:
    steps = _steps()
    checkouts = {
        s["with"]["path"]: s["with"].get("ref") for s in steps if "actions/checkout@" in s.get("uses", "")
    }
    assert checkouts == {"head": None, "base": "${{ github.event.pull_request.base.sha }}"}
    (diff,) = [s for s in steps if "commands.access_diff" in s.get("run", "")]
    script = diff["run"]
    assert "for file in Pulumi.*.yaml" in script
    (command,) = [shlex.split(line) for line in script.splitlines() if "commands.access_diff" in line]
    assert command[:6] == [
        ".venv/bin/python",
        "-m",
        "commands.access_diff",
        "--stack",
        "$stack",
        "--base-dir",
    ]
    assert command[6] == "../base"
    assert command[-2:] == [">", "../access-diff/$stack.md"]
    assert '>> "$GITHUB_STEP_SUMMARY"' in script, "a fork's pull request sees the diff on the run's summary"
    assert _comment_step()["env"]["ACCESS_DIFF_DIR"] == "access-diff"


def test_the_comment_step_is_pinned_and_skipped_where_the_token_cannot_write() -> None:
    step = _comment_step()
    assert step["uses"] == GITHUB_SCRIPT
    assert step["if"] == "github.event.pull_request.head.repo.full_name == github.repository"


def _push(tmp_path: Path, comments: dict[str, str], state: Path) -> list[dict[str, Any]]:
    """One push: the job's diff files, then the comment step's script run by node; returns the
    API calls it made."""
    out = tmp_path / "access-diff"
    out.mkdir(exist_ok=True)
    for old in out.glob("*.md"):
        old.unlink()
    for stack, body in comments.items():
        (out / f"{stack}.md").write_text(body)
    script = tmp_path / "script.js"
    script.write_text(_comment_step()["with"]["script"])
    runner = tmp_path / "runner.js"
    runner.write_text(_RUNNER)
    recorded = json.loads(state.read_text())
    recorded["calls"] = []
    state.write_text(json.dumps(recorded))
    env = {"ACCESS_DIFF_DIR": str(out), "GITHUB_REPOSITORY": f"{OWNER}/{REPO}", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [tool("node", "Debian's nodejs package"), str(runner), str(script), str(state)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    calls: list[dict[str, Any]] = json.loads(state.read_text())["calls"]
    return calls


def _dev_comment(change: dict[str, Any]) -> str:
    head = {**stack_config("dev"), **change}
    return access_diff.render("dev", typed_config("dev"), typed_config("dev", head))


def test_the_first_push_creates_one_comment_per_stack_and_later_pushes_update_it(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    # A person's comment quoting the dev marker, and another pull request's comment.
    human = {"id": 1, "issue_number": NUMBER, "body": access_diff.marker("dev") + "\nlooks odd",
             "user": {"login": "alice", "type": "User"}}  # fmt: skip
    other = {"id": 2, "issue_number": NUMBER + 1, "body": access_diff.marker("dev") + "\n",
             "user": {"login": "github-actions[bot]", "type": "Bot"}}  # fmt: skip
    state.write_text(
        json.dumps({"comments": [human, other], "calls": [], "nextId": 10, "pullRequest": NUMBER})
    )
    users = [*stack_config("dev")["maas:users"], {"name": "newuser", "tier": "free"}]
    first = {
        "dev": _dev_comment({"maas:users": users}),
        "gpu": access_diff.render("gpu", typed_config("gpu"), typed_config("gpu")),
    }
    calls = _push(tmp_path, first, state)
    assert [c["method"] for c in calls] == ["listComments", "createComment", "createComment"]
    assert all(c["params"]["issue_number"] == NUMBER for c in calls)
    assert [c["params"]["body"] for c in calls[1:]] == [first["dev"], first["gpu"]]
    # The next push moves a user instead: dev's comment is updated, gpu's is unchanged.
    moved = [
        {**u, "tier": "enterprise"} if u["name"] == "freeuser1" else u
        for u in stack_config("dev")["maas:users"]
    ]
    second = {**first, "dev": _dev_comment({"maas:users": moved})}
    calls = _push(tmp_path, second, state)
    assert [c["method"] for c in calls] == ["listComments", "updateComment"]
    assert calls[1]["params"]["comment_id"] == 10
    assert calls[1]["params"]["body"] == second["dev"]
    # A push that changes nothing in the diff writes nothing.
    assert [c["method"] for c in _push(tmp_path, second, state)] == ["listComments"]
    comments = json.loads(state.read_text())["comments"]
    assert [c["id"] for c in comments] == [1, 2, 10, 11], "one comment per stack, nothing else"
    assert comments[:2] == [human, other]
    assert comments[2]["body"] == second["dev"]
    assert "`freeuser1` moved" in comments[2]["body"]
