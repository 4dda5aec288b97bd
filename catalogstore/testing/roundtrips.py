"""Round trips to PostgreSQL, counted on the wire (issue 18).

libpq's trace of a connection records each protocol message sent (``F``) and
received (``B``); a round trip is a run of messages sent followed by the answers
the client waited for. Counting there (not SQLAlchemy's statement events) sees
everything: pings, ``BEGIN``/``COMMIT``, savepoints, pipelined statements (which
share one round trip), and statements run straight on the driver::

    with round_trips() as counter:
        ...                     # open the catalog: its connections are traced
        counter.mark()
        artifact.set_meta("k", "v")
        assert counter.count() == 7
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any


class RoundTrips:
    """Counts the round trips of every PostgreSQL connection opened while it is active."""

    def __init__(self) -> None:
        self._logs: list[IO[bytes]] = []
        self._start: list[int] = []

    def attach(self, dbapi_connection: Any) -> None:
        """Trace a psycopg connection (one SQLAlchemy's pool just opened)."""
        from psycopg import pq

        log = tempfile.TemporaryFile()  # noqa: SIM115 (open until close(), as the trace)
        self._logs.append(log)
        dbapi_connection.pgconn.trace(log.fileno())
        dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

    def mark(self) -> None:
        """Count from here on."""
        self._start = [os.fstat(log.fileno()).st_size for log in self._logs]

    def count(self) -> int:
        """Round trips since :meth:`mark` (or since tracing began), on all connections."""
        total = 0
        for i, log in enumerate(self._logs):
            log.seek(self._start[i] if i < len(self._start) else 0)
            previous = "B"
            for line in log.read().decode(errors="replace").splitlines():
                direction = line[:1]
                if direction == "F" and previous == "B":
                    total += 1
                if direction in ("F", "B"):
                    previous = direction
        return total

    def close(self) -> None:
        """Close the trace files (a traced connection still open then writes no more)."""
        for log in self._logs:
            log.close()


@contextlib.contextmanager
def round_trips() -> Iterator[RoundTrips]:
    """A :class:`RoundTrips` tracing the connections any engine opens in the block."""
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    counter = RoundTrips()

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        if hasattr(dbapi_connection, "pgconn"):
            counter.attach(dbapi_connection)

    event.listen(Pool, "connect", on_connect)
    try:
        yield counter
    finally:
        event.remove(Pool, "connect", on_connect)
        counter.close()
