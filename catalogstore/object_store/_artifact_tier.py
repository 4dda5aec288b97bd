"""Objects kept as artifacts: writing them with their record, reading them back checked.

A put writes the object's file and metadata in one transaction whose commit also
makes the key's record (:mod:`catalogstore.txn.objects`) point at it, with the
SHA-256 of the bytes when its serializer runs code. A get decodes such bytes only
when they hash to what that record says: the record is the store's word that it
wrote them (or that a user adopted them), and nothing read from the storage,
``.artifact.json`` included, can grant it (issue 12).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from catalogstore import retry
from catalogstore.errors import (
    ArtifactExistsError,
    ArtifactFileNotFoundError,
    ArtifactNotFoundError,
    CorruptArtifactError,
    NotAnObjectError,
    ObjectNotFoundError,
    SerializationError,
    SignatureError,
    StorageError,
    UntrustedObjectError,
    type_name,
)
from catalogstore.signing import (
    SIGNATURE_KEY,
    SigningWriter,
    digest_of,
    digest_text,
    new_signer,
    signature_of,
    verify_signature,
)
from catalogstore.txn import objects as records

if TYPE_CHECKING:
    from pydantic import SecretStr

    from catalogstore.artifacts import Artifact
    from catalogstore.serializers import Serializer
    from catalogstore.txn.objects import ObjectRecord
    from catalogstore.txn.workspace import Workspace

logger = logging.getLogger(__name__)

VALUE_TYPE = "object"
"""``value_type`` of object artifacts (Flowdapt's marker)."""
_PUT_RACE = retry.Backoff(attempts=16, first_delay=0.002, max_delay=0.1)
"""A put whose artifact a concurrent put created, or a concurrent delete removed, between
reading and committing it: once more, from the start (last writer wins). Eight writers
of four keys on two busy cores lost eight races in a row (0.2 s): sixteen tries wait
up to about a second."""
READ_ATTEMPTS = 4
"""A reader can meet an object whose record, metadata and file belong to two puts (a few
milliseconds): it reads them again, the last time under the artifact's lock."""


class Moved(Exception):
    """What a reader found belongs to another generation than the record it read."""


def is_object_artifact(artifact: Artifact) -> bool:
    """Whether the artifact says it holds an object (``value_type=object``): written by a
    store (this one, Flowdapt), as opposed to a user's own artifact. Not a grant of trust."""
    return artifact.metadata.get("value_type") == VALUE_TYPE


Writer = Callable[["Artifact"], tuple[str | None, str | None]]
"""Writes a value into the artifact (inside the put's transaction unless detached); returns
the serializer the record names and the digest it vouches for (``None, None`` for a save
hook's files, which the store never decodes itself)."""


def serializer_writer(key: str, value: Any, serializer: str | None) -> Writer:
    """The store's own writer: one file of the serializer (``object`` for pickles)."""
    from catalogstore.serializers import get_serializer, serializer_for

    chosen = get_serializer(serializer) if serializer else serializer_for(value)
    if not chosen.accepts(value):
        raise SerializationError(f"the {chosen.name} serializer cannot store {key!r} "
                                 f"({type_name(value)})")

    def write(artifact: Artifact) -> tuple[str | None, str | None]:
        used, digest = _write_object(artifact, key, value, chosen, auto=serializer is None)
        return used.name, digest
    return write


def put_artifact(workspace: Workspace, namespace: str, key: str, write: Writer, *,
                 overwrite: bool, detached: bool = False) -> tuple[str, ObjectRecord | None]:
    """Write the artifact ``namespace/key`` of ``workspace`` with ``write`` and make it the
    key's current generation, in the same commit; returns that generation and the record
    it replaced. ``detached``: ``write`` hands files to other processes (a Dask
    collection's partitions), which cannot join the transaction: the artifact is created
    first, and the record commits once ``write`` has returned (after its files)."""
    from catalogstore.txn.batch import transaction

    generation = uuid.uuid4().hex

    def put() -> ObjectRecord | None:
        if detached:
            artifact, previous = _artifact_to_write(workspace, namespace, key, overwrite)
            serializer, digest = write(artifact)
        with transaction(workspace.settings) as batch:
            if not detached:
                artifact, previous = _artifact_to_write(workspace, namespace, key, overwrite)
                serializer, digest = write(artifact)
            records.commit_with(
                batch, namespace, key,
                lambda artifact_id: records.ObjectRecord(
                    namespace, key, generation, records.ARTIFACT, None, artifact_id,
                    serializer, digest, records.PUT))
        return previous
    replaced = retry.call(put, policy=_PUT_RACE,
                          transient=lambda exc: isinstance(exc, (ArtifactExistsError,
                                                                 ArtifactNotFoundError)),
                          what=lambda: f"object store: put {namespace}/{key}",
                          level=logging.DEBUG)
    return generation, replaced


def _artifact_to_write(workspace: Workspace, namespace: str, key: str,
                       overwrite: bool) -> tuple[Artifact, ObjectRecord | None]:
    """The artifact to write and the key's record as read with it. (A cluster memory
    put may replace that record before this put commits: its memory value is then
    left beside this put's record, which get follows.) Outside a transaction (a
    detached put), a missing artifact is created at once."""
    from catalogstore.artifacts import Artifact, lookup

    previous, found = records.read_with_artifact(workspace, namespace, key)
    if found is None:
        return lookup.get(Artifact, workspace, key, namespace, create=True), previous
    artifact = Artifact(workspace, found, namespace=namespace, name=key)
    if not overwrite and is_user_artifact(artifact, previous):
        raise user_artifact_error(namespace, key)
    return artifact, previous


def is_user_artifact(artifact: Artifact, record: ObjectRecord | None) -> bool:
    """Whether the artifact of a key's name is a user's: neither the key's record
    points at it nor is it an object artifact."""
    ours = record is not None and record.artifact_id == artifact.record.id
    return not ours and not is_object_artifact(artifact)


def user_artifact_error(namespace: str, key: str) -> NotAnObjectError:
    return NotAnObjectError(
        f"artifact {namespace}/{key} is a user artifact, not an object of the object "
        "store: put does not replace it; choose another key, or pass overwrite=True "
        "to replace its files and metadata with the object")


def _write_object(artifact: Artifact, key: str, value: Any, chosen: Serializer,
                  auto: bool) -> tuple[Serializer, str | None]:
    """Replace the artifact's content with ``value`` (inside the caller's transaction);
    the serializer used and the digest of its bytes when it runs code."""
    from catalogstore.serializers import get_serializer

    try:
        signature, digest = _dump(artifact, key, value, chosen)
    except SerializationError:
        if not (auto and chosen.name == "pickle"):
            raise
        # Lambdas, closures, classes defined in __main__: what cloudpickle is for.
        chosen = get_serializer("cloudpickle")
        signature, digest = _dump(artifact, key, value, chosen)
    set_object_meta(artifact, chosen, object_meta(chosen, type_name(value), signature))
    return chosen, digest


def object_meta(chosen: Serializer, python_type: str, signature: str | None) -> dict[str, str]:
    """The metadata of an object artifact (Flowdapt's ``value_type=object``, and what reads
    it back without hints)."""
    meta = {"value_type": VALUE_TYPE, "serializer": chosen.name,
            "serializer_version": str(chosen.version), "python_type": python_type}
    if signature is not None:
        meta[SIGNATURE_KEY] = signature
    return meta


def set_object_meta(artifact: Artifact, chosen: Serializer, meta: dict[str, str]) -> None:
    """Make the artifact hold the object file of ``chosen`` alone, with ``meta`` alone
    (inside the caller's transaction, after the file is written)."""
    for old in artifact.list_files():
        if old.name != chosen.file_name:
            old.remove()
    for stale in set(artifact.metadata) - set(meta):
        artifact.del_meta(stale)
    artifact.update_meta(meta)


def _dump(artifact: Artifact, key: str, value: Any,
          chosen: Serializer) -> tuple[str | None, str | None]:
    """Write the object's file; its signature (a pickle and a key set) and digest (a pickle)."""
    from catalogstore.artifacts import ArtifactFile
    from catalogstore.serializers import dump_checked

    with ArtifactFile(artifact, chosen.file_name).open("wb") as stream:
        if not chosen.executes_code:
            dump_checked(chosen, value, stream, key)
            return None, None
        digest = digest_of()
        signing_key = signing_key_setting()
        if signing_key is None:
            dump_checked(chosen, value, SigningWriter(stream, digest), key)
            return None, digest_text(digest)
        mac = new_signer(signing_key, artifact.namespace, key, chosen.name)
        dump_checked(chosen, value, SigningWriter(stream, mac, digest), key)
    return signature_of(mac), digest_text(digest)


def signing_key_setting() -> SecretStr | None:
    from catalogstore.settings import get_settings

    return get_settings().signing_key


# -- reads -----------------------------------------------------------------------------


def read_recorded(workspace: Workspace, record: ObjectRecord, serializer: str | None,
                  reread: Callable[[], ObjectRecord | None],
                  found: Artifact | None = None,
                  hook: Callable[[Artifact], Any] | None = None) -> Any:
    """The value of the artifact ``record`` names, checked against it.

    What is found may belong to another commit (a put's files still moving, a delete's
    gone): it is read again, the last time under the artifact's lock, where record,
    metadata and bytes are of one commit. Raises :class:`Moved` once ``reread`` shows
    another generation current, :class:`ObjectNotFoundError` once it shows none.
    ``found``: the artifact of the key's name, read with the record (first attempt).
    ``hook``: a load hook, given the artifact the record names (the user's own code
    reads its files: the store decodes nothing, so no digest is asked for).
    """
    from catalogstore.artifacts import Artifact, lookup

    namespace, key = record.namespace, record.key
    for attempt in range(1, READ_ATTEMPTS + 1):
        try:
            artifact = found if attempt == 1 and found is not None else \
                lookup.get(Artifact, workspace, key, namespace)
            if hook is not None:
                if artifact.record.id != record.artifact_id:
                    raise Moved("another artifact")
                return hook(artifact)
            if attempt < READ_ATTEMPTS:
                chosen, data = _read_checked(artifact, record, serializer, locked=False)
            else:
                with artifact.locked():
                    _still_current(record, reread())
                    chosen, data = _read_checked(artifact.refresh(), record, serializer,
                                                 locked=True)
            return decode(chosen, data, namespace, key)
        except (Moved, ArtifactNotFoundError, ArtifactFileNotFoundError, SignatureError,
                CorruptArtifactError, StorageError):
            _still_current(record, reread())
            if attempt == READ_ATTEMPTS:
                raise
            logger.debug("object store: %s/%s met a commit while read; again", namespace, key)
    raise AssertionError("unreachable")


def _still_current(record: ObjectRecord, fresh: ObjectRecord | None) -> None:
    if fresh is None:
        raise ObjectNotFoundError(f"no object {record.key!r} in namespace "
                                  f"{record.namespace!r} (deleted meanwhile)")
    if fresh.generation != record.generation:
        raise Moved(fresh.generation)


def _read_checked(artifact: Artifact, record: ObjectRecord, serializer: str | None, *,
                  locked: bool) -> tuple[Serializer, Any]:
    """The serializer and bytes of the object ``record`` names, refused unless the
    record vouches for them (see the module doc)."""
    from catalogstore.serializers import get_serializer

    namespace, key = record.namespace, record.key
    if artifact.record.id != record.artifact_id:
        raise Moved("another artifact")
    if record.serializer is None:
        refuse_hooked(record, serializer)
    name = serializer or record.serializer
    assert name is not None
    chosen = get_serializer(name)
    data = read_bytes(artifact, get_serializer(record.serializer or name).file_name, locked,
                      chosen)
    if chosen.executes_code:
        # A signing key, when set, speaks first (as before the record existed).
        check_signature(artifact, key, record.serializer or name, chosen, data)
        if record.digest is None or digest_text(digest_of(data)) != record.digest:
            if locked:
                raise UntrustedObjectError(
                    f"object {namespace}/{key} was changed in the storage since it was "
                    f"{'adopted' if record.origin == records.ADOPTED else 'put'} (by "
                    "`catalogstore reindex` or another tool?): it is not unpickled; put it "
                    "again, or adopt it again with `catalogstore adopt "
                    f"{namespace}/{key}` if you trust its bytes")
            raise Moved("digest")
    return chosen, data


def refuse_hooked(record: ObjectRecord, serializer: str | None) -> None:
    """A put's save hook wrote the key's files: the record vouches for no bytes, so the
    store decodes none (its load hook, the user's code, reads them)."""
    where = f"object {record.namespace}/{record.key} was saved by a save hook"
    if serializer is not None and get_serializer_of(serializer).executes_code:
        raise UntrustedObjectError(
            f"{where}: the store recorded no digest of its bytes, so it does not unpickle "
            "them; read it with the load hook that matches (load_artifact_hook=...)")
    raise SerializationError(f"{where}, so it names no serializer: read it with the load "
                             "hook that matches (load_artifact_hook=...)")


def get_serializer_of(name: str) -> Serializer:
    from catalogstore.serializers import get_serializer

    return get_serializer(name)


def read_bytes(artifact: Artifact, file_name: str, locked: bool, reader: Serializer) -> Any:
    """The verified content of one file of ``artifact``: ``bytes``, or the buffer that
    ``reader`` decodes in place (:meth:`Serializer.new_buffer`), read into at once (see
    :meth:`ArtifactFile.read_into`)."""
    from catalogstore.artifacts import ArtifactFile

    file = ArtifactFile(artifact, file_name)  # reading its row says if it is there
    return file.read_locked(reader.new_buffer)[1] if locked else \
        file.read_into(reader.new_buffer)


def check_signature(artifact: Artifact, key: str, writer: str, chosen: Serializer,
                    data: Any) -> None:
    """With a signing key set, refuse code-running bytes that it did not sign."""
    signing_key = signing_key_setting()
    if signing_key is not None and chosen.executes_code:
        # Signed with the serializer that wrote it, whichever one reads it now.
        verify_signature(signing_key, artifact.namespace, key, writer, data,
                         artifact.metadata.get(SIGNATURE_KEY))


def read_unrecorded(artifact: Artifact, key: str, serializer: str | None) -> Any:
    """An object artifact the store has no record of (reindexed, written by Flowdapt or
    another tool): decoded only with the serializer the caller names."""
    from catalogstore.serializers import get_serializer

    namespace = artifact.namespace
    meta = artifact.metadata
    named = meta.get("serializer") or "cloudpickle"
    if serializer is None:
        raise UntrustedObjectError(
            f"object {namespace}/{key} was not written by this store's put (it came from "
            "`catalogstore reindex`, Flowdapt or another tool), so it is not decoded: "
            f"read it deliberately with get({key!r}, serializer={named!r}) if you trust "
            f"its bytes, or adopt it once with `catalogstore adopt {namespace}/{key}`")
    chosen = get_serializer(serializer)
    data = read_bytes(artifact, chosen.file_name, False, chosen)
    check_signature(artifact, key, meta.get("serializer", chosen.name), chosen, data)
    return decode(chosen, data, namespace, key)


def read_version(artifact: Artifact, key: str, version: int, serializer: str | None) -> Any:
    """The value an earlier version of the key's artifact holds (issue 15), trusted as
    the current one is: by the serializer and digest the key's record had when that
    version was committed (kept with the version), never by metadata from the storage."""
    from catalogstore.artifacts.versions import open_version
    from catalogstore.serializers import get_serializer

    view = open_version(artifact, version)
    namespace, recorded = artifact.namespace, view.info.object_serializer
    if recorded is None:  # not a put's (reindexed, a save hook's, or a user's files)
        if not is_object_artifact(view):
            raise ObjectNotFoundError(
                f"no object {key!r} in namespace {namespace!r} at version {version}: "
                f"{namespace}/{key}:v{version} is a user artifact's version, not an object")
        return read_unrecorded(view, key, serializer)
    chosen = get_serializer(serializer or recorded)
    data = _version_bytes(view, get_serializer(recorded).file_name, chosen)
    if chosen.executes_code:
        check_signature(view, key, recorded, chosen, data)
        if view.info.object_digest is None or \
                digest_text(digest_of(data)) != view.info.object_digest:
            raise UntrustedObjectError(
                f"object {namespace}/{key}:v{version} does not hold the bytes its put "
                "recorded (changed in the storage since): it is not unpickled")
    return decode(chosen, data, namespace, key)


def _version_bytes(view: Artifact, file_name: str, reader: Serializer) -> Any:
    """The bytes of a version's object file: kept in the catalog for a small value (its
    file may never have been written: issue 19), else read from the storage (into
    ``reader``'s buffer, as :func:`read_bytes`)."""
    from catalogstore.artifacts.versions import ArtifactVersion
    from catalogstore.txn import values
    from catalogstore.txn.workspace import get_workspace

    assert isinstance(view, ArtifactVersion)
    recorded = view.info.files.get(file_name)
    if recorded is not None:
        kept = values.read_kept(get_workspace(view.settings), view.record.id,
                                recorded.checksum)
        if kept is not None:
            return kept
    return read_bytes(view, file_name, False, reader)


def decode(chosen: Serializer, data: Any, namespace: str, key: str) -> Any:
    try:
        return chosen.loads(data)
    except Exception as exc:
        raise SerializationError(
            f"cannot decode {namespace}/{key} with {chosen.name}: {type(exc).__name__}: "
            f"{exc}") from exc


def adopt_artifact(artifact: Artifact, key: str, serializer: str | None) -> ObjectRecord:
    """Record the object artifact's current bytes as trusted (``catalogstore adopt``);
    with a signing key set, sign them too. Returns the new record."""
    from catalogstore.serializers import get_serializer
    from catalogstore.txn.batch import transaction

    namespace = artifact.namespace
    if not is_object_artifact(artifact) and serializer is None:
        raise NotAnObjectError(
            f"artifact {namespace}/{key} is a user artifact (no value_type=object): name "
            "the serializer to adopt it as an object")
    chosen = get_serializer(serializer or artifact.metadata.get("serializer")
                            or "cloudpickle")
    generation = uuid.uuid4().hex
    with transaction() as batch:
        with artifact.locked():
            data = read_bytes(artifact.refresh(), chosen.file_name, True, chosen)
        digest = digest_text(digest_of(data)) if chosen.executes_code else None
        signing_key = signing_key_setting()
        if signing_key is not None and chosen.executes_code:
            mac = new_signer(signing_key, namespace, key, chosen.name)
            mac.update(data)
            artifact.set_meta(SIGNATURE_KEY, signature_of(mac))
        # Written as the store writes objects, so it reads back without hints.
        artifact.update_meta({"value_type": VALUE_TYPE, "serializer": chosen.name})
        record = records.ObjectRecord(namespace, key, generation, records.ARTIFACT, None,
                                      None, chosen.name, digest, records.ADOPTED)
        records.commit_with(batch, namespace, key,
                            lambda artifact_id: _with_artifact(record, artifact_id))
    return record


def _with_artifact(record: ObjectRecord, artifact_id: int) -> ObjectRecord:
    from dataclasses import replace

    return replace(record, artifact_id=artifact_id)
