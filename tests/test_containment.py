"""The storage gateway never leaves the root (issue 11): links, FIFOs, sockets and devices
inside it are foreign entries, reported and never followed, read or deleted through.

Each test fills a real local store (an artifact ``ns/a`` with a file ``f`` and
metadata, a healthy artifact ``other/b``), places one hostile entry (a table of
cases: a link in the staging area or in place of it, a linked namespace, artifact
folder, file or ``.artifact.json``, a FIFO, a socket, a device, a link loop, a
``.artifact.json`` over the size bound), then runs a maintenance command (API and
command line) or an ``Artifact``/``ArtifactFile`` method. Beside the root sits a
*sentinel* folder (a fake private key, files and folders older than any grace
period, a copy of an artifact's layout for a followed link to find). After each
case, a listing of the whole temporary folder outside the root (paths, kinds,
sizes, content hashes, modification times) must be what it was before. Every test
runs under a timeout, so a FIFO that hangs a read fails the test instead of
blocking the suite.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import catalogstore
from catalogstore import maintenance
from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.cli import app
from catalogstore.errors import ForeignEntryError, StorageError
from catalogstore.storage.tree import METADATA_MAX_BYTES

pytestmark = pytest.mark.timeout(60)

KEY = b"-----BEGIN OPENSSH PRIVATE KEY-----\nnot-a-real-key\n-----END OPENSSH PRIVATE KEY-----\n"
OLD = time.time() - 2 * 86400  # older than any grace period: gc would take it
STAGED = "ab" * 16  # a name of the staged shape (32 hex digits)


def _sentinel(tmp_path: Path) -> Path:
    """Files outside the root that a followed link would reach (all old, so gc would
    remove them if it followed one)."""
    outside = tmp_path / "outside"
    for rel, content in {"id_rsa": KEY, "notes/todo.txt": b"keep me",
                         "a/f": b"foreign content", "a/.artifact.json": b'{"stolen": "yes"}',
                         STAGED: b"old staged-looking file"}.items():
        path = outside / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    for path in [*outside.rglob("*"), outside]:
        os.utime(path, (OLD, OLD), follow_symlinks=False)
    return outside


def _listing(tmp_path: Path, root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything under ``tmp_path`` but the storage root, the catalog and the folders of
    uploads and downloads: kind, size, content hash and modification time of each
    entry, links never followed."""
    found: dict[str, tuple[Any, ...]] = {}
    for folder, dirs, files in os.walk(tmp_path):
        for name in dirs + files:
            path = Path(folder, name)
            rel = str(path.relative_to(tmp_path))
            if path == root or root in path.parents or \
                    rel.startswith(("catalog.db", "downloads", "uploads")):
                continue
            info = path.lstat()
            digest = hashlib.sha256(path.read_bytes()).hexdigest() \
                if stat.S_ISREG(info.st_mode) else os.readlink(path) \
                if stat.S_ISLNK(info.st_mode) else None
            found[rel] = (
                stat.S_IFMT(info.st_mode), info.st_size, digest, info.st_mtime_ns)
    return found


def _link(path: Path, target: Path | str) -> None:
    if path.is_dir() and not path.is_symlink():
        path.rename(path.with_name(path.name + ".moved-away"))
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def _fifo(path: Path, _: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _device(path: Path, _: Path) -> None:
    path.unlink(missing_ok=True)
    os.mknod(path, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # what /dev/zero is


def _socket(path: Path, _: Path) -> None:
    path.unlink(missing_ok=True)
    here = os.getcwd()
    os.chdir(path.parent)  # a socket's path must be short: bind it by its name
    try:
        socket.socket(socket.AF_UNIX).bind(path.name)
    finally:
        os.chdir(here)


def _huge(path: Path, _: Path) -> None:
    path.unlink()
    with open(path, "wb") as f:
        f.truncate(METADATA_MAX_BYTES + 1)  # sparse: costs no disk


# (case id, path inside the root, how it is made, the entry named in reports)
CASES: list[tuple[str, str, Callable[[Path, Path], None], str]] = [
    ("staged-link", f".catalogstore/staging/{STAGED}", lambda p, o: _link(p, o), STAGED),
    ("staged-file-link", f".catalogstore/staging/{'cd' * 16}",
     lambda p, o: _link(p, o / STAGED), "cd" * 16),
    ("staging-link", ".catalogstore/staging", lambda p, o: _link(p, o), ".catalogstore/staging"),
    ("namespace-link", "artifacts/ns", lambda p, o: _link(p, o), "artifacts/ns"),
    ("artifact-link", "artifacts/ns/a", lambda p, o: _link(p, o / "a"), "artifacts/ns/a"),
    ("file-link", "artifacts/ns/a/f", lambda p, o: _link(p, o / "id_rsa"), "artifacts/ns/a/f"),
    ("metadata-link", "artifacts/ns/a/.artifact.json", lambda p, o: _link(p, o / "id_rsa"),
     ".artifact.json"),
    ("file-fifo", "artifacts/ns/a/f", _fifo, "artifacts/ns/a/f"),
    ("metadata-fifo", "artifacts/ns/a/.artifact.json", _fifo, ".artifact.json"),
    ("file-dev-zero", "artifacts/ns/a/f", lambda p, o: _link(p, "/dev/zero"),
     "artifacts/ns/a/f"),
    ("metadata-dev-zero", "artifacts/ns/a/.artifact.json", lambda p, o: _link(p, "/dev/zero"),
     ".artifact.json"),
    ("file-device", "artifacts/ns/a/f", _device, "artifacts/ns/a/f"),
    ("file-socket", "artifacts/ns/a/f", _socket, "artifacts/ns/a/f"),
    ("link-loop", "artifacts/ns/a/loop", lambda p, o: _link(p, p), "artifacts/ns/a/loop"),
    ("folder-cycle", "artifacts/ns/a/up", lambda p, o: _link(p, ".."), "artifacts/ns/a/up"),
    ("metadata-huge", "artifacts/ns/a/.artifact.json", _huge, ".artifact.json"),
]
IDS = [case[0] for case in CASES]
IN_ARTIFACT = [c for c in CASES if c[1].startswith("artifacts/")]


@pytest.fixture
def store(local_stack, tmp_path: Path) -> Any:
    """``ns/a`` (file ``f``, metadata ``k``) and ``other/b``, a sentinel outside the root,
    and a function that places a case's entry and returns the listing outside."""
    artifact = new_artifact("a", "ns")
    artifact.new_file("f", b"hello")
    artifact.set_meta("k", "v")
    new_artifact("b", "other").new_file("kept", b"healthy")
    root = Path(local_stack.storage_url)
    outside = _sentinel(tmp_path)
    (root / ".catalogstore/staging").mkdir(parents=True, exist_ok=True)

    def place(rel: str, make: Callable[[Path, Path], None]) -> dict[str, tuple[Any, ...]]:
        make(root / rel, outside)
        # A change behind the catalog's back in the healthy artifact: a run that went
        # on past the hostile entry finds it.
        (root / "artifacts/other/b/extra").write_bytes(b"added by hand")
        return _listing(tmp_path, root)

    return tmp_path, root, place


def _contained(store: Any, rel: str, make: Callable[[Path, Path], None],
               action: Callable[[], Any]) -> Any:
    """``action()`` once the case's entry is placed, checked to change nothing outside the
    root; its result."""
    tmp_path, root, place = store
    before = place(rel, make)
    result = action()
    assert _listing(tmp_path, root) == before
    return result


# -- maintenance, through the API -------------------------------------------------------


@pytest.mark.parametrize(("case", "rel", "make", "named"), CASES, ids=IDS)
def test_reindex_reports_and_goes_on(store, case, rel, make, named):
    report = _contained(store, rel, make, maintenance.reindex)
    assert "other/b" in report.changed  # the run went on
    if rel.startswith("artifacts/"):
        assert any(named in b.path or named in b.reason for b in report.broken), report.broken
        artifact = get_artifact("a", "ns")  # left as the catalog has it, nothing imported
        assert artifact.metadata == {"k": "v"} and [f.name for f in artifact] == ["f"]


@pytest.mark.parametrize("repair", [False, True], ids=["verify", "verify-repair"])
@pytest.mark.parametrize(("case", "rel", "make", "named"), CASES, ids=IDS)
def test_verify_reports_and_goes_on(store, case, rel, make, named, repair):
    report = _contained(store, rel, make, lambda: maintenance.verify(repair=repair))
    kinds = {(d.kind, d.where) for d in report.differences}
    assert ("extra-file", "other/b/extra") in kinds  # the run went on
    if case.startswith(("staged", "staging")):
        assert any(d.kind == "unexpected" and named in (d.file or "") for d in report.differences)
    else:
        short = named.removeprefix("artifacts/")  # reports name artifacts by namespace/name
        assert any(short in f"{d.where} {d.detail}" for d in report.differences), kinds
    assert "PRIVATE KEY" not in json.dumps(report.to_dict())  # never read into a report


@pytest.mark.parametrize(("case", "rel", "make", "named"), CASES, ids=IDS)
def test_gc_removes_only_what_it_staged(store, case, rel, make, named):
    report = _contained(store, rel, make, maintenance.gc)
    assert os.path.lexists(store[1] / rel)  # the foreign entry itself is left too
    assert report.removed == []
    if case.startswith(("staged", "staging")):
        assert any(named in b.path for b in report.left), report.left


def test_gc_removes_old_staged_files_and_empty_folders_only(store):
    staging = store[1] / ".catalogstore/staging"
    orphan, folder, other = staging / ("0" * 32), staging / ("1" * 32), staging / "not-ours"
    orphan.write_bytes(b"orphan")
    folder.mkdir()
    other.write_bytes(b"someone else's")
    for path in (orphan, folder, other):
        os.utime(path, (OLD, OLD))
    report = _contained(store, f".catalogstore/staging/{'2' * 32}",
                        lambda p, o: _link(p, o / "notes"), maintenance.gc)
    assert report.removed == [f".catalogstore/staging/{'0' * 32}"]
    assert not folder.exists() and other.read_bytes() == b"someone else's"
    assert {b.path for b in report.left} == {".catalogstore/staging/not-ours",
                                             f".catalogstore/staging/{'2' * 32}"}


# -- maintenance, through the command line -------------------------------------------------

COMMANDS = [("reindex", ["reindex"], 0), ("verify", ["verify"], 1),
            ("verify-repair", ["verify", "--repair"], 1), ("gc", ["gc"], 0)]


@pytest.mark.parametrize(("name", "args", "code"), COMMANDS, ids=[c[0] for c in COMMANDS])
@pytest.mark.parametrize(("case", "rel", "make", "named"), CASES, ids=IDS)
def test_cli_reports_in_one_line_each(store, case, rel, make, named, name, args, code):
    result = _contained(store, rel, make, lambda: CliRunner().invoke(app, args))
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        result.exception
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output and "PRIVATE KEY" not in result.output
    in_staging = case.startswith(("staged", "staging"))
    if (name == "gc") == in_staging or name.startswith("verify"):
        short = named.removeprefix("artifacts/")  # verify names artifacts by namespace/name
        lines = [line for line in result.output.splitlines() if short in line]
        assert lines, result.output


# -- Artifact and ArtifactFile methods --------------------------------------------------------


def _download(a: Any, tmp_path: Path) -> Any:
    dest = tmp_path / "downloads"
    dest.mkdir(exist_ok=True)
    return a.download(dest)


def _upload(a: Any, tmp_path: Path) -> Any:
    source = tmp_path / "uploads"
    source.mkdir(exist_ok=True)
    (source / "g").write_bytes(b"uploaded")
    return a.upload(source / "g")


METHODS: dict[str, Callable[[Any, Path], Any]] = {
    "read": lambda a, _: a.get_file("f").read(),
    "read-verify": lambda a, _: a.get_file("f").read(verify=True),
    "open": lambda a, _: a.get_file("f").open("rb").read(),
    "write": lambda a, _: a.get_file("f").write(b"new"),
    "new-file": lambda a, _: a.new_file("g", b"new"),
    "get-file-create": lambda a, _: a.get_file("g", create=True),
    "delete-file": lambda a, _: a.delete_file("f"),
    "remove": lambda a, _: a.get_file("f").remove(),
    "download": _download,
    "download-file": lambda a, t: a.get_file("f").download(t / "downloads.f"),
    "upload": _upload,
    "set-meta": lambda a, _: a.set_meta("k2", "v2"),
    "clear": lambda a, _: a.clear(),
    "delete": lambda a, _: a.delete(),
}
# Methods that must refuse when the file (or a folder on its way) is foreign: they read it.
READS = {"read", "read-verify", "open", "download", "download-file"}
API_CASES = [c for c in IN_ARTIFACT if not c[0].startswith("metadata-huge")]


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize(("case", "rel", "make", "named"), API_CASES,
                         ids=[c[0] for c in API_CASES])
def test_artifact_methods_never_leave_the_root(store, case, rel, make, named, method):
    def call() -> StorageError | None:
        try:
            METHODS[method](get_artifact("a", "ns"), store[0])
        except StorageError as exc:
            return exc
        return None

    error = _contained(store, rel, make, call)
    if error is not None:
        assert rel in str(error), error
    else:
        foreign_file = rel.endswith("/f") or rel.count("/") < 3
        assert not (method in READS and foreign_file), "read through a foreign entry"


@pytest.mark.parametrize("method", sorted(READS))
def test_reads_of_a_foreign_file_raise_foreign_entry_error(store, method):
    store[2]("artifacts/ns/a/f", _fifo)
    with pytest.raises(ForeignEntryError, match="artifacts/ns/a/f is a FIFO"):
        METHODS[method](get_artifact("a", "ns"), store[0])


def test_gc_rolls_the_journal_forward_past_an_entry_a_link_blocks(store, monkeypatch):
    """Two committed changes whose storage step was not done: the one whose artifact
    folder became a link stays in the journal and is reported; the other is applied."""
    from catalogstore.errors import UnappliedCommitError
    from catalogstore.txn.workspace import Workspace

    def fail(self: Any, done: Any) -> None:
        raise StorageError("the storage went away after the commit")

    monkeypatch.setattr(Workspace, "_apply_named", fail)
    with pytest.raises(UnappliedCommitError), catalogstore.transaction():
        for namespace, name in (("ns", "a"), ("other", "b")):
            get_artifact(name, namespace).new_file("late", b"committed")
    monkeypatch.undo()
    tmp_path, root, place = store
    before = place("artifacts/ns/a", lambda p, o: _link(p, o / "a"))
    report = maintenance.gc()
    assert _listing(tmp_path, root) == before
    assert report.journal_entries == 1
    assert [left.path for left in report.left if "rolled forward" in left.reason] == [
        "artifacts/ns/a"]
    assert (root / "artifacts/other/b/late").read_bytes() == b"committed"
    assert not (tmp_path / "outside/a/late").exists()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="the one-call open needs /proc")
def test_a_folder_opened_in_one_call_is_kept_only_when_no_link_was_crossed(tmp_path: Path):
    """The fast path of storage/local.py: one open of the whole path, checked against the
    descriptor's path; through a link it gives way to the walk, which refuses the link."""
    from catalogstore.storage import local

    root = tmp_path / "root"
    (root / "real/inner").mkdir(parents=True)
    (tmp_path / "outside/inner").mkdir(parents=True)
    os.symlink(tmp_path / "outside", root / "linked")
    fd = local._open_direct(str(root), "real/inner")
    assert fd is not None and os.path.samestat(os.fstat(fd), (root / "real/inner").stat())
    os.close(fd)
    assert local._open_direct(str(root), "linked/inner") is None
    assert local._open_direct(str(root), "real/../linked/inner") is None
    with pytest.raises(ForeignEntryError, match="linked"):
        local.open_folder(str(root), "linked/inner")


def _storage_fds(root: Path) -> list[str]:
    """What this process's descriptors open under the storage root."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            path = os.readlink(f"/proc/self/fd/{fd}")
            if path.startswith(str(root.resolve())):
                found.append(path)
    return found


def test_a_storage_step_opens_each_folder_once_and_closes_it(store, monkeypatch):
    """A commit's storage step (a kept version, a file moved over, ``.artifact.json``)
    opens each of its folders once, checked as any open, and closes them all, also
    when a step fails; a link placed in the way is still refused."""
    from catalogstore.storage import local
    from catalogstore.txn import apply as apply_module

    opened: list[str] = []
    real_open = local.open_folder
    monkeypatch.setattr(local, "open_folder",
                        lambda root, rel, **kw: opened.append(rel) or real_open(root, rel, **kw))
    with get_artifact("a", "ns").transaction() as artifact:  # the catalog's connections
        artifact.set_meta("k", "u")
    root = Path(get_artifact("a", "ns").path).parents[2]
    with get_artifact("a", "ns").transaction() as artifact:
        artifact.new_file("f", b"changed")  # replaces f: its bytes are kept for version 3
        artifact.set_meta("k", "w")
        opened.clear()  # from here on, the commit: the staged file is written already
    assert sorted(opened) == sorted(set(opened)) and len(opened) == 3, opened
    assert _storage_fds(root) == []
    assert get_artifact("a", "ns").get_file("f").read() == b"changed"

    def fail(*_: Any) -> None:
        raise StorageError("the storage went away")

    monkeypatch.setattr(apply_module, "keep_replaced", fail)
    with pytest.raises(StorageError), get_artifact("a", "ns").transaction() as artifact:
        artifact.new_file("f", b"again")
    assert _storage_fds(root) == []
