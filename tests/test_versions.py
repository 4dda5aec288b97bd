"""Versions and aliases (issue 15), from the issue's words.

- Each committed change of an artifact (files or metadata; one transaction = one
  version) makes an immutable version numbered 1, 2, 3 ...; the current one is what
  every existing call sees and what the artifact's folder holds, in Flowdapt's layout.
- ``get_artifact(name, version=3)`` is a read-only view (files and metadata as they
  were; writing to it raises); ``artifact.version`` is its number; ``versions()``
  lists every kept version with number, creation time, metadata, file names, sizes
  and checksums.
- Aliases: ``set_alias("prod", version=3)``, ``remove_alias``, ``get_artifact(name,
  alias="prod")``; ``latest`` is the current version; an alias names one version and
  moves atomically; ``name:v3`` and ``name@prod`` as strings.
- Nothing stored twice: a metadata-only change costs no file I/O beyond
  ``.artifact.json``; an unchanged file is not copied again; a replaced one is kept
  once (a hard link on local disk).
- ``delete()`` removes every version.
"""

from __future__ import annotations

import itertools
import json
import os
import pickle
from pathlib import Path

import pytest

import catalogstore
from catalogstore.artifacts import get_artifact, new_artifact
from catalogstore.artifacts.versions import ArtifactVersion
from catalogstore.errors import (
    ArtifactNotFoundError,
    InvalidNameError,
    ReadOnlyArtifactError,
    VersionNotFoundError,
)
from catalogstore.names import VERSIONS_DIR, version_blob
from catalogstore.storage.checksum import checksum_bytes
from tests.stacks import ALL_STACKS


def kept_files(stack) -> list[str]:
    """The paths under the store's folder of kept bytes."""
    fs = stack.filesystem()
    base = f"{stack.root}/{VERSIONS_DIR}"
    fs.invalidate_cache()
    return sorted(p[len(base) + 1:] for p in fs.find(base) if p.startswith(f"{base}/"))


@pytest.mark.parametrize("stack", ALL_STACKS, indirect=True)
def test_every_commit_is_a_version_and_earlier_ones_read_as_they_were(stack):
    model = new_artifact("model")  # version 1: created, empty
    model.new_file("weights.bin", content=b"w1")  # 2
    with model.transaction():  # 3: one transaction, one version
        model["accuracy"] = 0.81
        model["layers"] = [64, 32]
        model.new_file("config.json", content='{"lr": 0.1}')
    model.get_file("weights.bin").write(b"w2-longer")  # 4
    model.delete_file("config.json")  # 5
    model["accuracy"] = 0.9  # 6

    assert model.version == 6
    listed = model.versions()
    assert [v.version for v in listed] == [1, 2, 3, 4, 5, 6]
    assert [v.current for v in listed] == [False] * 5 + [True]
    assert listed[-1].aliases == ("latest",)
    assert all(a.created_at <= b.created_at for a, b in itertools.pairwise(listed))
    third = listed[2]
    assert third.metadata == {"accuracy": 0.81, "layers": [64, 32]}
    assert sorted(third.files) == ["config.json", "weights.bin"]
    assert third.files["weights.bin"].size == 2
    assert third.files["weights.bin"].checksum == checksum_bytes(b"w1")
    assert listed[3].files["weights.bin"].checksum == checksum_bytes(b"w2-longer")

    v3 = get_artifact("model", version=3)
    assert isinstance(v3, ArtifactVersion) and v3.version == 3
    assert v3.metadata == {"accuracy": 0.81, "layers": [64, 32]}
    assert v3["layers"] == [64, 32]
    assert [f.name for f in v3.list_files()] == ["config.json", "weights.bin"]
    assert v3.get_file("weights.bin").read() == b"w1"
    assert v3.get_file("config.json").read() == '{"lr": 0.1}'  # str as written
    with v3.get_file("weights.bin").open("rb") as stream:
        assert stream.read() == b"w1"
    assert get_artifact("model", version=1).is_empty
    assert get_artifact("model:v5").get_file("weights.bin").read() == b"w2-longer"
    assert not get_artifact("model:v5").has_file("config.json")

    # The current version is what every existing call sees, and the folder holds it.
    current = get_artifact("model")
    assert current.metadata == {"accuracy": 0.9, "layers": [64, 32]}
    assert [f.name for f in current.list_files()] == ["weights.bin"]
    assert current.get_file("weights.bin").read() == b"w2-longer"
    fs = stack.filesystem()
    folder = f"{stack.root}/artifacts/default/model"
    assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(folder, detail=False)) == \
        [".artifact.json", "weights.bin"]
    assert json.loads(fs.cat_file(f"{folder}/.artifact.json")) == \
        {"accuracy": 0.9, "layers": [64, 32]}


def test_a_version_view_refuses_every_change(local_stack, tmp_path):
    model = new_artifact("model")
    model.new_file("a.txt", content="one")
    model["k"] = 1
    model["j"] = 2
    old = get_artifact("model", version=3)
    source = tmp_path / "up.txt"
    source.write_text("x")
    changes = [
        lambda: old.set_meta("k", 2), lambda: old.__setitem__("k", 2),
        lambda: old.del_meta("k"), lambda: old.update_meta({"k": 3}),
        lambda: old.new_file("b.txt", content="b"), lambda: old.get_file("a.txt").write("z"),
        lambda: old.get_file("a.txt").open("w"), lambda: old.delete_file("a.txt"),
        lambda: old.get_file("a.txt").remove(), lambda: old.clear(), lambda: old.delete(),
        lambda: old.upload(source), lambda: old.transaction().__enter__(),
    ]
    for change in changes:
        with pytest.raises(ReadOnlyArtifactError, match="versions never change"):
            change()
    assert get_artifact("model").metadata == {"k": 1, "j": 2}
    assert get_artifact("model").version == 4
    assert get_artifact("model", version=3).get_file("a.txt").read() == "one"
    assert len(get_artifact("model").versions()) == 4


def test_aliases_name_one_version_and_move(local_stack):
    model = new_artifact("model")
    for accuracy in (0.7, 0.8, 0.9):
        model["accuracy"] = accuracy  # versions 2, 3, 4
    assert model.set_alias("prod", 3) == 3
    assert get_artifact("model", alias="prod")["accuracy"] == 0.8
    assert get_artifact("model@prod").version == 3
    assert get_artifact("model@latest").version == 4
    assert model.set_alias("staging") == 4  # the current version by default
    assert model.aliases == {"prod": 3, "staging": 4, "latest": 4}
    model.set_alias("prod", 4)  # moves: still one version
    assert model.aliases["prod"] == 4
    assert [v.aliases for v in model.versions()][-1] == ("latest", "prod", "staging")
    assert model.remove_alias("prod") and not model.remove_alias("prod")
    with pytest.raises(VersionNotFoundError, match="model@prod"):
        get_artifact("model", alias="prod")
    with pytest.raises(VersionNotFoundError):
        model.set_alias("prod", 9)
    for bad in ("latest", "v3", "bad name", "a:b", ""):
        with pytest.raises(InvalidNameError):
            model.set_alias(bad, 2)
    for ref in ("model:v", "model:3", "model@", ":v1", "model:v1@prod", "model@a@b"):
        with pytest.raises(InvalidNameError):
            get_artifact(ref)
    with pytest.raises(TypeError):
        get_artifact("model:v2", version=3)
    with pytest.raises(TypeError):
        get_artifact("model", version=3, create=True)
    for ref in ("model:v2", "model@prod", "new@prod"):  # a name to create, never valid
        with pytest.raises(InvalidNameError):
            get_artifact(ref, create=True)
    with pytest.raises(VersionNotFoundError):
        get_artifact("model", version=99)
    with pytest.raises(ArtifactNotFoundError):
        get_artifact("nothing:v1")
    # Another artifact's alias of the same name is its own.
    other = new_artifact("other")
    other.set_alias("prod")
    assert get_artifact("other@prod").version == 1 and "prod" not in model.aliases


def test_metadata_changes_cost_no_file_and_unchanged_files_are_kept_once(local_stack):
    root = Path(local_stack.storage_url)
    model = new_artifact("model")
    weights = os.urandom(1 << 20)
    model.new_file("weights.bin", content=weights)
    for epoch in range(10):
        model["epoch"] = epoch
        model.get_file("notes.txt", create=True)  # exists after the first: no change
    assert not any((root / VERSIONS_DIR).rglob("xxh128-*"))
    assert model.version == 13  # created, weights, then 11 changes of metadata or files
    model.new_file("weights.bin", content=weights)  # the same bytes: nothing kept
    assert not any((root / VERSIONS_DIR).rglob("xxh128-*"))
    model.new_file("weights.bin", content=b"retrained")
    kept = list((root / VERSIONS_DIR).rglob("xxh128-*"))
    assert len(kept) == 1 and kept[0].read_bytes() == weights
    # A hard link to the file it replaced: no byte copied.
    assert kept[0].stat().st_nlink == 1  # the artifact's folder holds the new bytes
    for version in (2, 5, 14):
        assert get_artifact("model", version=version).get_file("weights.bin").read() == weights
    assert get_artifact("model").get_file("weights.bin").read() == b"retrained"


def test_the_kept_bytes_are_a_link_to_the_replaced_file(local_stack):
    root = Path(local_stack.storage_url)
    model = new_artifact("model")
    model.new_file("w", content=b"old")
    inode = (root / "artifacts/default/model/w").stat().st_ino
    model.new_file("w", content=b"new")
    (kept,) = (root / VERSIONS_DIR).rglob("xxh128-*")
    assert kept.stat().st_ino == inode


@pytest.mark.parametrize("stack", ALL_STACKS, indirect=True)
def test_delete_removes_every_version(stack):
    model = new_artifact("model")
    model.new_file("w", content=b"1")
    model.new_file("w", content=b"2")
    model.set_alias("prod", 2)
    assert kept_files(stack)
    model.delete()
    assert kept_files(stack) == []
    again = new_artifact("model")  # a new artifact of the name starts at 1
    assert again.version == 1 and [v.version for v in again.versions()] == [1]
    with pytest.raises(VersionNotFoundError):
        get_artifact("model", version=2)
    with pytest.raises(VersionNotFoundError):
        get_artifact("model@prod")


def test_a_batch_makes_one_version_per_artifact_it_changes(local_stack):
    a, b = new_artifact("a"), new_artifact("b")
    with catalogstore.transaction():
        a["x"] = 1
        a.new_file("f", content=b"f")
        b["y"] = 2
    assert (a.version, b.version) == (2, 2)
    with pytest.raises(RuntimeError), catalogstore.transaction():
        a["x"] = 2
        raise RuntimeError("abort")
    assert a.version == 2  # nothing committed: no version


def test_a_view_travels_to_another_process_and_stays_what_it_was(local_stack):
    model = new_artifact("model")
    model.new_file("w", content=b"v2")
    view = get_artifact("model", version=2)
    model.new_file("w", content=b"v3")
    again = pickle.loads(pickle.dumps(view))
    assert again == view and again.version == 2
    assert again.get_file("w").read() == b"v2"


def test_reads_of_kept_bytes_are_checked(local_stack):
    root = Path(local_stack.storage_url)
    model = new_artifact("model")
    model.new_file("w", content=b"first")
    model.new_file("w", content=b"second")
    (kept,) = (root / VERSIONS_DIR).rglob("xxh128-*")
    kept.unlink()
    kept.write_bytes(b"tampered")
    from catalogstore.errors import CorruptArtifactError

    with pytest.raises(CorruptArtifactError):
        get_artifact("model", version=2).get_file("w").read()


# -- the object store ------------------------------------------------------------------


class Model:
    """Pickled (the cloudpickle serializer: code runs when it is read)."""

    def __init__(self, weights: list[float]) -> None:
        self.weights = weights


def test_object_store_get_of_an_earlier_version(local_stack):
    from catalogstore.object_store import get, put

    put("model", Model([0.1]), artifact_only=True)
    put("model", Model([0.2]), artifact_only=True)
    put("threshold", 0.5, artifact_only=True)
    put("threshold", 0.7, artifact_only=True)
    assert get("model", version=1).weights == [0.1]
    assert get("model", version=2).weights == [0.2] == get("model").weights
    assert get("threshold", version=1) == 0.5 and get("threshold") == 0.7
    assert [v.version for v in get_artifact("model").versions()] == [1, 2]
    with pytest.raises(VersionNotFoundError):
        get("model", version=7)
    from catalogstore.errors import ObjectNotFoundError

    with pytest.raises(ObjectNotFoundError):
        get("missing", version=1)
    new_artifact("report")["owner"] = "alice"
    with pytest.raises(ObjectNotFoundError, match="user artifact"):
        get("report", version=1)


def test_an_earlier_pickle_changed_in_the_storage_is_not_unpickled(local_stack):
    from catalogstore.errors import UntrustedObjectError
    from catalogstore.object_store import get, put

    # Weights over the object store's INLINE_LIMIT: files, whose earlier bytes are kept
    # in the storage (a small value's are kept in the catalog, test_object_inline).
    weights = [0.5] * 20_000
    put("model", Model([0.1, *weights]), artifact_only=True)
    put("model", Model([0.2, *weights]), artifact_only=True)
    (kept,) = (Path(local_stack.storage_url) / VERSIONS_DIR).rglob("xxh128-*")
    payload = pickle.dumps(Model([6.66]))
    kept.unlink()
    kept.write_bytes(payload)
    # Its checksum row too, as someone with both the storage and the catalog would...
    # without the catalog, the checksum refuses it first:
    from catalogstore.errors import CorruptArtifactError

    with pytest.raises(CorruptArtifactError):
        get("model", version=1)
    import sqlalchemy as sa

    engine = sa.create_engine(local_stack.catalog_url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE artifact_version_files SET checksum = :c, size = :s "
                             "WHERE version = 1"),
                     {"c": checksum_bytes(payload), "s": len(payload)})
    engine.dispose()
    kept.rename(kept.parent / version_blob(1, checksum_bytes(payload)).rsplit("/", 1)[1])
    with pytest.raises(UntrustedObjectError, match="not unpickled"):
        get("model", version=1)
