"""The user's own local files: upload sources and download targets.

These paths are the caller's, outside the storage root, and are used as given
(links included: the caller chose them). Only regular files are read, so that a
FIFO or a device named as a source cannot hang an upload or make it endless.
Failures raise :class:`~catalogstore.errors.LocalPathError` naming the path.
"""

from __future__ import annotations

import contextlib
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from catalogstore.errors import InvalidNameError, LocalPathError


def local_error(path: Path, doing: str, exc: OSError) -> LocalPathError:
    """The error of ``exc``, met while doing ``doing`` to the local ``path``."""
    return LocalPathError(f"cannot {doing} {str(path)!r}: {exc.strerror or exc}")


@contextlib.contextmanager
def local_errors(path: Path, doing: str) -> Iterator[None]:
    """Translate failures of the local filesystem into :class:`LocalPathError`."""
    try:
        yield
    except OSError as exc:
        raise local_error(path, doing, exc) from exc


def _not_regular(path: Path) -> InvalidNameError:
    return InvalidNameError(f"cannot upload {str(path)!r}: not a regular file")


def source_size(path: Path) -> int | None:
    """The size of the file ``path``, or ``None`` when it is a folder."""
    with local_errors(path, "read"):
        mode, size = (info := path.stat()).st_mode, info.st_size
    if stat.S_ISDIR(mode):
        return None
    if not stat.S_ISREG(mode):
        raise _not_regular(path)
    return size


def folder_files(folder: Path) -> list[tuple[Path, int]]:
    """(path, size) of the files directly in ``folder``, by name; a sub-folder or a
    special file raises :class:`InvalidNameError` before anything is read."""
    found = []
    with local_errors(folder, "list"):
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            if entry.is_dir():
                raise InvalidNameError(
                    f"cannot upload folder {str(folder)!r}: it has a sub-folder {entry.name!r}, "
                    "and artifact files are flat; upload its files separately")
            if not entry.is_file():
                raise _not_regular(Path(entry.path))
            found.append((Path(entry.path), entry.stat().st_size))
    return found


def open_source(path: Path) -> IO[bytes]:
    """The regular file ``path`` open for reading (``O_NONBLOCK``: a FIFO put in its place
    since it was listed cannot hang the open; it does nothing to a regular file)."""
    with local_errors(path, "read"):
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            regular = stat.S_ISREG(os.fstat(fd).st_mode)
        except BaseException:
            os.close(fd)
            raise
        if not regular:
            os.close(fd)
            raise _not_regular(path)
        return open(fd, "rb")


def make_folder(folder: Path) -> None:
    with local_errors(folder, "create folder"):
        folder.mkdir(parents=True, exist_ok=True)


def is_folder(path: Path) -> bool:
    return path.is_dir()


@contextlib.contextmanager
def replacing(dest: Path) -> Iterator[IO[bytes]]:
    """A new file beside ``dest`` that replaces it, in one rename, when the block ends
    without an error; on an error it is removed and ``dest`` is left as it was."""
    # A hidden, unique name beside the destination: the rename is atomic on one filesystem.
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
    with local_errors(dest, "write"):
        file = open(tmp, "wb")  # noqa: SIM115 (closed below)
    try:
        with file:
            yield file
        with local_errors(dest, "write"):
            os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
