"""Round trips of a commit on PostgreSQL (issue 18): counted on the wire, so a
regression (a pre-ping, a savepoint, a lock released in a transaction of its own) shows.

libpq's trace of every connection records each message sent (``F``) and received
(``B``); a round trip is a run of messages sent followed by the answers waited for.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.pool import Pool

pytestmark = pytest.mark.postgres

CREATE_ROUND_TRIPS = 11
"""Atomic creation of one artifact (one file, 3 keys), 19 before issue 18: BEGIN with
the artifact lock; forgetting the previous commit's journal row; the insert (no
savepoint); the case check; files; metadata; journal; namespace lock; namespace check;
COMMIT; unlock (the storage step runs between the last two, under the lock)."""
SET_META_ROUND_TRIPS = 8
"""``set_meta`` on an existing artifact, 14 before: BEGIN with the lock; find; touch;
upsert; read the metadata back; COMMIT; unlock... plus the journal row forgotten."""


class RoundTrips:
    """Counts round trips on every PostgreSQL connection opened while it is active."""

    def __init__(self) -> None:
        self._files: list[Any] = []
        self._start: list[int] = []

    def attach(self, dbapi_connection: Any) -> None:
        from psycopg import pq

        log = tempfile.TemporaryFile()
        self._files.append(log)
        dbapi_connection.pgconn.trace(log.fileno())
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def mark(self) -> None:
        """Count from here on."""
        self._start = [os.fstat(f.fileno()).st_size for f in self._files]

    def count(self) -> int:
        total = 0
        for i, f in enumerate(self._files):
            f.seek(self._start[i] if i < len(self._start) else 0)
            previous = "B"
            for line in f.read().decode(errors="replace").splitlines():
                direction = line[:1]
                if direction == "F" and previous == "B":
                    total += 1
                if direction in ("F", "B"):
                    previous = direction
        return total


@contextlib.contextmanager
def round_trips() -> Iterator[RoundTrips]:
    counter = RoundTrips()

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        counter.attach(dbapi_connection)

    event.listen(Pool, "connect", on_connect)
    try:
        yield counter
    finally:
        event.remove(Pool, "connect", on_connect)


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
