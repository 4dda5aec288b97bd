"""The exception hierarchy of catalogstore.

Every error the package raises on purpose derives from :class:`CatalogStoreError`.
Where the meaning matches a builtin, the builtin is mixed in, so code written for
Flowdapt (``except FileNotFoundError``) or for mappings (``except KeyError``) keeps
working.
"""

from __future__ import annotations

from typing import Any


class CatalogStoreError(Exception):
    """Base class of every error raised by catalogstore."""


class ConfigurationError(CatalogStoreError, ValueError):
    """A setting is missing or malformed; the message names the setting."""


class InvalidNameError(CatalogStoreError, ValueError):
    """A name, namespace or file name breaks the naming rules (nothing was written)."""


class InvalidMetadataError(CatalogStoreError, TypeError):
    """A metadata key or value is not acceptable (nothing was written)."""


class InvalidDocumentError(CatalogStoreError, ValueError):
    """A JSON document read from the storage breaks the limits of
    :mod:`catalogstore.bounded_json` (too large, too deep, not UTF-8, a lone surrogate...);
    ``reindex`` and ``verify`` report its artifact as broken, with this reason."""


class NotFoundError(CatalogStoreError):
    """Base class of the "does not exist" errors."""


class ArtifactNotFoundError(NotFoundError, FileNotFoundError):
    """No artifact of that name in that namespace."""


class ArtifactFileNotFoundError(NotFoundError, FileNotFoundError):
    """The artifact has no file of that name."""


class VersionNotFoundError(NotFoundError, LookupError):
    """No such version or alias of an artifact is kept (issue 15)."""


class RunNotFoundError(NotFoundError, LookupError):
    """The catalog records no run of that id (issue 16)."""


class ReadOnlyArtifactError(CatalogStoreError, PermissionError):
    """A change through a view of an earlier version, which never changes (issue 15)."""


class MetadataKeyError(NotFoundError, KeyError):
    """The artifact has no metadata under that key."""

    def __str__(self) -> str:
        # KeyError.__str__ quotes its argument; keep the message readable.
        return str(self.args[0]) if self.args else ""


class AlreadyExistsError(CatalogStoreError, FileExistsError):
    """Something of that name exists already."""


class ArtifactExistsError(AlreadyExistsError):
    """An artifact of that name exists already in that namespace."""


class NameCollisionError(AlreadyExistsError):
    """A new name differs only by letter case from an existing one of the same place.

    On a case-insensitive filesystem (macOS, Windows, many object store
    gateways) the two would be one folder, so the second spelling is refused.
    """


class TransactionError(CatalogStoreError):
    """A transaction was used wrongly (closed, nested across artifacts, ...)."""


class SchemaVersionError(CatalogStoreError):
    """The catalog database is not at the schema revision this code needs."""


class CatalogError(CatalogStoreError):
    """The catalog database failed or could not be reached."""


class CommitOutcomeUnknownError(CatalogError):
    """The connection to the catalog database was lost while it committed a change.

    The change is either wholly committed or absent; which one, only the database
    knows. Nothing was discarded: if it committed, the journal rolls its storage
    changes forward (``catalogstore verify --repair``, or the next process);
    if not, its staged files are orphans that ``catalogstore gc`` removes.
    """


class StorageError(CatalogStoreError, OSError):
    """The storage (fsspec filesystem) failed or could not be reached."""


class ForeignEntryError(StorageError):
    """An entry inside the storage root that catalogstore never makes there: a symbolic
    link, a FIFO, a socket or a device (or one on the way to a path).

    It is never followed, read, written or removed; the message names it and what it is.
    """

    def __init__(self, path: str, kind: str) -> None:
        self.path = path
        """Path relative to the storage root."""
        self.kind = kind
        """What it is: ``symbolic link``, ``FIFO``, ``socket``, ``character device``, ..."""
        super().__init__(f"{path} is a {kind}, not a file or folder catalogstore wrote: "
                         "it is never followed, read or removed; remove it by hand (or "
                         "put back what belongs there)")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.path, self.kind))


class UnappliedCommitError(StorageError):
    """A change was committed to the catalog, but the storage failed before it matched.

    The change is not lost: its journal entry rolls it forward once the storage is
    reachable again (on this process's next commit, in any new process, or with
    ``catalogstore verify --repair``; a change of metadata alone has its
    ``.artifact.json`` rewritten from the catalog by this process's next commit or
    by ``verify --repair``). Until then reading its new files fails.
    """


class LocalPathError(CatalogStoreError, OSError):
    """A local file or folder of an upload or download is missing or unreadable/unwritable."""


class ObjectNotFoundError(NotFoundError, KeyError):
    """No object under that key (in cluster memory or the object store)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SerializationError(CatalogStoreError, TypeError):
    """A value could not be serialized or deserialized; the message names the key and type."""


class ArtifactTypeError(CatalogStoreError, AssertionError):
    """An artifact's ``value_type`` is not the one a load hook reads (a value saved by
    another hook). An ``AssertionError`` as Flowdapt's hooks raise, but a real raise
    that ``python -O`` keeps (issue 14)."""


class ObjectTooLargeError(CatalogStoreError, ValueError):
    """A value is larger than the cluster memory backend's size limit.

    The object store catches it to fall back to artifacts.
    """


class BackendUnavailableError(CatalogStoreError, ImportError):
    """A cluster memory backend is not installed or its runtime is not running."""


class CorruptArtifactError(CatalogStoreError):
    """Stored bytes do not match the checksum the catalog recorded for them."""


class SignatureError(CorruptArtifactError):
    """A pickled object is unsigned, or its signature does not match its bytes.

    Raised before any byte is unpickled, when a signing key is configured.
    """


class UntrustedObjectError(CatalogStoreError, PermissionError):
    """An object the store did not write (``reindex``, Flowdapt, another tool) and that
    nobody adopted: not decoded unless the caller names its serializer (issue 12)."""


class NotAnObjectError(CatalogStoreError, ValueError):
    """The key names a user's artifact, not an object of the object store (issue 13)."""


class QueryError(CatalogStoreError, ValueError):
    """A search filter, ordering or page cursor is malformed (nothing was run).

    ``str()`` shows the filter with a caret under the problem; :attr:`summary` says the
    same on one line (for the command line).
    """

    def __init__(self, reason: str, text: str | None = None, position: int | None = None
                 ) -> None:
        self.reason = reason
        self.text = text
        self.position = position
        super().__init__(reason, text, position)

    _SHOWN = 60
    """Characters of a long filter shown on each side of the problem."""

    def _excerpt(self) -> tuple[str, int]:
        """The filter around the problem (all of it when short) and the problem's place
        in that excerpt."""
        assert self.text is not None and self.position is not None
        start = max(0, self.position - self._SHOWN)
        end = self.position + self._SHOWN
        text = ("..." if start else "") + self.text[start:end] + \
            ("..." if end < len(self.text) else "")
        return text, self.position - start + (3 if start else 0)

    @property
    def summary(self) -> str:
        """The message on one line: the reason, the column and the filter (around it)."""
        if self.text is None or self.position is None:
            return self.reason
        return f"{self.reason} (column {self.position + 1} of {self._excerpt()[0]!r})"

    def __str__(self) -> str:
        if self.text is None or self.position is None:
            return self.reason
        text, at = self._excerpt()
        # One character per character, so the caret stays under the problem; what
        # cannot be printed (NUL, a lone surrogate) shows as "?".
        shown = text.translate({ord(c): " " for c in "\t\r\n"}).replace("\x00", "?")
        if not shown.isascii():
            shown = shown.encode("utf-8", "replace").decode().replace("\ufffd", "?")
        return f"{self.reason} (column {self.position + 1})\n    {shown}\n    {' ' * at}^"


def type_name(value: Any) -> str:
    """The qualified name of ``value``'s type (``builtins.list``, ``numpy.ndarray``), as
    messages and the object store's ``python_type`` metadata show it."""
    cls = type(value)
    return f"{cls.__module__}.{cls.__qualname__}"
