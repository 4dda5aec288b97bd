"""The marks of the ported Flowdapt tests that fail by design (see this folder's conftest)."""

from __future__ import annotations

from typing import Any

import pytest

DIFFERENCE = "a deliberate difference from Flowdapt (README: Flowdapt compatibility)"


def difference(why: str) -> Any:
    """The mark of a test that fails by a deliberate difference, ``why`` it is kept."""
    return pytest.mark.xfail(strict=True, reason=f"{DIFFERENCE}: {why}")
