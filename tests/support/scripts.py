"""A script of scripts/ loaded as a module, so a test can call its functions: the scripts run
standalone (no package, standard library only), so they are imported by path."""

from __future__ import annotations

import functools
import importlib.util
import sys
from types import ModuleType

from harness.program import PROJECT_DIR


@functools.cache
def script_module(name: str) -> ModuleType:
    """scripts/<name>.py as module `maas_<name>`, registered in sys.modules (dataclasses look
    their module up there)."""
    spec = importlib.util.spec_from_file_location(f"maas_{name}", PROJECT_DIR / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
