"""``Artifact`` and ``ArtifactFile``: named containers of files and metadata.

An :class:`Artifact` is a handle on a catalog entry. Its metadata is a snapshot
taken when the handle was loaded (``get_artifact``, ``list_artifacts``,
``new_artifact``), kept current by the changes made through it; ``refresh()``
reloads it. A handle carries its entry's id, which is never reused: once that
artifact is deleted, every use of the handle raises
:class:`~catalogstore.errors.ArtifactNotFoundError`, even after another artifact
took its name (issue 13). Files and metadata are read from the catalog, never by walking the
storage. Every change outside a transaction commits at once; inside
``artifact.transaction()`` or ``catalogstore.transaction()`` the changes wait for
the end of the block and take effect together.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any, cast

from catalogstore.errors import (
    AlreadyExistsError,
    ArtifactFileNotFoundError,
    ArtifactNotFoundError,
    InvalidNameError,
    MetadataKeyError,
    SerializationError,
    StorageError,
    TransactionError,
)
from catalogstore.names import (
    LATEST,
    artifact_dir,
    check_meta_value,
    validate_alias,
    validate_file_name,
    validate_meta_key,
    validate_name,
)
from catalogstore.record import ArtifactRecord, FileRecord
from catalogstore.storage.checksum import checksum_mismatch
from catalogstore.storage.staged import StagedFile
from catalogstore.txn.batch import current_batch, release_staged
from catalogstore.txn.changeset import Changeset

if TYPE_CHECKING:
    import os
    from pathlib import Path

    from fsspec.callbacks import Callback

    from catalogstore.catalog.lineage import LineageGraph
    from catalogstore.catalog.versions import VersionRecord
    from catalogstore.settings import Settings
    from catalogstore.storage.filestore import StagedWriter
    from catalogstore.txn.workspace import Workspace

TEXT_ENCODING = "utf-8"


def _as_bytes(_size: int) -> None:
    """A ``new_buffer`` of :meth:`ArtifactFile.read_into` that asks for ``bytes``."""
    return None


class _TextWriter(io.TextIOWrapper):
    """Text stream over a :class:`StagedWriter` that commits nothing if its block raises."""

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is not None:
            self.buffer.abort()  # type: ignore[attr-defined]
        super().__exit__(exc_type, *rest)


class ArtifactFile:
    """A file of an artifact."""

    def __init__(self, artifact: Artifact, name: str) -> None:
        self._artifact = artifact
        self._name = name

    @classmethod
    def new(cls, artifact: Artifact, filename: str, content: str | bytes | None = None
            ) -> ArtifactFile:
        """Create the file ``filename`` in ``artifact`` (Flowdapt's ``ArtifactFile.new``).

        Raises
        ------
        AlreadyExistsError
            (a ``FileExistsError``) when the artifact has a file of that name.
        """
        return artifact.new_file(filename, content, exist_ok=False)

    def __repr__(self) -> str:
        return f"ArtifactFile<{self.uri}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactFile) and (other._artifact, other._name) == (
            self._artifact, self._name)

    def __hash__(self) -> int:
        return hash((self._artifact, self._name))

    @property
    def artifact(self) -> Artifact:
        return self._artifact

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> str:
        """Full path of the file on its filesystem (without the protocol)."""
        return f"{self._artifact.path}/{self._name}"

    @property
    def uri(self) -> str:
        return f"{self._artifact.uri}/{self._name}"

    @property
    def info(self) -> FileRecord:
        """Size, checksum, encoding and timestamps, as recorded in the catalog."""
        return self._artifact._file_record(self._name)

    @property
    def size(self) -> int:
        return self.info.size

    @property
    def checksum(self) -> str:
        return self.info.checksum

    def read(self, size: int = -1, mode: str | None = None, *,
             verify: bool = False) -> str | bytes:
        """The content: ``str`` if it was written as ``str``, else ``bytes``.

        Without ``verify``, a read that meets a commit of the file may return the
        content it replaces: the catalog commits first, the bytes follow. A read that
        meets the deletion of the file or its artifact raises the "not found" error of
        what went, as if it had come a moment later.

        Parameters
        ----------
        size
            At most this many bytes (characters for text); ``-1`` for all of it.
        mode
            ``"rb"`` for ``bytes`` and ``"r"`` for ``str`` whatever was written
            (Flowdapt's parameter); by default as written (the seed's contract).
        verify
            Return only bytes that match the checksum the catalog recorded, as
            committed at one moment; raise
            :class:`~catalogstore.errors.CorruptArtifactError` when the storage
            holds other bytes.
        """
        verify = verify or self._artifact._verifies_reads

        info, data = self._settled(
            lambda info: self._stored(info if verify else None, _as_bytes, missing_ok=True),
            _as_bytes)
        if mode not in (None, "r", "rb", "rt"):
            raise ValueError(f"unsupported mode {mode!r}: use 'r' or 'rb'")
        self._artifact._note_read(self._name, info)
        text = mode in ("r", "rt") or (mode is None and info.encoding is not None)
        content: str | bytes = data.decode(info.encoding or TEXT_ENCODING) if text else data
        return content if size < 0 else content[:size]

    def read_into(self, new_buffer: Callable[[int], Any]) -> Any:
        """The content as :meth:`read` with ``verify=True`` gives it, in one buffer:
        ``new_buffer(size)``, a writable object with the buffer protocol (``bytes``
        when it gives ``None``), filled and hashed chunk by chunk (no intermediate
        ``bytes``: see :meth:`FileStore.read_into
        <catalogstore.storage.filestore.FileStore.read_into>`)."""
        info, data = self._settled(
            lambda info: self._stored(info, new_buffer, missing_ok=True), new_buffer)
        self._artifact._note_read(self._name, info)
        return data

    def _settled(self, fetch: Callable[[FileRecord], Any | None],
                 new_buffer: Callable[[int], Any]) -> tuple[FileRecord, Any]:
        """The file's row and ``fetch(row)``, which is ``None`` when the storage does not
        hold (verified) bytes of that row."""
        info = self.info
        data = fetch(info)
        if data is None:
            # Met a commit: its row is in, its bytes are not (or the reverse; a new
            # file's bytes may not be in place at all, a deleted one's are gone). Once
            # more with a fresh row (a file or artifact deleted meanwhile raises its
            # "not found" here), then under the artifact's lock, which a writer holds
            # from its commit until the storage matches: missing or other bytes
            # there are not a writer's doing, and are reported (issue 13).
            info = self.info
            data = fetch(info)
            if data is None:
                # A small object store value whose files are not written yet, or an
                # earlier version's: the catalog keeps its bytes (issue 19).
                data = self._kept(info, new_buffer)
            if data is None:
                with self._artifact.locked():
                    info, data = self.read_locked(new_buffer)
        return info, data

    def _kept(self, info: FileRecord, new_buffer: Callable[[int], Any]) -> Any | None:
        """The bytes of checksum ``info.checksum`` the catalog keeps for the artifact, if
        any (in ``new_buffer``'s buffer)."""
        from catalogstore.txn import values

        record = self._artifact._record
        kept = None if record is None else \
            values.read_kept(self._artifact._ws, record.id, info.checksum)
        if kept is None:
            return None
        buffer = new_buffer(len(kept))
        if buffer is None:
            return kept
        with memoryview(buffer) as view, view.cast("B") as target:
            target[:] = kept
        return buffer

    def read_locked(self, new_buffer: Callable[[int], Any] = _as_bytes
                    ) -> tuple[FileRecord, Any]:
        """The file's catalog row and its verified content (``bytes``, or the buffer of
        ``new_buffer`` as in :meth:`read_into`), inside :meth:`Artifact.locked`."""
        info = self.info
        data = self._stored(info, new_buffer)
        if data is None:
            raise checksum_mismatch(self.uri, info.checksum)
        self._artifact._note_read(self._name, info)
        return info, data

    def _stored(self, info: FileRecord | None, new_buffer: Callable[[int], Any], *,
                missing_ok: bool = False) -> Any | None:
        """The stored content if it matches ``info`` (size and checksum), else ``None``;
        with ``info`` ``None``, the bytes unchecked. A missing file raises, or with
        ``missing_ok`` is ``None`` too (a commit in flight)."""
        artifact = self._artifact
        label = f"{artifact.namespace}/{artifact.name}/{self._name}"
        try:
            with artifact._ws.storage_errors(f"read {label}"):
                path = artifact._storage_path(self._name, recorded=True)
                if info is None:
                    return artifact._ws.files.read_bytes(path)
                return artifact._ws.files.read_into(path, info.size, info.checksum, label,
                                                    new_buffer)
        except StorageError as exc:
            if missing_ok and isinstance(exc.__cause__, FileNotFoundError):
                return None
            raise

    def write(self, data: str | bytes | bytearray | memoryview) -> None:
        """Replace the content; ``str`` is stored as UTF-8 and read back as ``str``."""
        self._artifact._write_file(self._name, data)

    def open(self, mode: str = "r") -> IO[Any]:
        """A stream on the file: ``"r"`` (the default, as Flowdapt's) or ``"rb"`` to read,
        ``"w"`` or ``"wb"`` to replace it.

        Writes stream to a staging area and commit when the stream closes (or with
        the enclosing transaction); an exception inside ``with`` discards them, so
        readers only ever see the old or the new content. Use it for large files:
        nothing is held whole in memory.
        """
        if mode in ("r", "rb", "rt"):
            raw = self._artifact._open_for_read(self._name)
            if mode == "rb":
                return raw
            encoding = self.info.encoding or TEXT_ENCODING
            return io.TextIOWrapper(raw, encoding=encoding, newline="")
        if mode in ("w", "wb", "wt"):
            writer = self._artifact._stage_writer(self._name, None if mode == "wb"
                                                  else TEXT_ENCODING)
            # A buffered binary stream, as IO's users expect (typeshed's IO is a protocol
            # io.BufferedIOBase does not declare).
            stream = cast(IO[bytes], writer)
            if mode == "wb":
                return stream
            return _TextWriter(stream, encoding=TEXT_ENCODING, newline="")
        raise ValueError(f"unsupported mode {mode!r}: use 'r', 'rb', 'w' or 'wb'")

    def remove(self) -> None:
        """Remove the file from its artifact."""
        self._artifact.delete_file(self._name)

    def download(self, dest: str | os.PathLike[str], *,
                 callback: Callback | None = None) -> Path:
        """Copy the file to the local path ``dest`` (into it when it is a folder).

        Streams in chunks, checks the bytes against the recorded checksum and
        renames a temporary file into place, so a failure leaves no partial file.

        Parameters
        ----------
        dest
            Local file path, or an existing folder to put a file of the same name in.
        callback
            An fsspec ``Callback`` told the size, then the progress in bytes. By
            default a progress bar is drawn when stderr is a terminal.

        Returns
        -------
        Path
            The path written.
        """
        from catalogstore.artifacts.transfer import download_file

        return download_file(self, dest, callback=callback)


class Artifact:
    """A named container of files and string metadata in a namespace.

    Obtain one with :func:`~catalogstore.artifacts.new_artifact`,
    :func:`~catalogstore.artifacts.get_artifact` or
    :func:`~catalogstore.artifacts.list_artifacts`.
    """

    _verifies_reads = False
    """Whether every read checks the bytes against the recorded checksum (an earlier
    version's do: :mod:`catalogstore.artifacts.versions`)."""

    def __init__(self, workspace: Workspace, record: ArtifactRecord | None, *,
                 namespace: str, name: str) -> None:
        self._ws = workspace
        self._record = record
        self._namespace = namespace
        self._name = name
        self._meta: dict[str, Any] = dict(record.metadata) if record else {}
        self._tx: Changeset | None = None
        self._deleted = False
        # Set while a catalogstore.transaction() holds this artifact's changes: the
        # snapshot is reloaded once that batch has committed.
        self._in_batch = False

    def __repr__(self) -> str:
        return f"Artifact<{self.uri}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Artifact) and other._ws is self._ws and (
            other._namespace, other._name) == (self._namespace, self._name)

    def __hash__(self) -> int:
        return hash((self._namespace, self._name))

    def __reduce__(self) -> tuple[Any, ...]:
        # A handle travels to workers (Dask tasks that write partitions): it is opened
        # again there on the same catalog and storage.
        return _reopen, (self._ws.settings, self._namespace, self._name)

    # -- Flowdapt's classmethods (issue 14) -----------------------------------

    @classmethod
    def new_artifact(cls, name: str, namespace: str = "", protocol: str = "",
                     base_path: str = "", **params: Any) -> Artifact:
        """Create the artifact ``name``, on the storage of ``protocol``/``base_path``.

        Without a storage, the configured one; see :mod:`catalogstore.artifacts.roots`
        for which catalog indexes another. ``params`` are the storage's fsspec options.

        Raises
        ------
        ArtifactExistsError
            (a ``FileExistsError``) when the namespace has an artifact of that name.
        InvalidNameError
            (a ``ValueError``) when ``name`` or ``namespace`` breaks the naming rules.
        """
        from catalogstore.artifacts import lookup

        return lookup.new(cls, lookup.storage_of(protocol, base_path, params), name, namespace)

    @classmethod
    def get_artifact(cls, name: str, namespace: str = "", protocol: str = "",
                     base_path: str = "", **params: Any) -> Artifact:
        """The artifact ``name`` (storage as for :meth:`new_artifact`).

        Raises
        ------
        ArtifactNotFoundError
            (a ``FileNotFoundError``) when there is no such artifact.
        """
        from catalogstore.artifacts import lookup

        return lookup.get(cls, lookup.storage_of(protocol, base_path, params), name, namespace)

    @classmethod
    def list_artifacts(cls, namespace: str = "", protocol: str = "", base_path: str = "",
                       **params: Any) -> list[Artifact]:
        """The artifacts of ``namespace``, by name, from the catalog of the storage."""
        from catalogstore.artifacts import lookup

        workspace = lookup.storage_of(protocol, base_path, params)
        ns = lookup.namespace_of(workspace, namespace)
        return lookup.search(cls, workspace, None, where=None, namespaces=[ns],
                             order_by=None, limit=None, after=None)[0]

    @classmethod
    def does_exist(cls, name: str, namespace: str = "", protocol: str = "",
                   base_path: str = "", **params: Any) -> bool:
        """Whether the catalog of the storage has the artifact ``name``."""
        from catalogstore.artifacts import lookup

        return lookup.does_exist(lookup.storage_of(protocol, base_path, params), name,
                                 namespace)

    # -- identity ------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name

    @property
    def namespace(self) -> str:
        return self._namespace

    @property
    def path(self) -> str:
        """Full path of the artifact's folder on its filesystem (without the protocol)."""
        return self._ws.files.full_path(artifact_dir(self._namespace, self._name))

    @property
    def uri(self) -> str:
        return self._ws.files.uri(artifact_dir(self._namespace, self._name))

    @property
    def settings(self) -> Settings:
        """The configuration of the catalog and storage this artifact lives in."""
        return self._ws.settings

    @property
    def exists(self) -> bool:
        """Whether the artifact exists (asked of the catalog: another process may have
        deleted it); ``False`` once :meth:`delete` has run."""
        self._sync()
        if self._deleted:
            return False
        cs = self._pending()
        if cs is not None and (cs.create or cs.delete):
            return not cs.delete
        return self._ws.catalog.get_artifact(self._namespace, self._name) is not None

    @property
    def record(self) -> ArtifactRecord:
        """The catalog entry (id, timestamps) as loaded; raises if not committed yet.

        A snapshot, as :attr:`metadata` is.
        """
        self._sync()
        if self._deleted:
            raise self._not_found()
        if self._record is None:
            raise ArtifactNotFoundError(
                f"artifact {self._name!r} in namespace {self._namespace!r} is not committed "
                "yet (it is created at the end of the enclosing transaction)")
        return self._record

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the artifact's write lock: no commit of it is half applied meanwhile.

        Writers hold it from their catalog commit until storage matches, so reads
        inside see the catalog and the storage agree. Not reentrant: take it once.
        """
        with self._ws.locked([(self._namespace, self._name)]):
            yield

    def refresh(self) -> Artifact:
        """Reload the metadata snapshot from the catalog.

        Raises
        ------
        ArtifactNotFoundError
            when the artifact this handle was loaded on is gone, even if another one
            has its name now (get that one with ``get_artifact``).
        """
        self._sync()
        record = None if self._deleted else \
            self._ws.catalog.get_artifact(self._namespace, self._name)
        if record is None or not self._same(record):
            self._deleted = True
            raise self._not_found()
        self._record, self._meta = record, dict(record.metadata)
        return self

    def _same(self, record: ArtifactRecord) -> bool:
        """Whether ``record`` is the entry this handle was loaded on (or, for a handle
        made before its artifact was committed, the one that commit made)."""
        return self._record is None or record.id == self._record.id

    @property
    def _id(self) -> int | None:
        return None if self._record is None else self._record.id

    def _alive(self) -> None:
        """Raise :class:`ArtifactNotFoundError` once the artifact of this handle is gone
        (ids are never reused, so a new artifact of the same name is not it)."""
        self._sync()
        if not self._deleted and self._record is not None and \
                not self._ws.catalog.artifact_exists(self._record.id):
            self._deleted = True
        if self._deleted:
            raise self._not_found()

    def _not_found(self) -> ArtifactNotFoundError:
        return ArtifactNotFoundError(
            f"artifact {self._name!r} does not exist in namespace {self._namespace!r}")

    # -- change plumbing -----------------------------------------------------

    def _pending(self) -> Changeset | None:
        """The changeset of the open transaction this artifact is part of, if any."""
        batch = current_batch(self._ws)
        if batch is not None:
            self._in_batch = True
            cs = batch.changeset(self._namespace, self._name)
            if self._record is not None:
                # The batch's changes of this name go to the artifact this handle is on.
                if cs.create or cs.artifact_id not in (None, self._record.id):
                    raise self._not_found()
                cs.artifact_id = self._record.id
            return cs
        return self._tx

    def _sync(self) -> None:
        """Reload the snapshot after a batch this artifact took part in has ended."""
        if self._in_batch and current_batch(self._ws) is None:
            self._in_batch = False
            record = self._ws.catalog.get_artifact(self._namespace, self._name)
            self._deleted = record is None or not self._same(record)
            if record is not None and not self._deleted:
                self._record, self._meta = record, dict(record.metadata)

    def _change(self, fn: Callable[[Changeset], StagedFile | None]) -> None:
        """Record a change in the open transaction, or commit it at once."""
        self._sync()
        if self._deleted:
            raise self._not_found()
        artifact_dir(self._namespace, self._name)  # refuses a name from a hand-edited row
        cs = self._pending()
        if cs is not None:
            release_staged(self._ws, fn(cs))
            return
        cs = Changeset(self._namespace, self._name, artifact_id=self._id)
        try:
            fn(cs)
        except BaseException:
            self._ws.discard([cs])
            raise
        self._commit([cs])

    def _commit(self, changesets: list[Changeset]) -> None:
        for done in self._ws.commit(changesets):
            if done.changeset.delete:
                self._deleted = True
            elif done.metadata is not None:
                self._meta = done.metadata
            if done.created is not None:
                self._record = done.created

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Artifact]:
        """Make the changes of the block (files and metadata) take effect together.

        If the block raises, none of its changes is visible through the API, in
        the catalog, in the storage or in ``.artifact.json``. Inside
        ``catalogstore.transaction()`` it joins that larger transaction.
        """
        if self._pending() is not None:
            yield self
            return
        self._alive()
        self._tx = cs = Changeset(self._namespace, self._name, artifact_id=self._id)
        try:
            yield self
        except BaseException:
            self._tx = None
            self._ws.discard([cs])
            raise
        self._tx = None
        self._commit([cs])

    # -- metadata --------------------------------------------------------------

    @property
    def metadata(self) -> dict[str, Any]:
        """A copy of the metadata (JSON values, keys in insertion order), pending changes
        of an open transaction included.

        Read from the handle's snapshot, with no catalog round trip (a listing's
        handles are read in a loop): the values of this handle's own artifact as
        loaded, never another's. A deletion this process made through the handle
        raises; one made elsewhere shows at :meth:`refresh`, which raises then.
        """
        self._sync()
        if self._deleted:
            raise self._not_found()
        meta = dict(self._meta)
        cs = self._pending()
        if cs is not None:
            if cs.create:
                meta = {}
            meta.update(cs.meta_set)
            for key in cs.meta_del:
                meta.pop(key, None)
        for key, value in meta.items():
            if type(value) is list or type(value) is dict:  # the caller's own copy
                meta[key] = check_meta_value(key, value)
        return meta

    def get_meta(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, or ``default`` when the artifact has no such key."""
        return self.metadata.get(key, default)

    def set_meta(self, key: str, value: Any) -> None:
        """Set ``key`` to ``value``, a JSON value kept with its type.

        ``str``, ``int``, ``float``, ``bool``, ``None``, and lists and dicts of them
        (:func:`~catalogstore.names.check_meta_value`: NaN and infinities become
        ``None``, as Flowdapt writes them; other types raise
        :class:`~catalogstore.errors.InvalidMetadataError`).
        """
        validate_meta_key(key)
        checked = check_meta_value(key, value)
        self._change(lambda cs: cs.set_meta(key, checked))

    def update_meta(self, values: dict[str, Any]) -> None:
        """Set several keys in one commit."""
        checked = {validate_meta_key(k): check_meta_value(k, v) for k, v in values.items()}

        def apply(cs: Changeset) -> None:
            for key, text in checked.items():
                cs.set_meta(key, text)
        self._change(apply)

    def del_meta(self, key: str) -> None:
        """Remove ``key``; raises :class:`MetadataKeyError` (a ``KeyError``) when absent."""
        if key not in self.metadata:
            raise MetadataKeyError(
                f"artifact {self._namespace}/{self._name} has no metadata key {key!r}")
        self._change(lambda cs: cs.del_meta(key))

    def __getitem__(self, key: str) -> Any:
        meta = self.metadata
        if key not in meta:
            raise MetadataKeyError(
                f"artifact {self._namespace}/{self._name} has no metadata key {key!r}")
        return meta[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.set_meta(key, value)

    def __delitem__(self, key: str) -> None:
        self.del_meta(key)

    # -- files -----------------------------------------------------------------

    def _committed_files(self) -> dict[str, FileRecord]:
        self._sync()
        if self._record is None:
            return {}
        files = self._ws.catalog.live_files(self._record.id)
        if files is None:  # deleted, maybe with a new artifact under its name since
            self._deleted = True
            raise self._not_found()
        # validate_file_name: a catalog row edited by hand must not steer a read, a
        # removal or a download outside the artifact's folder.
        return {validate_file_name(f.name): f for f in files}

    def _file_records(self) -> dict[str, FileRecord]:
        if self._deleted:
            raise self._not_found()
        files = self._committed_files()
        cs = self._pending()
        if cs is not None:
            for name in cs.removes:
                files.pop(name, None)
            for name, staged in cs.writes.items():
                files[name] = FileRecord(name, staged.size, staged.checksum, staged.encoding)
        return files

    def _file_record(self, name: str) -> FileRecord:
        self._sync()
        cs = self._pending()
        if cs is not None:
            if name in cs.writes:
                staged = cs.writes[name]
                return FileRecord(name, staged.size, staged.checksum, staged.encoding)
            if name in cs.removes:
                raise self._file_not_found(name)
        if self._deleted:
            raise self._not_found()
        if self._record is None:
            raise self._file_not_found(name)
        record = self._ws.catalog.get_file(self._record.id, name)
        if record is None:
            self._alive()  # the artifact itself may be gone: say so
            raise self._file_not_found(name)
        return record

    def _file_not_found(self, name: str) -> ArtifactFileNotFoundError:
        return ArtifactFileNotFoundError(
            f"artifact {self._namespace}/{self._name} has no file {name!r}")

    def _storage_path(self, name: str, *, recorded: bool = False) -> str:
        """Where the file's current bytes are: staged by the open transaction, or committed
        (checked in the catalog unless the caller has just read its row: ``recorded``)."""
        cs = self._pending()
        if cs is not None and name in cs.writes:
            return cs.writes[name].path
        if not recorded:
            self._file_record(name)
        return f"{artifact_dir(self._namespace, self._name)}/{name}"

    def _open_for_read(self, name: str) -> IO[bytes]:
        label = f"{self._namespace}/{self._name}/{name}"
        info = self._file_record(name)

        def under_lock() -> IO[bytes]:
            # Deleted (or replaced) between its row and the open (on an object store:
            # the first read): under the lock, its row says whether it is gone; a file
            # missing while its row is there is reported.
            with self.locked():
                return self._ws.files.open_raw(self._storage_path(name), "rb")

        try:
            stream = self._ws.files.open_read(self._storage_path(name, recorded=True), label,
                                              under_lock)
        except StorageError as exc:
            if not isinstance(exc.__cause__, FileNotFoundError):
                raise
            with self.locked():
                stream = self._ws.files.open_read(self._storage_path(name), label)
        self._note_read(name, info)
        return stream

    def _note_read(self, name: str, info: FileRecord) -> None:
        """The read of the file ``name`` (row ``info``) is an input of the current run
        (issue 16); a file this handle's open transaction wrote is not."""
        if not self._ws.settings.lineage or self._record is None:
            return
        cs = self._pending()
        if cs is not None and name in cs.writes:
            return
        from catalogstore.txn import runs

        runs.note_artifact_read(self._ws, self._record.id, self._read_version(info),
                                self._namespace, self._name)

    def _read_version(self, info: FileRecord) -> int:
        """The version a read of the row ``info`` read."""
        return info.version if info.version is not None else self.version

    def _stage_writer(self, name: str, encoding: str | None) -> StagedWriter:
        validate_file_name(name)
        if self._deleted:
            raise self._not_found()
        return self._ws.stage(self._pending(), name, encoding, self._taker(name),
                              f"{self._namespace}/{self._name}/{name}")

    def _taker(self, name: str) -> Callable[[StagedFile], None]:
        """What records new staged content of ``name`` (and commits it outside a transaction)."""
        return lambda staged: self._change(lambda cs: cs.write(name, staged))

    def _write_file(self, name: str, data: str | bytes | bytearray | memoryview) -> None:
        if isinstance(data, str):
            try:
                payload: bytes | bytearray | memoryview = data.encode(TEXT_ENCODING)
            except UnicodeEncodeError as exc:  # a lone surrogate: not text (issue 12)
                raise SerializationError(
                    f"the text written to {name!r} holds a lone surrogate "
                    f"{data[exc.start]!r} at character {exc.start}: not text; write bytes "
                    "instead") from None
            encoding: str | None = TEXT_ENCODING
        elif isinstance(data, (bytes, bytearray, memoryview)):
            payload, encoding = data, None
        else:
            raise TypeError(f"file content must be str or bytes, not {type(data).__name__}")
        validate_file_name(name)
        if self._deleted:
            raise self._not_found()
        self._ws.stage_bytes(self._pending(), name, payload, encoding, self._taker(name),
                             f"{self._namespace}/{self._name}/{name}")

    def list_files(self, include_meta: bool = False) -> list[ArtifactFile]:
        """The artifact's files, by name.

        ``.artifact.json`` is never one of them (the metadata is :attr:`metadata`);
        ``include_meta`` is Flowdapt's parameter, accepted and without effect (Flowdapt
        returns no file at all when it is true).
        """
        return [ArtifactFile(self, name) for name in sorted(self._file_records())]

    def has_file(self, name: str) -> bool:
        try:
            self._file_record(name)
        except ArtifactFileNotFoundError:
            return False
        return True

    def file_handle(self, name: str) -> ArtifactFile:
        """A handle on the file ``name``, whether or not it exists yet (for the streams of
        :mod:`~catalogstore.artifacts.transfer`; :meth:`get_file` checks)."""
        return ArtifactFile(self, name)

    def get_file(self, name: str, create: bool = False) -> ArtifactFile:
        """The file ``name``; with ``create=True`` an empty one is made when it is missing.

        Raises
        ------
        ArtifactFileNotFoundError
            (a ``FileNotFoundError``) when the file is missing and ``create`` is false.
        """
        validate_file_name(name)
        if self.has_file(name):
            return ArtifactFile(self, name)
        if create:
            return self.new_file(name)
        raise self._file_not_found(name)

    def new_file(self, name: str, content: str | bytes | None = None, *,
                 exist_ok: bool = True) -> ArtifactFile:
        """Create the file ``name`` holding ``content`` (empty when ``None``).

        An existing file is replaced by ``content`` when it is given, and kept as
        it is otherwise; with ``exist_ok=False`` an existing file raises
        :class:`AlreadyExistsError` (a ``FileExistsError``).
        """
        validate_file_name(name)
        if content is not None and exist_ok:  # replaced either way: skip the lookup
            self._write_file(name, content)
            return ArtifactFile(self, name)
        exists = self.has_file(name)
        if exists and not exist_ok:
            raise AlreadyExistsError(
                f"artifact {self._namespace}/{self._name} already has a file {name!r}")
        if content is not None or not exists:
            self._write_file(name, b"" if content is None else content)
        return ArtifactFile(self, name)

    def delete_file(self, name: str) -> None:
        """Remove the file ``name``; raises if the artifact has no such file."""
        validate_file_name(name)
        self._file_record(name)
        self._change(lambda cs: cs.remove(name))

    def upload(self, path: str | os.PathLike[str], name: str | None = None, *,
               callback: Callback | None = None) -> list[ArtifactFile]:
        """Copy a local file, or every file directly in a local folder, into the artifact.

        Files stream in chunks and their sizes and checksums are recorded; files
        of the same names are replaced. A folder is uploaded in one transaction
        (all its files or none) and must hold only regular files with valid file
        names: a sub-folder is refused before anything is written.

        Parameters
        ----------
        path
            Local file or folder.
        name
            File name in the artifact for a single file (default: its own name).
        callback
            An fsspec ``Callback`` told the total size, then the progress in bytes.
            By default a progress bar is drawn when stderr is a terminal.

        Returns
        -------
        list of ArtifactFile
            The files written, by name.

        Raises
        ------
        InvalidNameError
            for a sub-folder, a special file or a name that breaks the naming rules.
        LocalPathError
            (an ``OSError``) when ``path`` is missing or unreadable.
        """
        from catalogstore.artifacts.transfer import upload

        return upload(self, path, name, callback=callback)

    def download(self, dest: str | os.PathLike[str], *,
                 callback: Callback | None = None) -> list[Path]:
        """Copy every file of the artifact into the local folder ``dest`` (created if missing).

        Each file streams to a temporary file that is checked against its recorded
        checksum and renamed into place, so a failure leaves no partial file.

        Parameters
        ----------
        dest
            Local folder; files of the same names in it are replaced.
        callback
            Progress as for :meth:`upload`: the size of all the files, then each chunk.

        Returns
        -------
        list of Path
            The paths written, by file name.
        """
        from catalogstore.artifacts.transfer import download

        return download(self, dest, callback=callback)

    @property
    def is_empty(self) -> bool:
        """True when the artifact holds no file (metadata does not count), or is deleted."""
        try:
            return not self._file_records()
        except ArtifactNotFoundError:
            return True

    def __bool__(self) -> bool:
        """Whether the artifact holds a file (``False`` once deleted), as Flowdapt's."""
        return not self.is_empty

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.has_file(name)

    def __iter__(self) -> Iterator[ArtifactFile]:
        return iter(self.list_files())

    def __len__(self) -> int:
        return len(self._file_records())

    # -- versions (issue 15) -----------------------------------------------------

    @property
    def version(self) -> int:
        """The number of the current version (asked of the catalog: another process may
        have committed since this handle was loaded)."""
        from catalogstore.catalog import versions

        return versions.resolve_alias(self._ws.catalog, self.record.id, LATEST)

    def versions(self) -> list[VersionRecord]:
        """Every kept version, oldest first: number, creation time, metadata, files
        (names, sizes, checksums), aliases (``latest`` on the current one) and pin."""
        from catalogstore.catalog import versions

        return versions.list_versions(self._ws.catalog, self.record.id)

    @property
    def aliases(self) -> dict[str, int]:
        """The version each alias names, ``latest`` included."""
        return {alias: v.version for v in self.versions() for alias in v.aliases}

    def set_alias(self, alias: str, version: int | None = None) -> int:
        """Point ``alias`` (``prod``, ``staging``; not ``latest`` nor ``v3``) at
        ``version`` (default: the current one), moving it atomically if it names
        another; returns the version. Retention never removes an aliased version."""
        from catalogstore.catalog import versions

        return versions.set_alias(self._ws.catalog, self.record.id, validate_alias(alias),
                                  version, f"{self._namespace}/{self._name}")

    def remove_alias(self, alias: str) -> bool:
        """Remove ``alias``; whether it was set."""
        from catalogstore.catalog import versions

        validate_name(alias, "alias")
        return versions.remove_alias(self._ws.catalog, self.record.id, alias)

    def pin(self, version: int | None = None) -> int:
        """Keep ``version`` (default: the current one) whatever the retention policy
        says, until :meth:`unpin`; returns its number."""
        from catalogstore.catalog import versions

        number = self.version if version is None else version
        versions.set_pinned(self._ws.catalog, self.record.id, number, True,
                            f"{self._namespace}/{self._name}")
        return number

    def unpin(self, version: int) -> None:
        """Let retention remove ``version`` again (unless it is current or aliased)."""
        from catalogstore.catalog import versions

        versions.set_pinned(self._ws.catalog, self.record.id, version, False,
                            f"{self._namespace}/{self._name}")

    def lineage(self, upstream: bool = True, downstream: bool = True,
                depth: int | None = None, *, max_runs: int | None = None) -> LineageGraph:
        """The runs that made this version and what they read, upstream, and the runs
        that read it and what they made, downstream (issue 16), from one recursive query.

        Parameters
        ----------
        upstream, downstream
            Which way to walk.
        depth
            At most this many runs on a path from this version (default: no limit).
        max_runs
            With a ``depth``: at most this many runs, the nearest first (default: every
            run reached).

        Returns
        -------
        LineageGraph
            ``runs``, ``nodes`` (artifact versions and object generations, each with its
            ``state``: a version removed by retention shows ``removed``) and ``edges``;
            ``to_dict()`` and ``to_dot()`` render it.
        """
        from catalogstore.catalog import lineage

        if depth is not None and (type(depth) is not int or depth < 1):
            raise InvalidNameError(f"invalid depth {depth!r}: a number from 1, or None")
        if max_runs is not None and (type(max_runs) is not int or max_runs < 1
                                     or depth is None):
            raise InvalidNameError(f"invalid max_runs {max_runs!r}: a number from 1, "
                                   "with a depth")
        from catalogstore.txn import runs

        runs.flush_open()  # this process's reads waiting in memory
        record, version = self.record, self.version
        root = lineage.Node(lineage.artifact_node(record.id, version), self._namespace,
                            self._name, record.id, version, None, "kept")
        return lineage.walk(self._ws.catalog, root, upstream=upstream,
                            downstream=downstream, depth=depth, max_runs=max_runs)

    # -- whole artifact --------------------------------------------------------

    def clear(self) -> None:
        """Remove every file and every metadata key, keeping the artifact."""
        files = list(self._file_records())
        keys = list(self.metadata)

        def apply(cs: Changeset) -> None:
            for name in files:
                release_staged(self._ws, cs.remove(name))
            for key in keys:
                cs.del_meta(key)
        self._change(apply)

    def delete(self) -> None:
        """Delete the artifact with its files, metadata and every version."""
        if self._deleted:
            raise self._not_found()
        # A name from a hand-edited catalog row is refused before the commit point,
        # where it would otherwise be journalled and applied to storage.
        artifact_dir(self._namespace, self._name)
        cs = self._pending()
        if cs is not None:
            if cs.create:
                raise TransactionError("cannot delete an artifact in the transaction that "
                                       "creates it")
            self._ws.discard([cs])
            cs.writes.clear()
            cs.delete = True
            return
        self._commit([Changeset(self._namespace, self._name, delete=True,
                                artifact_id=self._id)])


def _reopen(settings: Settings, namespace: str, name: str) -> Artifact:
    """The handle a pickled :class:`Artifact` becomes in another process."""
    from catalogstore.txn.workspace import get_workspace

    workspace = get_workspace(settings)
    return Artifact(workspace, workspace.catalog.get_artifact(namespace, name),
                    namespace=namespace, name=name)
