"""Maintenance: reconcile the catalog with the storage tree (``reindex``, ``verify``, ``gc``).

Beside the layers: it reads the storage through the gateway
(:mod:`catalogstore.storage`), the catalog through :mod:`catalogstore.catalog`,
and commits what it finds through the unit of work (:mod:`catalogstore.txn`).
"""

from catalogstore.maintenance._reconcile import (
    DEFAULT_GRACE,
    KINDS,
    Difference,
    GcReport,
    ReindexReport,
    VerifyReport,
    gc,
    reindex,
    verify,
)

__all__ = ["DEFAULT_GRACE", "KINDS", "Difference", "GcReport", "ReindexReport",
           "VerifyReport", "gc", "reindex", "verify"]
