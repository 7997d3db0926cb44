"""Pods that roll when what they read changes: a digest of that content in their template."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any


def content_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 of `content`, whatever its key order: any change of an entry changes it, so a
    pod template (or a name) carrying it changes with the content."""
    return hashlib.sha256(json.dumps(dict(content), sort_keys=True).encode()).hexdigest()
