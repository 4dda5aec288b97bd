"""The stacks (catalog, storage) the artifact tests run on, each with the marks of the
servers it needs, so ``-m "not postgres"`` or ``-m "not s3"`` leaves them out."""

from __future__ import annotations

import pytest

CATALOG_MARKS = {"sqlite": [], "postgres": [pytest.mark.postgres]}
STORAGE_MARKS = {"local": [], "s3": [pytest.mark.s3]}


def stack_param(name: str) -> object:
    """``name`` (``{catalog}-{storage}``) as a parameter carrying its servers' marks."""
    catalog, storage = name.split("-")
    return pytest.param(name, id=name, marks=CATALOG_MARKS[catalog] + STORAGE_MARKS[storage])


STACKS = [stack_param("sqlite-local"), stack_param("postgres-s3")]
"""The two ends of the matrix: what most tests run on."""
ALL_STACKS = [stack_param(f"{catalog}-{storage}")
              for catalog in CATALOG_MARKS for storage in STORAGE_MARKS]
"""The whole matrix, for the artifact tests:
``pytestmark = pytest.mark.parametrize("stack", ALL_STACKS, indirect=True)``."""
