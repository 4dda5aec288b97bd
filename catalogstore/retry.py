"""Retries with exponential backoff: the one retry loop of catalogstore.

A call is retried only when the caller's predicate says its failure is transient
(a connection refused or reset, a timeout, a lock held by another program, a
race with a concurrent writer) *and* repeating it cannot apply a change twice:
reading, removing, writing whole content to a new staging path, connecting to
the database, or a database transaction that provably did not commit. Each
retry is logged on the ``catalogstore.retry`` logger with the attempt count (at
WARNING for faults; a race that is part of normal operation passes a lower
level); the last failure is raised as it was, and :func:`attempts_made` tells
how many attempts it took. The policies (:class:`Backoff`) live where they are
named: here for the storage and the catalog, beside their loops elsewhere.

The policies are small on purpose: they ride out a blip or a server restart, and
a service that stays down is reported within seconds (the timeouts of a single
attempt are set on the connections themselves; see the README's "Faults").
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

__all__ = ["CATALOG_CONNECT", "CATALOG_TRANSACTION", "STORAGE", "Backoff", "attempts_made",
           "call"]

logger = logging.getLogger("catalogstore.retry")
T = TypeVar("T")
_ATTEMPTS_ATTR = "_catalogstore_attempts"


@dataclass(frozen=True)
class Backoff:
    """At most ``attempts`` tries, waiting ``first_delay * factor**n`` seconds between
    them (at most ``max_delay``), each wait shortened by up to ``jitter`` of itself at
    random so that many clients do not come back at the same moment."""

    attempts: int
    first_delay: float
    factor: float = 2.0
    max_delay: float = 5.0
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.first_delay < 0 or not 0 <= self.jitter <= 1:
            raise ValueError(f"invalid backoff {self!r}")

    def delays(self) -> Iterator[float]:
        """The waits after the first, second, ... failed attempt (``attempts - 1`` of them)."""
        for n in range(self.attempts - 1):
            delay = min(self.first_delay * self.factor ** n, self.max_delay)
            yield delay * (1 - self.jitter * random.random())


STORAGE = Backoff(attempts=3, first_delay=0.2)
"""Storage calls that can be repeated safely (S3 requests are retried by botocore
itself, with the attempts its configuration gives: see :mod:`catalogstore.storage.filestore`)."""
CATALOG_CONNECT = Backoff(attempts=4, first_delay=0.5)
"""Opening a PostgreSQL connection: rides out a server restart of about 3 seconds."""
CATALOG_TRANSACTION = Backoff(attempts=2, first_delay=0.5)
"""A catalog transaction whose connection was lost before its COMMIT was sent (so it
did not commit); it is run again once, from the start, on a new connection."""


def call(fn: Callable[[], T], *, policy: Backoff, transient: Callable[[Exception], bool],
         what: str | Callable[[], str], level: int = logging.WARNING) -> T:
    """``fn()``, tried again after a transient failure, at most ``policy.attempts`` times.

    Parameters
    ----------
    transient
        Whether a failure may go away if the call is repeated, and repeating is safe.
    what
        What is being done and where, for the warning (a callable is evaluated only
        when a warning is logged); it must name no secret.
    level
        The logging level of each retry's message.

    Raises
    ------
    Exception
        The last failure, unchanged, once it is not transient or no attempt is left;
        :func:`attempts_made` gives the number of attempts made.
    """
    delays = policy.delays()
    attempt = 1
    while True:
        try:
            return fn()
        except Exception as exc:
            if attempt >= policy.attempts or not transient(exc):
                if attempt > 1:
                    _remember_attempts(exc, attempt)
                raise
            delay = next(delays)
            if logger.isEnabledFor(level):
                logger.log(level, "%s failed (attempt %d of %d): %s; retrying in %.2f s",
                           what() if callable(what) else what, attempt, policy.attempts,
                           describe(exc), delay)
            if delay:
                time.sleep(delay)
            attempt += 1


def attempts_made(exc: BaseException | None) -> int:
    """How many attempts :func:`call` made before raising ``exc`` (1 when not retried)."""
    return getattr(exc, _ATTEMPTS_ATTR, 1) if exc is not None else 1


def describe(exc: BaseException) -> str:
    """``Type: first line of the message``, for one-line reports."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _remember_attempts(exc: BaseException, attempts: int) -> None:
    with contextlib.suppress(AttributeError, TypeError):  # a type with __slots__
        setattr(exc, _ATTEMPTS_ATTR, attempts)
