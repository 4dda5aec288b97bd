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


PUT_OVERWRITE_ROUND_TRIPS = 15
"""``object_store.put(..., artifact_only=True)`` over an existing key: the reads before
the commit (the record with the artifact; the artifact's files), each a pinged
reader's BEGIN, SELECT, COMMIT (8); then the commit as above (7): BEGIN with the lock;
the find (the journal clean-up rides along); the case check (the ``objects`` upsert
rides along: no implicit ``RETURNING id``, which would be waited for); the metadata
read back (touch and file rows ride along); the journal row (the metadata document
rides along); COMMIT; unlock."""


def test_object_put_round_trips(migrated_pg_url, tmp_path):
    import catalogstore
    from catalogstore import object_store

    with round_trips() as counter:
        catalogstore.configure(catalog_url=migrated_pg_url, storage_url=str(tmp_path / "s"))
        object_store.put("k", {"v": 0}, namespace="ns", artifact_only=True)
        counts = []
        for i in (1, 2):
            counter.mark()
            object_store.put("k", {"v": i}, namespace="ns", artifact_only=True)
            counts.append(counter.count())
    assert object_store.get("k", namespace="ns", artifact_only=True) == {"v": 2}
    assert counts == [PUT_OVERWRITE_ROUND_TRIPS] * 2
