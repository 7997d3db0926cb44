"""The render command: what a stack creates, as reviewable YAML, with secrets redacted."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

import yaml

from harness.program import PROJECT_DIR, evaluate
from harness.render import REDACTED, render
from harness.validation import SchemaCatalog


def test_every_object_is_rendered_and_still_valid(tmp_path: Path, catalog: SchemaCatalog) -> None:
    result = evaluate("gpu")
    written = render(result, tmp_path)
    objects = [p for p in written if p.parent.name not in ("_helm", "_bundles") and p.name != "_outputs.yaml"]
    assert len(objects) == len(result.objects())
    for path in objects:
        document = yaml.safe_load(path.read_text())
        assert catalog.problems(document, partial=path.stem.endswith("-patch")) == [], path
    assert {p.stem for p in (tmp_path / "_helm").iterdir()} == {r.inputs["name"] for r in result.releases()}


def test_no_generated_credential_reaches_the_files(tmp_path: Path) -> None:
    result = evaluate("gpu", secrets={"maas:huggingFaceToken": "hf_not_a_real_token"})
    render(result, tmp_path)
    generated = {
        str(r.outputs["result"]) for r in result.of_type("random:index/randomPassword:RandomPassword")
    }
    text = "\n".join(p.read_text() for p in tmp_path.rglob("*.yaml"))
    assert generated
    assert not any(value in text for value in [*generated, "hf_not_a_real_token"])
    assert yaml.safe_load((tmp_path / "kuadrant-system" / "secret-apikey-freeuser1.yaml").read_text())[
        "stringData"
    ] == {"api_key": REDACTED}
    assert yaml.safe_load((tmp_path / "_outputs.yaml").read_text())["apiKeys"] == REDACTED


def test_two_renders_are_identical(tmp_path: Path) -> None:
    render(evaluate("dev"), tmp_path / "a")
    render(evaluate("dev"), tmp_path / "b")
    compared = filecmp.dircmp(tmp_path / "a", tmp_path / "b")
    assert not compared.diff_files
    assert not compared.left_only
    assert not compared.right_only


def test_the_command_writes_a_stack(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "harness.render", "--stack", "dev", "--out", str(tmp_path / "dev")],
        cwd=PROJECT_DIR, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "dev" / "llm" / "httproute-simulator.yaml").is_file()
