"""What the storage tree holds, read with one listing per namespace.

``reindex`` and ``verify`` compare ``artifacts/{namespace}/{name}/{file}`` with
the catalog. A listing of a whole namespace (``fs.find(..., detail=True)``) gives
every file with its size and modification time in one call on local disk and in
a few paginated requests on S3, where a call per artifact would cost a round
trip each. Entries that break the layout or the naming rules are collected as
:class:`Broken`, never raised: one bad folder must not hide the rest.

On local disk the listing never follows a link (:mod:`catalogstore.storage.local`):
a symbolic link, FIFO, socket or device is a *foreign entry*, reported as one with
what it is, and an artifact folder that is or holds one is marked
(:attr:`StoredArtifact.foreign`) so that ``reindex`` and ``verify`` leave it as the
catalog has it. Listings go only as deep as the layout does, and ``.artifact.json``
is read only up to :data:`METADATA_MAX_BYTES`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from catalogstore.bounded_json import MAX_DOCUMENT_BYTES
from catalogstore.errors import ForeignEntryError, InvalidMetadataError, InvalidNameError
from catalogstore.names import (
    ARTIFACTS_DIR,
    METADATA_FILENAME,
    artifact_dir,
    validate_file_name,
    validate_name,
)
from catalogstore.record import FileRecord, metadata_from_json
from catalogstore.storage import local
from catalogstore.storage.checksum import CHECKSUM_ALGORITHM, new_hasher
from catalogstore.storage.filestore import FileStore

T = TypeVar("T")
R = TypeVar("R")
logger = logging.getLogger(__name__)
_READ_CHUNK = 1 << 20
_WHOLE_READ = 8 << 20  # remote files up to this size are hashed from one GET
# Requests in flight when reading or hashing many files on an object store,
# which answers each in milliseconds.
_REMOTE_WORKERS = 16
METADATA_MAX_BYTES = MAX_DOCUMENT_BYTES
"""The largest ``.artifact.json`` that ``reindex`` and ``verify`` read (16 MiB, the limit of
:mod:`catalogstore.bounded_json`); a larger one is reported as unreadable, and not read."""


@dataclass(frozen=True)
class Entry:
    """A file in storage as the listing shows it."""

    size: int
    mtime: float | None
    """Modification time in seconds since the epoch, when the filesystem tells it."""


@dataclass
class StoredArtifact:
    """An artifact folder: its files (``.artifact.json`` apart) and its metadata file."""

    files: dict[str, Entry] = field(default_factory=dict)
    metadata: Entry | None = None
    foreign: bool = False
    """The folder is, or holds, a foreign entry (reported as a :class:`Broken`): the
    artifact is left as the catalog has it."""


@dataclass(frozen=True)
class Broken:
    """An entry of the storage tree that was skipped, and why."""

    path: str
    """Path relative to the storage root (folders end with ``/``)."""
    reason: str


def _mtime(info: dict[str, Any]) -> float | None:
    # Local disk says "mtime" (a float), s3fs "LastModified" (a datetime); others vary.
    for key in ("mtime", "LastModified", "last_modified", "modified", "updated"):
        value = info.get(key)
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
    return None


def forget_cached(store: FileStore, path: str) -> None:
    """Drop what the filesystem cached about ``path`` and everything below it.

    s3fs answers ``info`` (and so ``open``) from listings cached earlier, and its
    ``invalidate_cache(path)`` forgets only the path and its parents: a file
    changed since would be read with a stale ETag and fail.
    """
    full = store.full_path(path)
    store.fs.invalidate_cache(full)
    cache = getattr(store.fs, "dircache", None)
    if cache:
        for key in [k for k in list(cache) if k.startswith(full + "/")]:
            cache.pop(key, None)


def _listing(store: FileStore, path: str, depth: int) -> dict[str, dict[str, Any]]:
    """Everything below ``path`` (relative to the root) by relative path, folders included
    (on local disk ``depth`` levels down, foreign entries as ``{"type": "other"}``; a
    foreign entry at ``path`` or on the way raises :class:`ForeignEntryError`)."""
    if store.is_local:
        # A third of what fs.find(detail=True) costs, which makes several calls per entry.
        return local.listing(store.root, path, depth)
    full = store.full_path(path)
    forget_cached(store, path)
    try:
        found = store.fs.find(full, withdirs=True, detail=True)
    except FileNotFoundError:
        return {}
    prefix = full.rstrip("/") + "/"
    return {p[len(prefix):].rstrip("/"): info for p, info in found.items()
            if p.startswith(prefix) and len(p) > len(prefix)}


def list_namespaces(store: FileStore) -> tuple[list[str], list[Broken], bool]:
    """Namespace folders under ``artifacts/``, what else is there, and whether it exists."""
    if store.is_local:
        if local.lstat(store.root, ARTIFACTS_DIR) is None:
            return [], [], False
        entries = [{**info, "name": name}
                   for name, info in local.listing(store.root, ARTIFACTS_DIR, 1).items()]
    else:
        forget_cached(store, ARTIFACTS_DIR)
        try:
            entries = store.fs.ls(store.full_path(ARTIFACTS_DIR), detail=True)
        except FileNotFoundError:
            return [], [], False
    namespaces, broken = [], []
    for info in entries:
        name = info["name"].rstrip("/").rsplit("/", 1)[-1]
        where = f"{ARTIFACTS_DIR}/{name}"
        if info.get("type") == "other":  # scanned as a namespace, which reports it
            with contextlib.suppress(InvalidNameError):
                namespaces.append(validate_name(name, "namespace"))
                continue
        if info.get("type") != "directory":
            broken.append(Broken(where, "a file where namespace folders belong"))
            continue
        try:
            namespaces.append(validate_name(name, "namespace"))
        except InvalidNameError as exc:
            broken.append(Broken(where + "/", str(exc)))
    return sorted(namespaces), broken, True


def scan(store: FileStore, namespace: str, name: str | None = None
         ) -> tuple[dict[str, StoredArtifact], list[Broken]]:
    """The artifact folders of ``namespace`` (only ``name`` when given), by name.

    Raises :class:`ForeignEntryError` when the namespace folder is a foreign entry
    (or one is on the way to it): nothing of the namespace can be listed.
    """
    base = artifact_dir(namespace, name) if name else f"{ARTIFACTS_DIR}/{namespace}"
    artifacts: dict[str, StoredArtifact] = {}
    broken: list[Broken] = []
    bad: set[str] = set()  # artifact folders or sub-folders reported already
    try:
        # Only as deep as the layout goes: deeper folders are reported, not walked.
        listing = _listing(store, base, 1 if name else 2)
    except ForeignEntryError as exc:
        if not name or exc.path != base:
            raise
        artifacts[name] = StoredArtifact(foreign=True)
        return artifacts, [Broken(base, f"a {exc.kind} where an artifact folder belongs: "
                                  "never followed; the artifact is left as the catalog has it")]
    if name and (listing or store.exists(base)):  # an empty folder is an artifact too
        artifacts[name] = StoredArtifact()
    for rel, info in sorted(listing.items()):
        parts = [name, *rel.split("/")] if name else rel.split("/")
        is_dir = info.get("type") == "directory"
        where = f"{ARTIFACTS_DIR}/{namespace}/{'/'.join(parts[:2])}"
        if parts[0] in bad:
            continue
        if info.get("type") == "other":
            artifacts.setdefault(parts[0], StoredArtifact()).foreign = True
            place = "an artifact folder" if len(parts) == 1 else "a file"
            broken.append(Broken(where, f"a {info['kind']} where {place} belongs: never "
                                 "followed nor read; the artifact is left as the catalog "
                                 "has it"))
            continue
        if len(parts) == 1:
            if not is_dir:
                broken.append(Broken(where, "a file where artifact folders belong"))
                continue
            try:
                validate_name(parts[0])
            except InvalidNameError as exc:
                bad.add(parts[0])
                broken.append(Broken(where + "/", str(exc)))
                continue
            artifacts.setdefault(parts[0], StoredArtifact())
            continue
        artifact = artifacts.setdefault(parts[0], StoredArtifact())
        if len(parts) > 2 or is_dir:
            key = f"{parts[0]}/{parts[1]}"
            if key not in bad:
                bad.add(key)
                broken.append(Broken(where + "/", "a sub-folder inside an artifact (artifacts "
                                     "hold files only): skipped"))
            continue
        entry = Entry(int(info.get("size") or 0), _mtime(info))
        if parts[1] == METADATA_FILENAME:
            artifact.metadata = entry
            continue
        try:
            validate_file_name(parts[1])
        except InvalidNameError as exc:
            broken.append(Broken(where, f"{exc}: skipped"))
            continue
        artifact.files[parts[1]] = entry
    return artifacts, broken


def list_files_with_info(store: FileStore, path: str, depth: int
                         ) -> tuple[dict[str, Entry], list[Broken]]:
    """Every file below ``path`` (relative to the root, ``depth`` levels down on local
    disk) with its size and mtime, and the foreign entries there (``path`` itself
    included), never followed."""
    files, _, foreign = list_entries(store, path, depth)
    return files, foreign


def list_entries(store: FileStore, path: str, depth: int
                 ) -> tuple[dict[str, Entry], set[str], list[Broken]]:
    """:func:`list_files_with_info`, and the folders (on local disk: real ones, ``depth``
    levels down at most; on object stores: the prefixes the files imply)."""
    try:
        listing = _listing(store, path, depth)
    except ForeignEntryError as exc:
        return {}, set(), [Broken(exc.path, f"a {exc.kind}: never followed, left alone")]
    files, folders, foreign = {}, set(), []
    for rel, info in listing.items():
        if info.get("type") == "other":
            foreign.append(Broken(f"{path}/{rel}", f"a {info['kind']}: never followed, "
                                  "left alone"))
        elif info.get("type") == "directory":
            folders.add(rel)
        else:
            files[rel] = Entry(int(info.get("size") or 0), _mtime(info))
    return files, folders, foreign


def list_folders(store: FileStore, path: str) -> list[str]:
    """The real folders directly in the local folder ``path`` (object stores have none)."""
    if not store.is_local:
        return []
    try:
        listing = local.listing(store.root, path, 1)
    except ForeignEntryError:
        return []  # list_files_with_info reports it
    return sorted(name for name, info in listing.items() if info["type"] == "directory")


def remove_empty_folder(store: FileStore, path: str) -> bool:
    """Remove the real local folder ``path`` if it is empty; whether it was."""
    return store.is_local and local.remove_empty_folder(store.root, path)


@dataclass(frozen=True)
class Upload:
    """A multipart upload to an object store that was neither completed nor aborted.

    A writer killed while it streams a file larger than one block leaves one: its
    parts hold storage (and cost) while no listing shows them.
    """

    path: str
    """Path of the object it would have become, relative to the root."""
    upload_id: str
    size: int
    """Bytes of the parts uploaded so far."""
    started: float | None
    """When it was started, in seconds since the epoch."""


def _s3_call(store: FileStore) -> Callable[..., dict[str, Any]] | None:
    # s3fs (and its compatible forks) expose the S3 API; other filesystems have no
    # multipart uploads to leave behind.
    call = getattr(store.fs, "call_s3", None)
    return call if callable(call) and not store.is_local else None


def unfinished_uploads(store: FileStore, path: str) -> list[Upload]:
    """The unfinished multipart uploads of objects below ``path`` (relative to the root).

    Credentials that may not list them (or a server that cannot) give none, with a
    warning: the rest of a verify or gc still runs.
    """
    call = _s3_call(store)
    if call is None:
        return []
    try:
        return _list_uploads(store, call, path)
    except (PermissionError, NotImplementedError) as exc:
        logger.warning("cannot list the unfinished multipart uploads of %s (%s: %s); any "
                       "that writers killed half way left are not looked for",
                       store.uri(path), type(exc).__name__, exc)
        return []


def _list_uploads(store: FileStore, call: Callable[..., dict[str, Any]],
                  path: str) -> list[Upload]:
    bucket, _, key_prefix = f"{store.full_path(path)}/".partition("/")
    root = store.root.partition("/")[2]
    uploads: list[Upload] = []
    markers: dict[str, str] = {}
    while True:
        page = call("list_multipart_uploads", Bucket=bucket, Prefix=key_prefix, **markers)
        for found in page.get("Uploads") or []:
            size, parts_marker = 0, dict[str, Any]()
            try:
                while True:
                    parts = call("list_parts", Bucket=bucket, Key=found["Key"],
                                 UploadId=found["UploadId"], **parts_marker)
                    size += sum(int(p.get("Size") or 0) for p in parts.get("Parts") or [])
                    if not parts.get("IsTruncated"):
                        break
                    parts_marker = {"PartNumberMarker": parts["NextPartNumberMarker"]}
            except FileNotFoundError:  # completed or aborted since it was listed
                continue
            started = found.get("Initiated")
            uploads.append(Upload(
                found["Key"][len(root) + 1:] if root else found["Key"], found["UploadId"],
                size, started.timestamp() if isinstance(started, datetime) else None))
        if not page.get("IsTruncated"):
            return uploads
        markers = {"KeyMarker": page["NextKeyMarker"],
                   "UploadIdMarker": page["NextUploadIdMarker"]}


def abort_upload(store: FileStore, upload: Upload) -> None:
    """Abort ``upload``, freeing its parts (one already gone is no error)."""
    call = _s3_call(store)
    if call is None:
        return
    bucket, _, key = store.full_path(upload.path).partition("/")
    with contextlib.suppress(FileNotFoundError):  # s3fs's NoSuchUpload: aborted already
        call("abort_multipart_upload", Bucket=bucket, Key=key, UploadId=upload.upload_id)


def file_checksum(store: FileStore, path: str, algorithm: str,
                  size: int | None = None) -> tuple[str, int]:
    """``<algorithm>:<hex>`` of the file ``path``, streamed in chunks, and its size.

    The size is what was read, so the two describe the same bytes even when the
    file changed since it was listed (``size`` is the listed one, a hint).
    """
    hasher = new_hasher(algorithm)
    if not store.is_local and size is not None and size <= _WHOLE_READ:
        data = store.read_bytes(path)  # one request (retried); open() makes two
        hasher.update(data)
        return f"{algorithm}:{hasher.hexdigest()}", len(data)
    read = 0
    with store.open_raw(path, "rb") as f:  # on local disk: a regular file, or it raises
        while chunk := f.read(_READ_CHUNK):
            hasher.update(chunk)
            read += len(chunk)
    return f"{algorithm}:{hasher.hexdigest()}", read


Job = tuple[str, str, int]
"""A file to hash: (path relative to the root, algorithm, listed size)."""


def checksum_of(store: FileStore, job: Job) -> tuple[str, int] | Broken:
    """:func:`file_checksum` of ``job``, or why the file could not be read."""
    path, algorithm, size = job
    try:
        return file_checksum(store, path, algorithm, size)
    except (OSError, ValueError) as exc:  # ValueError: an algorithm hashlib does not know
        return Broken(path, f"cannot read it: {exc}")


def algorithm_of(row: FileRecord | None) -> str:
    """The algorithm to hash a file with: the recorded one, so an unchanged file matches."""
    return row.checksum.partition(":")[0] if row is not None else CHECKSUM_ALGORITHM


def read_metadata(store: FileStore, namespace: str, name: str,
                  found: StoredArtifact) -> dict[str, Any] | Broken | None:
    """The metadata in an artifact's ``.artifact.json`` (``None`` when there is none),
    or why it is unusable (too large, not a regular file, a foreign entry beside it)."""
    folder = artifact_dir(namespace, name)
    path = f"{folder}/{METADATA_FILENAME}"
    if found.foreign:
        return Broken(folder + "/", "the artifact folder is or holds a foreign entry "
                      "(reported apart)")
    if found.metadata is None:
        return None
    if found.metadata.size > METADATA_MAX_BYTES:
        return Broken(path, f"{found.metadata.size} bytes, more than the "
                      f"{METADATA_MAX_BYTES} bytes catalogstore reads of it: not read")
    try:
        content = store.read_bytes(path, limit=METADATA_MAX_BYTES)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return Broken(path, f"cannot read it: {exc}")
    try:
        return metadata_from_json(content)
    except InvalidMetadataError as exc:
        return Broken(path, str(exc))


def parallel(store: FileStore, fn: Callable[[T], R], items: Sequence[T]) -> list[R]:
    """``fn`` over ``items``, with requests in flight on remote storage (results in order).

    Local reads are done one by one: a small file is read in microseconds, less
    than handing it to a thread costs, and a large one is bound by the disk.
    """
    if store.is_local or len(items) < 4:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(_REMOTE_WORKERS, thread_name_prefix="catalogstore-scan") as pool:
        return list(pool.map(fn, items))
