"""Earlier versions of an artifact, read-only (issue 15).

Every commit that changes an artifact's files or metadata makes a new version
(:mod:`catalogstore.catalog.versions`); the artifact's folder holds the current one,
as Flowdapt lays it out, and the bytes of files that earlier versions hold and the
current one does not are kept under ``.catalogstore/versions/{artifact id}/``, once
per checksum (a hard link or a server-side copy of the file they replaced, made by
the commit that replaced it). An :class:`ArtifactVersion` is a handle on one kept
version: the read API of :class:`~catalogstore.artifacts.Artifact` on its files and
metadata as they were, every change refused.

A version is named by its number or by an alias, in code
(``get_artifact("model", version=3)``, ``get_artifact("model", alias="prod")``) or as
one string (``model:v3``, ``model@prod``; ``:`` and ``@`` are never part of a name).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

from catalogstore.artifacts.artifact import Artifact
from catalogstore.catalog import versions as rows
from catalogstore.catalog.versions import VersionRecord
from catalogstore.errors import (
    ArtifactFileNotFoundError,
    InvalidNameError,
    ReadOnlyArtifactError,
    VersionNotFoundError,
)
from catalogstore.names import artifact_dir, validate_name, version_blob
from catalogstore.record import FileRecord

if TYPE_CHECKING:
    import contextlib

    from catalogstore.settings import Settings
    from catalogstore.storage.filestore import StagedWriter

_REF = re.compile(r"(?P<name>[^:@]+)(?::v(?P<version>[0-9]{1,9})|@(?P<alias>[^:@]+))?")


def split_ref(ref: str) -> tuple[str, int | None, str | None]:
    """``name``, ``name:v3`` or ``name@alias`` as (name, version, alias)."""
    found = _REF.fullmatch(ref) if isinstance(ref, str) else None
    if found is None:
        raise InvalidNameError(f"invalid artifact reference {str(ref)[:80]!r}: use NAME, "
                               "NAME:vN or NAME@ALIAS")
    version = found["version"]
    return found["name"], None if version is None else int(version), found["alias"]


def version_number(artifact: Artifact, version: int | None, alias: str | None) -> int:
    """The number of the version that ``version`` or ``alias`` names (one of them)."""
    if (version is None) == (alias is None):
        raise TypeError("name a version by its number or by an alias (one of them)")
    if alias is not None:
        validate_name(alias, "alias")
        return rows.resolve_alias(artifact._ws.catalog, artifact.record.id, alias)
    if type(version) is not int or version < 1:
        raise InvalidNameError(f"invalid version {version!r}: a number from 1")
    return version


def open_version(artifact: Artifact, version: int | None = None,
                 alias: str | None = None) -> ArtifactVersion:
    """The read-only view of the artifact's version ``version`` (or ``alias``)."""
    try:
        number = version_number(artifact, version, alias)
        found = rows.get_version(artifact._ws.catalog, artifact.record.id, number)
    except VersionNotFoundError:
        label = f"@{alias}" if alias is not None else f":v{version}"
        raise VersionNotFoundError(
            f"artifact {artifact.namespace}/{artifact.name} keeps no version "
            f"{artifact.name}{label} (never made, removed by gc's retention, or an alias "
            "not set)") from None
    return ArtifactVersion(artifact, found)


def open_ref(get: Callable[..., Artifact], where: dict[str, Any], version: int | None,
             alias: str | None) -> ArtifactVersion:
    """The version that ``where["name"]`` names (``name:v3``, ``name@prod``) or
    ``version``/``alias`` do, of the artifact ``get(**where)`` returns."""
    name, in_version, in_alias = split_ref(where["name"])
    if (in_version, in_alias) != (None, None) and (version, alias) != (None, None):
        raise TypeError(f"{where['name']!r}: name the version in the reference or in "
                        "version=/alias=, not both")
    if (in_version, in_alias, version, alias) == (None, None, None, None):
        raise InvalidNameError(f"invalid artifact reference {where['name']!r}: use NAME, "
                               "NAME:vN or NAME@ALIAS")
    artifact = get(**{**where, "name": name})
    return open_version(artifact, version or in_version, alias or in_alias)


class ArtifactVersion(Artifact):
    """One kept version of an artifact, read-only: files, metadata and their reads as
    :class:`~catalogstore.artifacts.Artifact` has them, as they were committed; every
    change raises :class:`~catalogstore.errors.ReadOnlyArtifactError`. Reads check
    the bytes against the checksums the version recorded."""

    _verifies_reads = True

    def __init__(self, artifact: Artifact, record: VersionRecord) -> None:
        super().__init__(artifact._ws, artifact.record, namespace=artifact.namespace,
                         name=artifact.name)
        self._version = record
        self._meta = dict(record.metadata)

    def __repr__(self) -> str:
        return f"ArtifactVersion<{self.uri}:v{self._version.version}>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ArtifactVersion) and super().__eq__(other) and \
            other._version.version == self._version.version

    def __hash__(self) -> int:
        return hash((self.namespace, self.name, self._version.version))

    def __reduce__(self) -> tuple[Any, ...]:
        return _reopen, (self.settings, self.namespace, self.name, self._version.version)

    @property
    def version(self) -> int:
        """This version's number."""
        return self._version.version

    @property
    def info(self) -> VersionRecord:
        """This version as the catalog keeps it: creation time, files, aliases, pin."""
        return self._version

    def refresh(self) -> ArtifactVersion:
        """Check that the version is still kept (gc's retention may have removed it)."""
        self._version = rows.get_version(self._ws.catalog, self.record.id,
                                         self._version.version)
        return self

    # -- reads: the version's rows, its kept bytes ------------------------------

    def _sync(self) -> None:
        pass  # a version never changes: nothing to reload

    def _pending(self) -> None:
        return None

    def _committed_files(self) -> dict[str, FileRecord]:
        return dict(self._version.files)

    def _file_record(self, name: str) -> FileRecord:
        found = self._version.files.get(name)
        if found is None:
            raise ArtifactFileNotFoundError(
                f"artifact {self.namespace}/{self.name}:v{self.version} has no file {name!r}")
        return found

    def _storage_path(self, name: str, *, recorded: bool = False) -> str:
        """The kept bytes of the file's checksum, or the artifact's folder while the
        current version holds the file unchanged (a read that meets the commit
        replacing it finds other bytes there, and reads again under the lock, by
        which time they are kept)."""
        blob = version_blob(self.record.id, self._file_record(name).checksum)
        if self._ws.files.exists(blob):
            return blob
        return f"{artifact_dir(self.namespace, self.name)}/{name}"

    # -- changes: refused --------------------------------------------------------

    def _read_only(self, *_: Any, **__: Any) -> NoReturn:
        raise ReadOnlyArtifactError(
            f"artifact {self.namespace}/{self.name}:v{self.version} is a view of a version: "
            "versions never change (change the artifact itself: get_artifact(name))")

    _change = _read_only
    _write_file = _read_only
    delete = _read_only

    def _stage_writer(self, name: str, encoding: str | None) -> StagedWriter:
        self._read_only()

    def transaction(self) -> contextlib._GeneratorContextManager[Artifact]:
        self._read_only()


def _reopen(settings: Settings, namespace: str, name: str, version: int) -> ArtifactVersion:
    """The handle a pickled :class:`ArtifactVersion` becomes in another process."""
    from catalogstore.artifacts.artifact import _reopen as reopen_artifact

    return open_version(reopen_artifact(settings, namespace, name), version)

