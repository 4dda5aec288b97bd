"""Round trips of a commit on PostgreSQL (issue 18), counted on the wire
(:mod:`catalogstore.testing.roundtrips`), so a regression (a pre-ping, a savepoint, a
lock released in a transaction of its own) shows."""

from __future__ import annotations

import pytest

from catalogstore.testing.roundtrips import round_trips

pytestmark = pytest.mark.postgres

CREATE_ROUND_TRIPS = 7
"""Atomic creation of one artifact (one file, 3 keys), 19 before issue 18: BEGIN with
the artifact lock (one simple query); the insert (no savepoint; the previous commit's
journal row is forgotten in the same round trip); the case check; the journal row (file
and metadata rows ride along, pipelined); the namespace lock with the namespace check;
COMMIT; unlock (the storage step runs between the last two, under the lock)."""
SET_META_ROUND_TRIPS = 5
"""``set_meta`` on an existing artifact, 14 before: BEGIN with the lock; find the
artifact; read its metadata back (touch and upsert ride along); COMMIT; unlock."""


def test_atomic_creation_and_set_meta_round_trips(migrated_pg_url, tmp_path):
    import catalogstore
    from catalogstore.artifacts import get_artifact, new_artifact

    with round_trips() as counter:
        catalogstore.configure(catalog_url=migrated_pg_url, storage_url=str(tmp_path / "s"))
        new_artifact("warm", "ns")  # opens the catalog and its connection
        for i in range(2):
            counter.mark()
            with catalogstore.transaction():
                artifact = new_artifact(f"a{i}", "ns")
                artifact.new_file("data.bin", content=b"x" * 1024)
                artifact.update_meta({"k1": "1", "k2": "two", "k3": "3.5"})
            created = counter.count()
        artifact = get_artifact("a0", "ns")
        counter.mark()
        artifact.set_meta("k1", "changed")
        set_meta = counter.count()
    assert get_artifact("a1", "ns").metadata == {"k1": "1", "k2": "two", "k3": "3.5"}
    assert get_artifact("a0", "ns").metadata["k1"] == "changed"
    assert (created, set_meta) == (CREATE_ROUND_TRIPS, SET_META_ROUND_TRIPS)


PUT_OVERWRITE_ROUND_TRIPS = {"large": 16, "small": 4}
"""``object_store.put(..., artifact_only=True)`` over an existing key.

A large value (over ``INLINE_LIMIT``) takes the artifact path: the reads before the
commit (the record with the artifact; the artifact's files), each a pinged reader's
BEGIN, SELECT, COMMIT (8); then the commit (8): BEGIN with the lock; the find (the
journal clean-up rides along); the case check (the ``objects`` upsert rides along: no
implicit ``RETURNING id``, which would be waited for); the replaced file's checksum, so
that the version before keeps its bytes (issue 15; the touch rides along); the metadata
read back (the file rows ride along); the journal row (the metadata document, the next
version, its snapshot and the run's output ride along); COMMIT; unlock.

A small value kept in the catalog is one transaction (issue 19): BEGIN with the lock;
the key's state; COMMIT (its record, file row, metadata, bytes, next version, snapshot
and the run's output ride along, pipelined); unlock. Its files are written afterwards by
the background writer, outside this count."""


@pytest.mark.parametrize("size", ["small", "large"])
def test_object_put_round_trips(migrated_pg_url, tmp_path, size):
    import catalogstore
    from catalogstore import object_store

    pad = "x" * (0 if size == "small" else object_store.INLINE_LIMIT)
    with round_trips() as counter:
        catalogstore.configure(catalog_url=migrated_pg_url, storage_url=str(tmp_path / "s"))
        object_store.put("k", {"v": 0, "pad": pad}, namespace="ns", artifact_only=True)
        counts = []
        for i in (1, 2):
            counter.mark()
            object_store.put("k", {"v": i, "pad": pad}, namespace="ns", artifact_only=True)
            counts.append(counter.count())
    assert object_store.get("k", namespace="ns", artifact_only=True) == {"v": 2, "pad": pad}
    assert counts == [PUT_OVERWRITE_ROUND_TRIPS[size]] * 2
