"""Copying local files and folders into artifacts and back out, streamed in chunks.

Uploads go through :meth:`ArtifactFile.open` (``"wb"``), so each file is staged,
hashed while it streams and committed with its size and checksum like any other
write; a folder is uploaded inside one ``artifact.transaction()``, so it lands
whole or not at all. Downloads write to a temporary file beside the destination,
check the bytes against the checksum the catalog recorded, and rename it into
place, so a failed download leaves no partial file.

The files of a folder are copied concurrently on a remote store (S3: up to
:data:`~catalogstore.storage.filestore.REMOTE_CONCURRENCY` requests in flight,
:meth:`FileStore.for_each <catalogstore.storage.filestore.FileStore.for_each>`)
and one after another on local disk, where threads would only add overhead.

Progress is reported through an fsspec :class:`~fsspec.callbacks.Callback`
(``set_size`` with the total number of bytes, then ``relative_update`` per
chunk; one update at a time, whichever file's copy it comes from). Without one, a
rich progress bar is drawn on stderr when stderr is a terminal and the transfer is
large, and nothing otherwise.

The local side (listing, opening, renaming) is :mod:`catalogstore.storage.local_files`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from fsspec.callbacks import Callback, NoOpCallback

from catalogstore.errors import InvalidNameError
from catalogstore.names import validate_file_name
from catalogstore.storage import local_files
from catalogstore.storage.checksum import checksum_mismatch, hash_matches, hasher_for

if TYPE_CHECKING:
    from rich.progress import Progress

    from catalogstore.artifacts.artifact import Artifact, ArtifactFile
    from catalogstore.record import FileRecord

CHUNK_SIZE = 4 << 20
"""Bytes read and written per step: large enough for object stores, small for memory."""
PROGRESS_MIN_BYTES = 8 << 20
"""Smaller transfers end before a progress bar is worth drawing."""


class RichProgressCallback(Callback):  # type: ignore[misc]  # fsspec has no types
    """An fsspec callback that draws a rich progress bar on stderr.

    The bar appears on the first ``set_size`` of at least ``min_bytes`` and is
    removed by :meth:`close`.
    """

    def __init__(self, description: str, min_bytes: int = PROGRESS_MIN_BYTES) -> None:
        super().__init__()
        self._description = description
        self._min_bytes = min_bytes
        self._progress: Progress | None = None
        self._task: Any = None

    def call(self, hook_name: str | None = None, **kwargs: Any) -> None:
        if self._progress is None:
            if self.size is None or self.size < self._min_bytes:
                return
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                TransferSpeedColumn(), TimeRemainingColumn(),
                console=Console(stderr=True), transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self._description, total=self.size)
        self._progress.update(self._task, total=self.size, completed=self.value)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None


class _Progress:
    """The one progress of a transfer, advanced by the copies of all its files."""

    def __init__(self, callback: Callback) -> None:
        self._callback = callback
        self._lock = threading.Lock()

    def advance(self, size: int) -> None:
        with self._lock:  # fsspec's callbacks are not thread-safe (value += size)
            self._callback.relative_update(size)


@contextlib.contextmanager
def _progress(callback: Callback | None, description: str, size: int) -> Iterator[_Progress]:
    """The progress of a transfer of ``size`` bytes, told to ``callback`` or drawn as
    the terminal's progress bar (closed at the end)."""
    if callback is not None:
        callback.set_size(size)
        yield _Progress(callback)
        return
    default: Callback = RichProgressCallback(description) if sys.stderr.isatty() \
        else NoOpCallback()
    with default:
        default.set_size(size)
        yield _Progress(default)


def _copy(src: IO[bytes], dst: IO[bytes], progress: _Progress, *,
          local_src: Path | None = None, local_dst: Path | None = None,
          hasher: Any = None) -> None:
    """Stream ``src`` into ``dst`` chunk by chunk; the local side's errors are translated."""
    while True:
        try:
            chunk = src.read(CHUNK_SIZE)
        except OSError as exc:
            if local_src is None:
                raise
            raise local_files.local_error(local_src, "read", exc) from exc
        if not chunk:
            return
        if hasher is not None:
            hasher.update(chunk)
        try:
            dst.write(chunk)
        except OSError as exc:
            if local_dst is None:
                raise
            raise local_files.local_error(local_dst, "write", exc) from exc
        progress.advance(len(chunk))


# -- upload -------------------------------------------------------------------


def _folder_entries(folder: Path) -> list[tuple[Path, str, int]]:
    """(path, file name, size) of the files directly in ``folder``, all checked first."""
    return [(path, _checked_name(path.name, str(path)), size)
            for path, size in local_files.folder_files(folder)]


def _checked_name(name: str, source: str, hint: str = "") -> str:
    try:
        return validate_file_name(name)
    except InvalidNameError as exc:
        raise InvalidNameError(f"cannot upload {source!r}: {exc}{hint}") from None


def _upload_file(artifact: Artifact, path: Path, name: str, progress: _Progress) -> ArtifactFile:
    file = artifact.file_handle(name)
    with local_files.open_source(path) as src, file.open("wb") as dst:
        _copy(src, dst, progress, local_src=path)
    return file


def upload(artifact: Artifact, path: str | os.PathLike[str], name: str | None = None, *,
           callback: Callback | None = None) -> list[ArtifactFile]:
    """Copy a local file, or every file directly in a local folder, into ``artifact``.

    See :meth:`Artifact.upload <catalogstore.artifacts.Artifact.upload>`.
    """
    source = Path(path)
    size = local_files.source_size(source)
    if size is not None:
        target = _checked_name(name if name is not None else source.name, str(source),
                               "" if name is not None else "; upload it under another name")
        with _progress(callback, f"upload {target}", size) as progress:
            return [_upload_file(artifact, source, target, progress)]
    if name is not None:
        raise InvalidNameError(f"cannot upload folder {str(source)!r} under the name "
                               f"{name!r}: a folder's files keep their own names")
    entries = _folder_entries(source)
    with _progress(callback, f"upload {source.name}", sum(size for _, _, size in entries)) \
            as progress, artifact.transaction():
        artifact._ws.files.for_each(
            lambda entry: _upload_file(artifact, entry[0], entry[1], progress), entries)
    return [artifact.file_handle(file_name) for _, file_name, _ in entries]


# -- download -----------------------------------------------------------------


def _download_file(file: ArtifactFile, record: FileRecord, dest: Path,
                   progress: _Progress) -> Path:
    hasher = hasher_for(record.checksum)
    with local_files.replacing(dest) as dst:
        with file.open("rb") as src:
            _copy(src, dst, progress, local_dst=dest, hasher=hasher)
        if not hash_matches(hasher, record.checksum):
            raise checksum_mismatch(file.uri, record.checksum)
    return dest


def download_file(file: ArtifactFile, dest: str | os.PathLike[str], *,
                  callback: Callback | None = None) -> Path:
    """Copy ``file`` to ``dest`` (or into ``dest`` when it is a folder).

    See :meth:`ArtifactFile.download <catalogstore.artifacts.ArtifactFile.download>`.
    """
    target = Path(dest)
    if local_files.is_folder(target):
        target = target / file.name
    record = file.info
    with _progress(callback, f"download {file.name}", record.size) as progress:
        return _download_file(file, record, target, progress)


def download(artifact: Artifact, dest: str | os.PathLike[str], *,
             callback: Callback | None = None) -> list[Path]:
    """Copy every file of ``artifact`` into the folder ``dest``.

    See :meth:`Artifact.download <catalogstore.artifacts.Artifact.download>`.
    """
    folder = Path(dest)
    local_files.make_folder(folder)
    # One catalog read for every file's size and checksum (pending writes included).
    records = sorted(artifact._file_records().items())
    with _progress(callback, f"download {artifact.name}",
                   sum(record.size for _, record in records)) as progress:
        artifact._ws.files.for_each(
            lambda item: _download_file(artifact.file_handle(item[0]), item[1],
                                        folder / item[0], progress), records)
    return [folder / name for name, _ in records]
