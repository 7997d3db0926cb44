"""The access diff (commands/access_diff.py): one golden comment per kind of change, from
variants of the dev stack loaded by the real loader; that each side is loaded by its own tree's
code; and that what the diff says each tier may reach is what the declared AuthPolicy admits.

A golden file is the whole comment; after an intended change of the wording, rewrite them with
`PYTHONPATH=policies .venv/bin/python -m tests.access.test_access_diff` and review the diff
of tests/access/golden/.
"""

from __future__ import annotations

import copy
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from commands import access_diff
from components.config import StackConfig
from harness import bench
from harness.program import PROJECT_DIR, Evaluation, evaluate, stack_config, stack_names, typed_config
from tests.support.authorino import admitted

GOLDEN = Path(__file__).parent / "golden"
USAGE = GOLDEN / "usage.csv"


def _entry(config: dict[str, Any], key: str, name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [e for e in config[key] if e["name"] == name]
    (entry,) = found
    return entry


def _model(config: dict[str, Any], name: str) -> dict[str, Any]:
    return _entry(config, "maas:models", name)


def _tier(config: dict[str, Any], name: str) -> dict[str, Any]:
    return _entry(config, "maas:tiers", name)


def _gains_and_losses(c: dict[str, Any]) -> None:
    _model(c, "simulator-large")["tiers"] = ["free", "premium"]


def _models_added_and_removed(c: dict[str, Any]) -> None:
    c["maas:models"] = [
        _model(c, "simulator"),
        {"name": "extra", "host": "extra", "runtime": "simulator", "tiers": ["enterprise"]},
    ]
    c["maas:prices"]["models"] = {}


def _routing(c: dict[str, Any]) -> None:
    simulator = _model(c, "simulator")
    simulator["scheduling"] = "service"
    large = _model(c, "simulator-large")
    large.update(host="big", servedModelName="large-v2", servedBy="simulator")


def _users(c: dict[str, Any]) -> None:
    users = [u for u in c["maas:users"] if u["name"] != "freeuser2"]
    for user in users:
        if user["name"] == "premiumuser2":
            user["tier"] = "enterprise"
    c["maas:users"] = [*users, {"name": "newuser", "tier": "free"}]


def _limits(c: dict[str, Any]) -> None:
    _tier(c, "enterprise")["tokens"]["limit"] = 100_000
    _tier(c, "premium")["requests"]["window"] = "1m"
    _tier(c, "premium")["maxTokens"] = 2048


def _windows(c: dict[str, Any]) -> None:
    """A window removed from one limit, one added to another, one changed in place."""
    _tier(c, "free")["requests"] = [{"limit": 5, "window": "2m"}]
    _tier(c, "premium")["tokens"] = [{"limit": 50_000, "window": "1m"}, {"limit": 10**7, "window": "730h"}]
    _tier(c, "enterprise")["tokens"] = {"limit": 150_000, "window": "1m"}


def _quotas(c: dict[str, Any]) -> None:
    """A model's quota changed for one tier, added for another; another model's removed."""
    large = _model(c, "simulator-large")
    large["limits"] = {
        "premium": {"requests": {"limit": 2, "window": "2m"}},
        "enterprise": {"tokens": {"limit": 100_000, "window": "1m"}},
    }


def _budgets(c: dict[str, Any]) -> None:
    c["maas:prices"]["budgets"] = {
        "tiers": {"premium": [{"amount": 5, "window": "24h"}]},
        "users": {"enterpriseuser1": [{"amount": 50, "window": "24h"}]},
        "alertAt": [0.8, 1.0],
    }


def _budget_caps(c: dict[str, Any]) -> None:
    """On dev-oidc, whose premium pays per request alone (premiumuser2's own cap of 5 requests
    an hour): its price halves, doubling the cap; premium gets a budget, a cap too;
    enterpriseuser1 gets one of its own, alerts only, as enterprise pays per token."""
    prices = c["maas:prices"]
    prices["tiers"]["premium"]["perRequest"] = 0.0005
    prices["budgets"]["tiers"]["premium"] = [{"amount": 5, "window": "24h"}]
    prices["budgets"]["users"]["enterpriseuser1"] = [{"amount": 1, "window": "24h"}]


def _keys(c: dict[str, Any]) -> None:
    _tier(c, "free")["keys"] = {"maxKeys": 2, "maxLifetimeDays": 30}


def _tiers_added_and_removed(c: dict[str, Any]) -> None:
    tiers = [t for t in c["maas:tiers"] if t["name"] != "enterprise"]
    gold = {
        "name": "gold",
        "requests": {"limit": 500, "window": "1m"},
        "tokens": {"limit": 10**6, "window": "1m"},
    }
    c["maas:tiers"] = [*tiers, gold]
    for user in c["maas:users"]:
        if user["tier"] == "enterprise":
            user["tier"] = "gold"
    _model(c, "simulator-large")["tiers"] = ["premium", "gold"]
    c["maas:prices"]["tiers"]["gold"] = c["maas:prices"]["tiers"].pop("enterprise")


def _prices(c: dict[str, Any]) -> None:
    c["maas:prices"]["tiers"]["premium"]["perThousandTokens"] = 0.004
    large = {"enterprise": {"perRequest": 0.001, "perThousandTokens": 0.001}}
    c["maas:prices"]["models"] = {"simulator-large": large}


def _currency(c: dict[str, Any]) -> None:
    c["maas:prices"]["currency"] = "EUR"
    c["maas:prices"]["tiers"]["enterprise"]["perRequest"] = 0.0004


def _priority(c: dict[str, Any]) -> None:
    free, premium, enterprise = c["maas:tiers"]
    c["maas:tiers"] = [free, enterprise, premium]


def _scaling(c: dict[str, Any]) -> None:
    simulator = _model(c, "simulator")
    del simulator["replicas"]
    simulator["autoscaling"] = {"minReplicas": 1, "maxReplicas": 4}


def _sample(c: dict[str, Any]) -> None:
    """docs/access-diff.md's sample: several kinds of change in one pull request."""
    _gains_and_losses(c)
    _users(c)
    _limits(c)
    _prices(c)


# Case -> (how the head differs from dev's file, whether the usage export is given).
CASES: dict[str, tuple[Callable[[dict[str, Any]], None], bool]] = {
    "no_change": (lambda c: None, False),
    "tiers_gain_and_lose_a_model": (_gains_and_losses, False),
    "models_added_and_removed": (_models_added_and_removed, False),
    "routing": (_routing, False),
    "users": (_users, False),
    "limits": (_limits, False),
    "windows": (_windows, False),
    "quotas": (_quotas, False),
    "budgets": (_budgets, False),
    "budget_caps": (_budget_caps, False),
    "tiers_added_and_removed": (_tiers_added_and_removed, False),
    "prices_with_usage": (_prices, True),
    "keys": (_keys, False),
    "currency": (_currency, False),
    "priority": (_priority, False),
    "scaling": (_scaling, False),
    "sample": (_sample, True),
}


# The cases on another stack than dev: one whose budget a cap holds.
CASE_STACKS = {"budget_caps": "dev-oidc"}


def _comment(case: str) -> str:
    change, with_usage = CASES[case]
    stack = CASE_STACKS.get(case, "dev")
    head = copy.deepcopy(stack_config(stack))
    change(head)
    usage = access_diff.read_usage(USAGE) if with_usage else None
    return access_diff.render(stack, typed_config(stack), typed_config(stack, head), usage)


@pytest.mark.parametrize("case", CASES)
def test_the_comment_of_each_kind_of_change_is_its_golden_file(case: str) -> None:
    assert _comment(case) == (GOLDEN / f"{case}.md").read_text()


@pytest.mark.parametrize(("page", "case"), [("docs/access-diff.md", "sample"), ("README.md", "limits")])
def test_the_documented_sample_comments_are_the_commands_output(page: str, case: str) -> None:
    text = (PROJECT_DIR / page).read_text()
    shown = re.search(r"```markdown\n(.*?)```", text, re.DOTALL)
    assert shown, f"{page} shows no sample comment"
    assert shown.group(1) == (GOLDEN / f"{case}.md").read_text()


def test_make_access_diff_runs_the_command_on_the_stack_and_ref_given() -> None:
    done = subprocess.run(
        ["make", "-n", "access-diff", "STACK=gpu", "BASE=origin/main", "USAGE=june.csv"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )
    (line,) = [shlex.split(x) for x in done.stdout.splitlines() if "commands.access_diff" in x]
    expected = ["commands.access_diff", "--stack", "gpu", "--base", "origin/main", "--usage", "june.csv"]
    assert line[1:] == ["-m", *expected]


def test_a_stack_the_base_lacks_is_new_in_one_line() -> None:
    comment = access_diff.render("dev", None, typed_config("dev"))
    assert comment.splitlines() == [access_diff.marker("dev"), "### Access diff: stack `dev`", "",
                                    "A new stack: everything in it is new."]  # fmt: skip


def test_every_stack_loads_the_same_through_its_tree_as_in_process() -> None:
    """The dump a tree's code writes and this model reads back is the config itself: the diff
    of a stack against itself can only say no change (dev-oidc's models served by another
    included)."""
    for stack in stack_names():
        assert access_diff.load_tree(PROJECT_DIR, stack) == typed_config(stack), stack


def _copy_tree(into: Path) -> Path:
    """A repository holding what the loader reads: the project and stack files, components/, harness/."""
    for name in ["Pulumi.yaml", "Pulumi.dev.yaml"]:
        shutil.copy(PROJECT_DIR / name, into / name)
    for name in ["components", "harness"]:
        shutil.copytree(PROJECT_DIR / name, into / name, ignore=shutil.ignore_patterns("__pycache__"))
    git = ["git", "-C", str(into), "-c", "user.name=t", "-c", "user.email=t@t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "base"], check=True)
    return into


def test_a_git_ref_is_compared_with_the_working_tree_each_by_its_own_code(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = _copy_tree(tmp_path)
    assert access_diff.main(["--stack", "dev", "--base", "HEAD", "--head-dir", str(tree)]) == 0
    assert capsys.readouterr().out == (GOLDEN / "no_change.md").read_text()
    # A user moved in the stack file, and a default changed in the working tree's code only.
    stack_file = tree / "Pulumi.dev.yaml"
    document = yaml.safe_load(stack_file.read_text())
    document["config"]["maas:users"][0]["tier"] = "premium"
    stack_file.write_text(yaml.safe_dump(document))
    model = tree / "components" / "config" / "model.py"
    # Dev's premium tier takes the default cap of one request's tokens.
    model.write_text(model.read_text().replace("DEFAULT_MAX_TOKENS = 4096", "DEFAULT_MAX_TOKENS = 3072"))
    assert access_diff.main(["--stack", "dev", "--base", "HEAD", "--head-dir", str(tree)]) == 0
    out = capsys.readouterr().out
    assert "- user `freeuser1` moved: tier `free` → `premium`" in out
    assert f"- `premium` max tokens per request: 4,096 → 3,072 ({access_diff.TIMES}0.75)" in out


def test_a_side_its_loader_refuses_is_an_error_not_a_diff(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = _copy_tree(tmp_path)
    stack_file = tree / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace("tier: free}", "tier: nosuchtier}", 1))
    assert access_diff.main(["--stack", "dev", "--base", "HEAD", "--head-dir", str(tree)]) == 1
    assert "'nosuchtier' is not a tier" in capsys.readouterr().err


def _admitted_pairs(evaluation: Evaluation, config: StackConfig) -> set[tuple[str, str]]:
    """(tier, model) pairs the declared AuthPolicy's CEL admits, evaluated as Authorino does."""
    policy = evaluation.one("AuthPolicy", "inference-gateway-authpolicy")
    rules = policy.inputs["spec"]["rules"]["authorization"]
    return {
        (t, m.name) for t in config.tier_names for m in config.models if admitted(rules, t, m.served_name)
    }


def test_what_the_diff_says_each_tier_reaches_is_what_the_authpolicy_admits(stack: Evaluation) -> None:
    config = typed_config(stack.stack)
    assert access_diff.reachable(config) == _admitted_pairs(stack, config)


def test_what_the_diff_says_each_tier_reaches_in_the_ten_tier_fifty_model_bench() -> None:
    (raw,) = [c for label, _, c, _ in bench._scenarios(1, 50) if label == "dev+50models-10tiers"]
    assert raw is not None
    config = typed_config("dev", raw)
    assert (len(config.tier_names), len(config.models)) == (10, 50)
    result = evaluate("dev", raw)
    assert result.error is None, result.error
    pairs = access_diff.reachable(config)
    assert pairs == _admitted_pairs(result, config)
    # Every other model is restricted: the two sides agree on refusals, not only on admissions.
    assert len(pairs) < 10 * 50


if __name__ == "__main__":
    for name in CASES:
        (GOLDEN / f"{name}.md").write_text(_comment(name))
