"""No credential in plain text: not in committed files, not outside Kubernetes Secrets."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from harness.program import PROJECT_DIR, Declared, Evaluation, evaluate
from maas_policies import KNOWN_DEFAULT_CREDENTIALS
from maas_policies.objects import string_leaves
from tests.support.configs import variant

# Secret config a user would set with `pulumi config set --secret`.
SECRET_CONFIG = {
    "maas:huggingFaceToken": "hf_not_a_real_token",
    "maas:limitadorRedisUrl": "redis://:pw@redis:6379",
}


def _everything(stack: str) -> Evaluation:
    """The stack with every optional credential in use."""
    config = variant(stack, {"maas:limitador": {"replicas": 2, "storage": "redis"}})
    result = evaluate(stack, config, SECRET_CONFIG)
    assert result.error is None
    return result


def _credentials(result: Evaluation) -> set[str]:
    generated = {
        str(r.outputs["result"]) for r in result.of_type("random:index/randomPassword:RandomPassword")
    }
    return generated | set(SECRET_CONFIG.values())


@pytest.mark.parametrize("stack_name", ["dev", "gpu"])
def test_credentials_appear_only_as_secret_inputs_of_kubernetes_secrets(stack_name: str) -> None:
    result = _everything(stack_name)
    credentials = _credentials(result)
    assert credentials
    found: list[tuple[Declared, str]] = []
    for resource in result.resources:
        if resource.type.startswith("random:"):
            continue
        for path, value in string_leaves(resource.inputs):
            if any(credential in value for credential in credentials):
                found.append((resource, path))
                assert resource.kind == "Secret", f"{resource}: credential in {path}"
                assert resource.is_secret(path), f"{resource}: {path} is not a Pulumi secret"
    secrets = result.objects("Secret")
    assert {r.object_name for r, _ in found} == {s.object_name for s in secrets}


def test_every_kubernetes_secret_is_secret_in_state(stack: Evaluation) -> None:
    for secret in stack.objects("Secret"):
        for field in ("data", "stringData"):
            if field in secret.inputs:
                assert secret.is_secret(field), f"{secret}: {field} in plain text"


def test_credential_outputs_are_secret(stack: Evaluation) -> None:
    credential_outputs = {"apiKeys", "keycloakPasswords", "keycloakAdmin", "grafanaAdmin"}
    for name in credential_outputs & set(stack.outputs):
        assert name in stack.secret_outputs


def _committed_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=PROJECT_DIR, capture_output=True, text=True, check=False
    )
    if listed.returncode != 0:
        pytest.skip("not a git checkout: no list of committed files")
    return [PROJECT_DIR / name for name in listed.stdout.split("\0") if name]


def test_no_committed_file_holds_a_default_or_demo_credential() -> None:
    deny_list = PROJECT_DIR / "policies" / "maas_policies" / "credentials.py"
    offenders: list[str] = []
    for path in _committed_files():
        if path == deny_list or not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        offenders.extend(
            f"{path.relative_to(PROJECT_DIR)}: {m.group(0)}" for m in KNOWN_DEFAULT_CREDENTIALS.finditer(text)
        )
    assert offenders == []


def test_no_stack_file_carries_a_secret_value() -> None:
    """Secrets are generated or set per user with `--secret`; none is committed, even encrypted."""
    for path in PROJECT_DIR.glob("Pulumi*.yaml"):
        assert "secure:" not in path.read_text(), path.name
