"""Fixtures of the schema tests: the catalog of strict schemas objects are checked against."""

from __future__ import annotations

import pytest

from components.pins import versions
from harness.validation import HOW_TO_GET_SCHEMAS, SchemaCatalog
from tests.support.prerequisites import skip_without_shared


@pytest.fixture(scope="session")
def catalog() -> SchemaCatalog:
    found = SchemaCatalog.locate(versions.KUBERNETES_MINOR)
    if found is None:
        skip_without_shared(HOW_TO_GET_SCHEMAS, fail_in_ci=True)
    assert found is not None
    return found
