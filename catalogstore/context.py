"""The namespace in force for a block of code, without importing the heavy modules.

``import catalogstore`` stays cheap (no pydantic, SQLAlchemy or fsspec until the
first call that needs them), so stage functions start fast in fresh workers.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import TYPE_CHECKING

from catalogstore.names import validate_name

if TYPE_CHECKING:
    from catalogstore.settings import Settings

_namespace: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "catalogstore_namespace", default=None
)


@contextlib.contextmanager
def namespace(name: str) -> Iterator[str]:
    """Use ``name`` as the namespace of every call in the block that names none.

    Examples
    --------
    >>> import catalogstore
    >>> with catalogstore.namespace("training"):
    ...     catalogstore.current_namespace()
    'training'
    """
    validate_name(name, "namespace")
    token = _namespace.set(name)
    try:
        yield name
    finally:
        _namespace.reset(token)


def current_namespace(explicit: str = "", settings: Settings | None = None) -> str:
    """The namespace a call uses: ``explicit``, else the enclosing block's, else the setting."""
    if explicit:
        return validate_name(explicit, "namespace")
    block = _namespace.get()
    if block:
        return block
    if settings is None:
        from catalogstore.settings import get_settings

        settings = get_settings()
    return settings.namespace
