"""The marks of the ported Flowdapt tests that fail by design (see this folder's conftest)."""

from __future__ import annotations

from typing import Any

import pytest

DIFFERENCE = "a deliberate difference from Flowdapt (README: Flowdapt compatibility)"
NEEDS_TYPED_METADATA = ("needs typed metadata (issue 14 point 2): values keep their JSON type; "
                        "remove this mark once it has landed")

typed_metadata = pytest.mark.xfail(strict=True, reason=NEEDS_TYPED_METADATA)


def difference(why: str) -> Any:
    """The mark of a test that fails by a deliberate difference, ``why`` it is kept."""
    return pytest.mark.xfail(strict=True, reason=f"{DIFFERENCE}: {why}")
