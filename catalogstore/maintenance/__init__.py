"""Maintenance: reconcile the catalog with the storage tree.

- :func:`reindex` makes the catalog match the tree ``artifacts/{namespace}/{name}/``
  (a tree written by Flowdapt, or restored from a backup). Storage is the truth
  here; reindex only reads it, and writes the catalog in batches, one
  transaction each.
- :func:`verify` compares the two and lists every difference; ``repair=True``
  fixes what the write protocol can fix without touching committed data.
- :func:`gc` finishes what crashed writers left: it rolls the journal forward
  and removes staged files that nothing references; then it applies the retention
  policies: expired versions go, and the kept bytes no version references any more.

On a store that catalogstore writes, the catalog is the truth and ``verify``
is the tool; run ``verify --repair`` before ``reindex`` there, since reindex
would record a ``.artifact.json`` that a crash left stale. Both work beside live
writers: reindex commits an artifact only if no writer committed to it since
it was read, and verify confirms each difference under the artifact's lock
before reporting it.

Beside the layers: it reads the storage through the gateway
(:mod:`catalogstore.storage`), the catalog through :mod:`catalogstore.catalog`, and
commits what it finds through the unit of work (:mod:`catalogstore.txn`). One
pipeline reads and hashes what the storage holds (``_hashing``), one collector
finds the orphans of the staging area (``_gc``), one the kept bytes of versions
nothing references (``_retention``), and ``_steps`` holds what the three commands
share.
"""

from catalogstore.maintenance._gc import DEFAULT_GRACE, gc
from catalogstore.maintenance._reindex import reindex
from catalogstore.maintenance._reports import (
    KINDS,
    Difference,
    GcReport,
    Reclaimed,
    ReindexReport,
    VerifyReport,
)
from catalogstore.maintenance._verify import verify

__all__ = ["DEFAULT_GRACE", "KINDS", "Difference", "GcReport", "Reclaimed",
           "ReindexReport", "VerifyReport", "gc", "reindex", "verify"]
