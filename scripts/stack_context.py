"""Prints the kubeconfig context a stack deploys to: `maas:cluster.context` in its
Pulumi.<stack>.yaml, or nothing when the file or the key is missing.

    python3 scripts/stack_context.py dev        # kind-maas

`scripts/lib.sh` asks this before any virtualenv exists (to know whether the stack is on
the local kind cluster, which the deploy script then creates), so it is standard library
only and reads the two YAML forms a stack file gives this key: the block form the stack
files use (`maas:cluster:` with `context: ...` indented below it) and the flow form
(`maas:cluster: {context: ...}`), a quoted value or a trailing comment included.
tests/delivery/test_scripts.py checks that it agrees with what the program reads
(harness.program.typed_config) for every stack.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

_KEY = re.compile(r"^(\s*)maas:cluster:\s*(.*)$")
_FLOW_CONTEXT = re.compile(r"[{,]\s*context:\s*([^,}]+)")
_BLOCK_CONTEXT = re.compile(r"^\s*context:\s*(.+)$")


def _scalar(text: str) -> str:
    text = re.sub(r"\s+#.*$", "", text).strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def context(stack_file: str) -> str:
    try:
        lines = Path(stack_file).read_text().splitlines()
    except OSError:
        return ""
    for number, line in enumerate(lines):
        found = _KEY.match(line)
        if not found:
            continue
        indent, rest = len(found.group(1)), found.group(2)
        if rest.startswith("{"):
            flow = _FLOW_CONTEXT.search(rest)
            return _scalar(flow.group(1)) if flow else ""
        for below in lines[number + 1 :]:
            if not below.strip() or below.lstrip().startswith("#"):
                continue
            if len(below) - len(below.lstrip()) <= indent:
                break
            block = _BLOCK_CONTEXT.match(below)
            if block:
                return _scalar(block.group(1))
        return ""
    return ""


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: stack_context.py STACK")
    print(context(f"Pulumi.{sys.argv[1]}.yaml"))
