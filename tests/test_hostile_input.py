"""Hostile input: every spelling behind the path-traversal CVEs of artifact stores is refused.

On both stacks (SQLite + local disk, PostgreSQL + S3), each bad spelling is
tried as an artifact name, a namespace, a file name, an object store key and
namespace, a cluster memory key, namespace and session, through every entry
point that takes one: traversal (``..``, ``/``, ``\\``, absolute paths, drive
letters), NUL and control characters, URL-encoded and double-encoded traversal,
``#`` and ``?`` fragments, scheme confusion (``file://``, ``s3://``, ``http://``),
Unicode look-alikes and normalisation twins (the ASCII whitelist refuses them
all, so two spellings that normalise alike can never be two folders), the
reserved ``.artifact.json`` and names that are too long. Each is refused with
an error of the package's hierarchy before anything is written.

Names that differ only by case (``Model``/``model``) would be one folder on a
case-insensitive filesystem: the second spelling is refused (artifacts,
namespaces, files), so only one folder ever exists.

Metadata is text, never a path: keys and values full of SQL, JSON and path
characters, Unicode in both normal forms and values of 10 KB and 1 MB round
trip exactly through the catalog, a ``where`` lookup and ``.artifact.json``;
NUL and control characters in keys, NUL in values and values that are neither
text nor numbers are refused, by the documented rule of :mod:`catalogstore.names`.

After the battery, the whole temporary folder (and the S3 bucket, and the list
of buckets) is listed: nothing exists outside the storage root, the catalog
file and the cluster memory root. The number of bad inputs tried is printed.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import catalogstore
from catalogstore import object_store
from catalogstore.artifacts import (
    ArtifactFile,
    artifact_exists,
    get_artifact,
    list_artifacts,
    new_artifact,
)
from catalogstore.cluster_memory._local import LocalMemory
from catalogstore.errors import (
    CatalogStoreError,
    InvalidMetadataError,
    InvalidNameError,
    NameCollisionError,
)

# Deep enough that "../" repeated up to this many times from an artifact folder
# still lands inside the test's temporary folder, where the final listing sees it.
DEPTH = 12


def bad_names(outside: Path) -> list[str]:
    """Spellings no name, namespace, file name or key may take (``outside``: a target)."""
    up = "../" * (DEPTH + 4)
    return [
        # traversal and absolute paths
        "", ".", "..", "...", "../x", "../../x", f"{up}escaped", "a/../../b", "x/..", "./x",
        "a/b", "/", "\\", "a\\b", "..\\..\\x", "\\abs", "/abs", str(outside),
        f"{outside}/x", "//server/share", "\\\\server\\share", "C:\\x", "C:x", "~", "~root",
        "$HOME", "${HOME}", "a*b", "a|b", "a<b", "a>b", 'a"b', "a;b", "a`b", "a'b",
        # NUL and control characters
        "\x00", "a\x00b", "a\x00/../x", "a\nb", "a\rb", "a\tb", "a\x1bb", "a\x7fb", "a\x85b",
        "a\u202eb", "a\u200bb", "a\ufeffb",
        # URL-encoded and double-encoded traversal
        "%2e%2e%2f", "%2e%2e/x", "..%2fx", "%2e%2e%5c", "%2E%2E%2F", "%252e%252e%252f",
        "%25252e%25252e", "%c0%ae%c0%ae%2f", "..%00", "%00", "a%2fb",
        # fragments and queries
        "#", "a#b", "a#../../x", "?", "a?b", "a?x=../../y", "a?versionId=1",
        # scheme confusion
        "file://x", f"file://{outside}", "file:x", "s3://bucket/key", "s3://other", "s3:x",
        "http://evil/x", "https://evil", "memory://x", "gs://b/k", "a:b",
        # Unicode look-alikes and normalisation
        "\uff41\uff42\uff43", "\uff21\uff22\uff23", "\u0430dmin", "caf\u00e9", "cafe\u0301",
        "\ufb01le", "\u2024\u2024", "\uff0e\uff0e", "a\u2215b", "a\uff0fb", "a\u29f5b",
        "\u212aelvin", "\u0131d", "mod\u0435l",
        # reserved, blank, too long
        ".artifact.json", " ", " a", "a ", "x" * 256, "y" * 10_000,
    ]


def bad_artifact_names(outside: Path) -> list[str]:
    """Bad for artifact names and namespaces too: also valid file names that are no names."""
    return [*bad_names(outside), "a b", "a+b", "a=b", "a@b", "a,b", ".hidden", ".catalogstore",
            "_x", "-x", "x" * 129]


# Metadata keys full of what breaks SQL, JSON, paths and terminals; all legal.
SPECIAL_KEYS = [
    "'", '"', ";", "--", "%", "_", "\\", "{}", "$.", "$.a[0]", "a.b", "[", "]", "*",
    "'; DROP TABLE artifacts; --", "\" OR \"1\"=\"1", "%_\\%", "../../etc/passwd", "/abs",
    "%2e%2e%2f", "#frag", "?q=1", "s3://x", "file:///etc", ".artifact.json",
    "\uff41\uff42\uff43", "\u0430", "caf\u00e9", "cafe\u0301", "\u65e5\u672c\u8a9e",
    "\U0001f642", "null", "true", "0", " ", "k" * 255, "a\u202eb",
]
SPECIAL_VALUES = [
    "", "'", '"', "\\", "{}", "[]", "null", '{"a": 1}', "'; DROP TABLE artifacts; --",
    "%_", "line1\nline2\r\n", "\t", "\x1b[31mred", "caf\u00e9", "cafe\u0301", "\U0001f642",
    "../../x", "s3://bucket/key",
]
BAD_META_KEYS: list[Any] = ["", "a\x00b", "a\nb", "\x1b", "a\x7f", "a\x85", "k" * 256,
                            5, None, b"key", ("t",), 1.5]
# Not JSON values (names.check_meta_value): refused, however deep inside a list or dict.
BAD_META_VALUES: list[Any] = [b"bytes", object(), {1, 2}, "nul\x00inside", 1j, 10**30,
                              [1, b"x"], {"a": {"b": object()}}, {1: "int key"}, "\ud800"]
# JSON values, kept with their type; NaN and the infinities are null (as Flowdapt writes).
TYPED = {"7": 7, "-3": -3, "1.5": 1.5, "true": True, "false": False, "null": None,
         "2**64-1": 2**64 - 1, "nan": float("nan"), "inf": float("inf"), "list": [1, [2, None]],
         "dict": {"z": 1, "a": {"": []}}, "tuple": (1, "a"), "1e-7": 1e-7}


class Battery:
    """Tries bad inputs, each expected to raise ``expected``; counts them."""

    def __init__(self) -> None:
        self.tried = 0

    def refused(self, fn: Callable[..., Any], *args: Any, expected: Any = CatalogStoreError,
                **kwargs: Any) -> None:
        self.tried += 1
        with pytest.raises(expected):
            fn(*args, **kwargs)


@pytest.fixture
def hostile(stack, tmp_path: Path) -> Iterator[tuple[Any, Path]]:
    """The stack, with a local storage root nested ``DEPTH`` folders down."""
    if stack.name == "sqlite-local":
        deep = tmp_path.joinpath(*[f"d{i}" for i in range(DEPTH)])
        deep.mkdir(parents=True)  # a SQLite catalog's folder is never made (issue 12)
        stack.catalog_url = f"sqlite:///{deep / 'catalog.db'}"
        stack.storage_url = str(deep / "storage")
        catalogstore.configure(catalog_url=stack.catalog_url, storage_url=stack.storage_url)
    yield stack, tmp_path


def _everything_under(root: Path) -> set[str]:
    found = set()
    for folder, dirs, files in os.walk(root):
        for entry in dirs + files:
            found.add(os.path.relpath(os.path.join(folder, entry), root))
    return found


def _inside(path: str, allowed: list[str]) -> bool:
    return any(path == a or path.startswith(a + os.sep) or a.startswith(path + os.sep)
               for a in allowed)


def test_hostile_input_battery(hostile):
    stack, tmp_path = hostile
    outside = tmp_path / "outside"
    siblings_before = set(os.listdir(tmp_path.parent))
    fs = stack.filesystem()
    buckets_before = set(fs.ls("")) if stack.name == "postgres-s3" else set()
    memory_root = tmp_path / "memory"
    memory = LocalMemory(root=memory_root, session="hostile")
    battery = Battery()
    ok = new_artifact("ok")
    ok.new_file("f", b"content")
    ok["k"] = "v"
    object_store.put("obj", {"v": 1}, artifact_only=True)
    memory.put("obj", 1)

    for name in bad_artifact_names(outside):
        for fn, args, kwargs in [
            (new_artifact, (name,), {}),
            (get_artifact, (name,), {}),
            (get_artifact, (name,), {"create": True}),
            (artifact_exists, (name,), {}),
            (object_store.put, (name, 1), {"artifact_only": True}),
            (object_store.put, (name, 1), {}),
            (object_store.get, (name,), {}),
            (object_store.delete, (name,), {}),
            (object_store.exists, (name,), {}),
            (memory.put, (name, 1), {}),
            (memory.get, (name,), {}),
            (memory.delete, (name,), {}),
            (memory.exists, (name,), {}),
        ]:
            battery.refused(fn, *args, **kwargs)
        if name:  # "" stands for the current namespace where a namespace is asked for
            for fn, args, kwargs in [
                (new_artifact, ("ok2", name), {}),
                (get_artifact, ("ok", name), {"create": True}),
                (list_artifacts, (name,), {}),
                (object_store.put, ("obj", 1), {"namespace": name, "artifact_only": True}),
                (object_store.get, ("obj",), {"namespace": name}),
                (memory.put, ("obj", 1), {"namespace": name}),
                (memory.keys, (), {"namespace": name}),
                (LocalMemory, (name,), {"root": memory_root}),
                (LocalMemory, (), {"root": memory_root, "session": name}),
                (catalogstore.configure, (), {"namespace": name}),
                (lambda ns: catalogstore.namespace(ns).__enter__(), (name,), {}),
            ]:
                battery.refused(fn, *args, **kwargs)
    for name in bad_names(outside):
        for fn, args in [
            (ok.new_file, (name, b"x")),
            (ok.new_file, (name,)),
            (ok.get_file, (name,)),
            (ok.get_file, (name, True)),
            (ok.delete_file, (name,)),
            (lambda n: ArtifactFile(ok, n).write(b"x"), (name,)),
            (lambda n: ArtifactFile(ok, n).open("wb"), (name,)),
        ]:
            battery.refused(fn, *args, expected=InvalidNameError)
        local = tmp_path / "upload-me"
        local.write_bytes(b"x")
        battery.refused(ok.upload, local, name, expected=InvalidNameError)
    for key in BAD_META_KEYS:
        battery.refused(ok.set_meta, key, "v", expected=InvalidMetadataError)
        battery.refused(ok.update_meta, {key: "v"}, expected=InvalidMetadataError)
    for value in BAD_META_VALUES:
        battery.refused(ok.set_meta, "k", value, expected=InvalidMetadataError)
        battery.refused(ok.update_meta, {"k": value}, expected=InvalidMetadataError)

    # Nothing changed: the good artifact, object and memory entry are as they were.
    assert [a.name for a in list_artifacts(all_namespaces=True)] == ["obj", "ok"]
    ok.refresh()
    assert ok.metadata == {"k": "v"}
    assert [f.name for f in ok.list_files()] == ["f"]
    assert ok.get_file("f").read(verify=True) == b"content"
    assert object_store.get("obj", artifact_only=True) == {"v": 1}
    assert memory.keys() == ["obj"]

    # Nothing anywhere but the storage root, the catalog and the memory root.
    local_files = _everything_under(tmp_path)
    if stack.name == "sqlite-local":
        deep = Path(stack.storage_url).parent
        allowed = [str(deep.relative_to(tmp_path) / "storage"), "memory", "upload-me"] + [
            str(deep.relative_to(tmp_path) / f"catalog.db{s}")
            for s in ("", "-wal", "-shm", ".lock")]
    else:
        allowed = ["memory", "upload-me"]
        keys = fs.find(stack.storage_url.removeprefix("s3://").split("/")[0])
        root = stack.storage_url.removeprefix("s3://")
        assert keys and all(k.startswith(root + "/") for k in keys), keys
        assert set(fs.ls("", refresh=True)) == buckets_before
    stray = sorted(p for p in local_files if not _inside(p, allowed))
    assert stray == []
    assert set(os.listdir(tmp_path.parent)) - siblings_before <= set()
    assert not outside.exists()
    memory.close()
    print(f"\n[{stack.name}] hostile input: {battery.tried} bad inputs tried, all refused; "
          f"{len(local_files)} local paths and "
          f"{len(keys) if stack.name == 'postgres-s3' else 0} S3 keys listed, none outside")


def test_case_variants_are_one_folder_or_refused(stack):
    model = new_artifact("model")
    model.new_file("Data", b"1")
    for fn, args in [
        (new_artifact, ("Model",)),
        (new_artifact, ("MODEL",)),
        (get_artifact, ("mOdel",), ),
        (new_artifact, ("x", "Default")),
    ]:
        with pytest.raises(NameCollisionError if fn is new_artifact else CatalogStoreError):
            fn(*args)
    with pytest.raises(NameCollisionError, match="differs only by case"):
        get_artifact("Model", create=True)
    with pytest.raises(NameCollisionError):
        object_store.put("MODEL", 1, artifact_only=True)
    with pytest.raises(NameCollisionError, match="file 'data'"):
        model.new_file("data", b"2")
    with pytest.raises(NameCollisionError), catalogstore.transaction():
        new_artifact("pair")
        new_artifact("PAIR")
    # A rename by case in one transaction is no collision.
    with model.transaction():
        model.delete_file("Data")
        model.new_file("data", b"3")
    model.new_file("data", b"4")  # rewriting the one spelling is fine
    assert [a.name for a in list_artifacts(all_namespaces=True)] == ["model"]
    assert [f.name for f in model.list_files()] == ["data"]
    fs = stack.filesystem()
    fs.invalidate_cache()
    root = stack.root
    folders = [p.rsplit("/", 1)[-1] for p in fs.ls(f"{root}/artifacts/default")]
    assert folders == ["model"]
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{root}/artifacts/default/model")) == [
        ".artifact.json", "data"]


def test_special_metadata_round_trips(stack):
    artifact = new_artifact("meta")
    big = secrets.token_urlsafe(10_000)[:10_000]  # incompressible, as a B-tree entry would be
    huge = secrets.token_urlsafe(1 << 20)[:1 << 20]
    expected = {key: f"value of {key}" for key in SPECIAL_KEYS}
    expected.update({f"v{i}": value for i, value in enumerate(SPECIAL_VALUES)})
    expected.update({"10kb": big, "1mb": huge})
    artifact.update_meta(expected)
    for name, value in TYPED.items():
        artifact.set_meta(f"n-{name}", value)
        expected[f"n-{name}"] = None if (isinstance(value, float) and value != value) \
            or value in (float("inf"),) else list(value) if isinstance(value, tuple) else value
    assert artifact.metadata == expected
    read = get_artifact("meta").metadata  # read back from the catalog
    assert read == expected
    assert [(k, type(v)) for k, v in read.items()] == [(k, type(v)) for k, v in expected.items()]
    fs = stack.filesystem()
    fs.invalidate_cache()
    mirror = json.loads(fs.cat_file(f"{artifact.path}/.artifact.json"))
    assert mirror == expected
    for key in [*SPECIAL_KEYS, "10kb"]:
        assert [a.name for a in list_artifacts(where={key: expected[key]})] == ["meta"], key
    assert list_artifacts(where={"'": "' OR '1'='1"}) == []
    # NFC and NFD spellings are two keys with their own values, as the user wrote them.
    assert artifact["caf\u00e9"] != artifact["cafe\u0301"]
    print(f"\n[{stack.name}] {len(expected)} metadata keys round-tripped through the catalog "
          f"and .artifact.json (values up to {len(huge):,} characters)")


def test_names_that_look_alike_are_refused_not_normalised(stack):
    """The whitelist is ASCII: no NFC/NFD or look-alike spelling reaches storage."""
    new_artifact("cafe")
    for twin in ("caf\u00e9", "cafe\u0301", "\uff43\uff41\uff46\uff45", "c\u0430fe"):
        with pytest.raises(InvalidNameError, match="ASCII"):
            new_artifact(twin)
        with pytest.raises(InvalidNameError):
            get_artifact("cafe").new_file(twin, b"x")
    assert [a.name for a in list_artifacts()] == ["cafe"]


def test_catalog_rows_are_checked_before_they_become_paths(local_stack, tmp_path):
    """A catalog edited by hand cannot steer a delete or download outside the root."""
    import sqlalchemy as sa

    from catalogstore.catalog.engine import make_engine

    artifact = new_artifact("victim")
    artifact.new_file("f", b"x")
    target = tmp_path / f"precious-{uuid.uuid4().hex}"
    target.write_bytes(b"keep me")
    engine = make_engine(local_stack.catalog_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE artifact_files SET name = :n"),
                     {"n": os.path.relpath(target, Path(artifact.path))})
        conn.execute(sa.text("INSERT INTO artifacts (namespace, name, created_at, updated_at) "
                             "SELECT namespace, '../../..', created_at, updated_at "
                             "FROM artifacts"))
    engine.dispose()
    with pytest.raises(InvalidNameError):
        get_artifact("victim").clear()
    with pytest.raises(InvalidNameError):
        get_artifact("victim").download(tmp_path / "down")
    for listed in list_artifacts():
        if listed.name != "victim":
            with pytest.raises(InvalidNameError):
                listed.delete()
    assert target.read_bytes() == b"keep me"
