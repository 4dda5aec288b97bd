"""Retention that cannot delete what is in use (issue 15, item 4), from the issue's words.

- Per-namespace policies: keep the last N versions, keep versions younger than a
  duration; documented defaults (keep_last=10, keep_days=30; a ``"*"`` row overrides
  them for every namespace without its own).
- ``catalogstore gc`` reclaims the storage of expired versions, paginating S3
  listings, reporting bytes freed, resumable after a kill, and never removes the
  current version, an aliased version or a pinned one. A dry run shows what would go.
- The storage is untrusted: whatever someone put in ``.catalogstore/versions/`` is
  reported, never followed, never deleted through.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

import catalogstore
from catalogstore import maintenance
from catalogstore.artifacts import (
    get_artifact,
    get_retention,
    new_artifact,
    reset_retention,
    retention_policies,
    set_retention,
)
from catalogstore.catalog.models import VERSIONS, utcnow
from catalogstore.catalog.retention import DEFAULT_POLICY, delete_versions
from catalogstore.cli import app
from catalogstore.errors import ConfigurationError, InvalidNameError, VersionNotFoundError
from catalogstore.maintenance._retention import expire_versions
from catalogstore.maintenance._steps import own_workspace
from catalogstore.names import VERSIONS_DIR, version_blob, version_dir
from catalogstore.storage.checksum import checksum_bytes
from tests.stacks import stack_param
from tests.test_versions import kept_files

runner = CliRunner()


def content(tag: str, size: int) -> bytes:
    """``size`` bytes that no other tag gives."""
    return (tag.encode() * size)[:size]


def write_versions(name: str, contents: list[bytes], namespace: str = "") -> object:
    """An artifact whose version 1 is its creation and each later one a new ``w``."""
    artifact = new_artifact(name, namespace)
    for data in contents:
        artifact.new_file("w", content=data)
    return artifact


def catalog_execute(stack, statement, **params) -> None:
    """Run ``statement`` (SQL text, or a Core statement) on the catalog, as someone with
    the database would."""
    engine = sa.create_engine(stack.catalog_url)
    with engine.begin() as conn:
        conn.execute(sa.text(statement) if isinstance(statement, str) else statement,
                     params)
    engine.dispose()


def kept(artifact_id: int, data: bytes) -> str:
    """Where the bytes ``data`` of an artifact's earlier versions are kept, as
    :func:`kept_files` lists them."""
    return version_blob(artifact_id, checksum_bytes(data)).removeprefix(f"{VERSIONS_DIR}/")


def put_file(stack, path: str, data: bytes) -> None:
    """Write ``data`` at ``path`` under the storage root, behind catalogstore's back."""
    fs, full = stack.filesystem(), f"{stack.root}/{path}"
    fs.makedirs(full.rsplit("/", 1)[0], exist_ok=True)
    fs.pipe_file(full, data)


def assert_readable(name: str, versions: dict[int, bytes | None], namespace: str = "") -> None:
    """Each of ``versions`` reads back as it was written (``None``: no file)."""
    artifact = get_artifact(name, namespace)
    assert sorted(v.version for v in artifact.versions()) == sorted(versions)
    for number, data in versions.items():
        view = get_artifact(name, namespace, version=number)
        if data is None:
            assert not view.has_file("w")
        else:
            assert view.get_file("w").read() == data


# -- policies ------------------------------------------------------------------------


def test_policies_defaults_the_star_row_and_reset(stack):
    assert get_retention() == DEFAULT_POLICY == get_retention("team") == get_retention("*")
    assert (DEFAULT_POLICY.keep_last, DEFAULT_POLICY.keep_days) == (10, 30)
    assert get_retention("team").namespace is None  # the built-in default
    assert retention_policies() == {}

    star = set_retention("*", keep_last=3)  # keep_days as in force: the default's
    assert (star.keep_last, star.keep_days) == (3, 30)
    assert get_retention("team") == star and get_retention("team").namespace == "*"

    own = set_retention("team", keep_days=None)
    assert (own.keep_last, own.keep_days, own.namespace) == (3, None, "team")
    assert set_retention("team", keep_last=None) == get_retention("team")
    assert get_retention("team").keeps_all
    assert get_retention("other") == star
    with catalogstore.namespace("team"):
        assert get_retention().keeps_all
    assert set(retention_policies()) == {"*", "team"}

    assert reset_retention("team") == star  # back to the "*" row
    assert reset_retention("*") == DEFAULT_POLICY
    assert retention_policies() == {}
    assert set_retention("team", keep_last=1, keep_days=0.5).keep_days == 0.5


@pytest.mark.parametrize("values", [
    {"keep_last": 0}, {"keep_last": -1}, {"keep_last": 1.5}, {"keep_last": True},
    {"keep_last": "3"}, {"keep_last": 2**31}, {"keep_days": -1}, {"keep_days": float("nan")},
    {"keep_days": float("inf")}, {"keep_days": 1e300}, {"keep_days": "7"},
    {"keep_days": False},
])
def test_bad_policies_are_refused_and_nothing_is_written(local_stack, values):
    set_retention("team", keep_last=4, keep_days=2)
    with pytest.raises(ConfigurationError, match="invalid keep_"):
        set_retention("team", **values)
    assert (get_retention("team").keep_last, get_retention("team").keep_days) == (4, 2)


def test_bad_namespaces_are_refused(local_stack):
    for bad in ("../x", "a/b", "", "**", "a b"):
        with pytest.raises(InvalidNameError):
            set_retention(bad, keep_last=2)
        with pytest.raises(InvalidNameError):
            reset_retention(bad)
    assert retention_policies() == {}


# -- gc --------------------------------------------------------------------------


def setup_namespaces() -> tuple[dict[str, dict[int, bytes | None]], int]:
    """Artifacts in three namespaces; returns what each artifact must keep after a gc
    with keep_last=2, keep_days=0 on ``default`` (the others keep all), and the bytes
    that gc must free."""
    a, b, c, d = content("a", 10), content("b", 20), content("c", 30), content("d", 40)
    # m: 1 (empty), 2 a, 3 b, 4 c, 5 d, 6 a (current holds a again)
    m = write_versions("m", [a, b, c, d, a])
    m.set_alias("prod", 3)
    m.pin(4)
    # n: 1 (empty), 2 e, 3 f, 4 g, 5 h
    e, f, g, h = content("e", 50), content("f", 60), content("g", 70), content("h", 80)
    write_versions("n", [e, f, g, h])
    set_retention("default", keep_last=2, keep_days=0)
    # A namespace that keeps everything, and one on the default policy (last 10).
    set_retention("keep", keep_last=None, keep_days=None)
    write_versions("k", [content("k", 5), content("l", 6), content("m", 7)], "keep")
    write_versions("o", [content("o", 5), content("p", 6), content("q", 7)], "other")
    expected = {
        # 1 and 2 expire; a's bytes stay: the current version holds them.
        "m": {3: b, 4: c, 5: d, 6: a},
        # 1, 2 and 3 expire: e's and f's kept bytes go (g's serve 4).
        "n": {4: g, 5: h},
    }
    return expected, 50 + 60


def test_gc_keeps_current_aliased_and_pinned_and_frees_exactly(stack):
    expected, freed = setup_namespaces()
    report = maintenance.gc()
    assert report.retention == {"default": maintenance.Reclaimed(5, 2, freed)}
    assert (report.versions_removed, report.bytes_freed) == (5, freed)
    assert report.left == [] and not report.dry_run
    for name, versions in expected.items():
        assert_readable(name, versions)
    with pytest.raises(VersionNotFoundError):
        get_artifact("n", version=3)
    assert get_artifact("m@prod").version == 3 and get_artifact("m").version == 6
    assert [v.pinned for v in get_artifact("m").versions()] == [False, True, False, False]
    assert len(get_artifact("k", "keep").versions()) == 4
    assert len(get_artifact("o", "other").versions()) == 4
    # What is kept now: one file per checksum that a version still references.
    ids = {name: get_artifact(name, ns).record.id
           for name, ns in (("m", ""), ("n", ""), ("k", "keep"), ("o", "other"))}
    assert kept_files(stack) == sorted(
        [kept(ids["m"], versions) for versions in expected["m"].values()]
        + [kept(ids["n"], content("g", 70))]
        + [kept(ids["k"], content(t, size)) for t, size in (("k", 5), ("l", 6))]
        + [kept(ids["o"], content(t, size)) for t, size in (("o", 5), ("p", 6))])
    again = maintenance.gc()
    assert again.nothing_to_do and again.retention == {} and again.bytes_freed == 0
    assert maintenance.verify().ok  # every kept version's bytes are there


def test_a_version_aliased_or_pinned_meanwhile_is_not_deleted(local_stack):
    """The deletion checks again: an alias or pin set after gc found a version expired
    (or its becoming current, which cannot happen) keeps it."""
    model = write_versions("m", [b"1", b"2", b"3", b"4"])
    model.set_alias("prod", 2)
    model.pin(3)
    with own_workspace(None) as ws:
        pairs = [(model.record.id, v) for v in (2, 3, 5)]
        assert delete_versions(ws.catalog, pairs) == 0
        assert delete_versions(ws.catalog, [(model.record.id, 1), (model.record.id, 4)]) == 2
    assert [v.version for v in model.versions()] == [2, 3, 5]


def test_keep_days_counts_from_when_a_version_was_made(stack):
    model = write_versions("m", [content(t, 8 + i) for i, t in enumerate("abcd")])
    set_retention("default", keep_last=1, keep_days=1)
    assert maintenance.gc().versions_removed == 0  # all younger than a day
    catalog_execute(stack, sa.update(VERSIONS).where(VERSIONS.c.version <= 3).values(
        created_at=utcnow() - timedelta(days=2)))
    report = maintenance.gc()
    assert report.retention["default"].versions == 3
    assert report.retention["default"].bytes == 8 + 9  # versions 2 and 3's kept bytes
    assert [v.version for v in model.versions()] == [4, 5]
    # keep_last alone: beyond the last 1 goes, whatever its age.
    set_retention("default", keep_days=None)
    assert maintenance.gc().retention["default"].versions == 1
    assert [v.version for v in model.versions()] == [5]


def test_dry_run_shows_what_would_go_and_changes_nothing(stack):
    setup_namespaces()
    # Something for the other parts of gc too: a killed deletion's kept bytes.
    gone = write_versions("gone", [content("x", 11), content("y", 12)])
    gone_id = gone.record.id
    gone.delete()
    put_file(stack, version_blob(gone_id, checksum_bytes(content("x", 11))), content("x", 11))
    before = (kept_files(stack), {n: [v.version for v in get_artifact(n).versions()]
                                  for n in ("m", "n")})
    dry = maintenance.gc(dry_run=True)
    assert dry.dry_run
    assert dry.retention == {"default": maintenance.Reclaimed(5, 2, 110)}
    assert dry.deleted_artifacts == maintenance.Reclaimed(0, 1, 11)
    after = (kept_files(stack), {n: [v.version for v in get_artifact(n).versions()]
                                 for n in ("m", "n")})
    assert after == before
    real = maintenance.gc()
    assert (real.retention, real.deleted_artifacts) == (dry.retention, dry.deleted_artifacts)
    assert maintenance.gc(dry_run=True).nothing_to_do


def test_resumable_after_a_kill_between_the_rows_and_the_bytes(stack):
    expected, freed = setup_namespaces()
    blobs = kept_files(stack)
    # The first phase alone, as a gc killed right after it leaves the storage.
    with own_workspace(None) as ws:
        counts, _, _ = expire_versions(ws, utcnow(), remove=True)
    assert counts == {"default": 5}
    assert kept_files(stack) == blobs  # no byte freed yet
    for name, versions in expected.items():
        assert_readable(name, versions)
    report = maintenance.gc()
    assert report.versions_removed == 0  # done by the killed run
    assert report.retention == {"default": maintenance.Reclaimed(0, 2, freed)}
    assert len(kept_files(stack)) == len(blobs) - 2
    assert maintenance.gc().nothing_to_do


def test_orphans_are_swept(stack):
    """Kept bytes that no version references: a deleted artifact's (its deletion
    killed before it removed them) and a stray file of a live artifact."""
    fs, base = stack.filesystem(), stack.root
    gone = write_versions("gone", [content("x", 100), content("y", 200)])
    gone_id = gone.record.id
    gone.delete()
    put_file(stack, version_blob(gone_id, checksum_bytes(content("x", 100))),
             content("x", 100))
    live = write_versions("live", [b"one", b"two"])
    put_file(stack, version_blob(live.record.id, checksum_bytes(b"nobody's")), b"nobody's")
    report = maintenance.gc()
    assert report.deleted_artifacts == maintenance.Reclaimed(0, 1, 100)
    assert report.retention == {"default": maintenance.Reclaimed(0, 1, len(b"nobody's"))}
    assert report.bytes_freed == 100 + len(b"nobody's")
    assert all(not p.startswith(f"{gone_id}/") for p in kept_files(stack))
    assert not fs.exists(f"{base}/{version_dir(gone_id)}")
    assert get_artifact("live", version=2).get_file("w").read() == b"one"
    assert maintenance.gc().nothing_to_do


@pytest.mark.slow
@pytest.mark.parametrize("stack", [stack_param("sqlite-s3")], indirect=True)
def test_s3_listings_of_more_than_a_thousand_kept_files(stack):
    """S3 lists 1,000 keys a page: gc sees them all."""
    fs, base = stack.filesystem(), stack.root
    write_versions("live", [b"a", b"b"])  # a real artifact beside
    files = {f"{base}/{version_blob(99, checksum_bytes(str(i).encode()))}": b"z" * (i % 7)
             for i in range(1100)}
    fs.pipe(files)
    fs.invalidate_cache()
    assert len(kept_files(stack)) == 1101
    report = maintenance.gc(dry_run=True)
    assert report.deleted_artifacts == maintenance.Reclaimed(
        0, 1100, sum(len(v) for v in files.values()))
    report = maintenance.gc()
    assert report.deleted_artifacts.files == 1100
    assert report.bytes_freed == sum(len(v) for v in files.values())
    assert len(kept_files(stack)) == 1
    assert maintenance.gc().nothing_to_do


def test_foreign_entries_are_reported_never_followed(local_stack, tmp_path):
    root = Path(local_stack.storage_url)
    live = write_versions("live", [b"one", b"two"])
    area = root / VERSIONS_DIR
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious").write_bytes(b"keep me")
    checksum = checksum_bytes(b"keep me")
    name = version_blob(1, checksum).rsplit("/", 1)[1]
    (outside / name).write_bytes(b"keep me")
    # A link named as a kept file, in a deleted artifact's folder and in a live one's.
    (area / "55").mkdir()
    os.symlink(outside / "precious", area / "55" / name)
    os.symlink(outside / "precious", area / str(live.record.id) / name)
    # A folder of an id that is a link to a folder outside.
    os.symlink(outside, area / "66")
    os.mkfifo(area / "55" / version_blob(55, checksum_bytes(b"f")).rsplit("/", 1)[1])
    # Names no commit makes: a folder that is no id, a file that is no kept file,
    # a file beside the folders, a folder inside an id's folder.
    (area / "abc").mkdir()
    (area / "abc" / name).write_bytes(b"not ours")
    (area / "055").mkdir()
    (area / "055" / name).write_bytes(b"not ours")
    (area / str(live.record.id) / "notes.txt").write_bytes(b"not ours")
    (area / "README").write_bytes(b"not ours")
    (area / "55" / "sub").mkdir()
    # And one real orphan beside them.
    orphan = root / version_blob(55, checksum_bytes(b"orphan"))
    orphan.write_bytes(b"orphan")

    report = maintenance.gc()
    left = {b.path.removeprefix(f"{VERSIONS_DIR}/"): b.reason for b in report.left}
    assert set(left) == {f"55/{name}", f"{live.record.id}/{name}", "66",
                         f"55/{version_blob(55, checksum_bytes(b'f')).rsplit('/', 1)[1]}",
                         "abc/", "055/", f"{live.record.id}/notes.txt", "README", "55/sub/"}
    assert "symbolic link" in left["66"] and "FIFO" in "".join(left.values())
    assert report.deleted_artifacts == maintenance.Reclaimed(0, 1, len(b"orphan"))
    assert not orphan.exists()
    # Nothing followed or deleted through: the links and what they point at remain.
    assert (outside / "precious").read_bytes() == b"keep me"
    assert (outside / name).read_bytes() == b"keep me"
    assert (area / "55" / name).is_symlink() and (area / "66").is_symlink()
    assert (area / "abc" / name).exists() and (area / "055" / name).exists()
    assert (area / "README").exists() and (area / str(live.record.id) / "notes.txt").exists()
    assert get_artifact("live", version=2).get_file("w").read() == b"one"
    # The next run finds the same foreign entries and nothing to do.
    again = maintenance.gc()
    assert again.nothing_to_do and len(again.left) == len(report.left)


def test_a_policy_row_edited_by_hand_keeps_everything(stack):
    write_versions("m", [b"1", b"2", b"3"])
    catalog_execute(stack, "INSERT INTO retention_policies (namespace, keep_last, keep_days, "
                    "updated_at) VALUES ('default', -5, 0, :now)", now=utcnow())
    report = maintenance.gc()
    assert "keep_last" in report.refused_policies["default"]
    assert report.versions_removed == 0 and len(get_artifact("m").versions()) == 4
    assert get_retention("default").keeps_all


def test_verify_reports_an_earlier_versions_file_whose_bytes_are_gone(stack):
    fs, base = stack.filesystem(), stack.root
    a, b, c = content("a", 10), content("b", 20), content("c", 30)
    m = write_versions("m", [a, b, c])  # kept: a (v2), b (v3); current c
    n = write_versions("n", [a, b, a])  # kept: a, b; the current version holds a again
    assert maintenance.verify().ok
    for artifact, data in ((m, b), (n, a)):
        fs.rm_file(f"{base}/{version_blob(artifact.record.id, checksum_bytes(data))}")
    fs.invalidate_cache()
    report = maintenance.verify()
    assert not report.ok
    (found,) = report.differences
    assert (found.kind, found.where) == ("missing-version-file", "default/m/w")
    assert found.detail.startswith("v3: ") and checksum_bytes(b) in found.detail
    # n's version 2 reads from the current version's file, which holds the same bytes.
    assert get_artifact("n", version=2).get_file("w").read() == a
    assert maintenance.verify("other").ok  # another namespace: not checked
    out = cli("verify", code=1).stdout
    assert "missing-version-file default/m/w: v3: " in out
    assert maintenance.verify(repair=True).differences == report.differences  # never repaired


# -- the command line ----------------------------------------------------------------


def cli(*args: str, code: int = 0):
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


def test_cli_gc_dry_run_then_gc(local_stack):
    setup_namespaces()
    big = write_versions("big", [content("u", 1500), content("v", 10)], "other")
    set_retention("other", keep_last=1, keep_days=0)
    dry = cli("gc", "--dry-run").stdout
    assert "dry run: nothing was changed" in dry
    assert "versions: default: 5 version(s) to remove, 2 kept file(s) to free, 110 bytes" in dry
    assert "versions: other: 5 version(s) to remove, 3 kept file(s) to free, 1.5 kB" in dry
    assert len(big.versions()) == 3
    out = cli("gc").stdout
    assert "dry run" not in out
    assert "versions: default: 5 version(s) removed, 2 kept file(s) freed, 110 bytes" in out
    assert "versions: 10 version(s) removed and 1.6 kB freed in total" in out
    assert "versions: 0 version(s) removed and 0 bytes freed in total" in cli("gc").stdout


def test_cli_retention_shows_sets_and_resets(local_stack):
    out = cli("retention").stdout.splitlines()
    assert out == ["*            keep_last=10    keep_days=30    (the built-in default)"]
    assert "keep_last=4     keep_days=30    (its own)" in \
        cli("retention", "team", "--keep-last", "4").stdout
    assert "keep_last=4     keep_days=none  (its own)" in \
        cli("retention", "team", "--keep-days", "none").stdout
    cli("retention", "*", "--keep-days", "7.5")
    assert "(set for '*')" in cli("retention", "other").stdout
    assert "keep_days=7.5" in cli("retention", "other").stdout
    assert [line.split()[0] for line in cli("retention").stdout.splitlines()] == ["*", "team"]
    assert "(set for '*')" in cli("retention", "team", "--reset").stdout
    assert get_retention("team").namespace == "*"


@pytest.mark.parametrize("args, code, message", [
    (["retention", "team", "--keep-last", "0"], 1, "invalid keep_last 0"),
    (["retention", "team", "--keep-last", "two"], 2, "'two' is not a number"),
    (["retention", "team", "--keep-days", "-1"], 1, "invalid keep_days -1"),
    (["retention", "team", "--keep-days", "nan"], 1, "invalid keep_days nan"),
    (["retention", "--keep-last", "3"], 2, "name the namespace"),
    (["retention", "team", "--reset", "--keep-last", "3"], 2, "--reset takes no"),
    (["retention", "../x", "--keep-last", "3"], 1, "invalid namespace"),
])
def test_cli_retention_errors_are_one_line(local_stack, args, code, message):
    result = cli(*args, code=code)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]
    assert retention_policies() == {}


def test_gc_frees_the_catalog_bytes_of_expired_small_values(stack):
    """Small object store values keep their versions' bytes in the catalog (issue 19):
    retention deletes those of the versions it removes, and keeps the others readable."""
    from catalogstore.object_store import get, put

    set_retention("default", keep_last=2, keep_days=0)
    for threshold in range(6):
        put("threshold", threshold, artifact_only=True)

    def kept_values() -> int:
        engine = sa.create_engine(stack.catalog_url)
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT COUNT(*) FROM object_values")).scalar_one()
        engine.dispose()
        return int(count)

    assert kept_values() == 6
    maintenance.gc()
    assert kept_values() == 2
    assert get("threshold") == 5 and get("threshold", version=5) == 4
    with pytest.raises(VersionNotFoundError):
        get("threshold", version=4)
