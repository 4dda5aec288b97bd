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
