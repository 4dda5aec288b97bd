"""Small values kept in the catalog: the object store's put and get without file I/O
(issue 19).

A value whose serialized form is at most :data:`INLINE_LIMIT` bytes is committed to
the catalog with the key's record: its bytes, checksum, digest (a pickle) and
signature (a pickle, with a signing key), and the rows of its object artifact as
for any object (the ``object`` file's row, ``value_type``/``serializer``
metadata, the next version). A key's first put, and every put once its artifact
holds such a value, is that one commit alone, with no staging file and no rename;
the file and ``.artifact.json`` of the Flowdapt layout follow in the background
(:mod:`catalogstore.txn.mirror`). A get reads the record and the bytes in one
statement, trusted exactly as a file's would be: by the checksum, digest and
signature the catalog recorded.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from catalogstore.errors import (
    CorruptArtifactError,
    SerializationError,
    UntrustedObjectError,
    type_name,
)
from catalogstore.object_store import _artifact_tier as tier
from catalogstore.signing import (
    SIGNATURE_KEY,
    digest_of,
    digest_text,
    new_signer,
    signature_of,
    verify_signature,
)
from catalogstore.storage.checksum import checksum_bytes, checksum_matches
from catalogstore.txn import mirror, runs, values
from catalogstore.txn import objects as records

if TYPE_CHECKING:
    from catalogstore.artifacts import Artifact
    from catalogstore.serializers import Serializer
    from catalogstore.txn.objects import ObjectRecord
    from catalogstore.txn.workspace import Workspace

INLINE_LIMIT = 64 * 1024
"""The largest serialized value (bytes) kept in the catalog; larger ones go to files."""
MISSING: Any = object()
"""What :func:`get` returns when the catalog does not hold the key's value."""


class _TooLarge(Exception):
    pass


class _Bounded(io.BytesIO):
    """A buffer refusing to grow past :data:`INLINE_LIMIT` (a large value's
    serialization stops at its first write past it)."""

    overflowed = False

    def write(self, data: Any) -> int:
        if self.tell() + memoryview(data).nbytes > INLINE_LIMIT:
            self.overflowed = True
            raise _TooLarge
        return super().write(data)


@dataclass(frozen=True)
class _Small:
    """A value serialized whole, with what its record and metadata say of it."""

    serializer: Serializer
    data: bytes
    digest: str | None
    meta: dict[str, str]


def _serialize(namespace: str, key: str, value: Any, serializer: str | None) -> _Small | None:
    """The value serialized as the artifact path would write it, if it is small."""
    from catalogstore.serializers import dump_checked, get_serializer, serializer_for

    if getattr(value, "nbytes", 0) > INLINE_LIMIT:  # an array: no need to try
        return None
    chosen = get_serializer(serializer) if serializer else serializer_for(value)
    if not chosen.accepts(value):
        raise SerializationError(f"the {chosen.name} serializer cannot store {key!r} "
                                 f"({type_name(value)})")
    for attempt in (chosen, get_serializer("cloudpickle")):
        buffer = _Bounded()
        try:
            dump_checked(attempt, value, buffer, key)
            break
        except SerializationError:
            if buffer.overflowed:
                return None
            if not (serializer is None and attempt.name == "pickle"):
                raise
            # Lambdas, closures, classes defined in __main__: what cloudpickle is for.
    data = buffer.getvalue()
    digest = signature = None
    if attempt.executes_code:
        digest = digest_text(digest_of(data))
        signing_key = tier.signing_key_setting()
        if signing_key is not None:
            mac = new_signer(signing_key, namespace, key, attempt.name)
            mac.update(data)
            signature = signature_of(mac)
    return _Small(attempt, data, digest,
                  tier.object_meta(attempt, type_name(value), signature))


def put(workspace: Workspace, namespace: str, key: str, value: Any, serializer: str | None,
        *, overwrite: bool) -> tuple[str, ObjectRecord | None] | None:
    """Put a small value: one commit when the key has no artifact yet or its artifact
    holds a small value already, else (a value in a file, a user's artifact) by the
    artifact path with the bytes kept in the catalog too. The generation
    and the record it replaced; ``None``, with nothing done, for a value that is not
    small."""
    small = _serialize(namespace, key, value, serializer)
    if small is None:
        return None
    chosen, data = small.serializer, small.data
    checksum = checksum_bytes(data)
    generation = uuid.uuid4().hex

    def record(artifact_id: int) -> ObjectRecord:
        return records.ObjectRecord(namespace, key, generation, records.ARTIFACT, None,
                                    artifact_id, chosen.name, small.digest, records.PUT)
    done, previous = values.put(workspace, namespace, key, chosen.file_name, data, checksum,
                                small.meta, record)
    if done:
        return generation, previous

    def write(artifact: Artifact) -> tuple[str | None, str | None]:
        from catalogstore.artifacts import ArtifactFile
        from catalogstore.txn.batch import transaction

        ArtifactFile(artifact, chosen.file_name).write(data)
        tier.set_object_meta(artifact, chosen, small.meta)
        with transaction(workspace.settings) as batch:  # the put's own
            values.keep_with(batch, namespace, key, checksum, data)
        return chosen.name, small.digest
    return tier.put_artifact(workspace, namespace, key, write, overwrite=overwrite)


def get(workspace: Workspace, namespace: str, key: str, serializer: str | None, *,
        memory_first: bool) -> Any:
    """The key's value if the catalog holds it (one statement), checked as the artifact
    path checks a file; :data:`MISSING` otherwise (a file, cluster memory, a save
    hook's files, no key), or with ``memory_first`` when cluster memory holds a copy."""
    from catalogstore.serializers import get_serializer

    found = values.read(workspace, namespace, key, SIGNATURE_KEY)
    if found is None:
        return MISSING
    record, data = found.record, found.data
    if record.serializer is None or (memory_first and record.location is not None):
        return MISSING
    if not checksum_matches(data, found.checksum):
        raise CorruptArtifactError(
            f"object {namespace}/{key}: the bytes the catalog keeps do not match their "
            f"checksum ({found.checksum}): the catalog was changed by hand")
    chosen = get_serializer(serializer or record.serializer)
    if chosen.executes_code:
        signing_key = tier.signing_key_setting()
        if signing_key is not None:
            verify_signature(signing_key, namespace, key, record.serializer, data,
                             found.signature)
        if record.digest is None or digest_text(digest_of(data)) != record.digest:
            raise UntrustedObjectError(
                f"object {namespace}/{key} does not hold the bytes its put recorded (the "
                "catalog was changed by hand?): it is not unpickled; put it again")
    value = tier.decode(chosen, data, namespace, key)
    if record.artifact_id is not None:
        runs.note_artifact_read(workspace, record.artifact_id, found.version, namespace, key)
    return value


def flush(*, artifact_params: Mapping[str, Any] | None = None) -> int:
    """Write the files (Flowdapt's layout) of small values now: those this process put,
    then every other the catalog holds unwritten (a crashed process's). Done in the
    background after each put, at exit, and by ``catalogstore verify --repair`` and
    ``gc``; call it before another tool reads the storage. Returns the number of
    artifacts written by the second step.

    Parameters
    ----------
    artifact_params
        The storage, as for :func:`~catalogstore.object_store.put`.
    """
    from catalogstore.object_store import _workspace

    return mirror.flush(_workspace(artifact_params))
